/**
 * The one rule of every export (qkd-int8, ONNX): weights must be finite. A NaN or Inf would be
 * silently mapped to 0 by quantization (or poison every logit in onnxruntime), so the export stops
 * and names the tensor and the element. Browser-safe.
 */
import { QkdError } from '../tensor/errors.js';

/** The first non-finite element of `t`, or -1. */
export function firstNonFinite(t: ArrayLike<number>): number {
  for (let i = 0; i < t.length; i++) if (!Number.isFinite(t[i])) return i;
  return -1;
}

/** Throws E_NUMERIC naming the first tensor (and element) holding a NaN or an infinity. */
export function checkFiniteTensors(tensors: Iterable<[string, ArrayLike<number>]>, where: string): void {
  for (const [name, t] of tensors) {
    const i = firstNonFinite(t);
    if (i >= 0) {
      throw new QkdError('E_NUMERIC', `${where}: tensor "${name}" holds a non-finite value (element ${i} = ${t[i]}); ` +
        'refusing to export it (a diverged run or a corrupt model?)');
    }
  }
}
