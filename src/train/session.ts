/**
 * A training session: what `qkd train` and `qkd distill` share around their step function. Resume
 * from the latest checkpoint (every named buffer, the sampler, the best result so far), the step loop
 * (train/loop.ts), evaluation keeping the best model by validation NLL, and checkpoints on their
 * interval and on SIGINT/SIGTERM.
 */
import type { EvalResult } from '../eval/perplexity.js';
import { loadCheckpoint, saveCheckpoint } from './checkpoint.js';
import { checkFiniteEval } from './guard.js';
import { runLoop } from './loop.js';
import type { RunDir } from './run.js';

export interface TrainHooks {
  /** Called after every step. */
  onStep?: (s: { step: number; steps: number; loss: number; lr: number; tokensPerSec: number }) => void;
  onEval?: (s: { step: number; result: EvalResult; best: boolean }) => void;
  onInfo?: (msg: string) => void;
}

export interface TrainSummary {
  steps: number;
  lastLoss: number;
  best: EvalResult | null;
  bestStep: number;
  seconds: number;
  interrupted: string | null;
  modelDir: string;
}

export interface SessionSpec {
  /** The command, in messages (`train`, `distill`). */
  label: string;
  run: RunDir;
  /** The checkpoint to resume from (RunDir.open), or null for a fresh run. */
  resumeFrom: string | null;
  steps: number;
  evalEvery: number;
  checkpointEvery: number;
  tokensPerStep: number;
  /** Every buffer a checkpoint holds, by name (weights, optimizer moments, compression state). */
  buffers: Record<string, Float32Array>;
  sampler: { state(): unknown; setState(s: unknown): void };
  /** After a resume restored the buffers: counters that follow the step (optimizer steps). */
  restored?: (step: number) => void;
  /** Runs step s (0-based); returns its loss and any metrics to log. */
  step: (s: number) => { loss: number; [k: string]: number };
  /** The model's validation result now. */
  validate: () => EvalResult;
  /** Whether the model after `done` steps may become the best (default: always). */
  eligible?: (done: number) => boolean;
  /** Saves the model (it just became the best). */
  saveBest: () => void;
  /** More values to log with each evaluation (language tasks). */
  evalExtra?: () => Record<string, unknown>;
  hooks: TrainHooks;
}

export async function runSession(o: SessionSpec): Promise<TrainSummary> {
  const info = o.hooks.onInfo ?? (() => {}), run = o.run;
  let step = 0, best: EvalResult | null = null, bestStep = 0;
  if (o.resumeFrom) {
    const sizes = Object.fromEntries(Object.entries(o.buffers).map(([k, v]) => [k, v.length]));
    const ck = loadCheckpoint(o.resumeFrom, sizes);
    for (const [k, v] of Object.entries(o.buffers)) v.set(ck.buffers[k]);
    step = ck.state.step;
    o.restored?.(step);
    o.sampler.setState(ck.state.sampler);
    best = (ck.state.best as EvalResult | null) ?? null;
    bestStep = (ck.state.bestStep as number) ?? 0;
    run.truncateMetrics(step);
    info(`resumed at step ${step} of ${o.steps}`);
  }
  const checkpoint = (done: number) =>
    saveCheckpoint(run.checkpointDir, o.buffers, { step: done, sampler: o.sampler.state(), best, bestStep });
  const evaluate = (done: number) => {
    const r = o.validate(), eligible = o.eligible?.(done) ?? true;
    checkFiniteEval(r, done, o.label);
    const isBest = eligible && (best === null || r.nll < best.nll);
    if (isBest) { best = r; bestStep = done; o.saveBest(); }
    run.log({ step: done, valid_ppl: r.ppl, valid_nll: r.nll, valid_top1: r.top1, valid_tokens: r.tokens, best: isBest,
      ...(eligible ? {} : { before_target_sparsity: true }), ...(o.evalExtra?.() ?? {}) });
    o.hooks.onEval?.({ step: done, result: r, best: isBest });
  };
  const t0 = performance.now();
  const r = await runLoop({ run, steps: o.steps, startStep: step, evalEvery: o.evalEvery, checkpointEvery: o.checkpointEvery,
    tokensPerStep: o.tokensPerStep, step: o.step, evaluate, checkpoint, onStep: o.hooks.onStep, info });
  return { steps: r.steps, lastLoss: r.lastLoss, best, bestStep, seconds: (performance.now() - t0) / 1000,
    interrupted: r.interrupted, modelDir: run.modelDir };
}
