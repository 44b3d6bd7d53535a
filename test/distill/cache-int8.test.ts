/**
 * The int8 logit format of the teacher cache (format version 2): the code's error bound, full and
 * top-k round trips against the f32 loss, record sizes (half of f16 or less), and the version rules
 * that keep old readers away from it and old f16 caches readable.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32, recordLayout, DATA_FILE, HEADER_FILE, type TeacherCacheSpec } from '../../src/io/teacher-cache-format.js';
import { TeacherCacheReader, TeacherCacheWriter } from '../../src/io/teacher-cache.js';
import { decodeInt8, encodeInt8, SQ } from '../../src/io/teacher-cache-int8.js';
import { distillationLoss, topkFromLogits, topkTeacher } from '../../src/distill/loss.js';
import { f16ToF32 } from '../../src/io/safetensors.js';
import { QkdError } from '../../src/tensor/errors.js';
import { randoms } from '../helpers.js';

const V = 300, T = 16, W = 4;

function withTmp(fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'qkd-int8-'));
  try { fn(join(dir, 'cache')); } finally { rmSync(dir, { recursive: true, force: true }); }
}

const spec = (over: Partial<TeacherCacheSpec> = {}): TeacherCacheSpec => ({
  teacher: { path: 'teacher', configSha256: 'c0ffee', weightsSha256: 'beef' }, tokenizerSha256: 'abc',
  data: { sha256: 'd00d', tokens: 5000 }, V, k: V, taus: [2, 1], T, logitDtype: 'int8',
  windowRule: { kind: 'non-overlapping', stride: T }, plannedWindows: W, ...over,
});

// teacher-like rows: a few high logits over a broad low floor (ranges ~15-25, as the fixture teacher's)
const logits = randoms(W * T * V, 11, -8, 4).map((x, i) => (i % 37 === 0 ? x + 10 : x));
const tokens = (i: number) => Array.from({ length: T + 1 }, (_, j) => (i * 7 + j * 13) % V);

function build(dir: string, s: TeacherCacheSpec): void {
  const e = topkFromLogits(logits, W * T, V, s.k, s.taus), w = TeacherCacheWriter.open(dir, s);
  for (let i = 0; i < W; i++) w.append(i * T, tokens(i), e, i * T);
  w.finalize();
}

test('int8 code: decodes within half a square-law step of the shifted logit; the cap and a flat row', () => {
  const k = 50, lg = randoms(3 * k, 5, -20, 2), codes = new Uint8Array(3 * k), range = new Uint16Array(3);
  lg[k + 7] = -1e9; // a masked logit: the position's range is capped at 64
  lg.fill(1.5, 2 * k, 3 * k); // a flat row: range 0, every code 0
  const tmax = encodeInt8(lg, k, 3, codes, range), out = new Float32Array(3 * k);
  assert.equal(decodeInt8(codes, range, k, out), -1);
  const R = f16ToF32(range);
  assert.equal(R[1], 64);
  assert.equal(R[2], 0);
  for (let p = 0; p < 2; p++) {
    for (let j = p * k; j < (p + 1) * k; j++) {
      const d = Math.min(tmax[p] - lg[j], R[p]), step = (2 * Math.sqrt(d * R[p]) + R[p] / 255) / 255;
      assert.ok(Math.abs(-out[j] - d) <= step / 2 + 1e-6 * R[p], `pos ${p} entry ${j}: ${-out[j]} vs ${d}`);
      assert.equal(out[j], Math.fround(-(R[p] * SQ[codes[j]])));
    }
  }
  assert.ok(out.subarray(2 * k).every((x) => x === 0));
  range[0] = 0x7c00; // +inf
  assert.equal(decodeInt8(codes, range, k, out), 0);
});

test('int8 full cache: half the bytes of f16 or less, no lse, and the loss of the f32 teacher within 1e-3', () => withTmp((dir) => {
  build(dir, spec());
  const L8 = recordLayout(spec()), L16 = recordLayout(spec({ logitDtype: 'f16' }));
  assert.equal(L8.nLse, 0);
  assert.ok(L8.bytes * 2 <= L16.bytes, `${L8.bytes} vs f16 ${L16.bytes}`);
  const brown = { V: 2048, k: 2048, T: 128, taus: [2] }; // the Brown@128 cache: 262,672 vs 525,584 bytes
  assert.ok(recordLayout({ ...brown, logitDtype: 'int8' }).bytes * 2 <= recordLayout({ ...brown, logitDtype: 'f16' }).bytes);
  const h = JSON.parse(readFileSync(join(dir, HEADER_FILE), 'utf8'));
  assert.equal(h.version, 2);
  const r = TeacherCacheReader.open(dir), got = r.read([2, 0], 2), N = 2 * T;
  assert.equal(got.teacher.kind, 'full');
  const live = new Float32Array(N * V);
  live.set(logits.subarray(2 * T * V, 3 * T * V), 0); live.set(logits.subarray(0, T * V), T * V);
  const s = randoms(N * V, 23, -5, 5), y = Int32Array.from(got.y);
  for (const tau of [2, 1]) {
    const o = { alpha: 0.5, tau, lambda: 0.01 }, d1 = new Float32Array(N * V), d2 = new Float32Array(N * V);
    const a1 = distillationLoss(s, y, got.teacher, o, d1), a2 = distillationLoss(s, y, { kind: 'full', logits: live }, o, d2);
    assert.ok(Math.abs(a1.kl - a2.kl) <= 1e-3 * a2.kl, `tau ${tau}: kl ${a1.kl} vs ${a2.kl}`);
    let g = 0, gs = 0;
    for (let j = 0; j < d1.length; j++) { g = Math.max(g, Math.abs(d1[j] - d2[j])); gs = Math.max(gs, Math.abs(d2[j])); }
    assert.ok(g <= 1e-2 * gs, `tau ${tau}: gradient differs by ${g} of ${gs}`);
  }
  r.close();
}));

test('int8 top-k cache: lse consistent with the decoded logits (the tail bucket stays >= 0), loss near f32', () => withTmp((dir) => {
  const K = 24, s8 = spec({ k: K });
  build(dir, s8);
  assert.equal(recordLayout(s8).nLse, 2 * T);
  const r = TeacherCacheReader.open(dir), e = topkFromLogits(logits, W * T, V, K, [2, 1]);
  for (const [a, tau] of [2, 1].entries()) {
    const got = r.read([1, 3], tau), t = got.teacher;
    assert.equal(t.kind, 'topk');
    if (t.kind !== 'topk') return;
    for (let p = 0; p < 2 * T; p++) {
      let mass = 0;
      for (let j = 0; j < K; j++) mass += Math.exp(t.logits[p * K + j] / tau - t.lse[p]);
      assert.ok(mass <= 1 + 1e-6, `tau ${tau} position ${p}: top-k mass ${mass}`);
    }
    const N = 2 * T, rows = [1, 3].flatMap((i) => Array.from({ length: T }, (_, p) => i * T + p));
    const sub = { ...e, N, taus: [tau], ids: new Uint16Array(N * K), logits: new Float32Array(N * K), lse: new Float32Array(N) };
    rows.forEach((row, i) => {
      sub.ids.set(e.ids.subarray(row * K, (row + 1) * K), i * K);
      sub.logits.set(e.logits.subarray(row * K, (row + 1) * K), i * K);
      sub.lse[i] = e.lse[a * W * T + row];
    });
    const s = randoms(N * V, 3, -5, 5), y = Int32Array.from(got.y), o = { alpha: 0.5, tau, lambda: 0.01 };
    const a1 = distillationLoss(s, y, t, o, null), a2 = distillationLoss(s, y, topkTeacher(sub, tau), o, null);
    assert.ok(Math.abs(a1.kl - a2.kl) <= 2e-3 * a2.kl, `tau ${tau}: kl ${a1.kl} vs ${a2.kl}`);
    assert.deepEqual([...t.ids], [...sub.ids]);
  }
  r.close();
}));

test('versions: an int8 cache is version 2 (a version-1 reader refuses it by its version); f16 stays version 1', () => withTmp((dir) => {
  build(dir, spec({ logitDtype: 'f16' }));
  assert.equal(JSON.parse(readFileSync(join(dir, HEADER_FILE), 'utf8')).version, 1);
  rmSync(dir, { recursive: true });
  build(dir, spec());
  const hp = join(dir, HEADER_FILE), h = JSON.parse(readFileSync(hp, 'utf8'));
  writeFileSync(hp, JSON.stringify({ ...h, version: 1 }));
  assert.throws(() => TeacherCacheReader.open(dir), (e: unknown) => e instanceof QkdError && e.code === 'E_FORMAT'
    && e.message.includes(hp) && e.message.includes('"version" is 1') && e.message.includes('int8 logits is version 2'));
  writeFileSync(hp, JSON.stringify(h));
  // a range that is not a finite number >= 0 (with a valid CRC) names the field and the window
  const dp = join(dir, DATA_FILE), b = readFileSync(dp), L = recordLayout(h), R = h.recordBytes;
  b.writeUInt16LE(0xfc00, 2 * R + L.range + 2 * 5); // -inf
  b.writeUInt32LE(crc32(b.subarray(2 * R, 2 * R + L.crc)), 2 * R + L.crc);
  writeFileSync(dp, b);
  const r = TeacherCacheReader.open(dir);
  r.read([0, 1, 3], 2);
  assert.throws(() => r.read([2], 2), (e: unknown) => e instanceof QkdError && e.code === 'E_FORMAT'
    && e.message.includes('window 2') && e.message.includes('"range"') && e.message.includes('position 5'));
  r.close();
}));
