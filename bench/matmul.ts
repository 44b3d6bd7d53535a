/**
 * GEMM throughput of the wasm backend next to PyTorch/numpy (OpenBLAS) in the same run.
 *
 *   npm run build && node dist/bench/matmul.js [--rounds 5] [--threads 1,2]
 *
 * Shapes: squares 256/512/1024 and the skinny shapes of a small transformer's training step, each in
 * the four transpose variants (AB, AtB, ABt, AtBt). Our samples are interleaved across shapes,
 * variants and thread counts over several rounds, with the peer runs between the rounds; every
 * number is a median. Peers: bench/peers/matmul.py (torch + numpy, squares) and an inline numpy
 * script (skinny shapes, and the squares when torch is missing). Prints a table, then one JSON line.
 * The per-core column divides by CPU time instead of wall time, so it is less sensitive to other
 * processes on a shared machine (it counts the workers' brief spinning too).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createWasmBackend, type WasmBackend } from '../src/kernels/wasm/backend.js';

type Variant = 'AB' | 'AtB' | 'ABt' | 'AtBt';
const VARIANTS: [Variant, boolean, boolean][] = [['AB', false, false], ['AtB', true, false], ['ABt', false, true],
  ['AtBt', true, true]];
const SQUARES = [256, 512, 1024];
/** (M, N, K): attention/MLP projections, the logits layer, the MLP up-projection of a small student. */
const SKINNY: [number, number, number][] = [[2048, 384, 128], [2048, 2048, 256], [2048, 256, 688]];
const SHAPES: [number, number, number][] = [...SQUARES.map((n): [number, number, number] => [n, n, n]), ...SKINNY];
const PY = '/usr/bin/python3';
const SAMPLE_MS = 50;

const arg = (name: string, dflt: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : dflt;
};
const rounds = Number(arg('rounds', '5'));
const threadList = arg('threads', '1,2').split(',').map(Number);
const key = (M: number, N: number, K: number): string => `${M}x${N}x${K}`;
const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };

interface Case { shape: string; variant: Variant; threads: number; run: () => void; flops: number; wall: number[]; cpu: number[] }

function makeCases(bes: Map<number, WasmBackend>): Case[] {
  const cases: Case[] = [];
  for (const [M, N, K] of SHAPES) {
    for (const [t, be] of bes) {
      const A = be.alloc(M * K), B = be.alloc(K * N), C = be.alloc(M * N);
      for (let i = 0; i < A.length; i++) A[i] = Math.random() - 0.5;
      for (let i = 0; i < B.length; i++) B[i] = Math.random() - 0.5;
      for (const [v, tA, tB] of VARIANTS) {
        const run = (): void => be.matmul(C, A, B, M, N, K, tA, tB);
        run(); // compile tiers warm up
        cases.push({ shape: key(M, N, K), variant: v, threads: t, run, flops: 2 * M * N * K, wall: [], cpu: [] });
      }
    }
  }
  return cases;
}

function sample(c: Case): void {
  const c0 = process.cpuUsage(), t0 = performance.now();
  let n = 0, dt = 0;
  do { c.run(); n++; dt = performance.now() - t0; } while (dt < SAMPLE_MS);
  const cu = process.cpuUsage(c0), cpuS = (cu.user + cu.system) / 1e6;
  c.wall.push(c.flops * n / (dt / 1e3) / 1e9);
  c.cpu.push(c.flops * n / cpuS / 1e9);
}

// ------------------------------------------------------------------ peers
/** peer[engine][threads][shape][variant] = GFLOP/s */
type PeerTable = Record<string, Record<number, Record<string, Partial<Record<Variant, number>>>>>;

function python(args: string[], env: NodeJS.ProcessEnv = {}): string | null {
  if (!existsSync(PY)) return null;
  const e = { ...process.env, ...env };
  delete e.OPENBLAS_CORETYPE; delete e.OPENBLAS_L2_SIZE;
  const r = spawnSync(PY, ['-B', ...args], { env: e, encoding: 'utf8', maxBuffer: 1 << 24 });
  if (r.status !== 0) return null;
  const lines = r.stdout.trim().split('\n');
  return lines[lines.length - 1];
}

/** Inline numpy timing of the given shapes in all four variants (median of 7 samples >= 50 ms). */
const NUMPY_SCRIPT = `
import json, sys, time, statistics
import numpy as np
shapes = json.loads(sys.argv[1]); out = {}
rng = np.random.default_rng(1)
for (m, n, k) in shapes:
    a = rng.standard_normal((m, k), dtype=np.float32); b = rng.standard_normal((k, n), dtype=np.float32)
    at = np.ascontiguousarray(a.T); bt = np.ascontiguousarray(b.T)
    ops = {"AB": (a, b), "AtB": (at.T, b), "ABt": (a, bt.T), "AtBt": (at.T, bt.T)}
    res = {}
    for v, (x, y) in ops.items():
        x @ y
        t = time.perf_counter(); x @ y; one = time.perf_counter() - t
        inner = max(1, int(0.05 / max(one, 1e-6))); samples = []
        for _ in range(7):
            t = time.perf_counter()
            for _ in range(inner): x @ y
            samples.append(2 * m * n * k * inner / (time.perf_counter() - t) / 1e9)
        res[v] = round(statistics.median(samples), 1)
    out[f"{m}x{n}x{k}"] = res
print(json.dumps(out))
`;

function runPeers(threads: number, table: PeerTable, notes: string[]): void {
  const env = { OPENBLAS_NUM_THREADS: String(threads), OMP_NUM_THREADS: String(threads) };
  let squaresDone = false;
  if (existsSync('bench/peers/matmul.py')) {
    const line = python(['bench/peers/matmul.py', '--threads', String(threads)]);
    if (line) {
      const j = JSON.parse(line) as { results: Record<string, Record<string, Partial<Record<Variant, number>>>> };
      for (const [eng, bySize] of Object.entries(j.results)) {
        for (const [n, vs] of Object.entries(bySize)) {
          ((table[eng] ??= {})[threads] ??= {})[key(+n, +n, +n)] = vs;
        }
      }
      squaresDone = true;
    } else notes.push(`bench/peers/matmul.py --threads ${threads} failed (torch missing?): squares from inline numpy`);
  } else notes.push('bench/peers/matmul.py not found: squares from inline numpy');
  const shapes = squaresDone ? SKINNY : SHAPES;
  const line = python(['-c', NUMPY_SCRIPT, JSON.stringify(shapes)], env);
  if (!line) { notes.push(`numpy not available for threads=${threads}: no peer for ${shapes.length} shapes`); return; }
  const j = JSON.parse(line) as Record<string, Partial<Record<Variant, number>>>;
  for (const [s, vs] of Object.entries(j)) {
    const t = ((table.numpy ??= {})[threads] ??= {});
    t[s] = { ...t[s], ...vs };
  }
}

/** torch where it measured the case, else numpy. */
function peerOf(table: PeerTable, threads: number, shape: string, v: Variant): { name: string; g: number } | null {
  for (const eng of ['torch', 'numpy']) {
    const g = table[eng]?.[threads]?.[shape]?.[v];
    if (g !== undefined) return { name: eng, g };
  }
  return null;
}

// ------------------------------------------------------------------ main
async function main(): Promise<void> {
  const bes = new Map<number, WasmBackend>();
  for (const t of threadList) bes.set(t, await createWasmBackend({ threads: t }));
  const fma = [...bes.values()][0].fma;
  const cases = makeCases(bes);
  const table: PeerTable = {}, notes: string[] = [];
  const half = Math.ceil(rounds / 2);
  for (let r = 0; r < rounds; r++) {
    if (r === half) for (const t of threadList) runPeers(t, table, notes);
    for (const c of cases) sample(c);
    process.stderr.write(`round ${r + 1}/${rounds} done\n`);
  }
  if (rounds <= 1) for (const t of threadList) runPeers(t, table, notes);
  for (const be of bes.values()) await be.dispose();
  report(cases, table, notes, fma);
}

function report(cases: Case[], table: PeerTable, notes: string[], fma: boolean): void {
  const rows: Record<string, unknown>[] = [];
  const head = ['shape', 'variant', 'threads', 'wasm', 'per-core(cpu)', 'peer', 'engine', 'ratio'];
  const lines = [head.join('\t')];
  for (const c of cases) {
    const wall = median(c.wall), cpu = median(c.cpu), p = peerOf(table, c.threads, c.shape, c.variant);
    const ratio = p ? wall / p.g : null;
    rows.push({ shape: c.shape, variant: c.variant, threads: c.threads, wasm: +wall.toFixed(1), wasmPerCoreCpu: +cpu.toFixed(1),
      peer: p?.g ?? null, peerEngine: p?.name ?? null, ratio: ratio === null ? null : +ratio.toFixed(2) });
    lines.push([c.shape, c.variant, c.threads, wall.toFixed(1), cpu.toFixed(1), p ? p.g.toFixed(1) : '-', p?.name ?? '-',
      ratio === null ? '-' : ratio.toFixed(2)].join('\t'));
  }
  console.log(`wasm matmul, ${fma ? 'FMA (relaxed SIMD)' : 'mul+add'} build, GFLOP/s, median of ${rounds} interleaved samples`);
  console.log(lines.join('\n'));
  for (const n of notes) console.log(`note: ${n}`);
  console.log(JSON.stringify({ bench: 'matmul', unit: 'GFLOP/s', fma, rounds, results: rows, notes }));
}

await main();
