/**
 * Symmetric b-bit quantization primitives, shared by quantization-aware training (fake quantization)
 * and the int8 runtime (DESIGN rule 3: one quantizer). Browser-safe: no Node imports.
 *
 * QuantizedTensor(T, b, s) = clamp(roundHalfEven(T / s), qmin, qmax) · s with qmin = -2^(b-1),
 * qmax = 2^(b-1) - 1.
 *
 * Float32 exactness (why Math.fround appears below): every quotient x/s and product q·s is rounded to
 * float32 exactly as PyTorch computes it on float32 tensors. JS evaluates in float64 first; for a
 * quotient of two float32 values that double rounding is harmless (53 >= 2·24 + 2 bits) and q·s with
 * |q| <= 128 is exact in float64, so fround gives the correctly rounded float32 result. Hence
 * `dequantizeRows(quantizeRows(w))` equals `fakeQuantRows(w)` bit for bit, and the runtime's int8 values
 * times their scales reproduce the trained fake-quant weights exactly. A zero is returned as +0
 * (PyTorch can give -0) so the two paths agree on the bit pattern too.
 *
 * Layouts: weights are (rows, cols) row-major with one scale per row (per output channel of a
 * (out, in) linear weight); activations are (N, C) with one scale per token (row).
 */
import { QkdError } from '../tensor/errors.js';

export interface QRange { readonly qmin: number; readonly qmax: number }

/** Signed symmetric range of a b-bit integer, b in 2..8 (wider values would not fit an Int8Array). */
export function qRange(bits: number): QRange {
  if (!Number.isInteger(bits) || bits < 2 || bits > 8) {
    throw new QkdError('E_CONFIG', `quant/quantize.ts: bits must be an integer in 2..8, got ${bits}`);
  }
  return { qmin: -(2 ** (bits - 1)), qmax: 2 ** (bits - 1) - 1 };
}

/**
 * 1.5·2^52: for |x| < 2^51, (x + RNE) - RNE is x rounded to an integer, ties to even, because float64
 * addition rounds to nearest-even and the sum has no fractional bits left. Far faster than a branchy
 * Math.round fix-up on the fake-quant hot path.
 */
const RNE = 6755399441055744;

/** Round to nearest, ties to even (torch.round). Keeps the sign of zero like torch (-0.4 -> -0). */
export function roundHalfEven(x: number): number {
  if (!(Math.abs(x) < 2 ** 51)) return x; // already an integer (or NaN/Inf)
  const r = (x + RNE) - RNE;
  return r === 0 && (x < 0 || Object.is(x, -0)) ? -0 : r;
}

/** float32(1e-8): the floor PyTorch's `amax(...).clamp_min(1e-8)` applies to a row's max |w|. */
export const MAX_ABS_FLOOR = Math.fround(1e-8);

/**
 * clamp(roundHalfEven(fround(x / s)), qmin, qmax). Clamping before rounding gives the same integer
 * (the bounds are integers) and keeps the RNE trick in its valid range; a zero comes out as +0.
 */
function quantizeValue(x: number, s: number, qmin: number, qmax: number): number {
  const v = Math.fround(x / s);
  const c = v < qmin ? qmin : v > qmax ? qmax : v;
  return (c + RNE) - RNE;
}

function checkLen(name: string, a: { length: number }, n: number): void {
  if (a.length < n) {
    throw new QkdError('E_SHAPE', `quant/quantize.ts: ${name} has ${a.length} elements, needs ${n}`);
  }
}

/** scales[r], which must be a positive finite number (a learned scale can be driven to 0 or below). */
export function rowScale(scales: Float32Array, r: number): number {
  const s = scales[r];
  if (!(s > 0 && s < Infinity)) {
    throw new QkdError('E_INPUT', `quant/quantize.ts: scale of row ${r} must be positive and finite, got ${s}`);
  }
  return s;
}

/** Largest |x| over x[off, off + n). */
function maxAbs(x: Float32Array, off: number, n: number): number {
  let m = 0;
  for (let i = off; i < off + n; i++) {
    const a = Math.abs(x[i]);
    if (a > m) m = a;
  }
  return m;
}

// ---------------------------------------------------------------------------------------------
// Per-output-channel (per-row) weight quantization

/**
 * scales (rows) = max(max|w_row|, float32(1e-8)) / qmax in float32, as the PyTorch anchor computes them:
 * an all-zero row gets the tiny scale 1e-8/qmax and quantizes to zeros.
 */
export function rowScalesMaxAbs(scales: Float32Array, w: Float32Array, rows: number, cols: number,
  bits: number): void {
  const { qmax } = qRange(bits);
  checkLen('w', w, rows * cols); checkLen('scales', scales, rows);
  for (let r = 0; r < rows; r++) {
    scales[r] = Math.fround(Math.max(maxAbs(w, r * cols, cols), MAX_ABS_FLOOR) / qmax);
  }
}

/** q (rows, cols) = clamp(roundHalfEven(w / s_row), qmin, qmax). Every b <= 8 value fits an Int8Array. */
export function quantizeRows(q: Int8Array, w: Float32Array, scales: Float32Array, rows: number,
  cols: number, bits: number): void {
  const { qmin, qmax } = qRange(bits);
  checkLen('w', w, rows * cols); checkLen('q', q, rows * cols); checkLen('scales', scales, rows);
  for (let r = 0; r < rows; r++) {
    const s = rowScale(scales, r), off = r * cols;
    for (let i = off; i < off + cols; i++) q[i] = quantizeValue(w[i], s, qmin, qmax);
  }
}

/**
 * QuantizedTensor(T, b, s) of the method: a (rows, cols) matrix as b-bit integer codes with one scale
 * per row; its value is values[r, c] · scale[r] (float32). The export stores these, and the student's
 * fake-quantized weights equal their dequantized values bit for bit.
 */
export interface QuantizedTensor {
  readonly rows: number;
  readonly cols: number;
  readonly bits: number;
  /** (rows, cols) codes in [qmin, qmax]. */
  readonly values: Int8Array;
  /** (rows) positive finite scales. */
  readonly scale: Float32Array;
}

/** Quantizes w (rows, cols) at `bits` with the given row scales, or max-abs ones when none are given. */
export function quantizeTensor(w: Float32Array, rows: number, cols: number, bits: number, scale?: Float32Array): QuantizedTensor {
  const s = scale ?? new Float32Array(rows);
  if (!scale) rowScalesMaxAbs(s, w, rows, cols, bits);
  const values = new Int8Array(rows * cols);
  quantizeRows(values, w, s, rows, cols, bits);
  return { rows, cols, bits, values, scale: s };
}

/**
 * The grid check: the first index where w differs from its own quantize -> dequantize round trip with
 * these row scales (w is not a QuantizedTensor's value there), and how many such entries there are.
 * `first` is -1 when every entry lies on the grid.
 */
export function offGrid(w: Float32Array, scales: Float32Array, rows: number, cols: number, bits: number): { count: number; first: number } {
  const q = quantizeTensor(w, rows, cols, bits, scales), back = new Float32Array(rows * cols);
  dequantizeRows(back, q.values, scales, rows, cols);
  let count = 0, first = -1;
  for (let i = 0; i < rows * cols; i++) {
    if (back[i] !== w[i]) { if (first < 0) first = i; count++; }
  }
  return { count, first };
}

/** out (rows, cols) = float32(q · s_row). */
export function dequantizeRows(out: Float32Array, q: Int8Array, scales: Float32Array, rows: number,
  cols: number): void {
  checkLen('q', q, rows * cols); checkLen('out', out, rows * cols); checkLen('scales', scales, rows);
  for (let r = 0; r < rows; r++) {
    const s = scales[r], off = r * cols;
    for (let i = off; i < off + cols; i++) out[i] = q[i] * s;
  }
}

/**
 * out (rows, cols) = dequantize(quantize(w)) with the given per-row scales (max-abs or learned),
 * bit-identical to quantizeRows + dequantizeRows. out may alias w.
 */
export function fakeQuantRows(out: Float32Array, w: Float32Array, scales: Float32Array, rows: number,
  cols: number, bits: number): void {
  const { qmin, qmax } = qRange(bits);
  checkLen('w', w, rows * cols); checkLen('out', out, rows * cols); checkLen('scales', scales, rows);
  for (let r = 0; r < rows; r++) {
    const s = rowScale(scales, r), off = r * cols;
    for (let i = off; i < off + cols; i++) out[i] = quantizeValue(w[i], s, qmin, qmax) * s;
  }
}

// ---------------------------------------------------------------------------------------------
// Dynamic per-token activation quantization (the int8 runtime's input quantization)

/** Scale of one token row: max|x|/qmax, or 1 for a row that is all zeros (or whose scale underflows to 0). */
function tokenScale(x: Float32Array, off: number, C: number, qmax: number): number {
  const s = Math.fround(maxAbs(x, off, C) / qmax);
  return s > 0 ? s : 1;
}

/**
 * out (N, C) = per-token fake quantization of x (N, C) with dynamic max-abs scales; out may alias x
 * (each row's scale is taken before the row is written). When `scales` (N) is given it receives the
 * scales used. Backward is the identity (straight-through estimator): the scales are a detached
 * function of x and max-abs scales never clip, so dX = dOut and no backward function is needed.
 */
export function fakeQuantTokens(out: Float32Array, x: Float32Array, N: number, C: number, bits: number,
  scales?: Float32Array): void {
  const { qmin, qmax } = qRange(bits);
  checkLen('x', x, N * C); checkLen('out', out, N * C);
  if (scales) checkLen('scales', scales, N);
  for (let t = 0; t < N; t++) {
    const off = t * C, s = tokenScale(x, off, C, qmax);
    if (scales) scales[t] = s;
    for (let i = off; i < off + C; i++) out[i] = quantizeValue(x[i], s, qmin, qmax) * s;
  }
}

/**
 * Runtime twin of fakeQuantTokens: q (N, C) int values and scales (N) such that q[t,i] · scales[t]
 * equals fakeQuantTokens(x)[t,i] bit for bit.
 */
export function quantizeTokens(q: Int8Array, scales: Float32Array, x: Float32Array, N: number, C: number,
  bits: number): void {
  const { qmin, qmax } = qRange(bits);
  checkLen('x', x, N * C); checkLen('q', q, N * C); checkLen('scales', scales, N);
  for (let t = 0; t < N; t++) {
    const off = t * C, s = tokenScale(x, off, C, qmax);
    scales[t] = s;
    for (let i = off; i < off + C; i++) q[i] = quantizeValue(x[i], s, qmin, qmax);
  }
}
