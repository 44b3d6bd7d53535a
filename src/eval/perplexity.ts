/**
 * The evaluation protocol of the fixtures: cut the token ids into non-overlapping windows of
 * `context` tokens (drop the tail); inside each window predict tokens 1..context-1 from their prefix.
 * nll = mean negative log-likelihood (natural log), ppl = exp(nll), top1 = argmax accuracy.
 */
import type { CausalLM } from '../runtime/generate.js';
import { QkdError } from '../tensor/errors.js';

export interface EvalResult {
  ppl: number;
  nll: number;
  top1: number;
  tokens: number;
  /** With `positionRanges`: the same measures for each range of predicting positions, in order. */
  byPosition?: PositionRange[];
}

/** ppl / top-1 of the predictions made at window positions from..to-1 (position p predicts token p + 1). */
export interface PositionRange {
  from: number;
  to: number;
  ppl: number;
  nll: number;
  top1: number;
  tokens: number;
}

export interface EvalOptions {
  context?: number;
  /** Windows per forward pass. */
  batch?: number;
  /** Called after each batch with (windows done, windows total). */
  onProgress?: (done: number, total: number) => void;
  /**
   * Also report the window's predicting positions 0..context-2 cut into this many equal ranges: how
   * quality holds up deep into the window (a student trained on shorter windows than it is evaluated
   * on loses it past its training length: docs/distillation.md "Session 6").
   */
  positionRanges?: number;
  /**
   * Filled with the nll of every prediction, at index w·context + p (window w, predicting position p);
   * each window's last entry is left as it was. At least (windows · context) long.
   */
  tokenNll?: Float32Array;
}

/**
 * Bounds of `n` equal ranges over the predicting positions 0..T-2 of a window of T tokens; `names` are
 * what the caller calls n and T in its messages (a command: its flags).
 */
export function positionRangeBounds(T: number, n: number, names = { ranges: 'position ranges', context: 'context' }): number[] {
  if (!Number.isInteger(n) || n < 1 || n > T - 1) {
    throw new QkdError('E_CONFIG', `${names.ranges}: ${n} ranges for ${T - 1} predicting positions (${names.context} ${T}); ` +
      `position ranges must be an integer from 1 to ${T - 1} (context - 1), got ${n}`);
  }
  return Array.from({ length: n + 1 }, (_, i) => Math.round((i * (T - 1)) / n));
}

export function evaluate(model: CausalLM, ids: ArrayLike<number>, opt: EvalOptions = {}): EvalResult {
  const T = opt.context ?? 256, V = model.config.vocabSize;
  if (T < 2) throw new QkdError('E_CONFIG', `context must be at least 2, got ${T}`);
  if (T > model.config.maxPos) {
    throw new QkdError('E_CONFIG', `context ${T} exceeds the model's ${model.config.maxPos} positions`);
  }
  const windows = Math.floor(ids.length / T);
  if (windows === 0) throw new QkdError('E_INPUT', `text has ${ids.length} tokens, fewer than one window of ${T}`);
  if (opt.tokenNll && opt.tokenNll.length < windows * T) {
    throw new QkdError('E_CONFIG', `tokenNll: ${opt.tokenNll.length} entries for ${windows} windows of ${T} (${windows * T} needed)`);
  }
  const B = Math.max(1, Math.min(opt.batch ?? 8, windows));
  let nllSum = 0, correct = 0, count = 0;
  const bounds = opt.positionRanges !== undefined ? positionRangeBounds(T, opt.positionRanges) : null;
  // range of each position, and per range: nll sum, correct, count
  const rangeOf = new Int32Array(T), acc = bounds ? new Float64Array(3 * (bounds.length - 1)) : null;
  if (bounds) for (let r = 0; r + 1 < bounds.length; r++) rangeOf.fill(r, bounds[r], bounds[r + 1]);
  const be = model.backend, losses = be.alloc(B * T), yBuf = be.allocI32(B * T);
  for (let w0 = 0; w0 < windows; w0 += B) {
    const b = Math.min(B, windows - w0), N = b * T;
    const x = new Int32Array(N), y = yBuf.subarray(0, N);
    for (let i = 0; i < N; i++) {
      x[i] = ids[w0 * T + i];
      y[i] = i % T === T - 1 ? -1 : ids[w0 * T + i + 1];
    }
    const logits = model.forward(x, b, T);
    be.crossEntropy(losses, logits, y, N, V);
    for (let i = 0; i < N; i++) {
      if (y[i] < 0) continue;
      const hit = argmax(logits, i * V, V) === y[i] ? 1 : 0;
      nllSum += losses[i];
      if (opt.tokenNll) opt.tokenNll[w0 * T + i] = losses[i];
      count++;
      correct += hit;
      if (acc) {
        const r = 3 * rangeOf[i % T];
        acc[r] += losses[i];
        acc[r + 1] += hit;
        acc[r + 2]++;
      }
    }
    opt.onProgress?.(w0 + b, windows);
  }
  be.free(losses);
  be.free(yBuf);
  const nll = nllSum / count;
  const r: EvalResult = { ppl: Math.exp(nll), nll, top1: correct / count, tokens: count };
  if (bounds && acc) {
    r.byPosition = [];
    for (let k = 0; k + 1 < bounds.length; k++) {
      const n = acc[3 * k + 2], kn = acc[3 * k] / n;
      r.byPosition.push({ from: bounds[k], to: bounds[k + 1], ppl: Math.exp(kn), nll: kn, top1: acc[3 * k + 1] / n, tokens: n });
    }
  }
  return r;
}

export function argmax(a: Float32Array, off: number, n: number): number {
  let best = 0, bv = a[off];
  for (let j = 1; j < n; j++) if (a[off + j] > bv) { bv = a[off + j]; best = j; }
  return best;
}
