/**
 * A distillation run's first step rebuilt in the test process, to check what `qkd distill` logs by value:
 * the student as the run initialises it (its preset + overrides, seeded with seed + 1), the first batch of
 * its window sampler, and the loss terms written out by hand in float64 (CE, entropy at τ = 1, KL in both
 * directions at τ), independent of src/distill/loss.ts.
 */
import { WindowSampler, loadTokenData } from '../../src/data/dataset.js';
import { loadTokenizer } from '../../src/data/tokenizer-node.js';
import type { DistillConfig } from '../../src/distill/config.js';
import type { Backend } from '../../src/kernels/backend.js';
import { initParams } from '../../src/model/init.js';
import { Transformer } from '../../src/model/transformer.js';
import { resolveModel } from '../../src/train/config.js';

/** The float student a recipe starts from (no quantization or masks: the step-1 forward of a float recipe). */
export function initialStudent(cfg: DistillConfig, be: Backend, vocabSize: number): Transformer {
  const mc = resolveModel(cfg.student, vocabSize, 'replica student');
  const model = new Transformer(be, { ...mc, attnTopK: cfg.attnTopK });
  initParams(model.params, cfg.seed + 1);
  return model;
}

/** The recipe's token data (QKD_CACHE_DIR must point at the run's cache) and the first (micro)batch its sampler draws. */
export function firstBatch(cfg: DistillConfig): { x: Int32Array; y: Int32Array; valid: Int32Array; trainTokens: number } {
  const data = loadTokenData(cfg.data, loadTokenizer(cfg.teacher));
  const { x, y } = new WindowSampler(data.train, cfg.microBatch, cfg.context, cfg.seed).next();
  return { x, y, valid: data.valid, trainTokens: data.train.length };
}

export interface LossTerms { ce: number; entropy: number; klForward: number; klReverse: number }

function logSoftmax(z: ArrayLike<number>, off: number, V: number, tau: number): Float64Array {
  let m = -Infinity;
  for (let j = 0; j < V; j++) m = Math.max(m, z[off + j] / tau);
  let s = 0;
  for (let j = 0; j < V; j++) s += Math.exp(z[off + j] / tau - m);
  const lse = m + Math.log(s), out = new Float64Array(V);
  for (let j = 0; j < V; j++) out[j] = z[off + j] / tau - lse;
  return out;
}

/** Means over the rows of student logits s and teacher logits t (N, V) with targets y: the terms the loss combines. */
export function lossTerms(s: Float32Array, t: Float32Array | null, y: Int32Array, V: number, tau: number): LossTerms {
  const N = y.length;
  let ce = 0, entropy = 0, klForward = 0, klReverse = 0;
  for (let r = 0; r < N; r++) {
    const lp = logSoftmax(s, r * V, V, 1);
    ce -= lp[y[r]];
    for (let j = 0; j < V; j++) entropy -= Math.exp(lp[j]) * lp[j];
    if (!t) continue;
    const lq = logSoftmax(s, r * V, V, tau), lt = logSoftmax(t, r * V, V, tau);
    for (let j = 0; j < V; j++) {
      klForward += Math.exp(lt[j]) * (lt[j] - lq[j]);
      klReverse += Math.exp(lq[j]) * (lq[j] - lt[j]);
    }
  }
  return { ce: ce / N, entropy: entropy / N, klForward: klForward / N, klReverse: klReverse / N };
}
