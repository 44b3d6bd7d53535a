/** LayerNorm / RMSNorm over rows of C, dispatched on the model's norm kind; weights by name from a store. */
import type { Backend } from '../kernels/backend.js';

export interface NormSpec { norm: 'layernorm' | 'rmsnorm'; dim: number; normEps: number }

/** out (N,C) = norm(inp); mean (layernorm only) and rstd (N) kept for the backward pass. */
export function normForward(be: Backend, c: NormSpec, out: Float32Array, mean: Float32Array, rstd: Float32Array,
  inp: Float32Array, w: Float32Array, b: Float32Array | null, N: number): void {
  if (c.norm === 'layernorm') be.layerNormForward(out, mean, rstd, inp, w, b!, N, c.dim, c.normEps);
  else be.rmsNormForward(out, rstd, inp, w, N, c.dim, c.normEps);
}

/** dInp += backward of dOut; dW (and dB for layernorm) accumulate. */
export function normBackward(be: Backend, c: NormSpec, dInp: Float32Array, dW: Float32Array, dB: Float32Array | null,
  dOut: Float32Array, inp: Float32Array, w: Float32Array, mean: Float32Array, rstd: Float32Array, N: number): void {
  if (c.norm === 'layernorm') be.layerNormBackward(dInp, dW, dB!, dOut, inp, w, mean, rstd, N, c.dim);
  else be.rmsNormBackward(dInp, dW, dOut, inp, w, rstd, N, c.dim);
}
