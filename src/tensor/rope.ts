/**
 * RoPE tables: shared maths below both the model (which owns its tables) and the backends (whose
 * rope kernels read them). Rows are positions, columns the D/2 frequency pairs.
 */
/**
 * cos/sin tables (maxPos, D/2) computed as Hugging Face does in float32:
 * inv_freq[d] = 1 / theta^(2d/D); angle = pos * inv_freq (float32 product).
 */
export function ropeTables(maxPos: number, D: number, theta: number): { cos: Float32Array; sin: Float32Array } {
  const h = D / 2, cos = new Float32Array(maxPos * h), sin = new Float32Array(maxPos * h);
  for (let d = 0; d < h; d++) {
    const inv = Math.fround(1 / Math.fround(Math.pow(theta, Math.fround((2 * d) / D))));
    for (let p = 0; p < maxPos; p++) {
      const ang = Math.fround(p * inv);
      cos[p * h + d] = Math.cos(ang); sin[p * h + d] = Math.sin(ang);
    }
  }
  return { cos, sin };
}
