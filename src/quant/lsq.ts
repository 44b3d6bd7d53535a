/**
 * Learned step size quantization (LSQ, Esser et al. 2019, "Learned Step Size Quantization"):
 * the forward pass is the ordinary fake quantization with learned row scales (fakeQuantRows);
 * these are the backward passes and the paper's initialisation. Browser-safe.
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
