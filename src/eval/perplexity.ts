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
}

export interface EvalOptions {
  context?: number;
  /** Windows per forward pass. */
  batch?: number;
  /** Called after each batch with (windows done, windows total). */
  onProgress?: (done: number, total: number) => void;
}

export function evaluate(model: CausalLM, ids: ArrayLike<number>, opt: EvalOptions = {}): EvalResult {
  const T = opt.context ?? 256, V = model.config.vocabSize;
  if (T < 2) throw new QkdError('E_CONFIG', `context must be at least 2, got ${T}`);
  if (T > model.config.maxPos) {
    throw new QkdError('E_CONFIG', `context ${T} exceeds the model's ${model.config.maxPos} positions`);
  }
  const windows = Math.floor(ids.length / T);
  if (windows === 0) throw new QkdError('E_INPUT', `text has ${ids.length} tokens, fewer than one window of ${T}`);
  const B = Math.max(1, Math.min(opt.batch ?? 8, windows));
  let nllSum = 0, correct = 0, count = 0;
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
      nllSum += losses[i];
      count++;
      if (argmax(logits, i * V, V) === y[i]) correct++;
    }
    opt.onProgress?.(w0 + b, windows);
  }
  be.free(losses);
  be.free(yBuf);
  const nll = nllSum / count;
  return { ppl: Math.exp(nll), nll, top1: correct / count, tokens: count };
}

export function argmax(a: Float32Array, off: number, n: number): number {
  let best = 0, bv = a[off];
  for (let j = 1; j < n; j++) if (a[off + j] > bv) { bv = a[off + j]; best = j; }
  return best;
}
