/**
 * The transformer's typed config: one schema for the GPT-2 family, the Llama family and the
 * reference student of DESIGN.md. Validated once (zod), then frozen.
 */
import { z } from 'zod';
import { QkdError } from '../tensor/errors.js';

export const ModelConfigSchema = z.object({
  /** Family the architecture follows; decides the Hugging Face layout used for import/export. */
  family: z.enum(['llama', 'gpt2', 'student']),
  vocabSize: z.number().int().positive(),
  /** Hidden width C. */
  dim: z.number().int().positive(),
  nLayer: z.number().int().positive(),
  nHead: z.number().int().positive(),
  /** Key/value heads (grouped-query attention); equals nHead for plain multi-head attention. */
  nKVHead: z.number().int().positive(),
  /** Per-head width; usually dim / nHead. */
  headDim: z.number().int().positive(),
  /** Feed-forward inner width. */
  ffnDim: z.number().int().positive(),
  /** Longest sequence (learned positions table size; RoPE tables are built to this length). */
  maxPos: z.number().int().positive(),
  norm: z.enum(['layernorm', 'rmsnorm']),
  normEps: z.number().positive(),
  pos: z.enum(['learned', 'rope']),
  ropeTheta: z.number().positive().default(10000),
  act: z.enum(['relu', 'gelu', 'gelu_tanh', 'silu']),
  /** Gated feed-forward: down(act(gate(x)) * up(x)) (SwiGLU when act is silu). */
  gated: z.boolean(),
  /** Biases on the attention and feed-forward projections (GPT-2: true, Llama: false). */
  bias: z.boolean(),
  tieEmbeddings: z.boolean(),
  /** Sparse attention: keep only the top-k scores per query before the softmax (0 = dense). */
  attnTopK: z.number().int().min(0).default(0),
  /**
   * Quantization the weights were trained for (set by qkd distill). The saved weights are already on
   * their grid; actBits > 0 makes every forward quantize each linear layer's input per token, exactly
   * as the int8 runtime does.
   */
  quant: z.object({
    bits: z.number().int().min(2).max(8),
    /** 0: the embedding / head stay float. */
    embedBits: z.union([z.literal(0), z.number().int().min(2).max(8)]),
    actBits: z.union([z.literal(0), z.number().int().min(2).max(8)]),
    scheme: z.enum(['maxabs', 'lsq']),
  }).strict().nullable().default(null),
  /** Pruning the weights were trained with (informational; zeros are in the weights). */
  sparsity: z.object({
    target: z.number().min(0).lt(1),
    granularity: z.enum(['unstructured', 'block', 'nm']),
    block: z.number().int().positive().default(1),
    n: z.number().int().positive().default(2),
    m: z.number().int().positive().default(4),
    scope: z.enum(['per-matrix', 'global']).default('per-matrix'),
  }).strict().nullable().default(null),
  bosTokenId: z.number().int().nonnegative().nullable().default(null),
  eosTokenId: z.number().int().nonnegative().nullable().default(null),
}).strict();

export type ModelConfigInput = z.input<typeof ModelConfigSchema>;
export type ModelConfig = Readonly<z.output<typeof ModelConfigSchema>>;

/** Validates, checks cross-field constraints, and freezes. `where` names the source in errors. */
export function makeModelConfig(input: unknown, where = 'model config'): ModelConfig {
  const r = ModelConfigSchema.safeParse(input);
  if (!r.success) {
    const msg = r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new QkdError('E_CONFIG', `${where}: ${msg}`);
  }
  const c = r.data;
  const bad = (field: string, why: string) => { throw new QkdError('E_CONFIG', `${where}: ${field}: ${why}`); };
  if (c.nHead % c.nKVHead !== 0) bad('nKVHead', `${c.nKVHead} does not divide nHead ${c.nHead}`);
  if (c.pos === 'rope' && c.headDim % 2 !== 0) bad('headDim', `RoPE needs an even head width, got ${c.headDim}`);
  for (const id of ['bosTokenId', 'eosTokenId'] as const) {
    const v = c[id];
    if (v !== null && v >= c.vocabSize) bad(id, `${v} is outside the vocabulary of ${c.vocabSize}`);
  }
  return Object.freeze(c);
}

/** The reference student of DESIGN.md: LayerNorm, learned positions, ReLU 4x FFN, biases, tied head. */
export function studentConfig(o: { vocabSize: number; dim: number; nLayer: number; nHead: number; maxPos: number }): ModelConfig {
  return makeModelConfig({
    family: 'student', vocabSize: o.vocabSize, dim: o.dim, nLayer: o.nLayer, nHead: o.nHead, nKVHead: o.nHead,
    headDim: o.dim / o.nHead, ffnDim: 4 * o.dim, maxPos: o.maxPos, norm: 'layernorm', normEps: 1e-5,
    pos: 'learned', act: 'relu', gated: false, bias: true, tieEmbeddings: true,
  }, 'student config');
}

/** Parameter count of a config (what the param store allocates). */
export function paramCount(c: ModelConfig): number {
  return paramLayout(c).reduce((s, p) => s + p.size, 0);
}

export interface ParamSpec {
  /** Internal name, e.g. `layers.0.q.weight`. */
  name: string;
  /** Shape; Linear weights are (out, in) as in PyTorch. */
  shape: number[];
  size: number;
  /** AdamW weight decay applies (matrices and embeddings, not norms or biases). */
  decay: boolean;
}

/**
 * The parameters of a config in store order: decayed tensors first, then the rest, so that
 * AdamW runs as two contiguous calls. Names are the engine's own; io/ maps them to Hugging Face names.
 */
export function paramLayout(c: ModelConfig): ParamSpec[] {
  const out: ParamSpec[] = [];
  const add = (name: string, shape: number[], decay: boolean) =>
    out.push({ name, shape, size: shape.reduce((a, b) => a * b, 1), decay });
  const C = c.dim, qDim = c.nHead * c.headDim, kvDim = c.nKVHead * c.headDim;
  const norm = (name: string) => {
    add(`${name}.weight`, [C], false);
    if (c.norm === 'layernorm') add(`${name}.bias`, [C], false);
  };
  const linear = (name: string, outDim: number, inDim: number) => {
    add(`${name}.weight`, [outDim, inDim], true);
    if (c.bias) add(`${name}.bias`, [outDim], false);
  };
  add('embed.weight', [c.vocabSize, C], true);
  if (c.pos === 'learned') add('pos_embed.weight', [c.maxPos, C], true);
  for (let l = 0; l < c.nLayer; l++) {
    const p = `layers.${l}`;
    norm(`${p}.attn_norm`);
    linear(`${p}.q`, qDim, C);
    linear(`${p}.k`, kvDim, C);
    linear(`${p}.v`, kvDim, C);
    linear(`${p}.o`, C, qDim);
    norm(`${p}.mlp_norm`);
    if (c.gated) linear(`${p}.gate`, c.ffnDim, C);
    linear(`${p}.up`, c.ffnDim, C);
    linear(`${p}.down`, C, c.ffnDim);
  }
  norm('final_norm');
  if (!c.tieEmbeddings) add('lm_head.weight', [c.vocabSize, C], true);
  return [...out.filter((p) => p.decay), ...out.filter((p) => !p.decay)];
}
