/** Shared CLI plumbing: backend flags, progress bars on stderr, flag parsing helpers, errors. */
import { Option, type Command } from 'commander';
import cliProgress from 'cli-progress';
import { createBackend } from '../kernels/registry.js';
import type { Backend } from '../kernels/backend.js';
import { QkdError } from '../tensor/errors.js';

export interface BackendFlags {
  backend: 'ts' | 'wasm';
  threads?: number;
}

export function addBackendOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--backend <name>', 'compute backend').choices(['ts', 'wasm']).default('wasm'))
    .option('--threads <n>', 'worker threads for the wasm backend (default: all cores)', intFlag('--threads', 1));
}

export function openBackend(f: BackendFlags): Promise<Backend> {
  return createBackend(f.backend, { threads: f.threads });
}

/** A commander argument parser for an integer flag with a lower bound. */
export function intFlag(flag: string, min: number): (v: string) => number {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new QkdError('E_CONFIG', `${flag}: expected an integer >= ${min}, got '${v}'`);
    return n;
  };
}

export function floatFlag(flag: string, min = -Infinity, max = Infinity): (v: string) => number {
  return (v: string) => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || n < min || n > max) {
      throw new QkdError('E_CONFIG', `${flag}: expected a number in [${min}, ${max}], got '${v}'`);
    }
    return n;
  };
}

/** Comma-separated non-negative integers. */
export function parseIds(flag: string, v: string): number[] {
  const parts = v.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  if (parts.length === 0) throw new QkdError('E_CONFIG', `${flag}: expected comma-separated token ids, got '${v}'`);
  return parts.map((p) => {
    const n = Number(p);
    if (!Number.isInteger(n) || n < 0) throw new QkdError('E_CONFIG', `${flag}: '${p}' is not a token id`);
    return n;
  });
}

export interface Progress {
  update(done: number, total: number, payload?: Record<string, string | number>): void;
  stop(): void;
}

/** A progress bar on stderr (a plain line every few seconds when stderr is not a terminal). */
export function progress(label: string, extra = ''): Progress {
  const tty = process.stderr.isTTY === true;
  const bar = new cliProgress.SingleBar({
    format: `${label} [{bar}] {percentage}% | {value}/{total} | ETA {eta_formatted}${extra}`,
    stream: process.stderr, noTTYOutput: !tty, notTTYSchedule: 5000, hideCursor: tty, etaBuffer: 20,
  }, cliProgress.Presets.shades_classic);
  let started = false;
  return {
    update(done, total, payload = {}) {
      if (!started) { bar.start(total, done, payload); started = true; }
      bar.setTotal(total);
      bar.update(done, payload);
    },
    stop() { if (started) bar.stop(); started = false; },
  };
}

export function warn(msg: string): void {
  process.stderr.write(`qkd: warning: ${msg}\n`);
}
