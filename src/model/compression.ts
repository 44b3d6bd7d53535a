/**
 * The compression spec: the one place that says which tensors of a model are compressed and how.
 * Distillation (src/model/student.ts), `qkd inspect` (eval/compression.ts), the export
 * (io/export.ts) and its reader (io/export-read.ts) all ask it.
 *
 * - Pruned (SparseMatrix): every attention and feed-forward matrix (q, k, v, o, gate, up, down), to
 *   `sparsity.target` at the trained granularity.
 * - Quantized (QuantizedTensor): those matrices at `bits`, the embedding and an untied head at
 *   `embedBits` (0 = float), each with one scale per output row; activations per token at `actBits`.
 * - Learned (LSQ) or max-abs row scales are saved beside a student in SCALES_FILE, keyed scaleKey(name).
 */
import type { Granularity } from '../sparse/mask.js';
import type { ModelConfig } from './config.js';

export type { Granularity };

/** The linear layers (integer kernels at run time, pruned in training). */
export const LINEAR_RE = /^layers\.\d+\.(q|k|v|o|gate|up|down)\.weight$/;
/** The embedding and an untied head. */
export const EMBED_RE = /^(embed|lm_head)\.weight$/;
/** The per-row scales file saved beside a distilled model. */
export const SCALES_FILE = 'quant_scales.safetensors';
export const SCALES_FORMAT = 'qkd-quant-scales';

export interface QuantSpec {
  /** Bits of the linear layers. */
  bits: number;
  /** Bits of the embedding / untied head (0 = float). */
  embedBits: number;
  /** Per-token activation bits of every linear input (0 = float activations). */
  actBits: number;
  scheme: 'maxabs' | 'lsq';
}

export interface SparsitySpec {
  target: number;
  granularity: 'unstructured' | 'block' | 'nm';
  block: number;
  n: number;
  m: number;
  scope: 'per-matrix' | 'global';
}

/** What a model's weights are (or are being trained to be). */
export interface CompressionSpec {
  quant: QuantSpec | null;
  sparsity: SparsitySpec | null;
}

/** The spec of a recipe's quant / sparsity settings (their training-only fields dropped). */
export function compressionSpec(q: QuantSpec | null, s: SparsitySpec | null): CompressionSpec {
  return {
    quant: q ? { bits: q.bits, embedBits: q.embedBits, actBits: q.actBits, scheme: q.scheme } : null,
    sparsity: s ? { target: s.target, granularity: s.granularity, block: s.block, n: s.n, m: s.m, scope: s.scope } : null,
  };
}

/** The spec a model config records (config.json's quant / sparsity fields). */
export function specOf(c: Pick<ModelConfig, 'quant' | 'sparsity'>): CompressionSpec {
  return { quant: c.quant, sparsity: c.sparsity ? { ...c.sparsity } : null };
}

/** Whether a parameter is one of the pruned (and integer-kernel) linear layers. */
export function isLinear(name: string): boolean { return LINEAR_RE.test(name); }

/** Whether pruning applies to this parameter. */
export function isPruned(spec: CompressionSpec, name: string): boolean {
  return spec.sparsity !== null && LINEAR_RE.test(name);
}

/** Storage bits of a parameter: the linear layers at bits, the embedding/head at embedBits, others 0 (float). */
export function weightBits(spec: CompressionSpec, name: string): number {
  const q = spec.quant;
  if (!q) return 0;
  return LINEAR_RE.test(name) ? q.bits : EMBED_RE.test(name) ? q.embedBits : 0;
}

/** Key of a matrix's row scales in SCALES_FILE. */
export function scaleKey(name: string): string { return `${name}_scale`; }

/** The pruning granularity of a spec (unstructured when none is set). */
export function granularityOf(s: SparsitySpec | null): Granularity {
  if (!s) return { kind: 'unstructured' };
  if (s.granularity === 'block') return { kind: 'block', k: s.block };
  if (s.granularity === 'nm') return { kind: 'nm', n: s.n, m: s.m };
  return { kind: 'unstructured' };
}

/** The block width a sparse export groups by: the trained block, else 16. */
export function exportBlock(spec: CompressionSpec): number {
  return spec.sparsity?.granularity === 'block' ? spec.sparsity.block : 16;
}
