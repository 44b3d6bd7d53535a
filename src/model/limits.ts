/**
 * Size limits of a model config, checked before anything is allocated from it: a hostile or corrupt
 * config.json (head_dim 65536, max_position_embeddings 2^30, ...) must fail with a message naming the
 * file and the field, never allocate gigabytes or crash in a typed-array constructor. Three rules:
 *   1. every dimension under a hard cap (far above any model this toolkit is for);
 *   2. what the config says the weights file holds must be in that file before anything is
 *      allocated from it: the float reader checks every tensor's shape and dtype first (io/hf.ts),
 *      the export reader the bytes its quantization block describes (io/export-read.ts), so all
 *      weights-derived memory is bounded by the file's size;
 *   3. memory not backed by the file stays within a budget: RoPE tables at load within
 *      max(64 MiB, 4 x the weights' bytes); the activations and KV cache of one forward (eval, logits,
 *      generate: checked by the command before it runs) within max(1 GiB, 8 x the weights' bytes).
 * Browser-safe.
 */
import { QkdError } from '../tensor/errors.js';
import type { ModelConfig } from './config.js';

type Dim = 'vocabSize' | 'dim' | 'nLayer' | 'nHead' | 'nKVHead' | 'headDim' | 'ffnDim' | 'maxPos';

export const DIM_LIMITS: Readonly<Record<Dim, number>> = {
  vocabSize: 1 << 22, dim: 1 << 16, nLayer: 1024, nHead: 1024, nKVHead: 1024, headDim: 1 << 12, ffnDim: 1 << 18, maxPos: 1 << 22,
};

/** Memory any model may use at load beyond what its weights file backs (RoPE tables). */
export const MEMORY_FLOOR = 64 * 2 ** 20;
/** Memory one forward may use for activations and its KV cache, at least (8 x the weights for big models). */
export const FORWARD_FLOOR = 2 ** 30;

/** The name of each dimension in the config.json of each family (HF spellings; students use ours). */
const FIELD: Record<ModelConfig['family'], Record<Dim, string>> = {
  gpt2: { vocabSize: 'vocab_size', dim: 'n_embd', nLayer: 'n_layer', nHead: 'n_head', nKVHead: 'n_head', headDim: 'n_embd / n_head',
    ffnDim: 'n_inner', maxPos: 'n_positions' },
  llama: { vocabSize: 'vocab_size', dim: 'hidden_size', nLayer: 'num_hidden_layers', nHead: 'num_attention_heads',
    nKVHead: 'num_key_value_heads', headDim: 'head_dim', ffnDim: 'intermediate_size', maxPos: 'max_position_embeddings' },
  student: { vocabSize: 'vocabSize', dim: 'dim', nLayer: 'nLayer', nHead: 'nHead', nKVHead: 'nKVHead', headDim: 'headDim',
    ffnDim: 'ffnDim', maxPos: 'maxPos' },
};

export function fieldName(c: Pick<ModelConfig, 'family'>, d: Dim): string {
  return (FIELD[c.family] ?? FIELD.student)[d];
}

const fmtBytes = (b: number): string =>
  b >= 2 ** 30 ? `${(b / 2 ** 30).toFixed(1)} GiB` : b >= 2 ** 20 ? `${(b / 2 ** 20).toFixed(1)} MiB` : `${Math.round(b)} bytes`;

export function memoryBudget(weightBytes: number): number {
  return Math.max(MEMORY_FLOOR, 4 * weightBytes);
}

export function forwardBudget(weightBytes: number): number {
  return Math.max(FORWARD_FLOOR, 8 * weightBytes);
}

/** Rule 1: each dimension under its hard cap. */
export function checkDimLimits(c: ModelConfig, file: string): void {
  for (const [d, lim] of Object.entries(DIM_LIMITS) as [Dim, number][]) {
    if (c[d] > lim) {
      throw new QkdError('E_UNSUPPORTED', `${file}: field "${fieldName(c, d)}" = ${c[d]} exceeds qkd's limit of ${lim}`);
    }
  }
}

/** Rule 3 at load: RoPE tables (maxPos x headDim floats) within the budget. */
export function checkLoadMemory(c: ModelConfig, file: string, weightBytes: number): void {
  const rope = c.pos === 'rope' ? 4 * c.maxPos * c.headDim : 0, budget = memoryBudget(weightBytes);
  if (rope > budget) {
    throw new QkdError('E_UNSUPPORTED', `${file}: fields "${fieldName(c, 'maxPos')}" ${c.maxPos} x "${fieldName(c, 'headDim')}" ` +
      `${c.headDim} need ${fmtBytes(rope)} of RoPE tables, over the memory budget of ${fmtBytes(budget)} for this model`);
  }
}

/** The load-time rules of a config whose weights file has `weightBytes` bytes: caps, RoPE tables. */
export function checkModelLimits(c: ModelConfig, file: string, weightBytes: number): void {
  checkDimLimits(c, file);
  checkLoadMemory(c, file, weightBytes);
}

/** Bytes of activations (+ KV cache) one forward of B x T tokens allocates (float Transformer layout). */
export function forwardBytes(c: ModelConfig, B: number, T: number, cacheT = 0): number {
  const N = B * T, C = c.dim, D = c.headDim, F = c.ffnDim, Tk = Math.max(T, cacheT);
  const perLayer = N * (6 * C + 4 + c.nHead * D * 3 + c.nKVHead * D * 2 + F * (c.gated ? 3 : 2)) + B * c.nHead * T * Tk;
  const kv = cacheT > 0 ? 2 * c.nLayer * B * c.nKVHead * cacheT * D : 0;
  return 4 * (c.nLayer * perLayer + N * (2 * C + 2 + c.vocabSize) + N * Math.max(c.nHead, c.nKVHead) * D + kv);
}

/** Rule 3 at run time: a forward of B x T tokens (with a KV cache of cacheT positions) within the budget. */
export function checkForwardMemory(c: ModelConfig, where: string, B: number, T: number, weightBytes: number, cacheT = 0): void {
  const need = forwardBytes(c, B, T, cacheT), budget = forwardBudget(weightBytes);
  if (need > budget) {
    throw new QkdError('E_CONFIG', `${where}: a forward of ${B} x ${T} tokens needs ${fmtBytes(need)} of activations for this ` +
      `model (${fieldName(c, 'nLayer')} ${c.nLayer}, ${fieldName(c, 'nHead')} ${c.nHead}, ${fieldName(c, 'ffnDim')} ${c.ffnDim}, ` +
      `${fieldName(c, 'vocabSize')} ${c.vocabSize}), over the memory budget of ${fmtBytes(budget)}; use a smaller --batch or --context`);
  }
}
