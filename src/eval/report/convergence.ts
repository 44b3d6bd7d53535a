/**
 * Convergence (docs/report.md "convergence"): the distillation loss and its parts per logged step, the
 * validation perplexity per evaluation and the sparsity schedule, from the run's metrics.jsonl, plus a
 * summary that sets the seed's claim (DistillationLoss → 0) against what was measured.
 */
import type { EvalPointT, TrainPointT } from './inputs.js';

/** Series longer than this are thinned to every k-th point (the last one always kept). */
export const MAX_POINTS = 2000;

type Num = number | null;

export interface Convergence {
  /** Every `stride`-th logged training step. */
  stride: number;
  /** null where a step did not log the quantity. */
  series: { step: number[]; loss: number[]; ce: Num[]; kl: Num[]; entropy: Num[]; lr: Num[]; sparsity: Num[] };
  evals: { step: number[]; validPpl: number[]; validTop1: (number | null)[] };
  summary: {
    steps: number;
    /** Means over the first and the last 5% of logged steps (at least one step each). */
    firstLoss: number | null;
    lastLoss: number | null;
    minLoss: number | null;
    last: { ce: number | null; kl: number | null; kd: number | null; entropy: number | null };
    finalSparsity: number | null;
    targetSparsity: number | null;
    bestValidPpl: number | null;
    bestStep: number | null;
    /** The seed claims lim DistillationLoss = 0; this says what the measured loss did. */
    toZero: string;
  };
}

const meanOf = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null);

function thin<T>(xs: T[], stride: number): T[] {
  if (stride <= 1) return xs;
  const out = xs.filter((_, i) => i % stride === 0);
  if ((xs.length - 1) % stride !== 0) out.push(xs[xs.length - 1]);
  return out;
}

function summary(train: TrainPointT[], evals: EvalPointT[], tau: number, target: number | null): Convergence['summary'] {
  const k = Math.max(1, Math.floor(train.length * 0.05)), losses = train.map((p) => p.loss);
  const firstLoss = meanOf(losses.slice(0, k)), lastLoss = meanOf(losses.slice(-k)), tail = train.slice(-k);
  const part = (f: (p: TrainPointT) => number | undefined) => meanOf(tail.map(f).filter((x): x is number => x !== undefined));
  const kl = part((p) => p.kl);
  let best: EvalPointT | null = null;
  for (const e of evals) if (!best || e.valid_ppl < best.valid_ppl) best = e;
  const sp = train.filter((p) => p.sparsity !== undefined);
  const toZero = lastLoss === null ? 'no training steps logged'
    : `not reached: the loss went from ${firstLoss!.toFixed(4)} to ${lastLoss.toFixed(4)} (mean of the first and last ${k} logged steps); ` +
      'its CE part cannot fall below the entropy rate of the text (> 0 for natural language), so the limit 0 is not reachable: the curve shows a plateau, not convergence to 0';
  return {
    steps: train.length ? train[train.length - 1].step : 0, firstLoss, lastLoss, minLoss: losses.length ? Math.min(...losses) : null,
    last: { ce: part((p) => p.ce), kl, kd: kl === null ? null : tau * tau * kl, entropy: part((p) => p.entropy) },
    finalSparsity: sp.length ? sp[sp.length - 1].sparsity! : null, targetSparsity: target,
    bestValidPpl: best?.valid_ppl ?? null, bestStep: best?.step ?? null, toZero,
  };
}

export function convergence(train: TrainPointT[], evals: EvalPointT[], tau: number, target: number | null): Convergence {
  const stride = Math.max(1, Math.ceil(train.length / MAX_POINTS)), t = thin(train, stride);
  const col = (f: (p: TrainPointT) => number | undefined) => t.map((p) => f(p) ?? null);
  return {
    stride,
    series: {
      step: t.map((p) => p.step), loss: t.map((p) => p.loss), ce: col((p) => p.ce), kl: col((p) => p.kl), entropy: col((p) => p.entropy),
      lr: col((p) => p.lr), sparsity: col((p) => p.sparsity),
    },
    evals: { step: evals.map((e) => e.step), validPpl: evals.map((e) => e.valid_ppl), validTop1: evals.map((e) => e.valid_top1 ?? null) },
    summary: summary(train, evals, tau, target),
  };
}
