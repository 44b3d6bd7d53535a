/**
 * A run directory: the resolved config, metrics as JSON lines, the latest checkpoint and the model.
 * Shared by `qkd train` and `qkd distill`. Handles resume bookkeeping and SIGINT/SIGTERM.
 *
 *   RUN/config.json      resolved config (a resumed run must match it)
 *   RUN/metrics.jsonl    one JSON object per logged step / evaluation
 *   RUN/checkpoint/      latest training state (atomic)
 *   RUN/model/           best model so far, Hugging Face layout (atomic)
 */
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../io/atomic.js';
import { prepareOutDir } from '../io/outdir.js';
import { QkdError } from '../tensor/errors.js';
import { hasCheckpoint } from './checkpoint.js';

export class RunDir {
  readonly configPath: string;
  readonly metricsPath: string;
  readonly checkpointDir: string;
  readonly modelDir: string;
  private stopSignal: string | null = null;
  private handlers: [string, () => void][] = [];

  constructor(readonly dir: string) {
    this.configPath = join(dir, 'config.json');
    this.metricsPath = join(dir, 'metrics.jsonl');
    this.checkpointDir = join(dir, 'checkpoint');
    this.modelDir = join(dir, 'model');
  }

  /**
   * New run: the directory must be new, empty, or a run of the same kind that never saved a
   * checkpoint or a model (io/outdir.ts: a run to replace is removed by the command's --force first).
   * Resume: the saved config must equal `config` (JSON-equal); returns the checkpoint dir to load or null.
   */
  open(config: object, resume: boolean): string | null {
    const text = JSON.stringify(config, null, 2) + '\n';
    prepareOutDir(this.dir, { kind: 'distill' in config ? 'distill' : 'train', resume });
    if (resume) {
      if (!existsSync(this.configPath)) throw new QkdError('E_MISSING', `${this.configPath}: no run to resume here`);
      const saved = JSON.parse(readFileSync(this.configPath, 'utf8'));
      const diff = firstDifference(saved, JSON.parse(text));
      if (diff) throw new QkdError('E_CONFIG', `${this.configPath}: cannot resume with a different config (${diff})`);
      return hasCheckpoint(this.checkpointDir) ? this.checkpointDir : null;
    }
    writeFileAtomic(this.configPath, text);
    writeFileAtomic(this.metricsPath, '');
    return null;
  }

  /** Drops metric lines past `step` (they belong to work lost after the checkpoint). */
  truncateMetrics(step: number): void {
    if (!existsSync(this.metricsPath)) return;
    const keep = readFileSync(this.metricsPath, 'utf8').split('\n').filter((l) => {
      if (!l.trim()) return false;
      try { return (JSON.parse(l).step ?? 0) <= step; } catch { return false; }
    });
    writeFileAtomic(this.metricsPath, keep.map((l) => l + '\n').join(''));
  }

  log(record: Record<string, unknown>): void {
    appendFileSync(this.metricsPath, JSON.stringify(record) + '\n');
  }

  /** Traps SIGINT/SIGTERM: the loop sees `stopRequested` and checkpoints before exiting. */
  trapSignals(): void {
    for (const sig of ['SIGINT', 'SIGTERM'] as const) {
      const h = () => { this.stopSignal = sig; };
      process.on(sig, h);
      this.handlers.push([sig, h]);
    }
  }

  get stopRequested(): string | null { return this.stopSignal; }

  releaseSignals(): void {
    for (const [sig, h] of this.handlers) process.off(sig, h);
    this.handlers = [];
  }
}

/** Path and values of the first difference between two JSON values, or null. */
export function firstDifference(a: unknown, b: unknown, path = ''): string | null {
  if (typeof a !== typeof b || Array.isArray(a) !== Array.isArray(b) || (a === null) !== (b === null)) {
    return `${path || '(root)'}: ${JSON.stringify(a)} vs ${JSON.stringify(b)}`;
  }
  if (typeof a === 'object' && a !== null) {
    const keys = new Set([...Object.keys(a), ...Object.keys(b as object)]);
    for (const k of keys) {
      const d = firstDifference((a as any)[k], (b as any)[k], path ? `${path}.${k}` : k);
      if (d) return d;
    }
    return null;
  }
  return a === b ? null : `${path}: ${JSON.stringify(a)} vs ${JSON.stringify(b)}`;
}
