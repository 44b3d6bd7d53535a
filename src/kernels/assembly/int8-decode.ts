// Fused single-token decode of the int8 runtime (src/runtime/int8-model.ts, src/kernels/wasm/int8-decode.ts):
// one call runs the whole step (B = 1, T = 1) on the caller's thread, so the ~100 small kernel calls of
// a step cost no JS marshalling. Every op is the kernel the composed forward calls (same function,
// same arguments, one chunk), except attention (int8-attend.ts: the float GEMM's products in exactly
// its summation order) and the int8 products of 1 x 16 blocks and of the dense head (int8-gemv.ts: the
// same exact integer sums in another order, the same float epilogue): the step's logits are
// bit-identical to the composed forward's.
//
// The model is described by a table of i32 words in memory (layout below, mirrored in
// wasm/int8-decode.ts); pointers are byte offsets, floats are stored as their bits.
import { layerNormForward, rmsNormForward } from './rows';
import { activationForward, add, embeddingForward, gluForward, rope } from './elementwise';
import { embedI8, gemmI8, gemmW8A32, quantizeRowsI8 } from './int8';
import { gemmBlockI8, gemmCsrI8 } from './int8sparse';
import { gemmBlockW8A32, gemmCsrW8A32 } from './int8sparse-f32';
import { attendDecode, syncKeys } from './int8-attend';
import { blockGemv16, gemvTiledI8, groupGemv4, widenI16 } from './int8-gemv';

// ---- table layout (words); keep in sync with wasm/int8-decode.ts
// matrix: format, O, I, k, values, scale, rowPtr, idx, bias, aux. Formats: 0 dense (aux: a copy tiled by
// tileRows4x16, or 0), 1 block, 2 csr, 3 1 x 16 blocks as a flat list (k: the block count, idx: their
// columns, aux: their rows; rowPtr unused), 4 1 x 4 blocks in groups of 4 rows (groupGemv4: values and idx
// the grouped blocks, rowPtr the steps per group, aux the output row of each grouped row, scale and bias
// in group order), -1 absent. Formats 3, 4 and tiled dense need int8 activations.
const MF: i32 = 0, MO: i32 = 1, MI: i32 = 2, MK: i32 = 3, MV: i32 = 4, MS: i32 = 5, MR: i32 = 6, MX: i32 = 7, MB: i32 = 8,
  MA: i32 = 9;
export const MAT_WORDS: i32 = 10;
// header
const H_NLAYER: i32 = 0, H_C: i32 = 1, H_H: i32 = 2, H_KV: i32 = 3, H_D: i32 = 4, H_F: i32 = 5, H_NORM: i32 = 6,
  H_EPS: i32 = 7, H_ACT: i32 = 8, H_GATED: i32 = 9, H_ABITS: i32 = 10, H_COS: i32 = 11, H_SIN: i32 = 12, H_WPE: i32 = 13,
  H_EFLOAT: i32 = 14, H_EVAL: i32 = 15, H_ESCALE: i32 = 16, H_FNW: i32 = 17, H_FNB: i32 = 18, H_TMAX: i32 = 19,
  H_SCALE: i32 = 20, H_WS: i32 = 21, H_IDS: i32 = 22, H_POS: i32 = 23, H_X: i32 = 24, H_X2: i32 = 25, H_N: i32 = 26,
  H_TMP: i32 = 27, H_MEAN: i32 = 28, H_RSTD: i32 = 29, H_Q: i32 = 30, H_K: i32 = 31, H_V: i32 = 32, H_HEADS: i32 = 33,
  H_ATT: i32 = 34, H_UP: i32 = 35, H_GATE: i32 = 36, H_HID: i32 = 37, H_LOGITS: i32 = 38, H_XQ: i32 = 39, H_XS: i32 = 40,
  H_LDT: i32 = 41, H_X16: i32 = 42, H_ACC: i32 = 43, H_HEAD: i32 = 44;
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

/**
 * y = x · Wᵀ (+ bias) for one token, as linearI8 does: int8 activations (the table's xq / x16, xs) when
 * quantized, else float x.
 */
function linear(t: usize, m: usize, y: usize, x: usize, quant: bool): void {
  const f = wd(m, MF), O = wd(m, MO), I = wd(m, MI), k = wd(m, MK), v = pt(m, MV), s = pt(m, MS), b = pt(m, MB);
  const rp = pt(m, MR), ix = pt(m, MX), aux = pt(m, MA), xq = pt(t, H_XQ), xs = pt(t, H_XS);
  if (quant) {
    if (f == 3) blockGemv16(y, pt(t, H_X16), xs, v, ix, aux, k, s, b, O, pt(t, H_ACC));
    else if (f == 4) groupGemv4(y, pt(t, H_X16), xs, v, ix, rp, aux, s, b, O);
    else if (f == 0 && aux) gemvTiledI8(y, pt(t, H_X16), xs, aux, s, b, O, I);
    else if (f == 0) gemmI8(0, 0, 1, y, xq, xs, v, s, b, 1, O, I);
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

/** Quantizes x (I) into the table's xq / xs (and xq widened into x16) when activations are quantized. */
function quantize(t: usize, x: usize, I: i32): void {
  const bits = wd(t, H_ABITS);
  if (bits == 0) return;
  quantizeRowsI8(0, 0, 1, pt(t, H_XQ), pt(t, H_XS), x, 1, I, bits);
  widenI16(pt(t, H_XQ), pt(t, H_X16), I);
}

/**
 * One decode step: token id at position P (P positions already in the cache, whose pointers are in the
 * layer words). Appends this position's keys and values, leaves the logits (V) at the table's logits.
 * The transposed keys hold positions [0, synced) already (synced <= P); [synced, P] are copied first.
 */
export function decodeStepI8(t: usize, id: i32, P: i32, synced: i32): void {
  const C = wd(t, H_C), H = wd(t, H_H), KV = wd(t, H_KV), D = wd(t, H_D), F = wd(t, H_F);
  const quant = wd(t, H_ABITS) > 0, x = pt(t, H_X), x2 = pt(t, H_X2), n = pt(t, H_N);
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
    linear(t, L + (<usize>L_Q << 2), q, n, quant);
    linear(t, L + (<usize>L_K << 2), k, n, quant);
    linear(t, L + (<usize>L_V << 2), v, n, quant);
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
    linear(t, L + (<usize>L_O << 2), x2, heads, quant);
    add(0, 0, 1, x2, x2, x, C);
    norm(t, n, x2, pt(L, L_MNW), pt(L, L_MNB));
    quantize(t, n, C);
    const up = pt(t, H_UP), hid = pt(t, H_HID);
    linear(t, L + (<usize>L_UP << 2), up, n, quant);
    if (wd(t, H_GATED)) {
      const gate = pt(t, H_GATE);
      linear(t, L + (<usize>L_GATE << 2), gate, n, quant);
      gluForward(0, 0, 1, wd(t, H_ACT), hid, gate, up, F);
    } else activationForward(0, 0, 1, wd(t, H_ACT), hid, up, F);
    quantize(t, hid, F);
    linear(t, L + (<usize>L_DOWN << 2), x, hid, quant);
    add(0, 0, 1, x, x, x2, C);
  }
  norm(t, n, x, pt(t, H_FNW), pt(t, H_FNB));
  quantize(t, n, C);
  linear(t, t + (<usize>H_HEAD << 2), pt(t, H_LOGITS), n, quant);
}

