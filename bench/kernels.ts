/**
 * Row/elementwise kernels (and attention-shaped bmm) of the wasm backend against the TS reference at
 * the shapes of a small transformer's training step: B=8, T=256 (N = 2048 tokens), C=384, 6 heads of
 * 64, MLP 1536 (SwiGLU 688 wide), vocabulary 2048, ~4M parameters.
 *
 *   npm run build && node dist/bench/kernels.js [--rounds 5] [--only softmax]
 *
 * Samples of ts, wasm 1 thread and wasm 2 threads are interleaved over the rounds; medians are
 * reported (ms per call) with speedups over ts. Prints a table, then one JSON line.
 */
import type { Backend } from '../src/kernels/backend.js';
import { TsBackend } from '../src/kernels/ts/backend.js';
import { ropeTables } from '../src/tensor/rope.js';
import { createWasmBackend } from '../src/kernels/wasm/backend.js';

const B = 8, T = 256, N = B * T, C = 384, H = 6, D = 64, F = 1536, FG = 688, V = 2048, P = 4 << 20;
const SAMPLE_MS = 30;

const arg = (name: string, dflt: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : dflt;
};
const rounds = Number(arg('rounds', '5')), only = arg('only', '');
const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };

/** A benchmark case: makes its buffers on a backend and returns the call to time. */
interface Case { name: string; shape: string; setup: (be: Backend) => () => void }

function rnd(be: Backend, n: number, lo = -1, hi = 1): Float32Array {
  const x = be.alloc(n);
  for (let i = 0; i < n; i++) x[i] = lo + Math.random() * (hi - lo);
  return x;
}
function ids(be: Backend, n: number, hi: number): Int32Array {
  const x = be.allocI32(n);
  for (let i = 0; i < n; i++) x[i] = Math.floor(Math.random() * hi);
  return x;
}

const CASES: Case[] = [
  { name: 'softmaxForward causal', shape: `${B * H}x${T}x${T}`, setup: (be) => {
    const S = rnd(be, B * H * T * T, -4, 4), Pm = be.alloc(S.length);
    return () => be.softmaxForward(Pm, S, B * H * T, T, T, 0.125, 0);
  } },
  { name: 'softmaxBackward', shape: `${B * H * T}x${T}`, setup: (be) => {
    const Pm = rnd(be, B * H * T * T, 0, 0.01), dP = rnd(be, Pm.length), dS = be.alloc(Pm.length);
    return () => be.softmaxBackward(dS, dP, Pm, B * H * T, T, 0.125);
  } },
  { name: 'crossEntropy+grad', shape: `${N}x${V}`, setup: (be) => {
    const lg = rnd(be, N * V, -5, 5), t = ids(be, N, V), loss = be.alloc(N), g = be.alloc(N * V);
    return () => be.crossEntropy(loss, lg, t, N, V, g, 1 / N);
  } },
  { name: 'logSoftmaxForward', shape: `${N}x${V}`, setup: (be) => {
    const x = rnd(be, N * V, -5, 5), y = be.alloc(N * V);
    return () => be.logSoftmaxForward(y, x, N, V, 0.5);
  } },
  { name: 'logSoftmaxBackward', shape: `${N}x${V}`, setup: (be) => {
    const y = rnd(be, N * V, -12, -4), dy = rnd(be, N * V), dx = be.alloc(N * V);
    return () => be.logSoftmaxBackward(dx, dy, y, N, V, 0.5);
  } },
  { name: 'layerNormForward', shape: `${N}x${C}`, setup: (be) => {
    const x = rnd(be, N * C), w = rnd(be, C), b = rnd(be, C), y = be.alloc(N * C), m = be.alloc(N), r = be.alloc(N);
    return () => be.layerNormForward(y, m, r, x, w, b, N, C, 1e-5);
  } },
  { name: 'layerNormBackward', shape: `${N}x${C}`, setup: (be) => {
    const x = rnd(be, N * C), w = rnd(be, C), b = rnd(be, C), y = be.alloc(N * C), m = be.alloc(N), r = be.alloc(N);
    be.layerNormForward(y, m, r, x, w, b, N, C, 1e-5);
    const dy = rnd(be, N * C), dx = be.alloc(N * C), dw = be.alloc(C), db = be.alloc(C);
    return () => be.layerNormBackward(dx, dw, db, dy, x, w, m, r, N, C);
  } },
  { name: 'rmsNormForward', shape: `${N}x${C}`, setup: (be) => {
    const x = rnd(be, N * C), w = rnd(be, C), y = be.alloc(N * C), r = be.alloc(N);
    return () => be.rmsNormForward(y, r, x, w, N, C, 1e-6);
  } },
  { name: 'rmsNormBackward', shape: `${N}x${C}`, setup: (be) => {
    const x = rnd(be, N * C), w = rnd(be, C), y = be.alloc(N * C), r = be.alloc(N);
    be.rmsNormForward(y, r, x, w, N, C, 1e-6);
    const dy = rnd(be, N * C), dx = be.alloc(N * C), dw = be.alloc(C);
    return () => be.rmsNormBackward(dx, dw, dy, x, w, r, N, C);
  } },
  ...(['relu', 'gelu', 'gelu_tanh', 'silu'] as const).flatMap((k): Case[] => [
    { name: `activationForward ${k}`, shape: `${N}x${F}`, setup: (be) => {
      const x = rnd(be, N * F, -4, 4), y = be.alloc(N * F);
      return () => be.activationForward(k, y, x, N * F);
    } },
    { name: `activationBackward ${k}`, shape: `${N}x${F}`, setup: (be) => {
      const x = rnd(be, N * F, -4, 4), dy = rnd(be, N * F), dx = be.alloc(N * F);
      return () => be.activationBackward(k, dx, dy, x, N * F);
    } },
  ]),
  { name: 'gluForward silu', shape: `${N}x${FG}`, setup: (be) => {
    const g = rnd(be, N * FG, -4, 4), u = rnd(be, N * FG), y = be.alloc(N * FG);
    return () => be.gluForward('silu', y, g, u, N * FG);
  } },
  { name: 'gluBackward silu', shape: `${N}x${FG}`, setup: (be) => {
    const g = rnd(be, N * FG, -4, 4), u = rnd(be, N * FG), dy = rnd(be, N * FG), dg = be.alloc(N * FG), du = be.alloc(N * FG);
    return () => be.gluBackward('silu', dg, du, dy, g, u, N * FG);
  } },
  { name: 'adamw', shape: `${P}`, setup: (be) => {
    const p = rnd(be, P), g = rnd(be, P), m = be.alloc(P), v = be.alloc(P);
    let t = 0;
    return () => be.adamw(p, g, m, v, P, ++t, 1e-3, 0.9, 0.95, 1e-8, 0.1, 1);
  } },
  { name: 'sumSquares', shape: `${P}`, setup: (be) => { const x = rnd(be, P); return () => { be.sumSquares(x, P); }; } },
  { name: 'add', shape: `${N}x${C}`, setup: (be) => {
    const a = rnd(be, N * C), b = rnd(be, N * C), o = be.alloc(N * C);
    return () => be.add(o, a, b, N * C);
  } },
  { name: 'addInPlace', shape: `${N}x${C}`, setup: (be) => {
    const a = rnd(be, N * C), o = rnd(be, N * C);
    return () => be.addInPlace(o, a, N * C);
  } },
  { name: 'scale', shape: `${N}x${C}`, setup: (be) => {
    const a = rnd(be, N * C), o = be.alloc(N * C);
    return () => be.scale(o, a, 0.5, N * C);
  } },
  { name: 'addBias', shape: `${N}x${F}`, setup: (be) => {
    const o = rnd(be, N * F), b = rnd(be, F);
    return () => be.addBias(o, b, N, F);
  } },
  { name: 'biasBackward', shape: `${N}x${F}`, setup: (be) => {
    const d = rnd(be, N * F), b = be.alloc(F);
    return () => be.biasBackward(b, d, N, F);
  } },
  { name: 'rope', shape: `${B}x${H}x${T}x${D}`, setup: (be) => {
    const x = rnd(be, B * H * T * D), tab = ropeTables(T, D, 10000), cos = be.alloc(tab.cos.length), sin = be.alloc(tab.sin.length);
    cos.set(tab.cos); sin.set(tab.sin);
    return () => be.rope(x, B, H, T, D, 0, cos, sin);
  } },
  { name: 'embeddingForward', shape: `${N}x${C} V=${V}`, setup: (be) => {
    const wte = rnd(be, V * C), y = be.alloc(N * C), t = ids(be, N, V);
    return () => be.embeddingForward(y, t, wte, N, C);
  } },
  { name: 'embeddingBackward', shape: `${N}x${C} V=${V}`, setup: (be) => {
    const dW = be.alloc(V * C), d = rnd(be, N * C), t = ids(be, N, V);
    return () => be.embeddingBackward(dW, d, t, N, C);
  } },
  { name: 'permute0213', shape: `${B}x${T}x${H}x${D}`, setup: (be) => {
    const x = rnd(be, B * T * H * D), y = be.alloc(x.length);
    return () => be.permute0213(y, x, B, T, H, D);
  } },
  { name: 'bmm QK^T', shape: `${B * H}x(${T},${T},${D})`, setup: (be) => {
    const q = rnd(be, B * H * T * D), k = rnd(be, B * H * T * D), s = be.alloc(B * H * T * T);
    return () => be.bmm(s, q, k, B * H, T, T, D, false, true);
  } },
  { name: 'bmm PV', shape: `${B * H}x(${T},${D},${T})`, setup: (be) => {
    const p = rnd(be, B * H * T * T), v = rnd(be, B * H * T * D), o = be.alloc(B * H * T * D);
    return () => be.bmm(o, p, v, B * H, T, D, T);
  } },
  { name: 'bmm decode q·K^T', shape: `${H}x(1,${T},${D})`, setup: (be) => {
    const q = rnd(be, H * D), k = rnd(be, H * T * D), s = be.alloc(H * T);
    return () => be.bmm(s, q, k, H, 1, T, D, false, true);
  } },
  { name: 'matmul decode x·W^T', shape: `(1,${F},${C})`, setup: (be) => {
    const x = rnd(be, C), w = rnd(be, F * C), y = be.alloc(F);
    return () => be.matmul(y, x, w, 1, F, C, false, true);
  } },
];

function sample(run: () => void): number {
  const t0 = performance.now();
  let n = 0, dt = 0;
  do { run(); n++; dt = performance.now() - t0; } while (dt < SAMPLE_MS);
  return dt / n;
}

async function main(): Promise<void> {
  const engines: [string, Backend][] = [['ts', new TsBackend()], ['wasm 1T', await createWasmBackend({ threads: 1 })],
    ['wasm 2T', await createWasmBackend({ threads: 2 })]];
  const cases = CASES.filter((c) => c.name.includes(only));
  const runs = cases.map((c) => engines.map(([, be]) => { const r = c.setup(be); r(); return r; }));
  const ms = cases.map(() => engines.map(() => [] as number[]));
  for (let r = 0; r < rounds; r++) {
    cases.forEach((_, i) => engines.forEach((_e, j) => ms[i][j].push(sample(runs[i][j]))));
    process.stderr.write(`round ${r + 1}/${rounds} done\n`);
  }
  for (const [, be] of engines) await be.dispose();
  const rows: Record<string, unknown>[] = [];
  console.log(`kernels, ms per call (median of ${rounds}); speedup = ts / wasm`);
  console.log(['kernel', 'shape', ...engines.map(([n]) => n), 'x 1T', 'x 2T'].join('\t'));
  cases.forEach((c, i) => {
    const m = ms[i].map(median);
    rows.push({ kernel: c.name, shape: c.shape, tsMs: +m[0].toPrecision(3), wasm1Ms: +m[1].toPrecision(3),
      wasm2Ms: +m[2].toPrecision(3), speedup1: +(m[0] / m[1]).toFixed(1), speedup2: +(m[0] / m[2]).toFixed(1) });
    console.log([c.name, c.shape, ...m.map((x) => x.toPrecision(3)), (m[0] / m[1]).toFixed(1), (m[0] / m[2]).toFixed(1)].join('\t'));
  });
  console.log(JSON.stringify({ bench: 'kernels', unit: 'ms', rounds, results: rows }));
}

await main();
