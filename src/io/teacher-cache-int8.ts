/**
 * The int8 logit code of the teacher cache (logitDtype "int8", format version 2; the format:
 * io/teacher-cache-format.ts, docs/teacher-cache.md). Per position p of k logits t (raw, any
 * order) the record holds
 *   range  R_p  float16 (bits)  ≥ max_j (max t − t_j), capped at the writer's `cap` (INT8_MAX_RANGE)
 *   codes  c_j  uint8           c_j = min(255, round(255 · sqrt(min(d_j, R_p) / R_p))),  d_j = max t − t_j
 * and decodes to  t̂_j = −(R_p · SQ[c_j])  (float32 product), SQ[c] = float32((c/255)²),
 * i.e. logits relative to the position's maximum (softmax and the top-k loss are shift-invariant).
 * The square law puts the fine steps where the probability mass is: the step in d is
 * 2·sqrt(d·R)/255, ~0.06 logits at d = 1 for R = 30 (a linear code: R/255 ≈ 0.12 everywhere). Logits
 * more than R_p below the top decode as exactly R_p below it (the cap: exp(−64/τ) is negligible).
 *
 * A top-k int8 cache also stores lse_τ per position relative to the maximum, made consistent with
 * the decoded values: lse'_τ = log(Σ_K exp(t̂_j/τ) + tail_τ), tail_τ = the full-vocabulary mass
 * outside K (exact, from the teacher's lse), so the cached p_j sum to at most 1 (the tail bucket
 * stays ≥ 0). A full int8 cache (k = V) stores no lse: distillation computes it from the rows.
 */
import { f16ToF32Table, f32ToF16 } from './safetensors.js';

/** The writer's default cap on a position's range (logit units). */
export const INT8_MAX_RANGE = 64;

const LEVELS = 255;
/** SQ[c] = float32((c/255)²): the decode table (exact in float32 arithmetic everywhere). */
export const SQ: Float32Array = Float32Array.from({ length: LEVELS + 1 }, (_, c) => (c / LEVELS) ** 2);

let f16Values: Float32Array | null = null;
function f16Value(h: number): number {
  if (!f16Values) { const b = f16ToF32Table(); f16Values = new Float32Array(b.buffer, b.byteOffset, b.length); }
  return f16Values[h];
}

/** The smallest float16 (bits) ≥ x, for 0 ≤ x ≤ 65504. */
function f16Ceil(x: number): number {
  let h = f32ToF16(new Float32Array([x]))[0];
  while (f16Value(h) < x) h++;
  return h;
}

/**
 * Encodes T positions of raw logits lg (T·k): ranges (T, float16 bits) and codes (T·k).
 * Returns the per-position maxima (T) the codes are relative to.
 */
export function encodeInt8(lg: Float32Array, k: number, T: number, codes: Uint8Array, range: Uint16Array,
  cap = INT8_MAX_RANGE): Float64Array {
  const tmax = new Float64Array(T);
  for (let p = 0; p < T; p++) {
    const o = p * k;
    let m = -Infinity, lo = Infinity;
    for (let j = o; j < o + k; j++) { const v = lg[j]; if (v > m) m = v; if (v < lo) lo = v; }
    tmax[p] = m;
    const h = f16Ceil(Math.min(m - lo, cap)), R = f16Value(h);
    range[p] = h;
    if (R === 0) { codes.fill(0, o, o + k); continue; }
    for (let j = o; j < o + k; j++) {
      const d = Math.min(m - lg[j], R);
      codes[j] = Math.min(LEVELS, Math.round(LEVELS * Math.sqrt(d / R)));
    }
  }
  return tmax;
}

/**
 * out[p·k + j] = −(R_p · SQ[codes[p·k + j]]) for T = range.length positions. Returns the first
 * position whose range is not a finite number ≥ 0, or −1.
 */
export function decodeInt8(codes: Uint8Array, range: Uint16Array, k: number, out: Float32Array): number {
  for (let p = 0; p < range.length; p++) {
    const R = f16Value(range[p]);
    if (!(R >= 0 && R < Infinity)) return p;
    for (let j = p * k, end = j + k; j < end; j++) out[j] = -(R * SQ[codes[j]]);
  }
  return -1;
}

/**
 * lse' (f32) of a top-k int8 window: for each of the taus and positions p < T, log of the decoded
 * top-k mass plus the exact tail, relative to tmax[p]. `lse` (nTau, N) is the teacher's full-row
 * lse of rows row0.. (as TopkEntries holds it), `lg` the T·k raw logits, `dec` their decoded values.
 */
export function int8TopkLse(lse: Float32Array, N: number, row0: number, taus: number[], lg: Float32Array,
  dec: Float32Array, tmax: Float64Array, k: number, out: Float32Array): void {
  const T = tmax.length;
  taus.forEach((tau, a) => {
    for (let p = 0; p < T; p++) {
      let exact = 0, coded = 0;
      for (let j = p * k; j < (p + 1) * k; j++) {
        exact += Math.exp((lg[j] - tmax[p]) / tau);
        coded += Math.exp(dec[j] / tau);
      }
      const tail = Math.max(0, Math.exp(lse[a * N + row0 + p] - tmax[p] / tau) - exact);
      out[a * T + p] = Math.log(coded + tail);
    }
  });
}
