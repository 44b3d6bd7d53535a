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
 * Choosing a format per matrix: see chooseFormat below (the rule and the measurements behind it).
 */
import type { Activation, Backend } from './backend.js';

/** Dense int8 weight: values (O, I) row-major. */
export interface DenseI8Matrix {
  readonly format: 'dense';
  readonly O: number;
  readonly I: number;
  /** (O, I) */
  readonly values: Int8Array;
  /** (O) per-output-row scale, positive and finite. */
  readonly scale: Float32Array;
}

/** 1 x k block-sparse int8 weight (see the file comment for the invariants). */
export interface BlockI8Matrix {
  readonly format: 'block';
  readonly O: number;
  readonly I: number;
  /** Block width along the input dimension; divides I. */
  readonly k: number;
  /** (O+1) block ranges per row. */
  readonly rowPtr: Int32Array;
  /** (nBlocks) first input column of each block, a multiple of k. */
  readonly blockCol: Int32Array;
  /** (nBlocks, k) */
  readonly values: Int8Array;
  /** (O) */
  readonly scale: Float32Array;
}

/** CSR int8 weight for unstructured sparsity (see the file comment for the invariants). */
export interface CsrI8Matrix {
  readonly format: 'csr';
  readonly O: number;
  readonly I: number;
  /** (O+1) entry ranges per row. */
  readonly rowPtr: Int32Array;
  /** (nnz) input column of each entry. */
  readonly col: Int32Array;
  /** (nnz) */
  readonly values: Int8Array;
  /** (O) */
  readonly scale: Float32Array;
}

export type Int8Matrix = DenseI8Matrix | BlockI8Matrix | CsrI8Matrix;
export type Int8Format = Int8Matrix['format'];

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

/** What chooseFormat looks at: the matrix shape and how its nonzeros fall into 1 x k blocks. */
export interface SparsityStats {
  O: number;
  I: number;
  /** Nonzero weights. */
  nnz: number;
  /** Block width the blocks below are counted at (0: none considered). */
  k: number;
  /** Blocks (1 x k, aligned to multiples of k along the input dim) holding at least one nonzero. */
  nonEmptyBlocks: number;
}

/** Thresholds of the per-matrix format rule. */
export interface FormatRule {
  /** Use the 1 x k block format when at most this fraction of the aligned k-blocks holds a nonzero. */
  readonly maxBlockFill: number;
  /** Otherwise use CSR when at most this fraction of the weights is nonzero. */
  readonly maxCsrDensity: number;
}

/**
 * The default rule, measured with the plain-TS kernels on the anchor student's shapes
 * (384x128, 128x384, 128x128, 2048x128; batch 1 and 16; docs/export-format.md "Choosing a format"):
 * CSR and 1 x k blocks run at about the same speed per stored value and beat dense below ~50%
 * density (2x at 30%, 4-6x at 10%). The block limit 0.5 is that break-even; the CSR limit 0.3 also
 * keeps CSR smaller on disk than dense (3 bytes per nonzero vs 1 byte per weight). A SIMD
 * implementation whose dense kernel is much faster than its scalar CSR kernel sets its own rule
 * (Int8Kernels.formatRule), and the runtime re-packs matrices at load to follow it.
 */
export const FORMAT_RULE: FormatRule = Object.freeze({ maxBlockFill: 0.5, maxCsrDensity: 0.3 });

/** dense when sparsity is low or blocks are mostly non-empty, block or CSR otherwise (see FORMAT_RULE). */
export function chooseFormat(s: SparsityStats, rule: FormatRule = FORMAT_RULE): Int8Format {
  const cells = s.O * s.I;
  if (cells === 0) return 'dense';
  if (s.k > 1 && s.I % s.k === 0 && s.nonEmptyBlocks / (cells / s.k) <= rule.maxBlockFill) return 'block';
  if (s.nnz / cells <= rule.maxCsrDensity) return 'csr';
  return 'dense';
}

/** Counts nonzeros and non-empty aligned 1 x k blocks of a dense int8 matrix (O, I). k = 0: blocks not counted. */
export function sparsityStats(values: Int8Array, O: number, I: number, k: number): SparsityStats {
  let nnz = 0, nonEmptyBlocks = 0;
  const useK = k > 1 && I % k === 0 ? k : 0;
  for (let o = 0; o < O; o++) {
    for (let c0 = 0; c0 < I; c0 += useK || I) {
      const end = useK ? c0 + useK : I;
      let any = 0;
      for (let i = o * I + c0; i < o * I + end; i++) if (values[i] !== 0) { nnz++; any = 1; }
      nonEmptyBlocks += any;
    }
  }
  return { O, I, nnz, k: useK, nonEmptyBlocks: useK ? nonEmptyBlocks : 0 };
}

type Alloc = Pick<Int8Kernels, 'allocI8' | 'allocI32'>;
const plain: Alloc = { allocI8: (n) => new Int8Array(n), allocI32: (n) => new Int32Array(n) };

/** The dense matrix (O, I) as 1 x k blocks, keeping every aligned block with a nonzero. k must divide I. */
export function denseToBlock(values: Int8Array, scale: Float32Array, O: number, I: number, k: number,
  alloc: Alloc = plain): BlockI8Matrix {
  const rowPtr = alloc.allocI32(O + 1), cols: number[] = [];
  for (let o = 0; o < O; o++) {
    for (let c0 = 0; c0 < I; c0 += k) {
      for (let j = 0; j < k; j++) if (values[o * I + c0 + j] !== 0) { cols.push(c0); break; }
    }
    rowPtr[o + 1] = cols.length;
  }
  const blockCol = alloc.allocI32(cols.length), v = alloc.allocI8(cols.length * k);
  let r = 0;
  for (let b = 0; b < cols.length; b++) {
    while (rowPtr[r + 1] <= b) r++;
    blockCol[b] = cols[b];
    v.set(values.subarray(r * I + cols[b], r * I + cols[b] + k), b * k);
  }
  return { format: 'block', O, I, k, rowPtr, blockCol, values: v, scale };
}

/** The dense matrix (O, I) in CSR form (nonzeros only). */
export function denseToCsr(values: Int8Array, scale: Float32Array, O: number, I: number, alloc: Alloc = plain): CsrI8Matrix {
  let nnz = 0;
  for (let i = 0; i < O * I; i++) if (values[i] !== 0) nnz++;
  const rowPtr = alloc.allocI32(O + 1), col = alloc.allocI32(nnz), v = alloc.allocI8(nnz);
  let e = 0;
  for (let o = 0; o < O; o++) {
    for (let i = 0; i < I; i++) {
      const q = values[o * I + i];
      if (q !== 0) { col[e] = i; v[e] = q; e++; }
    }
    rowPtr[o + 1] = e;
  }
  return { format: 'csr', O, I, rowPtr, col, values: v, scale };
}

/** Any Int8Matrix back to its dense (O, I) int8 values. */
export function toDenseValues(W: Int8Matrix): Int8Array {
  if (W.format === 'dense') return W.values.slice();
  const out = new Int8Array(W.O * W.I);
  for (let o = 0; o < W.O; o++) {
    for (let e = W.rowPtr[o]; e < W.rowPtr[o + 1]; e++) {
      if (W.format === 'csr') out[o * W.I + W.col[e]] = W.values[e];
      else out.set(W.values.subarray(e * W.k, (e + 1) * W.k), o * W.I + W.blockCol[e]);
    }
  }
  return out;
}

/**
 * Which Int8Kernels the runtime uses with a float backend: an implementation registers a factory for
 * the backend it pairs with (e.g. the wasm int8 kernels for the 'wasm' backend, sharing its memory);
 * without one the runtime falls back to the plain-TS reference (passed in as `fallback`).
 */
const factories = new Map<string, (backend: Backend) => Int8Kernels>();

export function registerInt8Kernels(backendName: string, factory: (backend: Backend) => Int8Kernels): void {
  factories.set(backendName, factory);
}

export function int8KernelsFor(backend: Backend, fallback: () => Int8Kernels): Int8Kernels {
  return factories.get(backend.name)?.(backend) ?? fallback();
}
