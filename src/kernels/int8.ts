/**
 * The int8 kernel interface: integer linear layers for the compact export's runtime
 * (src/runtime/int8-model.ts). Browser-safe. The plain-TypeScript reference is kernels/ts/int8.ts;
 * a faster implementation (WebAssembly SIMD) implements the same interface and is tested against it.
 *
 * Conventions (all kernels):
 * - A linear weight is (O, I) = (out, in), row-major, as in PyTorch; one float32 scale per output row
 *   (symmetric per-channel quantization: W[o,i] = Wq[o,i] · wScale[o], Wq an integer of `bits` <= 8
 *   bits stored unpacked in an Int8Array; sub-byte packing is a file concern, never a kernel one).
 * - Activations are (N, I) row-major, N = B·T tokens. Quantized activations have one float32 scale per
 *   token row (dynamic per-token max-abs quantization, src/quant quantizeTokens).
 * - Outputs y (N, O) are overwritten, never accumulated into. bias (O) is optional.
 * - Float buffers (y, x, xScale, wScale/scale, bias) come from the float Backend in use (backend.alloc:
 *   with the wasm backend they live in its shared memory); integer buffers (Wq, xq, the index arrays of
 *   the sparse formats) come from this interface's allocI8 / allocI32, so that an implementation with
 *   its own memory (WebAssembly) can reach them. The reference accepts any typed array.
 *
 * Exact semantics of the int8 x int8 products (gemmI8, gemmBlockI8, gemmCsrI8): for each (n, o)
 *   acc   = Σ_i xq[n,i] · Wq[o,i]                 exact, in int32 (any order: integer sums are exact;
 *                                                 |acc| <= 128·128·I < 2^31 for I < 131072)
 *   y[n,o] = f32(f32(f32(acc) · xScale[n]) · wScale[o])  (+ bias[o], then rounded to f32)
 * where f32(·) rounds to float32 (round to nearest even), i.e. convert, multiply, multiply, add,
 * each a float32 operation, in that order. An implementation must be BIT-IDENTICAL to the reference.
 *
 * Semantics of the float-activation variants (W8A32: gemmW8A32, gemmBlockW8A32, gemmCsrW8A32), for
 * students trained without activation quantization:
 *   y[n,o] = f32(f32(Σ_i x[n,i] · Wq[o,i]) · wScale[o])  (+ bias[o])
 * The sum is float arithmetic in any order and precision >= float32 (the reference sums in float64);
 * implementations agree with the reference within 1e-5 · Σ_i |x[n,i] · Wq[o,i]| · wScale[o].
 *
 * Sparse formats (zeros are not stored; every stored value may itself be 0, e.g. inside a block):
 * - BlockI8Matrix ('block'): 1 x k blocks along the input dimension. Row o owns blocks
 *   rowPtr[o] .. rowPtr[o+1]-1; block b starts at input column blockCol[b] (a multiple of k,
 *   blockCol[b] + k <= I, strictly increasing within a row) and holds the k values
 *   values[b·k .. b·k+k-1] for columns blockCol[b] .. blockCol[b]+k-1. rowPtr (O+1) starts at 0 and is
 *   non-decreasing; rowPtr[O] = nBlocks; values has nBlocks·k entries.
 * - CsrI8Matrix ('csr'): compressed sparse rows for unstructured sparsity. Row o owns entries
 *   rowPtr[o] .. rowPtr[o+1]-1; entry e is at column col[e] (0 <= col < I, strictly increasing within
 *   a row) with value values[e]. rowPtr (O+1) starts at 0, non-decreasing, rowPtr[O] = nnz.
 * A sparse kernel computes exactly what the dense kernel computes on the densified matrix (bit-identical
 * for the int8 x int8 variants; within the W8A32 tolerance for the float-activation ones).
 *
 * The storage formats and the per-matrix format choice are the sparse layer's (sparse/storage.ts).
 */
import type { FormatRule, Int8Matrix, BlockI8Matrix, CsrI8Matrix, DenseI8Matrix } from '../sparse/storage.js';
import type { Activation, Backend } from './backend.js';

export type { BlockI8Matrix, CsrI8Matrix, DenseI8Matrix, FormatRule, Int8Format, Int8Matrix, SparseMatrix } from '../sparse/storage.js';

export interface Int8Kernels {
  /** Implementation name, e.g. 'ts' or 'wasm'. */
  readonly name: string;
  /** This implementation's measured format rule (default FORMAT_RULE); the runtime re-packs to it. */
  readonly formatRule?: FormatRule;

  /** A zero-filled Int8Array of n elements that the kernels can read (weights, quantized activations). */
  allocI8(n: number): Int8Array;
  /** A zero-filled Int32Array of n elements (row pointers, column indices). */
  allocI32(n: number): Int32Array;
  /** Gives a buffer from allocI8 / allocI32 back (whole buffers only). */
  free(buf: Int8Array | Int32Array): void;

  /**
   * Dynamic per-token activation quantization, bit-identical to src/quant quantizeTokens:
   * xScale[n] = max_i |x[n,i]| / qmax (1 for an all-zero row), xq[n,i] = clamp(roundHalfEven(x/xScale)).
   * x (N, C) float32, xq (N, C), xScale (N); bits in 2..8.
   */
  quantizeRowsI8(xq: Int8Array, xScale: Float32Array, x: Float32Array, N: number, C: number, bits: number): void;

  /** y (N, O) = (xq (N, I) · Wq (O, I)ᵀ) scaled per token and per row (+ bias): int32 accumulation. */
  gemmI8(y: Float32Array, xq: Int8Array, xScale: Float32Array, Wq: Int8Array, wScale: Float32Array,
    N: number, O: number, I: number, bias?: Float32Array | null): void;
  /** y (N, O) = (x (N, I) · Wq (O, I)ᵀ) · wScale[o] (+ bias): float activations, int8 weights. */
  gemmW8A32(y: Float32Array, x: Float32Array, Wq: Int8Array, wScale: Float32Array,
    N: number, O: number, I: number, bias?: Float32Array | null): void;

  /** gemmI8 over a 1 x k block-sparse weight (W.O outputs, W.I inputs). */
  gemmBlockI8(y: Float32Array, xq: Int8Array, xScale: Float32Array, W: BlockI8Matrix, N: number,
    bias?: Float32Array | null): void;
  /** gemmW8A32 over a 1 x k block-sparse weight. */
  gemmBlockW8A32(y: Float32Array, x: Float32Array, W: BlockI8Matrix, N: number, bias?: Float32Array | null): void;

  /** gemmI8 over a CSR weight. */
  gemmCsrI8(y: Float32Array, xq: Int8Array, xScale: Float32Array, W: CsrI8Matrix, N: number,
    bias?: Float32Array | null): void;
  /** gemmW8A32 over a CSR weight. */
  gemmCsrW8A32(y: Float32Array, x: Float32Array, W: CsrI8Matrix, N: number, bias?: Float32Array | null): void;

  /**
   * Embedding lookup from an int8 table: out[n, c] = f32(Wq[ids[n], c] · wScale[ids[n]]) for out (N, C),
   * Wq (V, C), wScale (V). Bit-identical to gathering rows of the dequantized table (quant dequantizeRows).
   * ids must be in range (the caller checks).
   */
  embedI8(out: Float32Array, ids: Int32Array, Wq: Int8Array, wScale: Float32Array, N: number, C: number): void;

  /**
   * Optional: a fused single-token decoder for this model on this float backend, or null where the
   * implementation cannot run it (then the runtime composes the step from the kernels above). Its
   * logits must be bit-identical to the composed step's on the same backend (test/runtime/decode-*.test.ts).
   */
  decoder?(backend: Backend, model: Int8DecodeModel): Int8Decoder | null;
}

/** A linear layer of the decode model: weight and optional bias (O). */
export interface Int8DecodeLinear { readonly W: Int8Matrix; readonly bias: Float32Array | null }

/** A norm of the decode model: weight (C) and, for layernorm, bias (C). */
export interface Int8DecodeNorm { readonly w: Float32Array; readonly b: Float32Array | null }

export interface Int8DecodeLayer {
  readonly attnNorm: Int8DecodeNorm;
  readonly q: Int8DecodeLinear; readonly k: Int8DecodeLinear; readonly v: Int8DecodeLinear; readonly o: Int8DecodeLinear;
  readonly mlpNorm: Int8DecodeNorm;
  readonly up: Int8DecodeLinear; readonly gate: Int8DecodeLinear | null; readonly down: Int8DecodeLinear;
}

/**
 * What a fused decoder computes (runtime/int8-model.ts resolves it from the export): per token,
 * embedding (+ learned positions) -> layers of [norm -> q,k,v (RoPE) -> attention over the cache -> o
 * -> residual -> norm -> up (gate) -> activation -> down -> residual] -> final norm -> head, with every
 * linear input quantized per token to actBits (0: float activations). Float buffers come from the
 * backend's alloc, integer ones from the kernels' allocI8 / allocI32.
 */
export interface Int8DecodeModel {
  readonly C: number; readonly H: number; readonly KV: number; readonly D: number; readonly F: number; readonly V: number;
  readonly norm: 'layernorm' | 'rmsnorm'; readonly normEps: number; readonly act: Activation; readonly gated: boolean;
  readonly actBits: number;
  /** int8 embedding table (dense, V x C) or a float one (V, C). */
  readonly embed: { readonly int8: DenseI8Matrix } | { readonly float: Float32Array };
  /** Learned position table (maxPos, C), or null. */
  readonly wpe: Float32Array | null;
  /** RoPE tables (maxPos, D/2) each, or null. */
  readonly rope: { readonly cos: Float32Array; readonly sin: Float32Array } | null;
  readonly maxPos: number;
  readonly layers: readonly Int8DecodeLayer[];
  readonly finalNorm: Int8DecodeNorm;
  readonly head: Int8Matrix;
}

/** A fused single-token (B = 1, T = 1) decode step over a KV cache of (KV, Tmax, D) per layer. */
export interface Int8Decoder {
  /**
   * Logits (V) for token id at position P (positions 0..P-1 already in the cache), appending this
   * position's keys and values to cacheK[l] / cacheV[l]. The returned view is overwritten by the next step.
   */
  step(id: number, P: number, cacheK: readonly Float32Array[], cacheV: readonly Float32Array[], Tmax: number): Float32Array;
  /**
   * Positions from `from` on of the cache were written by something else than step() (a prefill, say):
   * a decoder that keeps state about the cache's contents must drop it from there.
   */
  invalidate(from: number): void;
  dispose(): void;
}

/**
 * y = x · Wᵀ (+ bias) for any Int8Matrix: int8 activations (xq, xScale) when given, else float x.
 * The single entry point the runtime uses, so the per-matrix format choice stays in one place.
 */
export function linearI8(k: Int8Kernels, y: Float32Array, W: Int8Matrix, N: number, bias: Float32Array | null,
  act: { xq: Int8Array; xScale: Float32Array } | { x: Float32Array }): void {
  if ('xq' in act) {
    if (W.format === 'dense') k.gemmI8(y, act.xq, act.xScale, W.values, W.scale, N, W.O, W.I, bias);
    else if (W.format === 'block') k.gemmBlockI8(y, act.xq, act.xScale, W, N, bias);
    else k.gemmCsrI8(y, act.xq, act.xScale, W, N, bias);
  } else {
    if (W.format === 'dense') k.gemmW8A32(y, act.x, W.values, W.scale, N, W.O, W.I, bias);
    else if (W.format === 'block') k.gemmBlockW8A32(y, act.x, W, N, bias);
    else k.gemmCsrW8A32(y, act.x, W, N, bias);
  }
}

/** A float backend that brings integer kernels of its own (the wasm engine's share its memory). */
export interface WithInt8Kernels { int8Kernels(): Int8Kernels }

/**
 * Which Int8Kernels the runtime uses with a float backend: the backend's own (WithInt8Kernels), else
 * the plain-TS reference (passed in as `fallback`).
 */
export function int8KernelsFor(backend: Backend, fallback: () => Int8Kernels): Int8Kernels {
  return (backend as Backend & Partial<WithInt8Kernels>).int8Kernels?.() ?? fallback();
}
