/**
 * Pruning state of a set of matrices (SparseMatrix(M, s) in training): one 0/1 mask per matrix,
 * masks recomputed from |w| (or a score such as |w| times input RMS) at a sparsity the schedule gives (per matrix or one global threshold;
 * unstructured, 1 x k blocks or N:M), applied to weights and to their gradients. Browser-safe.
 */
import { applyMask, globalMagnitudeMasks, measuredSparsity, type Granularity } from './mask.js';

export interface PrunedMatrix { name: string; rows: number; cols: number }

export interface PruningOptions {
  granularity: Granularity;
  scope: 'per-matrix' | 'global';
}

export class Pruner {
  /** Masks by matrix name (1 = kept), all ones until the first update. */
  readonly masks = new Map<string, Float32Array>();
  private readonly shapes = new Map<string, PrunedMatrix>();

  constructor(matrices: PrunedMatrix[], readonly opts: PruningOptions) {
    for (const m of matrices) {
      this.masks.set(m.name, new Float32Array(m.rows * m.cols).fill(1));
      this.shapes.set(m.name, m);
    }
  }

  has(name: string): boolean { return this.masks.has(name); }

  /** x ⊙= mask of `name` (weights after an update, gradients before one); no-op for unpruned names. */
  apply(name: string, x: Float32Array): void {
    const m = this.masks.get(name);
    if (m) applyMask(x, m);
  }

  /**
   * Masks at sparsity s from the current weights, which are then masked in place. The masks rank
   * |score(name)| (same shape as the weight) when `score` is given, else |w|.
   */
  update(s: number, weight: (name: string) => Float32Array, score?: (name: string) => Float32Array): void {
    const g = this.opts.granularity;
    const targets = [...this.shapes.values()].map((m) => ({ ...m, mask: this.masks.get(m.name)!, w: score ? score(m.name) : weight(m.name) }));
    if (g.kind === 'nm' && s < 1 - g.n / g.m - 1e-9) {
      // N:M has one sparsity; before the schedule reaches it, prune unstructured
      globalMagnitudeMasks(targets, s, { kind: 'unstructured' });
    } else if (this.opts.scope === 'global' && g.kind !== 'nm') globalMagnitudeMasks(targets, s, g);
    else for (const t of targets) globalMagnitudeMasks([t], s, g);
    for (const t of targets) applyMask(weight(t.name), t.mask);
  }

  /** Measured sparsity of each mask. */
  sparsities(): Record<string, number> {
    return Object.fromEntries([...this.masks].map(([n, m]) => [n, measuredSparsity(m)]));
  }
}
