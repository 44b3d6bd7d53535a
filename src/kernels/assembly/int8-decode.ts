// Fused single-token decode of the int8 runtime (src/runtime/int8-model.ts, src/kernels/wasm/int8-decode.ts):
// one call runs the whole step (B = 1, T = 1) on the caller's thread, so the ~100 small kernel calls of
// a step cost no JS marshalling. Every op is the kernel the composed forward calls (same function,
// same arguments, one chunk), except attention, whose products are computed here in exactly the order
// of the float GEMM (gemm.ts) it replaces: the step's logits are bit-identical to the composed forward.
//
// The model is described by a table of i32 words in memory (layout below, mirrored in
// wasm/int8-decode.ts); pointers are byte offsets, floats are stored as their bits.
import { madd } from './simd';
import { KC, matmulShare } from './gemm';
import { layerNormForward, rmsNormForward, softmaxForward } from './rows';
import { activationForward, add, embeddingForward, gluForward, rope } from './elementwise';
import { embedI8, gemmI8, gemmW8A32, quantizeRowsI8 } from './int8';
import { gemmBlockI8, gemmCsrI8 } from './int8sparse';
import { gemmBlockW8A32, gemmCsrW8A32 } from './int8sparse-f32';

// ---- table layout (words); keep in sync with wasm/int8-decode.ts
// matrix: format (0 dense, 1 block, 2 csr, -1 absent), O, I, k, values, scale, rowPtr, idx, bias
const MF: i32 = 0, MO: i32 = 1, MI: i32 = 2, MK: i32 = 3, MV: i32 = 4, MS: i32 = 5, MR: i32 = 6, MX: i32 = 7, MB: i32 = 8;
export const MAT_WORDS: i32 = 9;
// header
const H_NLAYER: i32 = 0, H_C: i32 = 1, H_H: i32 = 2, H_KV: i32 = 3, H_D: i32 = 4, H_F: i32 = 5, H_NORM: i32 = 6,
  H_EPS: i32 = 7, H_ACT: i32 = 8, H_GATED: i32 = 9, H_ABITS: i32 = 10, H_COS: i32 = 11, H_SIN: i32 = 12, H_WPE: i32 = 13,
  H_EFLOAT: i32 = 14, H_EVAL: i32 = 15, H_ESCALE: i32 = 16, H_FNW: i32 = 17, H_FNB: i32 = 18, H_TMAX: i32 = 19,
  H_SCALE: i32 = 20, H_WS: i32 = 21, H_IDS: i32 = 22, H_POS: i32 = 23, H_X: i32 = 24, H_X2: i32 = 25, H_N: i32 = 26,
  H_TMP: i32 = 27, H_MEAN: i32 = 28, H_RSTD: i32 = 29, H_Q: i32 = 30, H_K: i32 = 31, H_V: i32 = 32, H_HEADS: i32 = 33,
  H_ATT: i32 = 34, H_UP: i32 = 35, H_GATE: i32 = 36, H_HID: i32 = 37, H_LOGITS: i32 = 38, H_XQ: i32 = 39, H_XS: i32 = 40,
  H_LDT: i32 = 41, H_HEAD: i32 = 42;
export const HEADER_WORDS: i32 = H_HEAD + MAT_WORDS;
// per layer, from HEADER_WORDS + l * LAYER_WORDS; L_KT: the layer's keys transposed, (KV, D, H_LDT) floats
const L_ANW: i32 = 0, L_ANB: i32 = 1, L_MNW: i32 = 2, L_MNB: i32 = 3, L_CK: i32 = 4, L_CV: i32 = 5, L_KT: i32 = 6, L_Q: i32 = 7;
const L_K: i32 = L_Q + MAT_WORDS, L_V: i32 = L_K + MAT_WORDS, L_O: i32 = L_V + MAT_WORDS, L_UP: i32 = L_O + MAT_WORDS;
const L_GATE: i32 = L_UP + MAT_WORDS, L_DOWN: i32 = L_GATE + MAT_WORDS;
export const LAYER_WORDS: i32 = L_DOWN + MAT_WORDS;

/** The layout constants, for the JS side to check its copy against: [MAT, HEADER, LAYER] words. */
export function decodeLayout(i: i32): i32 { return i == 0 ? MAT_WORDS : i == 1 ? HEADER_WORDS : LAYER_WORDS; }

// @ts-ignore: decorator
@inline function wd(t: usize, i: i32): i32 { return load<i32>(t + (<usize>i << 2)); }
// @ts-ignore: decorator
@inline function pt(t: usize, i: i32): usize { return <usize>load<u32>(t + (<usize>i << 2)); }
// @ts-ignore: decorator
@inline function fw(t: usize, i: i32): f32 { return load<f32>(t + (<usize>i << 2)); }
// @ts-ignore: decorator
@inline function p4(base: usize, i: i32): usize { return base + (<usize>i << 2); }

/** y = x · Wᵀ (+ bias) for one token, as linearI8 does: int8 activations (xq, xs) when quantized, else float x. */
function linear(m: usize, y: usize, x: usize, xq: usize, xs: usize, quant: bool): void {
  const f = wd(m, MF), O = wd(m, MO), I = wd(m, MI), k = wd(m, MK), v = pt(m, MV), s = pt(m, MS), b = pt(m, MB);
  const rp = pt(m, MR), ix = pt(m, MX);
  if (quant) {
    if (f == 0) gemmI8(0, 0, 1, y, xq, xs, v, s, b, 1, O, I);
    else if (f == 1) gemmBlockI8(0, 0, 1, y, xq, xs, rp, ix, v, s, b, 1, O, I, k);
    else gemmCsrI8(0, 0, 1, y, xq, xs, rp, ix, v, s, b, 1, O, I);
  } else {
    if (f == 0) gemmW8A32(0, 0, 1, y, x, v, s, b, 1, O, I);
    else if (f == 1) gemmBlockW8A32(0, 0, 1, y, x, rp, ix, v, s, b, 1, O, I, k);
    else gemmCsrW8A32(0, 0, 1, y, x, rp, ix, v, s, b, 1, O, I);
  }
}

/** out (C) = the model's norm of inp (C) with weight w and bias b (layernorm) into the table's scratch. */
function norm(t: usize, out: usize, inp: usize, w: usize, b: usize): void {
  const C = wd(t, H_C), eps = fw(t, H_EPS);
  if (wd(t, H_NORM) == 0) layerNormForward(0, 0, 1, out, pt(t, H_MEAN), pt(t, H_RSTD), inp, w, b, true, 1, C, eps);
  else rmsNormForward(0, 0, 1, out, pt(t, H_RSTD), inp, w, 1, C, eps);
}

/** Quantizes x (I) into the table's xq / xs when activations are quantized. */
function quantize(t: usize, x: usize, I: i32): void {
  const bits = wd(t, H_ABITS);
  if (bits > 0) quantizeRowsI8(0, 0, 1, pt(t, H_XQ), pt(t, H_XS), x, 1, I, bits);
}

/**
 * One decode step: token id at position P (P positions already in the cache, whose pointers are in the
 * layer words). Appends this position's keys and values, leaves the logits (V) at the table's logits.
 * The transposed keys hold positions [0, synced) already (synced <= P); [synced, P) are copied first.
 */
export function decodeStepI8(t: usize, id: i32, P: i32, synced: i32): void {
  const C = wd(t, H_C), H = wd(t, H_H), KV = wd(t, H_KV), D = wd(t, H_D), F = wd(t, H_F);
  const quant = wd(t, H_ABITS) > 0, x = pt(t, H_X), x2 = pt(t, H_X2), n = pt(t, H_N), xq = pt(t, H_XQ), xs = pt(t, H_XS);
  const ids = pt(t, H_IDS), pos = pt(t, H_POS), wpe = pt(t, H_WPE), cos = pt(t, H_COS), sin = pt(t, H_SIN);
  const q = pt(t, H_Q), k = pt(t, H_K), v = pt(t, H_V), heads = pt(t, H_HEADS), Tmax = wd(t, H_TMAX), ldT = wd(t, H_LDT);
  store<i32>(ids, id); store<i32>(pos, P);
  if (wd(t, H_EFLOAT)) embeddingForward(0, 0, 1, x, ids, pt(t, H_EVAL), 1, C, wpe, pos, wpe != 0);
  else {
    embedI8(0, 0, 1, x, ids, pt(t, H_EVAL), pt(t, H_ESCALE), 1, C);
    if (wpe) {
      const tmp = pt(t, H_TMP);
      embeddingForward(0, 0, 1, tmp, pos, wpe, 1, C, 0, 0, false);
      add(0, 0, 1, x, x, tmp, C);
    }
  }
  const NL = wd(t, H_NLAYER);
  for (let l = 0; l < NL; l++) {
    const L = t + (<usize>(HEADER_WORDS + l * LAYER_WORDS) << 2);
    norm(t, n, x, pt(L, L_ANW), pt(L, L_ANB));
    quantize(t, n, C);
    linear(L + (<usize>L_Q << 2), q, n, xq, xs, quant);
    linear(L + (<usize>L_K << 2), k, n, xq, xs, quant);
    linear(L + (<usize>L_V << 2), v, n, xq, xs, quant);
    if (cos) {
      rope(0, 0, 1, q, H, 1, D, P, cos, sin, false);
      rope(0, 0, 1, k, KV, 1, D, P, cos, sin, false);
    }
    const ck = pt(L, L_CK), cv = pt(L, L_CV), kT = pt(L, L_KT), row = <usize>D << 2;
    for (let g = 0; g < KV; g++) {
      const at = <usize>(g * Tmax + P) * row;
      memory.copy(ck + at, k + <usize>g * row, row);
      memory.copy(cv + at, v + <usize>g * row, row);
    }
    syncKeys(kT, ldT, ck, KV, D, Tmax, synced, P + 1);
    attendDecode(heads, pt(t, H_ATT), q, ck, cv, kT, ldT, H, KV, D, P + 1, Tmax, fw(t, H_SCALE), pt(t, H_WS));
    quantize(t, heads, H * D);
    linear(L + (<usize>L_O << 2), x2, heads, xq, xs, quant);
    add(0, 0, 1, x2, x2, x, C);
    norm(t, n, x2, pt(L, L_MNW), pt(L, L_MNB));
    quantize(t, n, C);
    const up = pt(t, H_UP), hid = pt(t, H_HID);
    linear(L + (<usize>L_UP << 2), up, n, xq, xs, quant);
    if (wd(t, H_GATED)) {
      const gate = pt(t, H_GATE);
      linear(L + (<usize>L_GATE << 2), gate, n, xq, xs, quant);
      gluForward(0, 0, 1, wd(t, H_ACT), hid, gate, up, F);
    } else activationForward(0, 0, 1, wd(t, H_ACT), hid, up, F);
    quantize(t, hid, F);
    linear(L + (<usize>L_DOWN << 2), x, hid, xq, xs, quant);
    add(0, 0, 1, x, x, x2, C);
  }
  norm(t, n, x, pt(t, H_FNW), pt(t, H_FNB));
  quantize(t, n, C);
  linear(t + (<usize>H_HEAD << 2), pt(t, H_LOGITS), n, xq, xs, quant);
}

// ------------------------------------------------------------------------------------ attention

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
 * blocks of KC, the blocks' sums added in order. Lanes are 4 columns d; 32 columns (8 independent
 * chains) per pass, then 4 at a time. D % 4 == 0.
 */
export function weightedV(O: usize, P: usize, V: usize, r: i32, D: i32, Tk: i32): void {
  const row = <usize>D << 2;
  for (let i = 0; i < r; i++) {
    const p = P + (<usize>(i * Tk) << 2), o = O + <usize>i * row;
    let d = 0;
    for (; d + 32 <= D; d += 32) {
      let s0 = f32x4.splat(0), s1 = f32x4.splat(0), s2 = f32x4.splat(0), s3 = f32x4.splat(0);
      let s4 = f32x4.splat(0), s5 = f32x4.splat(0), s6 = f32x4.splat(0), s7 = f32x4.splat(0);
      for (let t0 = 0; t0 < Tk; t0 += KC) {
        const t1 = min<i32>(Tk, t0 + KC);
        let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
        let a4 = f32x4.splat(0), a5 = f32x4.splat(0), a6 = f32x4.splat(0), a7 = f32x4.splat(0);
        for (let t = t0; t < t1; t++) {
          const w = v128.load32_splat(p + (<usize>t << 2)), vr = V + <usize>t * row + (<usize>d << 2);
          a0 = madd(w, v128.load(vr), a0); a1 = madd(w, v128.load(vr, 16), a1);
          a2 = madd(w, v128.load(vr, 32), a2); a3 = madd(w, v128.load(vr, 48), a3);
          a4 = madd(w, v128.load(vr, 64), a4); a5 = madd(w, v128.load(vr, 80), a5);
          a6 = madd(w, v128.load(vr, 96), a6); a7 = madd(w, v128.load(vr, 112), a7);
        }
        if (t0 == 0) { s0 = a0; s1 = a1; s2 = a2; s3 = a3; s4 = a4; s5 = a5; s6 = a6; s7 = a7; }
        else {
          s0 = f32x4.add(a0, s0); s1 = f32x4.add(a1, s1); s2 = f32x4.add(a2, s2); s3 = f32x4.add(a3, s3);
          s4 = f32x4.add(a4, s4); s5 = f32x4.add(a5, s5); s6 = f32x4.add(a6, s6); s7 = f32x4.add(a7, s7);
        }
      }
      const od = o + (<usize>d << 2);
      v128.store(od, s0); v128.store(od, s1, 16); v128.store(od, s2, 32); v128.store(od, s3, 48);
      v128.store(od, s4, 64); v128.store(od, s5, 80); v128.store(od, s6, 96); v128.store(od, s7, 112);
    }
    for (; d < D; d += 4) {
      let s = f32x4.splat(0);
      for (let t0 = 0; t0 < Tk; t0 += KC) {
        const t1 = min<i32>(Tk, t0 + KC);
        let a = f32x4.splat(0);
        for (let t = t0; t < t1; t++) a = madd(v128.load32_splat(p + (<usize>t << 2)), v128.load(V + <usize>t * row + (<usize>d << 2)), a);
        s = t0 == 0 ? a : f32x4.add(a, s);
      }
      v128.store(o + (<usize>d << 2), s);
    }
  }
}
