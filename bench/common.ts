/**
 * Shared pieces of the benchmarks: fixture paths, small statistics, the table and the final JSON
 * line, RSS and machine-load sampling, and child processes (our own per-configuration workers and
 * the PyTorch peers under bench/peers/).
 *
 * Benchmarks run from the repository root (`node dist/bench/<x>.js`), like the tests, so fixtures
 * are found at ../shared/fixtures relative to process.cwd().
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { createBackend } from '../src/kernels/registry.js';
import type { Backend, BackendName } from '../src/kernels/backend.js';
import type { NativeBackend } from '../src/kernels/native/backend.js';
import { QkdError } from '../src/tensor/errors.js';

export const ROOT = process.cwd();
export const FIXTURES = join(ROOT, '..', 'shared', 'fixtures');

/** Path inside the fixtures; throws (never skips) when it is missing. */
export function fixture(...parts: string[]): string {
  const p = join(FIXTURES, ...parts);
  if (!existsSync(p)) throw new QkdError('E_MISSING', `${p}: fixture not found (benchmarks run from the repo root)`);
  return p;
}

// ---------------------------------------------------------------- flags
/** "1,2" -> [1, 2]; every entry a positive integer. */
export function intList(s: string, flag: string): number[] {
  const v = s.split(',').map((x) => Number(x.trim()));
  if (v.length === 0 || v.some((x) => !Number.isInteger(x) || x < 1)) {
    throw new QkdError('E_CONFIG', `--${flag}: expected a comma-separated list of positive integers, got "${s}"`);
  }
  return v;
}

export function posInt(s: string | undefined, flag: string, dflt: number, min = 1): number {
  if (s === undefined) return dflt;
  const v = Number(s);
  if (!Number.isInteger(v) || v < min) throw new QkdError('E_CONFIG', `--${flag}: expected an integer >= ${min}, got "${s}"`);
  return v;
}

export function backendName(s: string | undefined, dflt: BackendName): BackendName {
  const v = s ?? dflt;
  if (v !== 'ts' && v !== 'wasm') throw new QkdError('E_CONFIG', `--backend: expected ts or wasm, got "${v}"`);
  return v;
}

/** The backend, with a hint when the wasm kernels were not built. */
export async function makeBackend(name: BackendName, threads: number): Promise<Backend> {
  if (name === 'wasm' && !existsSync(join(ROOT, 'dist', 'wasm', 'kernels.wasm'))) {
    throw new QkdError('E_MISSING', 'dist/wasm/kernels.wasm: the wasm kernels are not built (run npm run build), or use --backend ts');
  }
  return createBackend(name, { threads });
}

// ---------------------------------------------------------------- statistics
export { median } from '../src/eval/speed.js';

/** Least-squares slope of ys against their index (units of y per step); 0 for fewer than 2 points. */
export function slope(ys: number[]): number {
  const n = ys.length;
  if (n < 2) return 0;
  const mx = (n - 1) / 2, my = ys.reduce((a, b) => a + b, 0) / n;
  let sxy = 0, sxx = 0;
  for (let i = 0; i < n; i++) { sxy += (i - mx) * (ys[i] - my); sxx += (i - mx) ** 2; }
  return sxy / sxx;
}

export function round(x: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

// ---------------------------------------------------------------- output
export type Cell = string | number | null | undefined;

function cellText(c: Cell): string {
  if (c === null || c === undefined) return '-';
  return typeof c === 'number' ? String(Number.isInteger(c) ? c : round(c, 2)) : c;
}

/** Aligned text table: numbers right-aligned, text left-aligned. */
export function printTable(headers: string[], rows: Cell[][]): void {
  const text = rows.map((r) => r.map(cellText));
  const w = headers.map((h, j) => Math.max(h.length, ...text.map((r) => (r[j] ?? '').length)));
  const line = (cells: string[], numeric: boolean[]) =>
    cells.map((c, j) => (numeric[j] ? c.padStart(w[j]) : c.padEnd(w[j]))).join('  ').trimEnd();
  console.log(line(headers, headers.map(() => false)));
  console.log(w.map((n) => '-'.repeat(n)).join('  '));
  for (let i = 0; i < rows.length; i++) console.log(line(text[i], rows[i].map((c) => typeof c === 'number')));
}

/** The one machine-readable line a benchmark ends with. */
export function jsonLine(obj: object): void {
  console.log(JSON.stringify(obj));
}

/** Progress and notes go to stderr so stdout stays table + JSON line. */
export function log(msg: string): void {
  process.stderr.write(`${msg}\n`);
}

export function machineFacts(): Record<string, unknown> {
  return {
    cpu: cpus()[0]?.model ?? 'unknown', cores: availableParallelism(), node: process.version,
    loadavg1: round(loadavg()[0], 2), date: new Date().toISOString(),
  };
}

// ---------------------------------------------------------------- memory and load
/** Resident set size now, in MiB. */
export function rssMb(): number {
  return round(process.memoryUsage.rss() / 2 ** 20, 1);
}

/** Peak resident set size of this process so far, in MiB (maxRSS is in KiB). */
export function peakRssMb(): number {
  return round(process.resourceUsage().maxRSS / 1024, 1);
}

/**
 * Cores' worth of CPU that other processes used between start() and stop() (Linux /proc; null
 * elsewhere). Near 0 on a quiet machine; on a shared 2-core machine it says how noisy a number is.
 */
export class OtherLoad {
  private t0: [number, number, number] | null = null;

  private static sample(): [number, number, number] | null {
    try {
      const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1, 9).map(Number);
      const busy = f.reduce((s, v, i) => (i === 3 || i === 4 ? s : s + v), 0);   // minus idle and iowait
      const st = readFileSync('/proc/self/stat', 'utf8');
      const own = st.slice(st.lastIndexOf(')') + 2).split(' ').slice(11, 13).map(Number);
      return [busy, own[0] + own[1], performance.now() / 1000];
    } catch {
      return null;
    }
  }

  start(): this { this.t0 = OtherLoad.sample(); return this; }

  /** Other processes' CPU in cores; clock ticks are 100 Hz on Linux, so spans under 0.5 s give null. */
  stop(): number | null {
    const t1 = OtherLoad.sample();
    if (!this.t0 || !t1) return null;
    const [busy, own, dt] = t1.map((v, i) => v - this.t0![i]);
    if (dt < 0.5) return null;
    return round(Math.max(0, (busy - own) / 100 / dt), 3);
  }
}

// ---------------------------------------------------------------- child processes
export type ChildResult = { ok: true; json: Record<string, unknown> } | { ok: false; reason: string };

/** The last stdout line that parses as a JSON object. */
export function lastJsonLine(stdout: string): Record<string, unknown> | null {
  const lines = stdout.trim().split('\n').reverse();
  for (const l of lines) {
    if (!l.startsWith('{')) continue;
    try { return JSON.parse(l) as Record<string, unknown>; } catch { /* keep looking */ }
  }
  return null;
}

function runChild(cmd: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs: number, what: string): ChildResult {
  // stderr passes through: the children's progress lines show live, and so do their errors.
  const r = spawnSync(cmd, args, { cwd: ROOT, env, encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 << 20,
    stdio: ['ignore', 'pipe', 'inherit'] });
  if (r.error) return { ok: false, reason: `${what}: ${r.error.message}` };
  if (r.status !== 0) return { ok: false, reason: `${what} exited with ${r.status ?? r.signal} (its stderr is above)` };
  const json = lastJsonLine(r.stdout ?? '');
  return json ? { ok: true, json } : { ok: false, reason: `${what} printed no JSON line (its stderr is above)` };
}

/** Runs a compiled benchmark script again in a fresh Node process (own heap, own peak RSS). */
export function runNodeChild(script: string, args: string[], timeoutMs = 600_000): ChildResult {
  return runChild(process.execPath, [script, ...args], process.env, timeoutMs, `node ${script} ${args.join(' ')}`);
}

export const PYTHON = '/usr/bin/python3';
let torchCheck: string | null | undefined;

/** Why the PyTorch peers cannot run here (no python3, no torch), or null when they can. */
export function peerUnavailable(): string | null {
  if (torchCheck !== undefined) return torchCheck;
  const r = spawnSync(PYTHON, ['-c', 'import torch'], { env: peerEnv(), encoding: 'utf8', timeout: 120_000 });
  if (r.error) torchCheck = `${PYTHON} is not available (${r.error.message})`;
  else if (r.status !== 0) torchCheck = `python3-torch is not installed (${PYTHON} -c "import torch" failed)`;
  else torchCheck = null;
  return torchCheck;
}

/** OpenBLAS tuning variables set for other tools make torch pick a slower kernel; peers run without them. */
function peerEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.OPENBLAS_CORETYPE;
  delete env.OPENBLAS_L2_SIZE;
  return env;
}

/** Runs bench/peers/<script> (PyTorch CPU) and returns its final JSON line, or why it could not. */
export function runPeer(script: string, args: string[], timeoutMs = 600_000): ChildResult {
  const path = join(ROOT, 'bench', 'peers', script);
  if (!existsSync(path)) return { ok: false, reason: `peer script bench/peers/${script} is absent` };
  const why = peerUnavailable();
  if (why) return { ok: false, reason: why };
  return runChild(PYTHON, ['-B', path, ...args], peerEnv(), timeoutMs, `python3 bench/peers/${script} ${args.join(' ')}`);
}

/** A number field of a peer's JSON (undefined when absent or not a number). */
export function num(o: Record<string, unknown> | undefined, key: string): number | undefined {
  const v = o?.[key];
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

/** "wasm,native" -> ['wasm', 'native'] (each checked by backendName; 'native' accepted here as well). */
export function backendList(s: string | undefined, dflt: BackendName): BackendName[] {
  const names = (s ?? dflt).split(',').map((x) => x.trim());
  return [...new Set(names.map((n) => (n === 'native' ? 'native' : backendName(n, dflt))))];
}

/**
 * A backend for a bench; for native also the OpenBLAS kernel in use. OPENBLAS_CORETYPE /
 * OPENBLAS_L2_SIZE, when set for other tools, make OpenBLAS pick a slower kernel; the PyTorch peer runs
 * without them, so our OpenBLAS does too (read when the addon loads).
 */
export async function openBenchBackend(name: BackendName, threads: number): Promise<{ be: Backend; blas?: string }> {
  if (name !== 'native') return { be: await makeBackend(name, threads) };
  delete process.env.OPENBLAS_CORETYPE; delete process.env.OPENBLAS_L2_SIZE;
  const be = await makeBackend(name, threads) as NativeBackend;
  return { be, blas: `${be.blas.corename}, OPENBLAS_THREAD_TIMEOUT=${process.env.OPENBLAS_THREAD_TIMEOUT ?? '4 (qkd default)'}` };
}
