/** Shared CLI plumbing: backend flags, progress bars on stderr, flag parsing helpers, errors. */
import { Option, type Command } from 'commander';
import cliProgress from 'cli-progress';
import { existsSync } from 'node:fs';
import { createBackend } from '../kernels/registry.js';
import { NATIVE_ADDON_PATH } from '../kernels/native/backend.js';
import type { Backend, BackendName } from '../kernels/backend.js';
import { QkdError } from '../tensor/errors.js';
import type { TrainHooks, TrainSummary } from '../train/trainer.js';

export interface BackendFlags {
  backend: BackendName | 'auto';
  threads?: number;
}

export function addBackendOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--backend <name>', 'compute backend: auto (the fastest available), ts, wasm, or native (wasm + OpenBLAS matrix products, Node only)')
      .choices(['auto', 'ts', 'wasm', 'native']).default('auto'))
    .option('--threads <n>', 'threads for the wasm/native backends (default: all cores)', intFlag('--threads', 1));
}

/** `auto`: native when its OpenBLAS addon is built (the fastest on Node), else wasm; said once on stderr. */
export function backendName(f: BackendFlags): BackendName {
  if (f.backend !== 'auto') return f.backend;
  const name: BackendName = existsSync(NATIVE_ADDON_PATH) ? 'native' : 'wasm';
  if (!announced) {
    process.stderr.write(`qkd: backend ${name}${name === 'native' ? ' (wasm kernels + OpenBLAS matrix products)' : ' (the native OpenBLAS addon is not built)'}; --backend chooses\n`);
    announced = true;
  }
  return name;
}
let announced = false;

export function openBackend(f: BackendFlags): Promise<Backend> {
  return createBackend(backendName(f), { threads: f.threads });
}

const DECIMAL_INT = /^[0-9]+$/;
const DECIMAL_NUM = /^[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$/;

/** Strict decimal: digits only (no sign, hex, exponent, blanks or empty parts), a safe integer >= min. */
export function parseIntStrict(flag: string, v: string, min: number, what = `an integer >= ${min}`): number {
  const n = DECIMAL_INT.test(v) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n) || n < min) throw new QkdError('E_CONFIG', `${flag}: expected ${what} (decimal digits), got '${v}'`);
  return n;
}

/** A commander argument parser for an integer flag with a lower bound. */
export function intFlag(flag: string, min: number): (v: string) => number {
  return (v: string) => parseIntStrict(flag, v, min);
}

/** A decimal number in [min, max]; `exclusiveMin` makes the lower bound strict (min < x). */
export function floatFlag(flag: string, min = -Infinity, max = Infinity, exclusiveMin = false): (v: string) => number {
  return (v: string) => {
    const n = DECIMAL_NUM.test(v) ? Number(v) : NaN;
    if (!Number.isFinite(n) || n < min || (exclusiveMin && n === min) || n > max) {
      throw new QkdError('E_CONFIG', `${flag}: expected a number in ${exclusiveMin ? '(' : '['}${min}, ${max}], got '${v}'`);
    }
    return n;
  };
}

/** Comma-separated non-negative decimal integers ("1, 2" is fine; "1,,2", "0x10", "1e3" are not). */
export function parseIds(flag: string, v: string): number[] {
  const parts = v.split(',').map((s) => s.trim());
  if (v.trim() === '') throw new QkdError('E_CONFIG', `${flag}: expected comma-separated token ids, got '${v}'`);
  return parts.map((p, i) => {
    if (p === '') throw new QkdError('E_CONFIG', `${flag}: empty token id at position ${i + 1} in '${v}'`);
    return parseIntStrict(flag, p, 0, 'token ids');
  });
}

export interface Progress {
  update(done: number, total: number, payload?: Record<string, string | number>): void;
  stop(): void;
}

/**
 * A progress bar on stderr; when stderr is not a terminal, a plain status line every 5 s instead.
 * Rendering is driven from update() (not a timer), so long synchronous loops still show progress.
 */
export function progress(label: string, extra = ''): Progress {
  const tty = process.stderr.isTTY === true;
  let t0 = Date.now(), last = 0, started = false, first = NaN;
  const bar = tty ? new cliProgress.SingleBar({
    format: `${label} [{bar}] {percentage}% | {value}/{total} | ETA {eta_formatted}${extra}`,
    stream: process.stderr, hideCursor: true, etaBuffer: 20,
  }, cliProgress.Presets.shades_classic) : null;
  return {
    update(done, total, payload = {}) {
      const now = Date.now();
      if (bar) {
        if (!started) { bar.start(total, done, payload); started = true; }
        bar.setTotal(total);
        bar.update(done, payload);
        if (now - last > 200 || done === total) { (bar as unknown as { render(): void }).render(); last = now; }
        return;
      }
      // the rate counts from the first update, so a resumed run's ETA is not its old steps' credit
      if (Number.isNaN(first)) { first = done; t0 = now; }
      if (now - last < 5000 && done !== total) return;
      last = now;
      const secs = (now - t0) / 1000, eta = done > first ? (secs * (total - done)) / (done - first) : NaN;
      const fields = Object.entries(payload).map(([k, v]) => `${k} ${v}`).join(' | ');
      process.stderr.write(`${label}: ${done}/${total} (${((100 * done) / total).toFixed(1)}%) | ${secs.toFixed(0)} s | ETA ${
        Number.isFinite(eta) ? eta.toFixed(0) + ' s' : '?'}${fields ? ' | ' + fields : ''}\n`);
    },
    stop() { if (bar && started) bar.stop(); started = false; },
  };
}

export function warn(msg: string): void {
  process.stderr.write(`qkd: warning: ${msg}\n`);
}

/**
 * Runs a training-like job with a progress bar, per-evaluation lines and a one-line summary on
 * stderr; an interrupted run (SIGINT/SIGTERM, checkpoint saved) exits with 130.
 */
export async function runTrainingJob<S extends TrainSummary>(label: string, flags: BackendFlags,
  job: (be: Backend, hooks: TrainHooks) => Promise<S>, extraSummary: (s: S) => string = () => ''): Promise<void> {
  const be = await openBackend(flags);
  const bar = progress(label, ' | loss {loss} | {tps} tok/s');
  const log = (m: string) => process.stderr.write(`${label}: ${m}\n`);
  try {
    const s = await job(be, {
      onInfo: log,
      onStep: (p) => bar.update(p.step, p.steps, { loss: p.loss.toFixed(4), tps: Math.round(p.tokensPerSec) }),
      onEval: (e) => log(`step ${e.step}: valid ppl ${e.result.ppl.toFixed(3)}${e.best ? ' (best)' : ''}`),
    });
    bar.stop();
    const b = s.best ? `best valid ppl ${s.best.ppl.toFixed(3)} at step ${s.bestStep}` : 'no evaluation';
    process.stderr.write(`${label}: ${s.interrupted ? 'interrupted' : 'done'}: ${s.steps} steps in ${s.seconds.toFixed(1)} s, ` +
      `last loss ${s.lastLoss.toFixed(4)}, ${b}${extraSummary(s)}; model in ${s.modelDir}\n`);
    if (s.interrupted) process.exitCode = 130;
  } finally {
    bar.stop();
    await be.dispose();
  }
}
