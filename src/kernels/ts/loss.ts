/** Reference cross-entropy (with fused backward), norms of gradients, and the AdamW update. */

export function crossEntropy(losses: Float32Array, logits: Float32Array, targets: Int32Array, N: number, V: number,
  dLogits: Float32Array | null = null, dScale = 1): void {
  for (let i = 0; i < N; i++) {
    const o = i * V, t = targets[i];
    let mx = -Infinity;
    for (let v = 0; v < V; v++) if (logits[o + v] > mx) mx = logits[o + v];
    let sum = 0;
    for (let v = 0; v < V; v++) sum += Math.exp(logits[o + v] - mx);
    const lse = mx + Math.log(sum);
    losses[i] = t >= 0 ? lse - logits[o + t] : 0;
    if (dLogits) {
      if (t < 0) { for (let v = 0; v < V; v++) dLogits[o + v] = 0; continue; }
      for (let v = 0; v < V; v++) dLogits[o + v] = (Math.exp(logits[o + v] - lse) - (v === t ? 1 : 0)) * dScale;
    }
  }
}

export function sumSquares(x: Float32Array, n: number): number {
  let s = 0;
  for (let i = 0; i < n; i++) s += x[i] * x[i];
  return s;
}

export function adamw(p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, n: number, t: number,
  lr: number, b1: number, b2: number, eps: number, wd: number, gradScale: number): void {
  const c1 = 1 - Math.pow(b1, t), c2 = 1 - Math.pow(b2, t);
  for (let i = 0; i < n; i++) {
    const gi = g[i] * gradScale;
    const mi = b1 * m[i] + (1 - b1) * gi, vi = b2 * v[i] + (1 - b2) * gi * gi;
    m[i] = mi; v[i] = vi;
    // PyTorch order: decay first (p *= 1 - lr wd), then the Adam step
    p[i] = p[i] * (1 - lr * wd) - lr * (mi / c1) / (Math.sqrt(vi / c2) + eps);
  }
}

export function logSoftmaxForward(out: Float32Array, inp: Float32Array, rows: number, V: number, scale = 1): void {
  for (let r = 0; r < rows; r++) {
    const o = r * V;
    let mx = -Infinity;
    for (let v = 0; v < V; v++) if (inp[o + v] * scale > mx) mx = inp[o + v] * scale;
    let sum = 0;
    for (let v = 0; v < V; v++) sum += Math.exp(inp[o + v] * scale - mx);
    const lse = mx + Math.log(sum);
    for (let v = 0; v < V; v++) out[o + v] = inp[o + v] * scale - lse;
  }
}

export function logSoftmaxBackward(dInp: Float32Array, dOut: Float32Array, out: Float32Array, rows: number, V: number,
  scale = 1, accumulate = false): void {
  for (let r = 0; r < rows; r++) {
    const o = r * V;
    let sum = 0;
    for (let v = 0; v < V; v++) sum += dOut[o + v];
    for (let v = 0; v < V; v++) {
      const g = scale * (dOut[o + v] - Math.exp(out[o + v]) * sum);
      dInp[o + v] = accumulate ? dInp[o + v] + g : g;
    }
  }
}
