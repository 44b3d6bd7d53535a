/**
 * Timing of distillationLoss at the anchor's shape (N = 16·128 = 2048 rows, V = 2048), not a test:
 *   node dist/test/distill/bench-loss.js [reps]
 * Prints the median ms per call (value + gradient) for the full teacher and top-k 32/64, forward and reverse.
 */
import { distillationLoss, type TeacherDist } from '../../src/distill/loss.js';
import { topkFromLogits, topkTeacher } from '../../src/distill/loss.js';
import { createBackend } from '../../src/kernels/registry.js';
import { randoms } from '../helpers.js';

const N = 2048, V = 2048, reps = Number(process.argv[2] ?? 9);
const be = await createBackend('ts');
const s = randoms(N * V, 1, -6, 6), t = randoms(N * V, 2, -8, 8), d = new Float32Array(N * V);
const y = Int32Array.from({ length: N }, (_, i) => (i * 7919) % V);

function median(xs: number[]): number { return [...xs].sort((a, b) => a - b)[xs.length >> 1]; }

function time(label: string, T: TeacherDist, tau: number, kl: 'forward' | 'reverse', grad = true): void {
  const ms: number[] = [], cpu: number[] = [];
  for (let r = 0; r < reps + 2; r++) {
    const t0 = performance.now(), c0 = process.cpuUsage();
    distillationLoss(s, y, T, { alpha: 0.5, tau, lambda: 0.01, kl }, grad ? d : null);
    const c = process.cpuUsage(c0);
    if (r >= 2) { ms.push(performance.now() - t0); cpu.push((c.user + c.system) / 1000); }
  }
  // CPU time is what the call costs when other processes share the cores; wall time is what one waits
  console.log(`${label.padEnd(34)} tau ${String(tau).padEnd(3)} ${kl.padEnd(7)} ${grad ? 'value+grad' : 'value     '} wall median ${median(ms).toFixed(1)} ms, min ${Math.min(...ms).toFixed(1)} ms; cpu median ${median(cpu).toFixed(1)} ms`);
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

// Reading a batch of 16 windows (T 128, k 64) back from a cache, as a step from the cache would.
{
  const { mkdtempSync, rmSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { tmpdir } = await import('node:os');
  const { TeacherCacheReader, TeacherCacheWriter } = await import('../../src/io/teacher-cache.js');
  const T = 128, k = 64, W = N / T, root = mkdtempSync(join(tmpdir(), 'qkd-bench-'));
  try {
    for (const logitDtype of ['f16', 'f32'] as const) {
      const dir = join(root, logitDtype), e = topkFromLogits(t, N, V, k, [2]);
      const t0 = performance.now();
      const w = TeacherCacheWriter.open(dir, { teacher: { path: 'x', configSha256: 'x', weightsSha256: 'x' }, tokenizerSha256: 'x',
        data: { sha256: 'x', tokens: 1e6 }, V, k, taus: [2], T, logitDtype, windowRule: { kind: 'bench' }, plannedWindows: W });
      for (let i = 0; i < W; i++) w.append(i * T, Int32Array.from({ length: T + 1 }, (_, j) => y[(i * T + j) % N]), e, i * T);
      w.finalize();
      const writeMs = (performance.now() - t0) / W;
      const r = TeacherCacheReader.open(dir), ms: number[] = [];
      for (let rep = 0; rep < reps + 2; rep++) {
        const t1 = performance.now();
        r.read(Array.from({ length: 16 }, (_, b) => (b * 5 + rep) % W), 2);
        if (rep >= 2) ms.push(performance.now() - t1);
      }
      r.close();
      console.log(`cache ${logitDtype}: ${w.header.recordBytes} bytes/window, append ${writeMs.toFixed(2)} ms/window, read 16 windows median ${median(ms).toFixed(2)} ms`);
    }
  } finally { rmSync(root, { recursive: true, force: true }); }
}
