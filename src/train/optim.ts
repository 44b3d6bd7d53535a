/**
 * AdamW with decoupled weight decay over a ParamStore (decayed tensors first, so two contiguous
 * kernel calls), and gradient clipping by global norm (PyTorch's clip_grad_norm_ rule).
 */
import type { Backend } from '../kernels/backend.js';

export interface AdamWConfig {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

/** Global L2 norm of gradient buffers taken together, and the factor clip_grad_norm_ would scale them by. */
export function clipFactor(be: Backend, grad: Float32Array | Float32Array[], maxNorm: number): { norm: number; scale: number } {
  let sq = 0;
  for (const g of Array.isArray(grad) ? grad : [grad]) sq += be.sumSquares(g, g.length);
  const norm = Math.sqrt(sq);
  const scale = maxNorm > 0 ? Math.min(1, maxNorm / (norm + 1e-6)) : 1;
  return { norm, scale };
}

/** What AdamW updates: values and gradients of one layout, the first decayCount entries decayed (a ParamStore, learned scales). */
export interface Optimizable {
  readonly backend: Backend;
  readonly data: Float32Array;
  readonly grad: Float32Array;
  readonly decayCount: number;
  readonly size: number;
}

export class AdamW {
  /** First and second moments, same layout as the store. */
  readonly m: Float32Array;
  readonly v: Float32Array;
  step = 0;

  constructor(readonly store: Optimizable, public cfg: AdamWConfig) {
    this.m = store.backend.alloc(store.size);
    this.v = store.backend.alloc(store.size);
  }

  /** One update with learning rate lr, gradients multiplied by gradScale first. */
  update(lr: number, gradScale = 1): void {
    const s = this.store, be = s.backend, c = this.cfg, d = s.decayCount, n = s.size;
    this.step++;
    const sub = (a: Float32Array, lo: number, hi: number) => a.subarray(lo, hi);
    if (d > 0) {
      be.adamw(sub(s.data, 0, d), sub(s.grad, 0, d), sub(this.m, 0, d), sub(this.v, 0, d), d, this.step, lr,
        c.beta1, c.beta2, c.eps, c.weightDecay, gradScale);
    }
    if (n > d) {
      be.adamw(sub(s.data, d, n), sub(s.grad, d, n), sub(this.m, d, n), sub(this.v, d, n), n - d, this.step, lr,
        c.beta1, c.beta2, c.eps, 0, gradScale);
    }
  }

  dispose(): void {
    this.store.backend.free(this.m);
    this.store.backend.free(this.v);
  }
}
