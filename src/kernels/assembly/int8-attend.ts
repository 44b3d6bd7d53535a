// Attention of one new query per head over a KV cache, for the fused decode step (int8-decode.ts):
// the products of nn/attention.ts attentionForward at T = 1 computed in exactly the float GEMM's
// summation order (gemm.ts), so the step stays bit-identical to the composed one.
import { madd } from './simd';
import { KC, matmulShare } from './gemm';
import { softmaxForward } from './rows';

/** kT (KV, D, ldT) columns [from, to) = keys from..to-1 of the cache ck (KV, Tmax, D), transposed (kT 0: none). */
export function syncKeys(kT: usize, ldT: i32, ck: usize, KV: i32, D: i32, Tmax: i32, from: i32, to: i32): void {
  if (!kT) return;
  for (let g = 0; g < KV; g++) {
    const src = ck + (<usize>(g * Tmax * D) << 2), dst = kT + (<usize>(g * D * ldT) << 2);
    for (let t = from; t < to; t++) {
      const s = src + (<usize>(t * D) << 2), d = dst + (<usize>t << 2);
      for (let j = 0; j < D; j++) store<f32>(d + (<usize>(j * ldT) << 2), load<f32>(s + (<usize>j << 2)));
    }
  }
}

/**
 * heads (H·D) = softmax(q · Kᵀ · scale) · V for one query per head over the first Tk positions of the
 * cache (KV, Tmax, D); query heads g·r .. g·r+r-1 share key/value head g (r = H / KV). att holds the
 * (H, Tk) probabilities. This is nn/attention.ts attentionForward at T = 1: the same products (here,
 * or for shapes the float GEMM runs as matrix-vector products that GEMM itself), the same softmax.
 * kT: the keys transposed, (KV, D, ldT) with ldT >= Tk rounded up to 16 (0: transposed here instead).
 */
export function attendDecode(heads: usize, att: usize, q: usize, ck: usize, cv: usize, kT: usize, ldT: i32, H: i32, KV: i32,
  D: i32, Tk: i32, Tmax: i32, scale: f32, ws: usize): void {
  const r = H / KV, row = <usize>D << 2;
  for (let g = 0; g < KV; g++) {
    const qg = q + <usize>(g * r) * row, ag = att + (<usize>(g * r * Tk) << 2), og = heads + <usize>(g * r) * row;
    const kg = ck + <usize>(g * Tmax) * row, vg = cv + <usize>(g * Tmax) * row;
    // matmulShare runs M = 1 or N = 1 as a matrix-vector product (another summation order): use it there
    if (r < 2 || Tk < 2) matmulShare(0, 1, ag, qg, kg, r, Tk, D, false, true, false, ws);
    else if (kT) scoresT(ag, qg, kT + (<usize>(g * D * ldT) << 2), ldT, r, Tk, D);
    else scoresQK(ag, qg, kg, r, Tk, D);
    softmaxForward(0, 0, 1, ag, ag, r, 1, Tk, scale, true, Tk - 1);
    if (r >= 2 && D >= 2 && (D & 3) == 0) weightedV(og, ag, vg, r, D, Tk);
    else matmulShare(0, 1, og, ag, vg, r, D, Tk, false, false, false, ws);
  }
}

// Both score kernels compute S (r, Tk) = Q (r, D) · K (Tk, D)ᵀ with each S[i][t] the packed GEMM's sum
// (gemm.ts): a madd chain over d from 0 in blocks of KC, the blocks' sums added in order.

/** Scores from transposed keys KT (D, ldT): lanes are keys, 16 keys x 2 query rows per pass. */
function scoresT(S: usize, Q: usize, KT: usize, ldT: i32, r: i32, Tk: i32, D: i32): void {
  const ld = <usize>ldT << 2;
  for (let t = 0; t < Tk; t += 16) {
    const m = Tk - t;
    for (let i = 0; i < r; i += 2) {
      const two = i + 1 < r, q0 = Q + (<usize>(i * D) << 2), q1 = two ? q0 + (<usize>D << 2) : q0;
      let s0 = f32x4.splat(0), s1 = f32x4.splat(0), s2 = f32x4.splat(0), s3 = f32x4.splat(0);
      let u0 = f32x4.splat(0), u1 = f32x4.splat(0), u2 = f32x4.splat(0), u3 = f32x4.splat(0);
      for (let d0 = 0; d0 < D; d0 += KC) {
        const d1 = min<i32>(D, d0 + KC);
        let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
        let b0 = f32x4.splat(0), b1 = f32x4.splat(0), b2 = f32x4.splat(0), b3 = f32x4.splat(0);
        let kp = KT + <usize>d0 * ld + (<usize>t << 2);
        for (let d = d0; d < d1; d++) {
          const o = <usize>d << 2, x = v128.load32_splat(q0 + o), y = v128.load32_splat(q1 + o);
          const k0 = v128.load(kp), k1 = v128.load(kp, 16), k2 = v128.load(kp, 32), k3 = v128.load(kp, 48);
          a0 = madd(x, k0, a0); a1 = madd(x, k1, a1); a2 = madd(x, k2, a2); a3 = madd(x, k3, a3);
          b0 = madd(y, k0, b0); b1 = madd(y, k1, b1); b2 = madd(y, k2, b2); b3 = madd(y, k3, b3);
          kp += ld;
        }
        if (d0 == 0) { s0 = a0; s1 = a1; s2 = a2; s3 = a3; u0 = b0; u1 = b1; u2 = b2; u3 = b3; }
        else {
          s0 = f32x4.add(a0, s0); s1 = f32x4.add(a1, s1); s2 = f32x4.add(a2, s2); s3 = f32x4.add(a3, s3);
          u0 = f32x4.add(b0, u0); u1 = f32x4.add(b1, u1); u2 = f32x4.add(b2, u2); u3 = f32x4.add(b3, u3);
        }
      }
      store16(S + (<usize>(i * Tk + t) << 2), s0, s1, s2, s3, m);
      if (two) store16(S + (<usize>((i + 1) * Tk + t) << 2), u0, u1, u2, u3, m);
    }
  }
}

/** The first min(m, 16) lanes of a, b, c, d to p. */
// @ts-ignore: decorator
@inline function store16(p: usize, a: v128, b: v128, c: v128, d: v128, m: i32): void {
  storeLanes(p, a, m); storeLanes(p + 16, b, m - 4); storeLanes(p + 32, c, m - 8); storeLanes(p + 48, d, m - 12);
}

/** Row t of K (Tk rows of D) at column d, 4 columns; zeros past the last row (lanes then unused). */
// @ts-ignore: decorator
@inline function krow(k: usize, t: i32, Tk: i32, D: i32, d: i32): v128 {
  return t < Tk ? v128.load(k + (<usize>(t * D + d) << 2)) : f32x4.splat(0);
}

/** Scores from keys as stored (Tk, D): lanes are 4 keys, transposed 4 x 4 in registers; rows of Q 2 at a time. */
export function scoresQK(S: usize, Q: usize, K: usize, r: i32, Tk: i32, D: i32): void {
  for (let t = 0; t < Tk; t += 4) {
    const m = min<i32>(4, Tk - t);
    for (let i = 0; i < r; i += 2) {
      const two = i + 1 < r, q0 = Q + (<usize>(i * D) << 2), q1 = q0 + (<usize>D << 2);
      let s0 = f32x4.splat(0), s1 = f32x4.splat(0);
      for (let d0 = 0; d0 < D; d0 += KC) {
        const d1 = min<i32>(D, d0 + KC);
        let a0 = f32x4.splat(0), a1 = f32x4.splat(0);
        let d = d0;
        for (; d + 4 <= d1; d += 4) {
          const r0 = krow(K, t, Tk, D, d), r1 = krow(K, t + 1, Tk, D, d), r2 = krow(K, t + 2, Tk, D, d), r3 = krow(K, t + 3, Tk, D, d);
          const u0 = v128.shuffle<f32>(r0, r1, 0, 4, 1, 5), u1 = v128.shuffle<f32>(r0, r1, 2, 6, 3, 7);
          const u2 = v128.shuffle<f32>(r2, r3, 0, 4, 1, 5), u3 = v128.shuffle<f32>(r2, r3, 2, 6, 3, 7);
          const c0 = v128.shuffle<f32>(u0, u2, 0, 1, 4, 5), c1 = v128.shuffle<f32>(u0, u2, 2, 3, 6, 7);
          const c2 = v128.shuffle<f32>(u1, u3, 0, 1, 4, 5), c3 = v128.shuffle<f32>(u1, u3, 2, 3, 6, 7);
          const o = <usize>d << 2;
          a0 = madd(v128.load32_splat(q0 + o), c0, a0);
          a0 = madd(v128.load32_splat(q0 + o, 4), c1, a0);
          a0 = madd(v128.load32_splat(q0 + o, 8), c2, a0);
          a0 = madd(v128.load32_splat(q0 + o, 12), c3, a0);
          if (two) {
            a1 = madd(v128.load32_splat(q1 + o), c0, a1);
            a1 = madd(v128.load32_splat(q1 + o, 4), c1, a1);
            a1 = madd(v128.load32_splat(q1 + o, 8), c2, a1);
            a1 = madd(v128.load32_splat(q1 + o, 12), c3, a1);
          }
        }
        for (; d < d1; d++) {
          const c = colOf(K, t, Tk, D, d), o = <usize>d << 2;
          a0 = madd(v128.load32_splat(q0 + o), c, a0);
          if (two) a1 = madd(v128.load32_splat(q1 + o), c, a1);
        }
        if (d0 == 0) { s0 = a0; s1 = a1; } else { s0 = f32x4.add(a0, s0); s1 = f32x4.add(a1, s1); }
      }
      storeLanes(S + (<usize>(i * Tk + t) << 2), s0, m);
      if (two) storeLanes(S + (<usize>((i + 1) * Tk + t) << 2), s1, m);
    }
  }
}

/** [K[t][d], K[t+1][d], K[t+2][d], K[t+3][d]] (zeros past Tk). */
// @ts-ignore: decorator
@inline function colOf(K: usize, t: i32, Tk: i32, D: i32, d: i32): v128 {
  let c = f32x4.splat(0);
  if (t < Tk) c = f32x4.replace_lane(c, 0, load<f32>(K + (<usize>(t * D + d) << 2)));
  if (t + 1 < Tk) c = f32x4.replace_lane(c, 1, load<f32>(K + (<usize>((t + 1) * D + d) << 2)));
  if (t + 2 < Tk) c = f32x4.replace_lane(c, 2, load<f32>(K + (<usize>((t + 2) * D + d) << 2)));
  if (t + 3 < Tk) c = f32x4.replace_lane(c, 3, load<f32>(K + (<usize>((t + 3) * D + d) << 2)));
  return c;
}

/** The first m (<= 4) lanes of v to p (none when m <= 0). */
// @ts-ignore: decorator
@inline function storeLanes(p: usize, v: v128, m: i32): void {
  if (m >= 4) { v128.store(p, v); return; }
  if (m > 0) store<f32>(p, f32x4.extract_lane(v, 0));
  if (m > 1) store<f32>(p, f32x4.extract_lane(v, 1), 4);
  if (m > 2) store<f32>(p, f32x4.extract_lane(v, 2), 8);
}

/**
 * O (r, D) = P (r, Tk) · V (Tk, D), each O[i][d] the packed GEMM's sum: a madd chain over t from 0 in
 * blocks of KC, the blocks' sums added in order. Lanes are 4 columns d; rows in pairs x 16 columns
 * (8 independent chains sharing each V load), then 4 columns or one row at a time. D % 4 == 0.
 */
export function weightedV(O: usize, P: usize, V: usize, r: i32, D: i32, Tk: i32): void {
  const row = <usize>D << 2, pr = <usize>Tk << 2;
  let i = 0;
  for (; i + 2 <= r; i += 2) {
    const p = P + <usize>i * pr, o = O + <usize>i * row;
    let d = 0;
    for (; d + 16 <= D; d += 16) {
      let s0 = f32x4.splat(0), s1 = f32x4.splat(0), s2 = f32x4.splat(0), s3 = f32x4.splat(0);
      let u0 = f32x4.splat(0), u1 = f32x4.splat(0), u2 = f32x4.splat(0), u3 = f32x4.splat(0);
      for (let t0 = 0; t0 < Tk; t0 += KC) {
        const t1 = min<i32>(Tk, t0 + KC);
        let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
        let b0 = f32x4.splat(0), b1 = f32x4.splat(0), b2 = f32x4.splat(0), b3 = f32x4.splat(0);
        for (let t = t0; t < t1; t++) {
          const pt = p + (<usize>t << 2), x = v128.load32_splat(pt), y = v128.load32_splat(pt + pr);
          const vr = V + <usize>t * row + (<usize>d << 2);
          const v0 = v128.load(vr), v1 = v128.load(vr, 16), v2 = v128.load(vr, 32), v3 = v128.load(vr, 48);
          a0 = madd(x, v0, a0); a1 = madd(x, v1, a1); a2 = madd(x, v2, a2); a3 = madd(x, v3, a3);
          b0 = madd(y, v0, b0); b1 = madd(y, v1, b1); b2 = madd(y, v2, b2); b3 = madd(y, v3, b3);
        }
        if (t0 == 0) { s0 = a0; s1 = a1; s2 = a2; s3 = a3; u0 = b0; u1 = b1; u2 = b2; u3 = b3; }
        else {
          s0 = f32x4.add(a0, s0); s1 = f32x4.add(a1, s1); s2 = f32x4.add(a2, s2); s3 = f32x4.add(a3, s3);
          u0 = f32x4.add(b0, u0); u1 = f32x4.add(b1, u1); u2 = f32x4.add(b2, u2); u3 = f32x4.add(b3, u3);
        }
      }
      const od = o + (<usize>d << 2), oe = od + row;
      v128.store(od, s0); v128.store(od, s1, 16); v128.store(od, s2, 32); v128.store(od, s3, 48);
      v128.store(oe, u0); v128.store(oe, u1, 16); v128.store(oe, u2, 32); v128.store(oe, u3, 48);
    }
    for (; d < D; d += 4) { pvColumns4(o, p, V, row, d, Tk); pvColumns4(o + row, p + pr, V, row, d, Tk); }
  }
  if (i < r) for (let d = 0; d < D; d += 4) pvColumns4(O + <usize>i * row, P + <usize>i * pr, V, row, d, Tk);
}

/** Columns d..d+3 of one output row o from probabilities p (Tk), as weightedV. */
function pvColumns4(o: usize, p: usize, V: usize, row: usize, d: i32, Tk: i32): void {
  let s = f32x4.splat(0);
  for (let t0 = 0; t0 < Tk; t0 += KC) {
    const t1 = min<i32>(Tk, t0 + KC);
    let a = f32x4.splat(0);
    for (let t = t0; t < t1; t++) a = madd(v128.load32_splat(p + (<usize>t << 2)), v128.load(V + <usize>t * row + (<usize>d << 2)), a);
    s = t0 == 0 ? a : f32x4.add(a, s);
  }
  v128.store(o + (<usize>d << 2), s);
}
