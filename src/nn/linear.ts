/** Linear layer y = x Wᵀ + b with W stored (out, in) as in PyTorch. */
import type { Backend } from '../kernels/backend.js';

/** out (N,O) = inp (N,I) · Wᵀ + bias. */
export function linearForward(be: Backend, out: Float32Array, inp: Float32Array, W: Float32Array,
  bias: Float32Array | null, N: number, I: number, O: number): void {
  be.matmul(out, inp, W, N, O, I, false, true);
  if (bias) be.addBias(out, bias, N, O);
}

/**
 * Accumulates dW (O,I) += dOutᵀ · inp and dBias (O) += colsum(dOut); dInp (N,I) receives dOut · W
 * (added when accumulateInput, else overwritten). dInp may be null when the input needs no gradient.
 */
export function linearBackward(be: Backend, dInp: Float32Array | null, dW: Float32Array, dBias: Float32Array | null,
  dOut: Float32Array, inp: Float32Array, W: Float32Array, N: number, I: number, O: number,
  accumulateInput = false): void {
  if (dInp) be.matmul(dInp, dOut, W, N, I, O, false, false, accumulateInput);
  be.matmul(dW, dOut, inp, O, I, N, true, false, true);
  if (dBias) be.biasBackward(dBias, dOut, N, O);
}
