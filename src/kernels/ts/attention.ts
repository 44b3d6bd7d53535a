/** Reference attention pieces: masked (top-k) softmax, its backward, and rotary embeddings. */

/** k-th largest of vals[0..n) (1-based k <= n); vals is reordered. */
function kthLargest(vals: Float64Array, n: number, k: number): number {
  const a = Array.from(vals.subarray(0, n)).sort((x, y) => y - x);
  return a[k - 1];
}

export function softmaxForward(P: Float32Array, S: Float32Array, rows: number, Tq: number, Tk: number, scale: number,
  causalOffset: number | null, topK = 0): void {
  const buf = new Float64Array(Tk);
  for (let r = 0; r < rows; r++) {
    const o = r * Tk, i = r % Tq;
    const visible = causalOffset === null ? Tk : Math.max(0, Math.min(Tk, i + causalOffset + 1));
    let mx = -Infinity;
    for (let j = 0; j < visible; j++) { buf[j] = S[o + j] * scale; if (buf[j] > mx) mx = buf[j]; }
    let thresh = -Infinity;
    if (topK > 0 && topK < visible) thresh = kthLargest(new Float64Array(buf.subarray(0, visible)), visible, topK);
    let sum = 0;
    for (let j = 0; j < visible; j++) {
      const e = buf[j] >= thresh ? Math.exp(buf[j] - mx) : 0;
      buf[j] = e; sum += e;
    }
    const inv = sum > 0 ? 1 / sum : 0;
    for (let j = 0; j < visible; j++) P[o + j] = buf[j] * inv;
    for (let j = visible; j < Tk; j++) P[o + j] = 0;
  }
}

export function softmaxBackward(dS: Float32Array, dP: Float32Array, P: Float32Array, rows: number, Tk: number,
  scale: number): void {
  for (let r = 0; r < rows; r++) {
    const o = r * Tk;
    let dot = 0;
    for (let j = 0; j < Tk; j++) dot += P[o + j] * dP[o + j];
    for (let j = 0; j < Tk; j++) dS[o + j] = scale * P[o + j] * (dP[o + j] - dot);
  }
}

export function rope(x: Float32Array, B: number, H: number, T: number, D: number, pos0: number,
  cos: Float32Array, sin: Float32Array, inverse = false): void {
  const h = D / 2, sgn = inverse ? -1 : 1;
  for (let bh = 0; bh < B * H; bh++) {
    for (let t = 0; t < T; t++) {
      const o = (bh * T + t) * D, c = (pos0 + t) * h;
      for (let d = 0; d < h; d++) {
        const x1 = x[o + d], x2 = x[o + d + h], co = cos[c + d], si = sgn * sin[c + d];
        x[o + d] = x1 * co - x2 * si;
        x[o + d + h] = x2 * co + x1 * si;
      }
    }
  }
}
