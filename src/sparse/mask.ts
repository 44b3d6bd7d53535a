/**
 * Magnitude pruning masks (SparsityConstraint / SparseMatrix) for a weight w (rows, cols) stored
 * (out, in) row-major, so a row's cols are the input dimension. Browser-safe.
 *
 * A mask is a Float32Array of exact 0s and 1s, shaped like its weight: it multiplies into weights
 * and gradients with the ordinary elementwise kernels (w ⊙ mask, dW ⊙ mask) and needs no int->float
 * conversion on the hot path. Sparsity = zeros / size.
 *
 * Kept count: k = round((1 - s) · n) weights (or blocks), the k largest by magnitude, ties broken by
 * index (lower index kept first; across matrices of a global mask, earlier matrix first). The
 * PyTorch anchor instead prunes kthvalue(floor(s · n)) and keeps |w| > that value: without ties it
 * keeps n - floor(s·n), one more than k when s·n has a fraction below .5 (90% of 128x384: it keeps
 * 4916, we keep 4915), and with ties at the threshold it prunes all of them.
 */
import { QkdError } from '../tensor/errors.js';
import { keepTopK, keyView } from './select.js';

export type Granularity =
  | { kind: 'unstructured' }
  /** 1 x k blocks of consecutive inputs in a row; a block's score is the sum of its |w|. */
  | { kind: 'block'; k: number }
  /** In every group of m consecutive inputs of a row keep the n largest |w| (sparsity 1 - n/m). */
  | { kind: 'nm'; n: number; m: number };

export interface MaskTarget { mask: Float32Array; w: Float32Array; rows: number; cols: number; name?: string }

function fail(msg: string): never { throw new QkdError('E_CONFIG', `sparse/mask.ts: ${msg}`); }

/** k = round((1 - s) · n) elements to keep; s must lie in [0, 1). */
export function keepCount(n: number, sparsity: number): number {
  if (!(sparsity >= 0 && sparsity < 1)) fail(`sparsity must be in [0, 1), got ${sparsity}`);
  return Math.round((1 - sparsity) * n);
}

function checkTarget(t: MaskTarget): void {
  const n = t.rows * t.cols, what = t.name ?? `${t.rows}x${t.cols} matrix`;
  if (!(Number.isInteger(t.rows) && Number.isInteger(t.cols) && t.rows >= 0 && t.cols >= 0)) fail(`${what}: bad shape`);
  if (t.w.length !== n || t.mask.length !== n) {
    throw new QkdError('E_SHAPE', `sparse/mask.ts: ${what}: w has ${t.w.length} and mask ${t.mask.length} elements, expected ${n}`);
  }
}

function checkGranularity(g: Granularity, t: MaskTarget): void {
  const what = t.name ?? `${t.rows}x${t.cols} matrix`;
  if (g.kind === 'block') {
    if (!(Number.isInteger(g.k) && g.k >= 1)) fail(`block size must be a positive integer, got ${g.k}`);
    if (t.cols % g.k !== 0) fail(`${what}: input dim ${t.cols} is not divisible by the block size ${g.k}`);
  } else if (g.kind === 'nm') {
    if (!(Number.isInteger(g.m) && Number.isInteger(g.n) && g.n >= 1 && g.n <= g.m)) fail(`N:M needs 1 <= N <= M, got ${g.n}:${g.m}`);
    if (t.cols % g.m !== 0) fail(`${what}: input dim ${t.cols} is not divisible by M = ${g.m}`);
  } else if (g.kind !== 'unstructured') {
    fail(`unknown granularity ${JSON.stringify(g)}`);
  }
}

/** scores (rows · cols/k) = sum of |w| over each 1 x k block (float64 sum, stored as float32). */
function blockScores(w: Float32Array, n: number, k: number): Float32Array {
  const scores = new Float32Array(n / k);
  for (let b = 0, i = 0; b < scores.length; b++) {
    let s = 0;
    for (const end = i + k; i < end; i++) s += Math.abs(w[i]);
    scores[b] = s;
  }
  return scores;
}

/** mask (n) = block mask bm (n/k) repeated k times along the row. */
function expandBlocks(mask: Float32Array, bm: Float32Array, k: number): void {
  for (let b = 0, i = 0; b < bm.length; b++) {
    const v = bm[b];
    for (const end = i + k; i < end; i++) mask[i] = v;
  }
}

/** N:M: in each group of m consecutive elements keep the n largest |w| (ties: lower index). */
function nmFill(mask: Float32Array, w: Float32Array, len: number, n: number, m: number): void {
  const a = new Float64Array(m); // |w| of the current group
  for (let g = 0; g < len; g += m) {
    for (let j = 0; j < m; j++) a[j] = Math.abs(w[g + j]);
    for (let i = 0; i < m; i++) {
      let rank = 0; // group elements that precede i in keep order
      for (let j = 0; j < m; j++) if (a[j] > a[i] || (a[j] === a[i] && j < i)) rank++;
      mask[g + i] = rank < n ? 1 : 0;
    }
  }
}

/**
 * One magnitude threshold across all targets (global pruning): keeps round((1 - s) · total) weights
 * (unstructured) or blocks (block) overall, so individual matrices end up at different sparsities.
 * N:M has no global choice (every group keeps N), so it is applied per matrix and ignores `sparsity`.
 */
export function globalMagnitudeMasks(targets: MaskTarget[], sparsity: number, g: Granularity): void {
  for (const t of targets) { checkTarget(t); checkGranularity(g, t); }
  if (g.kind === 'nm') {
    for (const t of targets) nmFill(t.mask, t.w, t.rows * t.cols, g.n, g.m);
    return;
  }
  if (g.kind === 'unstructured') {
    const total = targets.reduce((a, t) => a + t.w.length, 0);
    keepTopK(targets.map((t) => t.mask), targets.map((t) => keyView(t.w)), keepCount(total, sparsity));
    return;
  }
  const scores = targets.map((t) => blockScores(t.w, t.rows * t.cols, g.k));
  const bms = scores.map((s) => new Float32Array(s.length));
  const total = scores.reduce((a, s) => a + s.length, 0);
  keepTopK(bms, scores.map(keyView), keepCount(total, sparsity));
  targets.forEach((t, j) => expandBlocks(t.mask, bms[j], g.k));
}

/** Magnitude mask of one matrix w (rows, cols) at sparsity s with the given granularity. */
export function magnitudeMask(mask: Float32Array, w: Float32Array, rows: number, cols: number, sparsity: number,
  g: Granularity = { kind: 'unstructured' }): void {
  globalMagnitudeMasks([{ mask, w, rows, cols }], sparsity, g);
}

/** Keeps exactly round((1 - s) · rows · cols) largest |w|. */
export function unstructuredMask(mask: Float32Array, w: Float32Array, rows: number, cols: number, sparsity: number): void {
  magnitudeMask(mask, w, rows, cols, sparsity, { kind: 'unstructured' });
}

/** Keeps the round((1 - s) · rows · cols/k) 1 x k input blocks with the largest sum of |w|. */
export function blockMask(mask: Float32Array, w: Float32Array, rows: number, cols: number, k: number,
  sparsity: number): void {
  magnitudeMask(mask, w, rows, cols, sparsity, { kind: 'block', k });
}

/** Keeps the n largest |w| of every m consecutive inputs (sparsity 1 - n/m). */
export function nmMask(mask: Float32Array, w: Float32Array, rows: number, cols: number, n: number, m: number): void {
  magnitudeMask(mask, w, rows, cols, 1 - n / m, { kind: 'nm', n, m });
}

/** Fraction of zeros in a mask (zeros / size); 0 for an empty mask. */
export function measuredSparsity(mask: Float32Array): number {
  let zeros = 0;
  for (let i = 0; i < mask.length; i++) if (mask[i] === 0) zeros++;
  return mask.length === 0 ? 0 : zeros / mask.length;
}

/**
 * x (n) ⊙= mask for a 0/1 mask: pruned entries become exactly +0 (also when x held -0, NaN or Inf there).
 * Use on weights after each update and on their gradients, so pruned weights stay 0 and get no update.
 */
export function applyMask(x: Float32Array, mask: Float32Array, n = x.length): void {
  if (x.length < n || mask.length < n) {
    throw new QkdError('E_SHAPE', `sparse/mask.ts: applyMask on ${x.length}/${mask.length} elements, needs ${n}`);
  }
  for (let i = 0; i < n; i++) if (mask[i] === 0) x[i] = 0;
}
