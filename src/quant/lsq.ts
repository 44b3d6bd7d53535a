/**
 * Learned step size quantization (LSQ, Esser et al. 2019, "Learned Step Size Quantization"):
 * the forward pass is the ordinary fake quantization with a learned scale s (fakeQuantRows /
 * fakeQuantTensor); these are the backward passes and the paper's initialisation. Browser-safe.
 *
 * With x = w/s (float32, as in the forward) and the clamp inclusive at both ends (as torch.clamp's
 * gradient is):
 *   dL/dw = dOut                        if qmin <= x <= qmax, else 0   (straight-through, clipped)
 *   dL/ds = g · sum dOut · { round(x) - x   if qmin <= x <= qmax
 *                           { qmin          if x < qmin
 *                           { qmax          if x > qmax
 * with the step-size gradient scale g = 1/sqrt(count · qmax), count = number of values sharing s.
 * Reductions accumulate in float64.
 */
import { QkdError } from '../tensor/errors.js';
import { MAX_ABS_FLOOR, qRange, rowScale, roundHalfEven } from './quantize.js';

/** g = 1/sqrt(count · qmax): keeps the scale's update size comparable to the weights' (LSQ section 2.2). */
export function lsqGradScale(count: number, bits: number): number {
  if (!(count >= 1)) throw new QkdError('E_CONFIG', `quant/lsq.ts: gradient-scale count must be >= 1, got ${count}`);
  return 1 / Math.sqrt(count * qRange(bits).qmax);
}

/** LSQ's initial step size 2·mean|x|/sqrt(qmax), floored at float32(1e-8)/qmax so it is never 0. */
function initScale(x: Float32Array, off: number, n: number, qmax: number): number {
  let sum = 0;
  for (let i = off; i < off + n; i++) sum += Math.abs(x[i]);
  const s = Math.fround((2 * sum) / n / Math.sqrt(qmax));
  return Math.max(s, Math.fround(MAX_ABS_FLOOR / qmax));
}

/** scales (rows) = LSQ initialisation per row of w (rows, cols). */
export function lsqInitRowScales(scales: Float32Array, w: Float32Array, rows: number, cols: number,
  bits: number): void {
  const { qmax } = qRange(bits);
  if (w.length < rows * cols || scales.length < rows) {
    throw new QkdError('E_SHAPE', `quant/lsq.ts: w (${w.length}) or scales (${scales.length}) too short for ${rows}x${cols}`);
  }
  for (let r = 0; r < rows; r++) scales[r] = initScale(w, r * cols, cols, qmax);
}

/** The LSQ scale initialisation for one scale shared by x (n). */
export function lsqInitTensorScale(x: Float32Array, n: number, bits: number): number {
  if (!(n >= 1) || x.length < n) throw new QkdError('E_SHAPE', `quant/lsq.ts: x has ${x.length} elements, needs n=${n} >= 1`);
  return initScale(x, 0, n, qRange(bits).qmax);
}

/**
 * Per-row LSQ backward for w (rows, cols) fake-quantized with learned scales (rows):
 * dW (rows, cols) += clipped straight-through gradient, dS (rows) += the step-size gradient with
 * g = 1/sqrt(cols · qmax).
 */
export function lsqBackward(dW: Float32Array, dS: Float32Array, dOut: Float32Array, w: Float32Array,
  scales: Float32Array, rows: number, cols: number, bits: number): void {
  const { qmin, qmax } = qRange(bits);
  const n = rows * cols;
  if (w.length < n || dW.length < n || dOut.length < n || scales.length < rows || dS.length < rows) {
    throw new QkdError('E_SHAPE', `quant/lsq.ts: lsqBackward buffers too short for ${rows}x${cols}`);
  }
  const g = lsqGradScale(cols, bits);
  for (let r = 0; r < rows; r++) {
    const s = rowScale(scales, r), off = r * cols;
    let acc = 0;
    for (let i = off; i < off + cols; i++) {
      const x = Math.fround(w[i] / s), d = dOut[i];
      if (x < qmin) acc += d * qmin;
      else if (x > qmax) acc += d * qmax;
      else {
        dW[i] += d;
        acc += d * (roundHalfEven(x) - x);
      }
    }
    dS[r] += g * acc;
  }
}

/**
 * Per-tensor LSQ backward (QuantizedActivation): dx (n) = clipped straight-through gradient
 * (overwritten; may alias dOut); returns dL/ds (add it to the scale's gradient). The gradient scale
 * uses `gradCount` values, by default n (the elements in this call, as common LSQ implementations
 * use numel); pass a fixed count (e.g. the features per token) to make it batch-size independent.
 */
export function lsqTensorBackward(dx: Float32Array, dOut: Float32Array, x: Float32Array, n: number, s: number,
  bits: number, gradCount = n): number {
  const { qmin, qmax } = qRange(bits);
  if (x.length < n || dx.length < n || dOut.length < n) {
    throw new QkdError('E_SHAPE', `quant/lsq.ts: lsqTensorBackward buffers too short for n=${n}`);
  }
  if (!(s > 0 && s < Infinity)) throw new QkdError('E_INPUT', `quant/lsq.ts: activation scale must be positive, got ${s}`);
  const sf = Math.fround(s);
  let acc = 0;
  for (let i = 0; i < n; i++) {
    const v = Math.fround(x[i] / sf), d = dOut[i];
    if (v < qmin) { acc += d * qmin; dx[i] = 0; }
    else if (v > qmax) { acc += d * qmax; dx[i] = 0; }
    else { acc += d * (roundHalfEven(v) - v); dx[i] = d; }
  }
  return lsqGradScale(gradCount, bits) * acc;
}
