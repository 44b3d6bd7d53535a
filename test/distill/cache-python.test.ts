/**
 * Caches written by tools/teacher_cache_writer.py (PyTorch, the plain Llama of ../shared/peers, on
 * the CPU; test/fixtures/teacher-cache/make.sh) read in qkd as its own: the header qkd would write
 * byte for byte, and per window the logits `qkd teacher-cache` computes for the same teacher and
 * text to the storage's rounding (one float16 step of t − max t; one int8 code step), the same
 * tokens, top-k ids and a KL within 1e-3.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TeacherCacheReader } from '../../src/io/teacher-cache.js';
import { distillationLoss } from '../../src/distill/loss.js';
import { fixture, randoms } from '../helpers.js';

const DIR = 'test/fixtures/teacher-cache';
const tmp = mkdtempSync(join(tmpdir(), 'qkd-pycache-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));

const VARIANTS = { 'f16-all': ['--k', 'all', '--logit-dtype', 'f16'], 'int8-top16': ['--k', '16', '--logit-dtype', 'int8', '--tau', '2,1'] };

/** |a − b| allowed for a cached logit at distance d below its row's max: one storage step, plus the two forwards' f32 difference. */
function step(dtype: string, d: number, R: number): number {
  if (dtype === 'f16') return (d < 2 ** -14 ? 2 ** -24 : 2 ** (Math.floor(Math.log2(d)) - 10)) + 1e-4;
  return (2 * Math.sqrt(d * R) + R / 255) / 255 + 1e-4; // int8: a square-law code step at d (range R)
}

for (const [name, flags] of Object.entries(VARIANTS)) {
  test(`${name}: the Python-written cache has qkd's header and, to its rounding, qkd's teacher`, () => {
    fixture('brown-llama-teacher'); // fails loudly without ../shared/fixtures
    const ours = join(tmp, name);
    const r = spawnSync(process.execPath, ['dist/src/cli/main.js', 'teacher-cache', '--teacher', '../shared/fixtures/brown-llama-teacher',
      '--text', join(DIR, 'text.txt'), '--valid-fraction', '0', '--context', '8', '--threads', '1', ...flags, '--out', ours],
    { encoding: 'utf8', env: { ...process.env, QKD_CACHE_DIR: join(tmp, 'tokens') } });
    assert.equal(r.status, 0, r.stderr);
    assert.ok(readFileSync(join(DIR, name, 'cache.json')).equals(readFileSync(join(ours, 'cache.json'))), 'cache.json differs from qkd\'s');
    const py = TeacherCacheReader.open(join(DIR, name)), q = TeacherCacheReader.open(ours), h = py.header;
    const all = Array.from({ length: py.windows }, (_, i) => i), N = all.length * h.T;
    for (const tau of h.taus) {
      const a = py.read(all, tau), b = q.read(all, tau), ta = a.teacher, tb = b.teacher;
      assert.deepEqual(a.starts, b.starts);
      assert.deepEqual(a.x, b.x);
      assert.deepEqual(a.y, b.y);
      assert.equal(ta.kind, tb.kind);
      if (ta.kind === 'topk' && tb.kind === 'topk') assert.deepEqual(ta.ids, tb.ids);
      for (let row = 0; row < N; row++) {
        const o = row * h.k, x = ta.logits.subarray(o, o + h.k), y = tb.logits.subarray(o, o + h.k);
        const mx = Math.max(...x), R = mx - Math.min(...x);
        for (let j = 0; j < h.k; j++) {
          assert.ok(Math.abs(x[j] - y[j]) <= step(h.logitDtype, mx - x[j], R), `${name} row ${row} entry ${j}: ${x[j]} vs ${y[j]}`);
        }
      }
      const s = randoms(N * h.V, 5, -4, 4), o = { alpha: 0, tau, lambda: 0 };
      const ka = distillationLoss(s, a.y, ta, o, null).kl, kb = distillationLoss(s, b.y, tb, o, null).kl;
      assert.ok(Math.abs(ka - kb) <= 1e-3 * kb, `${name} tau ${tau}: KL ${ka} (Python) vs ${kb} (qkd)`);
    }
    py.close(); q.close();
  });
}

test('--plan: the header and token stream another writer needs, nothing else run', () => {
  const plan = join(tmp, 'plan');
  const r = spawnSync(process.execPath, ['dist/src/cli/main.js', 'teacher-cache', '--teacher', '../shared/fixtures/brown-llama-teacher',
    '--text', join(DIR, 'text.txt'), '--valid-fraction', '0', '--context', '8', ...VARIANTS['int8-top16'], '--plan', plan],
  { encoding: 'utf8', env: { ...process.env, QKD_CACHE_DIR: join(tmp, 'tokens') } });
  assert.equal(r.status, 0, r.stderr);
  const p = JSON.parse(readFileSync(join(plan, 'plan.json'), 'utf8')), h = JSON.parse(readFileSync(join(DIR, 'int8-top16', 'cache.json'), 'utf8'));
  assert.deepEqual({ ...p.header, complete: true, windows: p.end - p.first }, h);
  assert.equal(p.header.complete, false);
  assert.deepEqual([p.format, p.version, p.first, p.end, p.windows, p.tokens], ['qkd-teacher-cache-plan', 1, 0, h.windows, h.windows, 'tokens.i32']);
  const tokens = readFileSync(join(plan, 'tokens.i32'));
  assert.equal(tokens.length, 4 * h.data.tokens);
  assert.equal(createHash('sha256').update(tokens).digest('hex'), h.data.sha256);
});
