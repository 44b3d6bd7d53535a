/**
 * The teacher-logit cache: top-k selection, round trips (f32 and f16), resume of a partial cache,
 * rejection of corrupt or truncated files, and the loss from the cache vs the loss from top-k directly.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  checkCacheMatches, crc32, crc32Table, recordLayout, sha256File, DATA_FILE, HEADER_FILE, type TeacherCacheSpec, type TopkEntries,
} from '../../src/io/teacher-cache-format.js';
import { TeacherCacheReader, TeacherCacheWriter } from '../../src/io/teacher-cache.js';
import { topkFromLogits, topkTeacher } from '../../src/distill/loss.js';
import { distillationLoss } from '../../src/distill/loss.js';
import { createBackend } from '../../src/kernels/registry.js';
import { QkdError } from '../../src/tensor/errors.js';
import { randoms } from '../helpers.js';

const be = await createBackend('ts');
const V = 300, T = 16, K = 12, W = 6, TAUS = [2, 1];

function withTmp(fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'qkd-tc-'));
  try { fn(join(dir, 'cache')); } finally { rmSync(dir, { recursive: true, force: true }); }
}

function throwsQkd(fn: () => unknown, code: string, ...parts: string[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof QkdError, `expected QkdError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    for (const p of parts) assert.ok(e.message.includes(p), `message ${JSON.stringify(e.message)} lacks ${JSON.stringify(p)}`);
    return true;
  });
}

const spec = (over: Partial<TeacherCacheSpec> = {}): TeacherCacheSpec => ({
  teacher: { path: 'teacher', configSha256: 'c0ffee', weightsSha256: 'beef' }, tokenizerSha256: 'abc',
  data: { sha256: 'd00d', tokens: 5000 }, V, k: K, taus: TAUS, T, logitDtype: 'f32',
  windowRule: { kind: 'sampler', seed: 7, batch: 2 }, plannedWindows: null, ...over,
});

// W windows of teacher logits (W·T, V), their tokens and starts
const teacherLogits = randoms(W * T * V, 3, -9, 9);
const entries = topkFromLogits(teacherLogits, W * T, V, K, TAUS);
const starts = Array.from({ length: W }, (_, i) => 100 * i + 3);
const tokens = (i: number) => Array.from({ length: T + 1 }, (_, j) => (starts[i] + j * 13) % V);

function writeAll(dir: string, s: TeacherCacheSpec, from = 0, to = W, e: TopkEntries = entries): TeacherCacheWriter {
  const w = TeacherCacheWriter.open(dir, s);
  for (let i = from; i < to; i++) w.append(starts[i], tokens(i), e, i * T);
  return w;
}

test('topkFromLogits: the k largest per row (ties: lower id first), sorted, with the full-row lse per tau', () => {
  const N = 5, Vr = 40, x = randoms(N * Vr, 9, -3, 3).map((v) => Math.round(v * 2) / 2); // many ties
  x[7] = -Infinity;
  for (const k of [1, 5, Vr - 1]) { // Vr - 1: row 0 leaves out exactly its -inf logit
    const e = topkFromLogits(x, N, Vr, k, [1, 2.5]);
    assert.ok(e.ids instanceof Uint16Array);
    for (let i = 0; i < N; i++) {
      const order = [...x.subarray(i * Vr, (i + 1) * Vr)].map((v, id) => [v, id]).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
      assert.deepEqual([...e.ids.subarray(i * k, (i + 1) * k)], order.slice(0, k).map((p) => p[1]), `row ${i} k ${k}`);
      assert.deepEqual([...e.logits.subarray(i * k, (i + 1) * k)], order.slice(0, k).map((p) => p[0]));
      for (const [a, tau] of [1, 2.5].entries()) {
        const want = Math.log(order.reduce((s, p) => s + Math.exp(p[0] / tau), 0));
        assert.ok(Math.abs(e.lse[a * N + i] - want) < 1e-5, `lse row ${i} tau ${tau}`);
      }
    }
  }
  throwsQkd(() => topkFromLogits(x, N, Vr, Vr, [1]), 'E_INPUT', 'row 0', 'non-finite');
  const nan = x.slice(); nan[45] = NaN;
  throwsQkd(() => topkFromLogits(nan, N, Vr, 3, [1]), 'E_INPUT', 'row 1');
  throwsQkd(() => topkFromLogits(x, N, Vr, 0, [1]), 'E_CONFIG', 'k = 0');
});

test('crc32 (zlib where Node has it) equals the table reference and the standard check value', () => {
  const check = new TextEncoder().encode('123456789');
  assert.equal(crc32(check), 0xcbf43926);
  assert.equal(crc32Table(check), 0xcbf43926);
  const x = Uint8Array.from(randoms(100_003, 5, 0, 256), Math.floor);
  assert.equal(crc32(x), crc32Table(x));
  assert.equal(crc32(new Uint8Array(0)), 0);
});

for (const logitDtype of ['f32', 'f16'] as const) {
  test(`round trip (${logitDtype}): windows come back as written; the loss from the cache equals the loss from top-k directly`, () => withTmp((dir) => {
    writeAll(dir, spec({ logitDtype, plannedWindows: W })).finalize();
    const r = TeacherCacheReader.open(dir);
    assert.equal(r.windows, W);
    assert.equal(readFileSync(join(dir, DATA_FILE)).length, W * recordLayout(spec({ logitDtype })).bytes);
    const order = [4, 0, 5, 2];
    for (const tau of TAUS) {
      const got = r.read(order, tau), direct = topkTeacher(entries, tau), gt = got.teacher;
      assert.equal(gt.kind, 'topk');
      if (gt.kind !== 'topk') return;
      assert.deepEqual(got.starts, order.map((i) => starts[i]));
      order.forEach((i, b) => {
        assert.deepEqual([...got.x.subarray(b * T, (b + 1) * T)], tokens(i).slice(0, T));
        assert.deepEqual([...got.y.subarray(b * T, (b + 1) * T)], tokens(i).slice(1));
        assert.deepEqual([...gt.ids.subarray(b * T * K, (b + 1) * T * K)], [...entries.ids.subarray(i * T * K, (i + 1) * T * K)]);
        assert.deepEqual(gt.lse.subarray(b * T, (b + 1) * T), direct.lse.subarray(i * T, (i + 1) * T));
        for (let j = 0; j < T * K; j++) {
          const want = entries.logits[i * T * K + j], m = entries.logits[(i * T + Math.floor(j / K)) * K];
          const tol = logitDtype === 'f32' ? 0 : (m - want) * 2 ** -11 + Math.abs(m) * 2 ** -23;
          assert.ok(Math.abs(got.teacher.logits[b * T * K + j] - want) <= tol, `window ${i} entry ${j}`);
        }
      });
      // loss over the batch: cached teacher vs the same rows of the directly built top-k
      const N = order.length * T, s = randoms(N * V, 17, -5, 5), y = Int32Array.from(got.y);
      const sub: TopkEntries = { ...entries, N, ids: new Uint16Array(N * K), logits: new Float32Array(N * K), lse: new Float32Array(TAUS.length * N) };
      order.forEach((i, b) => {
        sub.ids.set(entries.ids.subarray(i * T * K, (i + 1) * T * K), b * T * K);
        sub.logits.set(entries.logits.subarray(i * T * K, (i + 1) * T * K), b * T * K);
        TAUS.forEach((_, a) => sub.lse.set(entries.lse.subarray(a * W * T + i * T, a * W * T + (i + 1) * T), a * N + b * T));
      });
      const o = { alpha: 0.5, tau, lambda: 0.01 }, d1 = new Float32Array(N * V), d2 = new Float32Array(N * V);
      const a1 = distillationLoss(s, y, got.teacher, o, d1), a2 = distillationLoss(s, y, topkTeacher(sub, tau), o, d2);
      const tolL = logitDtype === 'f32' ? 0 : 1e-4, tolG = logitDtype === 'f32' ? 0 : 1e-5;
      assert.ok(Math.abs(a1.loss - a2.loss) <= tolL * a2.loss, `${logitDtype} tau ${tau}: ${a1.loss} vs ${a2.loss}`);
      let m = 0;
      for (let j = 0; j < d1.length; j++) m = Math.max(m, Math.abs(d1[j] - d2[j]));
      assert.ok(m <= tolG, `gradient differs by ${m}`);
    }
    throwsQkd(() => r.read([0], 1.5), 'E_CONFIG', 'tau 1.5');
    throwsQkd(() => r.read([W], 2), 'E_INPUT', `window ${W}`);
    r.close();
  }));
}

for (const logitDtype of ['f32', 'f16'] as const) {
  test(`k = V (${logitDtype}): a full cache has no ids, reads back as the full teacher and gives the live teacher's loss`, () => withTmp((dir) => {
    const full = topkFromLogits(teacherLogits, W * T, V, V, TAUS);
    assert.equal(full.ids.length, 0);
    assert.deepEqual(full.logits, teacherLogits); // vocabulary order
    const L = recordLayout(spec({ k: V, logitDtype }));
    assert.equal(L.tokens - L.ids, 0, 'no ids section');
    writeAll(dir, spec({ k: V, logitDtype, plannedWindows: W }), 0, W, full).finalize();
    const r = TeacherCacheReader.open(dir), order = [3, 1], N = order.length * T;
    const got = r.read(order, 2);
    assert.equal(got.teacher.kind, 'full');
    const live = new Float32Array(N * V);
    order.forEach((i, b) => live.set(teacherLogits.subarray(i * T * V, (i + 1) * T * V), b * T * V));
    let m = 0;
    for (let j = 0; j < live.length; j++) m = Math.max(m, Math.abs(got.teacher.logits[j] - live[j]));
    assert.ok(m <= (logitDtype === 'f32' ? 0 : 18 * 2 ** -11), `logits differ by ${m}`); // |t - max t| < 18 here
    const s = randoms(N * V, 23, -5, 5), y = Int32Array.from(got.y), o = { alpha: 0.5, tau: 2, lambda: 0.01 };
    const d1 = new Float32Array(N * V), d2 = new Float32Array(N * V);
    const a1 = distillationLoss(s, y, got.teacher, o, d1), a2 = distillationLoss(s, y, { kind: 'full', logits: live }, o, d2);
    assert.ok(Math.abs(a1.loss - a2.loss) <= (logitDtype === 'f32' ? 0 : 1e-5) * a2.loss, `${a1.loss} vs ${a2.loss}`);
    let g = 0;
    for (let j = 0; j < d1.length; j++) g = Math.max(g, Math.abs(d1[j] - d2[j]));
    assert.ok(g <= (logitDtype === 'f32' ? 0 : 1e-6), `gradient differs by ${g}`);
    // the top-k path with k = V (ids made in vocabulary order) is the full KL too
    const a3 = distillationLoss(s, y, topkTeacher(topkFromLogits(live, N, V, V, [2]), 2), o, null);
    assert.ok(Math.abs(a3.loss - a2.loss) <= 1e-5 * a2.loss, `top-k path ${a3.loss} vs full ${a2.loss}`);
    // all logits serve a τ the cache was not made for: the same logits, the live teacher's loss at that τ
    assert.ok(!TAUS.includes(0.7));
    const at = r.read(order, 0.7), o7 = { ...o, tau: 0.7 };
    assert.deepEqual(at.teacher.logits, got.teacher.logits);
    const a4 = distillationLoss(s, y, at.teacher, o7, null), a5 = distillationLoss(s, y, { kind: 'full', logits: live }, o7, null);
    assert.ok(Math.abs(a4.loss - a5.loss) <= (logitDtype === 'f32' ? 0 : 1e-5) * a5.loss, `tau 0.7: ${a4.loss} vs ${a5.loss}`);
    r.close();
  }));
}

test('resume: a partial cache with a torn last record continues where it stopped, byte for byte', () => withTmp((dir) => {
  writeAll(dir, spec(), 0, W).finalize();
  const whole = readFileSync(join(dir, DATA_FILE));
  rmSync(dir, { recursive: true });
  writeAll(dir, spec(), 0, 4).close();
  throwsQkd(() => TeacherCacheReader.open(dir), 'E_FORMAT', 'cache.json', '"complete" is false');
  assert.equal(TeacherCacheReader.open(dir, { allowPartial: true }).windows, 4);
  appendFileSync(join(dir, DATA_FILE), whole.subarray(4 * whole.length / W, 4 * whole.length / W + 100)); // torn write
  // key order of nested fields does not matter for the spec comparison
  const w = TeacherCacheWriter.open(dir, { ...spec(), windowRule: { batch: 2, seed: 7, kind: 'sampler' } });
  assert.equal(w.windows, 4);
  for (let i = 4; i < W; i++) w.append(starts[i], tokens(i), entries, i * T);
  w.finalize();
  assert.deepEqual(readFileSync(join(dir, DATA_FILE)), whole);
  // a record corrupted in a partial cache ends the valid prefix there
  rmSync(dir, { recursive: true });
  writeAll(dir, spec(), 0, 5).close();
  const bytes = readFileSync(join(dir, DATA_FILE)), R = bytes.length / 5;
  bytes[2 * R + 40] ^= 1;
  writeFileSync(join(dir, DATA_FILE), bytes);
  assert.equal(TeacherCacheWriter.open(dir, spec()).windows, 2);
}));

test('resume refuses a different spec; a complete cache opens finished; finalize checks plannedWindows', () => withTmp((dir) => {
  writeAll(dir, spec(), 0, 2).close();
  throwsQkd(() => TeacherCacheWriter.open(dir, spec({ k: 8 })), 'E_CONFIG', HEADER_FILE, 'field "k"');
  throwsQkd(() => TeacherCacheWriter.open(dir, spec({ data: { sha256: 'other', tokens: 5000 } })), 'E_CONFIG', 'field "data"');
  throwsQkd(() => TeacherCacheWriter.open(dir, spec({ tokenizerSha256: 'other' })), 'E_VOCAB', 'field "tokenizerSha256"');
  const ow = TeacherCacheWriter.open(dir, spec({ k: 8 }), { overwrite: true });
  assert.equal(ow.windows, 0);
  ow.close();
  throwsQkd(() => TeacherCacheWriter.open(dir, spec({ k: V + 1 })), 'E_CONFIG', 'teacher-cache spec', 'field "k"');
  rmSync(dir, { recursive: true });
  writeAll(dir, spec(), 0, W).finalize();
  const w = TeacherCacheWriter.open(dir, spec());
  assert.ok(w.complete);
  assert.equal(w.windows, W);
  throwsQkd(() => w.append(starts[0], tokens(0), entries, 0), 'E_INTERNAL', 'complete');
  rmSync(dir, { recursive: true });
  const p = writeAll(dir, spec({ plannedWindows: 5 }), 0, 2);
  throwsQkd(() => p.finalize(), 'E_INPUT', 'plans 5');
  throwsQkd(() => p.append(4990, tokens(0), entries, 0), 'E_INPUT', 'start 4990');
  throwsQkd(() => p.append(0, tokens(0).slice(1), entries, 0), 'E_SHAPE', `${T + 1} tokens`);
  throwsQkd(() => p.append(0, tokens(0), topkFromLogits(teacherLogits.subarray(0, T * V), T, V, 5, TAUS)), 'E_SHAPE', 'k 5');
  p.close();
}));

test('corrupt, truncated or foreign caches are rejected naming the file and field', () => withTmp((dir) => {
  writeAll(dir, spec()).finalize();
  const hp = join(dir, HEADER_FILE), dp = join(dir, DATA_FILE), header = JSON.parse(readFileSync(hp, 'utf8'));
  const data = readFileSync(dp), R = header.recordBytes, L = recordLayout(header);
  const withHeader = (h: object, fn: () => void) => { writeFileSync(hp, JSON.stringify(h)); fn(); writeFileSync(hp, JSON.stringify(header)); };
  withHeader({ ...header, magic: 'nope' }, () => throwsQkd(() => TeacherCacheReader.open(dir), 'E_FORMAT', hp, '"magic"'));
  withHeader({ ...header, version: 3 }, () => throwsQkd(() => TeacherCacheReader.open(dir), 'E_UNSUPPORTED', hp, '"version"'));
  withHeader({ ...header, version: 2 }, () => throwsQkd(() => TeacherCacheReader.open(dir), 'E_FORMAT', hp, '"version" is 2', 'f32 logits is version 1'));
  withHeader({ ...header, logitDtype: 'int4' }, () => throwsQkd(() => TeacherCacheReader.open(dir), 'E_FORMAT', hp, '"logitDtype"'));
  withHeader({ ...header, k: V + 1 }, () => throwsQkd(() => TeacherCacheReader.open(dir), 'E_FORMAT', '"k"'));
  withHeader({ ...header, taus: [2, 2] }, () => throwsQkd(() => TeacherCacheReader.open(dir), 'E_FORMAT', '"taus"'));
  withHeader({ ...header, recordBytes: R + 8 }, () => throwsQkd(() => TeacherCacheReader.open(dir), 'E_FORMAT', '"recordBytes"'));
  withHeader({ ...header, teacher: { path: 'x' } }, () => throwsQkd(() => TeacherCacheReader.open(dir), 'E_FORMAT', '"teacher"'));
  writeFileSync(hp, '{"magic": ');
  throwsQkd(() => TeacherCacheReader.open(dir), 'E_FORMAT', hp, 'JSON');
  writeFileSync(hp, JSON.stringify(header));
  truncateSync(dp, data.length - 10);
  throwsQkd(() => TeacherCacheReader.open(dir), 'E_FORMAT', dp, 'truncated');
  writeFileSync(dp, Buffer.concat([data, Buffer.alloc(8)]));
  throwsQkd(() => TeacherCacheReader.open(dir), 'E_FORMAT', dp, 'trailing');
  // a flipped bit fails the CRC; records with a valid CRC but bad content fail their field check
  const patched = (fn: (rec: DataView) => void, ...parts: string[]) => {
    const b = Buffer.from(data), rec = new DataView(b.buffer, b.byteOffset + 3 * R, R);
    fn(rec);
    if (parts[0] !== 'CRC') rec.setUint32(L.crc, crc32(new Uint8Array(b.buffer, b.byteOffset + 3 * R, L.crc)), true);
    writeFileSync(dp, b);
    const r = TeacherCacheReader.open(dir);
    r.read([0, 1, 2], 2); // the other windows still read
    throwsQkd(() => r.read([3], 2), 'E_FORMAT', dp, 'window 3', ...parts);
    r.close();
  };
  patched((rec) => rec.setUint8(L.logits + 5, rec.getUint8(L.logits + 5) ^ 0x10), 'CRC');
  patched((rec) => rec.setUint16(L.ids + 2 * 5, V, true), '"ids"', `id ${V}`);
  patched((rec) => rec.setUint16(L.ids + 2, rec.getUint16(L.ids, true), true), '"ids"', 'twice');
  patched((rec) => rec.setFloat32(L.lse + 4 * 3, NaN, true), '"lse"');
  patched((rec) => rec.setFloat32(L.logits + 4 * 7, Infinity, true), '"logits"');
  patched((rec) => rec.setFloat64(0, 4990, true), '"start"');
  patched((rec) => rec.setUint16(L.tokens, 9999, true), '"tokens"');
  rmSync(dir, { recursive: true });
  throwsQkd(() => TeacherCacheReader.open(dir), 'E_MISSING', hp);
}));

test('checkCacheMatches: vocabulary and tokenizer mismatches are E_VOCAB, other fields E_CONFIG', () => withTmp((dir) => {
  writeAll(dir, spec(), 0, 1).finalize();
  const h = TeacherCacheReader.open(dir).header;
  checkCacheMatches(h, { V, tokenizerSha256: 'abc', T, taus: TAUS }, 'distill');
  throwsQkd(() => checkCacheMatches(h, { V: 2048 }, 'distill'), 'E_VOCAB', 'distill', '"V"');
  throwsQkd(() => checkCacheMatches(h, { tokenizerSha256: 'zzz' }, 'distill'), 'E_VOCAB', '"tokenizerSha256"');
  throwsQkd(() => checkCacheMatches(h, { T: 32 }, 'distill'), 'E_CONFIG', '"T"');
  assert.match(sha256File(join(dir, HEADER_FILE)), /^[0-9a-f]{64}$/);
}));
