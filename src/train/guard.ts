/**
 * What a run checks before its first step (so a long run cannot finish with nothing saved) and the
 * numeric guards of its loop: a non-finite loss stops the run before anything of that step is saved,
 * a non-finite evaluation never becomes the saved model. Shared by `qkd train` and `qkd distill`.
 */
import { existsSync, statfsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { QkdError } from '../tensor/errors.js';

export interface RunPlan {
  /** 'train' or 'distill', for messages. */
  where: string;
  dir: string;
  steps: number;
  warmup: number;
  /** Validation tokens and the evaluation window (the fixture protocol: evalContext tokens per window). */
  validTokens: number;
  evalContext: number;
  /** Float parameters of the trained model, and extra float state the checkpoint holds. */
  params: number;
  extraState?: number;
}

/** warmup <= steps: the one rule of train and distill (also applied to a recipe's computed steps). */
export function checkWarmup(warmup: number, steps: number, where: string): void {
  if (warmup > steps) throw new QkdError('E_CONFIG', `${where}: warmup: ${warmup} warm-up steps exceed the ${steps} steps`);
}

/** Free bytes on the file system holding `dir` (or its nearest existing parent); Infinity when unknown. */
export function freeBytes(dir: string): number {
  let d = resolve(dir);
  while (!existsSync(d) && dirname(d) !== d) d = dirname(d);
  try {
    const st = statfsSync(d);
    return st.bavail * st.bsize;
  } catch {
    return Infinity;
  }
}

/** Everything a run will need, checked before the first step. */
export function checkRunPlan(p: RunPlan): void {
  checkWarmup(p.warmup, p.steps, `${p.where} config`);
  if (p.validTokens < p.evalContext) {
    throw new QkdError('E_INPUT', `${p.where}: the validation text has ${p.validTokens} tokens, fewer than one evaluation window ` +
      `of ${p.evalContext} (evalContext): the run could not evaluate or save a model. Give more validation text ` +
      '(--valid, --valid-fraction) or a shorter --eval-context');
  }
  // a checkpoint (params, two AdamW moments, extra state) and the model, each written beside its previous copy
  const need = 2 * 4 * (3 * p.params + (p.extraState ?? 0)) + 2 * 4 * p.params;
  const free = freeBytes(p.dir);
  if (need > free) {
    const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;
    throw new QkdError('E_INPUT', `${p.dir}: the run needs about ${mib(need)} of disk for its checkpoints and model, ${mib(free)} are free`);
  }
}

/** Stops a run at a non-finite loss; the checkpoint on disk (if any) is the last good state. */
export function nonFiniteLoss(where: string, step: number, what: string, checkpointDir: string, lastCheckpoint: number | null): QkdError {
  return new QkdError('E_NUMERIC', `${where}: step ${step}: ${what}, not finite (a diverged run, or a teacher or ` +
    'data with NaN/Inf); stopped without saving this step. ' +
    (lastCheckpoint !== null ? `The last good checkpoint (step ${lastCheckpoint}) is in ${checkpointDir}`
      : 'No checkpoint had been written yet'));
}

/** An evaluation that is not finite is never saved as the best model. */
export function checkFiniteEval(r: { nll: number }, step: number, where: string): void {
  if (!Number.isFinite(r.nll)) {
    throw new QkdError('E_NUMERIC', `${where}: step ${step}: the validation loss is ${r.nll}, not finite (the weights diverged); ` +
      'stopped without saving this model');
  }
}
