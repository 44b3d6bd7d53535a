/** Sparsity primitives (browser-safe): magnitude masks and the gradual pruning schedule. */
export * from './mask.js';
export * from './schedule.js';
export { kthLargestKey, keepTopK, keyView } from './select.js';
export type { Threshold } from './select.js';
