/**
 * SparseMatrix(M, s) in storage: a quantized weight (O, I) = (out, in) as int8 codes with one float32
 * scale per output row, dense, in 1 x k blocks along the input dimension, or CSR (invariants in
 * kernels/int8.ts, whose kernels compute on these), the conversions between them, and the measured
 * rule that picks a format per matrix. Browser-safe.
 */

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

/** The sparse formats. */
export type SparseMatrix = BlockI8Matrix | CsrI8Matrix;

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

/** Where integer arrays are allocated (an Int8Kernels, whose memory its kernels can reach). */
export interface Alloc { allocI8(n: number): Int8Array; allocI32(n: number): Int32Array }
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
