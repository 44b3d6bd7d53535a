/** Learning-rate schedule: linear warm-up, then cosine decay to lr·minRatio at the last step. */

export function lrAt(step: number, o: { lr: number; warmup: number; steps: number; minLrRatio: number }): number {
  // step is 0-based; warm-up reaches the full rate at step warmup-1 (as nanoGPT does)
  if (step < o.warmup) return (o.lr * (step + 1)) / o.warmup;
  const span = Math.max(1, o.steps - o.warmup);
  const p = Math.min(1, (step - o.warmup) / span);
  const min = o.lr * o.minLrRatio;
  return min + 0.5 * (1 + Math.cos(Math.PI * p)) * (o.lr - min);
}
