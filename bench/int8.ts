/**
 * The int8 kernels (kernels/int8.ts) of the wasm backend at the decode shapes of a small student:
 * weight (O, I) in {128x128, 384x128, 128x384, 2048x128}, N in {1, 16, 128} tokens, dense / 1x16 / 1x8 /
 * 1x4 block-sparse / CSR at 90% sparsity, against the plain-TS reference and the float32 wasm GEMM of
 * the same shape (y = x · Wᵀ with W float). Then a density sweep (1 thread) that locates the break-even
 * of each sparse format against dense, from which the format rule is proposed.
 *
 *   npm run build && node dist/bench/int8.js [--threads 1,2] [--rounds 15] [--sample-ms 3] [--ns 1,16,128]
 *     [--act i8,f32] [--stat min|median] [--no-ts] [--no-sweep] [--force-parallel]
 *
 * Sparsity: block formats have 90% of their aligned 1 x k blocks empty (block pruning at that k), CSR
 * 90% of the weights zero (unstructured). µs per call: each round times back-to-back calls for
 * sample-ms; the minimum over rounds is reported (default --stat min: on a shared machine, other
 * processes only ever add time, so the fastest window is the kernel's own cost), or the median. GOP/s
 * count the dense-equivalent 2·N·O·I operations, so a sparse kernel's GOP/s is its speed-up over dense
 * in disguise. act i8: int8 x int8 (gemm*I8; the per-token quantization of the activations is timed
 * separately, column quant); act f32: W8A32. The 2-thread rows use the kernels' own split rule (small
 * calls stay on the caller's thread) unless --force-parallel. Prints tables, then one JSON line.
 */
import type { Backend } from '../src/kernels/backend.js';
import { type Int8Kernels, linearI8 } from '../src/kernels/int8.js';
import { denseToBlock, denseToCsr, type Int8Matrix } from '../src/sparse/storage.js';
import { TsInt8Kernels } from '../src/kernels/ts/int8.js';
import { createWasmBackend, type WasmBackend } from '../src/kernels/wasm/backend.js';
import { wasmInt8Kernels } from '../src/kernels/wasm/int8.js';
import { intList, jsonLine, log, machineFacts, median, posInt, printTable, round, type Cell } from './common.js';

const SHAPES: [number, number][] = [[128, 128], [384, 128], [128, 384], [2048, 128]];
const FORMATS = ['dense', 'b16', 'b8', 'b4', 'csr'] as const;
type Fmt = typeof FORMATS[number];
type Act = 'i8' | 'f32';

const argv = process.argv.slice(2);
const flag = (name: string): string | undefined => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
};
const has = (name: string): boolean => argv.includes(`--${name}`);
const threadsList = intList(flag('threads') ?? '1,2', 'threads');
const rounds = posInt(flag('rounds'), 'rounds', 15);
const sampleMs = posInt(flag('sample-ms'), 'sample-ms', 3);
const stat = flag('stat') ?? 'min';
if (stat !== 'min' && stat !== 'median') throw new Error(`--stat: expected min or median, got "${stat}"`);
const NS = intList(flag('ns') ?? '1,16,128', 'ns');
const acts = (flag('act') ?? 'i8,f32').split(',') as Act[];
const withTs = !has('no-ts'), withSweep = !has('no-sweep'), force = has('force-parallel');

/** Seeded LCG in [0, 1). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; return s / 4294967296; };
}

function nonzeroI8(r: () => number): number { const v = Math.floor(r() * 255) - 127; return v === 0 ? 1 : v; }

/** (O, I) int8 with a fraction `fill` of the aligned 1 x k blocks nonzero (k = 1: unstructured). */
function sparseWeight(O: number, I: number, k: number, fill: number, seed: number): Int8Array {
  const r = rng(seed), w = new Int8Array(O * I), nb = O * I / k;
  const order = Array.from({ length: nb }, (_, i) => i);
  for (let i = nb - 1; i > 0; i--) { const j = Math.floor(r() * (i + 1)); [order[i], order[j]] = [order[j], order[i]]; }
  for (let t = 0; t < Math.round(fill * nb); t++) for (let j = 0; j < k; j++) w[order[t] * k + j] = nonzeroI8(r);
  return w;
}

/** The weight of format f at density `fill` (dense: the 1x16 matrix densified: speed does not depend on zeros). */
function matrix(K: Int8Kernels, be: Backend, f: Fmt, O: number, I: number, fill: number, seed: number): Int8Matrix {
  const scale = be.alloc(O);
  scale.fill(0.01);
  const k = f === 'b16' || f === 'dense' ? 16 : f === 'b8' ? 8 : f === 'b4' ? 4 : 1;
  const d = sparseWeight(O, I, k, fill, seed);
  if (f === 'dense') { const values = K.allocI8(O * I); values.set(d); return { format: 'dense', O, I, values, scale }; }
  return f === 'csr' ? denseToCsr(d, scale, O, I, K) : denseToBlock(d, scale, O, I, k, K);
}

/** µs per call (min or median over `rounds` samples, each timing back-to-back calls for ms), after a warm-up. */
function timeUs(fn: () => void, nRounds = rounds, ms = sampleMs): number {
  const w0 = performance.now();
  do fn(); while (performance.now() - w0 < 20); // warm-up: V8 tiers the kernels up
  const xs: number[] = [];
  for (let r = 0; r < nRounds; r++) {
    let n = 0;
    const t0 = performance.now();
    do { fn(); n++; } while (performance.now() - t0 < ms);
    xs.push((performance.now() - t0) * 1000 / n);
  }
  return stat === 'min' ? Math.min(...xs) : median(xs);
}

interface Row { O: number; I: number; N: number; threads: number; act: Act; kernel: string; us: number; gops: number }

/** A call of linearI8 on W with N tokens of random activations (int8 with scales, or float). */
function call(K: Int8Kernels, be: Backend, W: Int8Matrix, N: number, act: Act, seed: number): () => void {
  const r = rng(seed), y = be.alloc(N * W.O);
  if (act === 'f32') {
    const x = be.alloc(N * W.I);
    for (let i = 0; i < x.length; i++) x[i] = r() * 2 - 1;
    return () => linearI8(K, y, W, N, null, { x });
  }
  const xq = K.allocI8(N * W.I), xScale = be.alloc(N);
  for (let i = 0; i < xq.length; i++) xq[i] = Math.floor(r() * 256) - 128;
  xScale.fill(0.02);
  return () => linearI8(K, y, W, N, null, { xq, xScale });
}

function quantCall(K: Int8Kernels, be: Backend, N: number, I: number): () => void {
  const x = be.alloc(N * I), xq = K.allocI8(N * I), s = be.alloc(N), r = rng(9);
  for (let i = 0; i < x.length; i++) x[i] = r() * 2 - 1;
  return () => K.quantizeRowsI8(xq, s, x, N, I, 8);
}

function f32Call(be: Backend, O: number, I: number, N: number): () => void {
  const W = be.alloc(O * I), x = be.alloc(N * I), y = be.alloc(N * O), r = rng(5);
  for (let i = 0; i < W.length; i++) W[i] = r() - 0.5;
  for (let i = 0; i < x.length; i++) x[i] = r() - 0.5;
  return () => be.matmul(y, x, W, N, O, I, false, true);
}

const gops = (N: number, O: number, I: number, us: number): number => 2 * N * O * I / (us * 1000);

/** The main table: every shape, N, thread count and activation kind; 90% sparsity. */
function mainTable(backends: WasmBackend[], ts: TsInt8Kernels, rows: Row[]): void {
  const head = ['act', 'O x I', 'N', 'thr', 'f32 µs', 'quant µs', ...FORMATS.map((f) => `${f} µs`), 'dense GOP/s',
    ...FORMATS.slice(1).map((f) => `${f} x`), 'f32/dense', 'ts dense µs', 'ts b16 µs', 'ts csr µs'];
  const table: Cell[][] = [];
  for (const act of acts) {
    for (const [O, I] of SHAPES) {
      for (const N of NS) {
        for (const be of backends) {
          const K = wasmInt8Kernels(be), th = be.threads, us: Partial<Record<Fmt, number>> = {};
          const add = (kernel: string, t: number): void => {
            rows.push({ O, I, N, threads: th, act, kernel, us: round(t, 3), gops: round(gops(N, O, I, t), 2) });
          };
          const f32 = timeUs(f32Call(be, O, I, N));
          add('f32-gemm', f32);
          const q = act === 'i8' ? timeUs(quantCall(K, be, N, I)) : null;
          if (q !== null) add('quantize', q);
          FORMATS.forEach((f, i) => {
            const W = matrix(K, be, f, O, I, f === 'dense' ? 1 : 0.1, 100 + i);
            us[f] = timeUs(call(K, be, W, N, act, 7));
            add(f, us[f]!);
          });
          let tsCells: Cell[] = [null, null, null];
          if (withTs && th === backends[0].threads) {
            tsCells = (['dense', 'b16', 'csr'] as Fmt[]).map((f, i) => {
              const W = matrix(ts, be, f, O, I, f === 'dense' ? 1 : 0.1, 200 + i);
              const t = timeUs(call(ts, be, W, N, act, 7), 3, Math.max(sampleMs, 5));
              rows.push({ O, I, N, threads: 1, act, kernel: `ts-${f}`, us: round(t, 3), gops: round(gops(N, O, I, t), 3) });
              return t;
            });
          }
          const d = us.dense!;
          table.push([act, `${O}x${I}`, N, th, f32, q, ...FORMATS.map((f) => us[f]), gops(N, O, I, d),
            ...FORMATS.slice(1).map((f) => d / us[f]!), f32 / d, ...tsCells]);
          log(`${act} ${O}x${I} N=${N} threads=${th} done`);
        }
      }
    }
  }
  console.log(`\nint8 kernels, µs per call (${stat} of ${rounds}); "x" = dense µs / format µs at 90% sparsity; ` +
    'f32/dense = float32 GEMM µs / int8 dense µs');
  printTable(head, table);
}

interface SweepRow {
  O: number; I: number; N: number; act: Act; fill: number;
  dense: number; b16: number; b8: number; b4: number; csr: number;
}

const FILLS = [0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8];
const SPARSE = ['b16', 'b8', 'b4', 'csr'] as const;

/** Density sweep on one thread: at which block fill / weight density each format stops beating dense. */
function sweep(be: WasmBackend, out: SweepRow[]): void {
  const K = wasmInt8Kernels(be), table: Cell[][] = [];
  const shapes: [number, number][] = [[384, 128], [128, 384], [2048, 128]];
  for (const act of acts) {
    for (const [O, I] of shapes) {
      for (const N of NS.filter((n) => n <= 16)) {
        const dense = timeUs(call(K, be, matrix(K, be, 'dense', O, I, 1, 300), N, act, 7));
        for (const fill of FILLS) {
          const t = (f: Fmt): number => round(timeUs(call(K, be, matrix(K, be, f, O, I, fill, 301), N, act, 7)), 3);
          const r: SweepRow = { O, I, N, act, fill, dense: round(dense, 3), b16: t('b16'), b8: t('b8'), b4: t('b4'),
            csr: t('csr') };
          out.push(r);
          table.push([act, `${O}x${I}`, N, fill, r.dense, r.b16, r.b8, r.b4, r.csr]);
        }
        log(`sweep ${act} ${O}x${I} N=${N} done`);
      }
    }
  }
  console.log('\ndensity sweep, 1 thread, µs per call (fill: fraction of nonzero 1 x k blocks; csr: of nonzero weights)');
  printTable(['act', 'O x I', 'N', 'fill', 'dense', 'b16', 'b8', 'b4', 'csr'], table);
}

/** Per swept case and format: the highest fill up to which the format is no slower than dense (0: never). */
function breakEven(rows: SweepRow[]): { table: Cell[][]; worst: Record<string, Record<string, number>> } {
  const table: Cell[][] = [], worst: Record<string, Record<string, number>> = {};
  const cases = [...new Set(rows.map((r) => `${r.act} ${r.O}x${r.I} ${r.N}`))];
  for (const c of cases) {
    const rs = rows.filter((r) => `${r.act} ${r.O}x${r.I} ${r.N}` === c).sort((a, b) => a.fill - b.fill), act = rs[0].act;
    const even = SPARSE.map((f) => {
      let e = 0;
      for (const r of rs) { if (r[f] <= r.dense) e = r.fill; else break; }
      worst[act] ??= {};
      worst[act][f] = Math.min(worst[act][f] ?? 1, e);
      return e;
    });
    table.push([...c.split(' '), ...even]);
  }
  return { table, worst };
}

async function main(): Promise<void> {
  const backends: WasmBackend[] = [];
  for (const t of threadsList) backends.push(await createWasmBackend({ threads: t, forceParallel: force }));
  const ts = new TsInt8Kernels(), rows: Row[] = [], sweepRows: SweepRow[] = [];
  try {
    mainTable(backends, ts, rows);
    let worst: Record<string, Record<string, number>> | null = null;
    if (withSweep) {
      sweep(backends.find((b) => b.threads === 1) ?? backends[0], sweepRows);
      const be = breakEven(sweepRows);
      worst = be.worst;
      console.log('\nbreak-even fill vs dense (highest swept fill at which the format is no slower; 0: never)');
      printTable(['act', 'O x I', 'N', ...SPARSE], be.table);
      console.log(`worst case over the swept shapes and N: ${JSON.stringify(worst)}`);
    }
    jsonLine({ bench: 'int8', unit: 'us', stat, rounds, sampleMs, sparsity: 0.9, fma: backends[0].fma, ...machineFacts(),
      results: rows, sweep: sweepRows, breakEven: worst });
  } finally {
    await Promise.all(backends.map((b) => b.dispose()));
  }
}

await main();
