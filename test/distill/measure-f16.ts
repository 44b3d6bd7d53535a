/**
 * How much storing the cached top-k logits as float16 costs, on the fixture teacher's real logits
 * (../shared/fixtures/brown-llama-teacher/reference-logits.f32, 64 x 2048). Not a test:
 *   node dist/test/distill/measure-f16.js
 * For students near and far from the teacher, compares loss and gradient with the top-k logits
 * kept in float32, rounded to float16 as they are ("raw"), and rounded to float16 after
 * subtracting the position's largest logit ("shifted"); and the top-k truncation itself vs the full teacher.
 */
import { readFileSync } from 'node:fs';
import { distillationLoss, topkFromLogits, topkTeacher, type TeacherDist } from '../../src/distill/loss.js';
import { f16ToF32, f32ToF16 } from '../../src/io/safetensors.js';
import { createBackend } from '../../src/kernels/registry.js';
import { fixture, randoms } from '../helpers.js';

const be = await createBackend('ts');
const b = readFileSync(fixture('brown-llama-teacher', 'reference-logits.f32'));
const t = new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)), N = 64, V = 2048;
const y = Int32Array.from({ length: N }, (_, i) => (i * 31) % V);
const noise = randoms(N * V, 7, -1, 1);

function run(s: Float32Array, T: TeacherDist, tau: number): { kl: number; d: Float32Array } {
  const d = new Float32Array(N * V);
  return { kl: distillationLoss(s, y, T, { alpha: 0, tau, lambda: 0 }, d).kl, d };
}

function maxAbs(a: Float32Array, c: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - c[i]));
  return m;
}

for (const [label, mix, amp] of [['near (0.95 t + noise 0.5)', 0.95, 0.5], ['far (0.6 t + noise 3)', 0.6, 3]] as const) {
  const s = t.map((x, i) => mix * x + amp * noise[i]);
  for (const tau of [1, 2]) {
    const full = run(s, { kind: 'full', logits: t }, tau), gScale = full.d.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
    for (const k of [32, 64, 128]) {
      const e = topkFromLogits(t, N, V, k, [tau]), ref = run(s, topkTeacher(e, tau), tau);
      const raw = f16ToF32(f32ToF16(e.logits));
      const shifted = e.logits.map((x, j) => { const m = e.logits[j - (j % k)]; return m + f16ToF32(f32ToF16(new Float32Array([x - m])))[0]; });
      const r1 = run(s, { ...topkTeacher(e, tau), logits: raw }, tau), r2 = run(s, { ...topkTeacher(e, tau), logits: shifted }, tau);
      console.log(`${label} tau ${tau} k ${String(k).padStart(3)}: KL full ${full.kl.toFixed(4)} top-k ${ref.kl.toFixed(4)}`
        + ` (trunc rel ${((ref.kl - full.kl) / full.kl).toExponential(1)}, grad ${(maxAbs(ref.d, full.d) / gScale).toExponential(1)})`
        + ` | f16 raw: KL rel ${Math.abs((r1.kl - ref.kl) / ref.kl).toExponential(1)} grad ${(maxAbs(r1.d, ref.d) / gScale).toExponential(1)}`
        + ` | f16 shifted: KL rel ${Math.abs((r2.kl - ref.kl) / ref.kl).toExponential(1)} grad ${(maxAbs(r2.d, ref.d) / gScale).toExponential(1)}`);
    }
  }
}
