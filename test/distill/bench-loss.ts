/**
 * Timing of distillLoss at the anchor's shape (N = 16·128 = 2048 rows, V = 2048), not a test:
 *   node dist/test/distill/bench-loss.js [reps]
 * Prints the median ms per call (value + gradient) for the full teacher and top-k 32/64, forward and reverse.
 */
import { distillLoss, type TeacherDist } from '../../src/distill/loss.js';
import { topkFromLogits, topkTeacher } from '../../src/distill/cache.js';
import { createBackend } from '../../src/kernels/registry.js';
import { randoms } from '../helpers.js';

const N = 2048, V = 2048, reps = Number(process.argv[2] ?? 9);
const be = await createBackend('ts');
const s = randoms(N * V, 1, -6, 6), t = randoms(N * V, 2, -8, 8), d = new Float32Array(N * V);
const y = Int32Array.from({ length: N }, (_, i) => (i * 7919) % V);

function median(xs: number[]): number { return [...xs].sort((a, b) => a - b)[xs.length >> 1]; }

function time(label: string, T: TeacherDist, tau: number, kl: 'forward' | 'reverse', grad = true): void {
  const ms: number[] = [];
  for (let r = 0; r < reps + 2; r++) {
    const t0 = performance.now();
    distillLoss(be, s, y, T, { alpha: 0.5, tau, lambda: 0.01, kl }, grad ? d : null);
    if (r >= 2) ms.push(performance.now() - t0);
  }
  console.log(`${label.padEnd(34)} tau ${String(tau).padEnd(3)} ${kl.padEnd(7)} ${grad ? 'value+grad' : 'value     '} median ${median(ms).toFixed(1)} ms  min ${Math.min(...ms).toFixed(1)} ms`);
}

for (const tau of [2, 1.5]) {
  time('full teacher', { kind: 'full', logits: t }, tau, 'forward');
  time('full teacher', { kind: 'full', logits: t }, tau, 'reverse');
  for (const k of [32, 64]) {
    const t0 = performance.now(), e = topkFromLogits(t, N, V, k, [tau]);
    const build = performance.now() - t0;
    time(`top-${k} (built in ${build.toFixed(0)} ms)`, topkTeacher(e, tau), tau, 'forward');
    time(`top-${k}`, topkTeacher(e, tau), tau, 'reverse');
  }
}
time('full teacher', { kind: 'full', logits: t }, 2, 'forward', false);
