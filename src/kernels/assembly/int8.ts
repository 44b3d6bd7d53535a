// Dense int8 kernels of the int8 interface (src/kernels/int8.ts): int8 x int8 GEMM with exact int32
// sums, W8A32 (float activations x int8 weights), per-token activation quantization and the int8
// embedding lookup. Each export takes (th, tid, nth, ...): chunk tid of nth owns a contiguous share of
// output rows (weight rows o for the products, token rows for quantize/embed).
//
// int8 x int8: 8 weights and 8 activations are loaded sign-extended to int16 (load8x8_s) and
// multiplied pairwise into int32 lanes (i32x4.dot_i16x8_s: |a·b + c·d| <= 2^15, exact); the lanes are
// summed exactly, so any order gives the reference's integer. The float epilogue (putI) then follows
// the interface's order: f32(acc) · xScale[n], · wScale[o], + bias[o], each a float32 operation.
//
// W8A32: weights are widened to float32 in registers; sums run in float32 lanes over column blocks of
// CB and are gathered in float64 (the interface's tolerance then holds for any I: at most ~CB/4 float32
// roundings per lane and block).
import { madd, splitStart } from './simd';

/** Column block of the W8A32 float32 partial sums. */
const CB: i32 = 128;

// @ts-ignore: decorator
@inline export function hsumI(v: v128): i32 {
  const s = i32x4.add(v, v128.shuffle<i32>(v, v, 2, 3, 0, 1));
  return i32x4.extract_lane(s, 0) + i32x4.extract_lane(s, 1);
}

// @ts-ignore: decorator
@inline export function hsumF(v: v128): f64 {
  const s = f32x4.add(v, v128.shuffle<f32>(v, v, 2, 3, 0, 1));
  return <f64>(f32x4.extract_lane(s, 0) + f32x4.extract_lane(s, 1));
}

/** acc + the pairwise int16 dot products of a and b (int32 lanes). */
// @ts-ignore: decorator
@inline export function dotAdd(acc: v128, a: v128, b: v128): v128 { return i32x4.add(acc, i32x4.dot_i16x8_s(a, b)); }

// @ts-ignore: decorator
@inline export function i8at(p: usize, i: i32): i32 { return <i32>load<i8>(p + <usize>i); }

// @ts-ignore: decorator
@inline export function f32at(p: usize, i: i32): f32 { return load<f32>(p + (<usize>i << 2)); }

/** y[n,o] = f32(f32(f32(acc) · xs[n]) · ws[o]) (+ bias[o]); bias 0: none. */
// @ts-ignore: decorator
@inline export function putI(y: usize, O: i32, n: i32, o: i32, acc: i32, xs: usize, ws: usize, bias: usize): void {
  let v: f32 = <f32>acc * f32at(xs, n);
  v = v * f32at(ws, o);
  if (bias) v = v + f32at(bias, o);
  store<f32>(y + (<usize>(n * O + o) << 2), v);
}

/** y[n,o] = f32(f32(sum) · ws[o]) (+ bias[o]). */
// @ts-ignore: decorator
@inline export function putF(y: usize, O: i32, n: i32, o: i32, sum: f64, ws: usize, bias: usize): void {
  let v: f32 = <f32>sum * f32at(ws, o);
  if (bias) v = v + f32at(bias, o);
  store<f32>(y + (<usize>(n * O + o) << 2), v);
}

/** [Σa, Σb, Σc, Σd]: four int32 lane sums in one vector (exact). */
// @ts-ignore: decorator
@inline export function hsum4(a: v128, b: v128, c: v128, d: v128): v128 {
  const ab = i32x4.add(v128.shuffle<i32>(a, b, 0, 2, 4, 6), v128.shuffle<i32>(a, b, 1, 3, 5, 7));
  const cd = i32x4.add(v128.shuffle<i32>(c, d, 0, 2, 4, 6), v128.shuffle<i32>(c, d, 1, 3, 5, 7));
  return i32x4.add(v128.shuffle<i32>(ab, cd, 0, 2, 4, 6), v128.shuffle<i32>(ab, cd, 1, 3, 5, 7));
}

// @ts-ignore: decorator
@inline export function vec4(a: i32, b: i32, c: i32, d: i32): v128 {
  return i32x4.replace_lane(i32x4.replace_lane(i32x4.replace_lane(i32x4.splat(a), 1, b), 2, c), 3, d);
}

/** y[n, o..o+3] from the 4 rows' int32 sums s, in putI's rounding order (lane-wise float32 operations). */
// @ts-ignore: decorator
@inline export function putRows4(y: usize, O: i32, n: i32, o: i32, s: v128, xs: f32, ws: usize, bias: usize): void {
  let v = f32x4.mul(f32x4.convert_i32x4_s(s), f32x4.splat(xs));
  v = f32x4.mul(v, v128.load(ws + (<usize>o << 2)));
  if (bias) v = f32x4.add(v, v128.load(bias + (<usize>o << 2)));
  v128.store(y + (<usize>(n * O + o) << 2), v);
}

/** 4 weight rows x 2 tokens, int8 x int8. */
function i8Tile4x2(y: usize, x0: usize, n: i32, xs: usize, w0: usize, o: i32, ws: usize, bias: usize, O: i32, I: i32): void {
  const x1 = x0 + <usize>I, w1 = w0 + <usize>I, w2 = w1 + <usize>I, w3 = w2 + <usize>I;
  let a00 = i32x4.splat(0), a01 = i32x4.splat(0), a10 = i32x4.splat(0), a11 = i32x4.splat(0);
  let a20 = i32x4.splat(0), a21 = i32x4.splat(0), a30 = i32x4.splat(0), a31 = i32x4.splat(0);
  const I8 = I & ~7;
  for (let i = 0; i < I8; i += 8) {
    const p = <usize>i, u = v128.load8x8_s(x0 + p), v = v128.load8x8_s(x1 + p);
    let w = v128.load8x8_s(w0 + p);
    a00 = dotAdd(a00, w, u); a01 = dotAdd(a01, w, v);
    w = v128.load8x8_s(w1 + p);
    a10 = dotAdd(a10, w, u); a11 = dotAdd(a11, w, v);
    w = v128.load8x8_s(w2 + p);
    a20 = dotAdd(a20, w, u); a21 = dotAdd(a21, w, v);
    w = v128.load8x8_s(w3 + p);
    a30 = dotAdd(a30, w, u); a31 = dotAdd(a31, w, v);
  }
  let s0 = hsum4(a00, a10, a20, a30), s1 = hsum4(a01, a11, a21, a31);
  if (I8 < I) {
    let t00 = 0, t01 = 0, t10 = 0, t11 = 0, t20 = 0, t21 = 0, t30 = 0, t31 = 0;
    for (let i = I8; i < I; i++) {
      const u = i8at(x0, i), v = i8at(x1, i);
      let w = i8at(w0, i); t00 += w * u; t01 += w * v;
      w = i8at(w1, i); t10 += w * u; t11 += w * v;
      w = i8at(w2, i); t20 += w * u; t21 += w * v;
      w = i8at(w3, i); t30 += w * u; t31 += w * v;
    }
    s0 = i32x4.add(s0, vec4(t00, t10, t20, t30)); s1 = i32x4.add(s1, vec4(t01, t11, t21, t31));
  }
  putRows4(y, O, n, o, s0, f32at(xs, n), ws, bias);
  putRows4(y, O, n + 1, o, s1, f32at(xs, n + 1), ws, bias);
}

/** 4 weight rows x 1 token (decode), 16 columns per step. */
function i8Tile4x1(y: usize, x0: usize, n: i32, xs: usize, w0: usize, o: i32, ws: usize, bias: usize, O: i32, I: i32): void {
  const w1 = w0 + <usize>I, w2 = w1 + <usize>I, w3 = w2 + <usize>I;
  let a0 = i32x4.splat(0), a1 = i32x4.splat(0), a2 = i32x4.splat(0), a3 = i32x4.splat(0);
  let i = 0;
  for (; i + 16 <= I; i += 16) {
    const p = <usize>i, u = v128.load8x8_s(x0 + p), v = v128.load8x8_s(x0 + p, 8);
    a0 = dotAdd(dotAdd(a0, v128.load8x8_s(w0 + p), u), v128.load8x8_s(w0 + p, 8), v);
    a1 = dotAdd(dotAdd(a1, v128.load8x8_s(w1 + p), u), v128.load8x8_s(w1 + p, 8), v);
    a2 = dotAdd(dotAdd(a2, v128.load8x8_s(w2 + p), u), v128.load8x8_s(w2 + p, 8), v);
    a3 = dotAdd(dotAdd(a3, v128.load8x8_s(w3 + p), u), v128.load8x8_s(w3 + p, 8), v);
  }
  if (i + 8 <= I) {
    const p = <usize>i, u = v128.load8x8_s(x0 + p);
    a0 = dotAdd(a0, v128.load8x8_s(w0 + p), u); a1 = dotAdd(a1, v128.load8x8_s(w1 + p), u);
    a2 = dotAdd(a2, v128.load8x8_s(w2 + p), u); a3 = dotAdd(a3, v128.load8x8_s(w3 + p), u);
    i += 8;
  }
  let s = hsum4(a0, a1, a2, a3);
  if (i < I) {
    let t0 = 0, t1 = 0, t2 = 0, t3 = 0;
    for (; i < I; i++) {
      const u = i8at(x0, i);
      t0 += i8at(w0, i) * u; t1 += i8at(w1, i) * u; t2 += i8at(w2, i) * u; t3 += i8at(w3, i) * u;
    }
    s = i32x4.add(s, vec4(t0, t1, t2, t3));
  }
  putRows4(y, O, n, o, s, f32at(xs, n), ws, bias);
}

/** One weight row x one token. */
function i8Dot(x0: usize, w0: usize, I: i32): i32 {
  let a = i32x4.splat(0);
  const I8 = I & ~7;
  for (let i = 0; i < I8; i += 8) a = dotAdd(a, v128.load8x8_s(w0 + <usize>i), v128.load8x8_s(x0 + <usize>i));
  let s = hsumI(a);
  for (let i = I8; i < I; i++) s += i8at(w0, i) * i8at(x0, i);
  return s;
}

/**
 * Tokens per pass over the weights (even, >= 2): their activation rows (rowBytes each) fill <= 16 KiB,
 * so they stay in L1 while every 4-row weight tile streams past them.
 */
// @ts-ignore: decorator
@inline function tokenBlock(rowBytes: i32): i32 { return max<i32>(2, (16384 / max<i32>(rowBytes, 1)) & ~1); }

/**
 * y (N,O) = (xq (N,I) · Wq (O,I)ᵀ) · xScale[n] · wScale[o] (+ bias); rows of W split across chunks,
 * tokens in L1-sized blocks, 4 x 2 register tiles (4 x 1 for an odd token: decode).
 */
export function gemmI8(th: i32, tid: i32, nth: i32, y: usize, xq: usize, xs: usize, W: usize, ws: usize, bias: usize,
  N: i32, O: i32, I: i32): void {
  const o0 = splitStart(O, nth, tid, 4), o1 = splitStart(O, nth, tid + 1, 4), TB = tokenBlock(I);
  for (let n0 = 0; n0 < N; n0 += TB) {
    const n1 = min<i32>(N, n0 + TB);
    let o = o0;
    for (; o + 4 <= o1; o += 4) {
      const w0 = W + <usize>(o * I);
      let n = n0;
      for (; n + 2 <= n1; n += 2) i8Tile4x2(y, xq + <usize>(n * I), n, xs, w0, o, ws, bias, O, I);
      if (n < n1) i8Tile4x1(y, xq + <usize>(n * I), n, xs, w0, o, ws, bias, O, I);
    }
    for (; o < o1; o++) {
      for (let n = n0; n < n1; n++) putI(y, O, n, o, i8Dot(xq + <usize>(n * I), W + <usize>(o * I), I), xs, ws, bias);
    }
  }
}

// ------------------------------------------------------------------------------------------ W8A32

/** int16 lanes 0-3 / 4-7 of w as float32. */
// @ts-ignore: decorator
@inline export function wlo(w: v128): v128 { return f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(w)); }
// @ts-ignore: decorator
@inline export function whi(w: v128): v128 { return f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(w)); }

/** 4 weight rows x 2 tokens, float activations: float32 lanes per column block, float64 totals. */
function f32Tile4x2(y: usize, x0: usize, n: i32, w0: usize, o: i32, ws: usize, bias: usize, O: i32, I: i32): void {
  const x1 = x0 + (<usize>I << 2), w1 = w0 + <usize>I, w2 = w1 + <usize>I, w3 = w2 + <usize>I;
  let t00: f64 = 0, t01: f64 = 0, t10: f64 = 0, t11: f64 = 0, t20: f64 = 0, t21: f64 = 0, t30: f64 = 0, t31: f64 = 0;
  const I8 = I & ~7;
  for (let c0 = 0; c0 < I8; c0 += CB) {
    const c1 = min<i32>(c0 + CB, I8);
    let a00 = f32x4.splat(0), a01 = f32x4.splat(0), a10 = f32x4.splat(0), a11 = f32x4.splat(0);
    let a20 = f32x4.splat(0), a21 = f32x4.splat(0), a30 = f32x4.splat(0), a31 = f32x4.splat(0);
    for (let i = c0; i < c1; i += 8) {
      const p = <usize>i, q = p << 2;
      let w = v128.load8x8_s(w0 + p);
      let lo = f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(w)), hi = f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(w));
      a00 = madd(v128.load(x0 + q, 16), hi, madd(v128.load(x0 + q), lo, a00));
      a01 = madd(v128.load(x1 + q, 16), hi, madd(v128.load(x1 + q), lo, a01));
      w = v128.load8x8_s(w1 + p);
      lo = f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(w)); hi = f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(w));
      a10 = madd(v128.load(x0 + q, 16), hi, madd(v128.load(x0 + q), lo, a10));
      a11 = madd(v128.load(x1 + q, 16), hi, madd(v128.load(x1 + q), lo, a11));
      w = v128.load8x8_s(w2 + p);
      lo = f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(w)); hi = f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(w));
      a20 = madd(v128.load(x0 + q, 16), hi, madd(v128.load(x0 + q), lo, a20));
      a21 = madd(v128.load(x1 + q, 16), hi, madd(v128.load(x1 + q), lo, a21));
      w = v128.load8x8_s(w3 + p);
      lo = f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(w)); hi = f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(w));
      a30 = madd(v128.load(x0 + q, 16), hi, madd(v128.load(x0 + q), lo, a30));
      a31 = madd(v128.load(x1 + q, 16), hi, madd(v128.load(x1 + q), lo, a31));
    }
    t00 += hsumF(a00); t01 += hsumF(a01); t10 += hsumF(a10); t11 += hsumF(a11);
    t20 += hsumF(a20); t21 += hsumF(a21); t30 += hsumF(a30); t31 += hsumF(a31);
  }
  for (let i = I8; i < I; i++) {
    const u = <f64>f32at(x0, i), v = <f64>f32at(x1, i);
    let w = <f64>i8at(w0, i); t00 += w * u; t01 += w * v;
    w = <f64>i8at(w1, i); t10 += w * u; t11 += w * v;
    w = <f64>i8at(w2, i); t20 += w * u; t21 += w * v;
    w = <f64>i8at(w3, i); t30 += w * u; t31 += w * v;
  }
  putF(y, O, n, o, t00, ws, bias); putF(y, O, n + 1, o, t01, ws, bias);
  putF(y, O, n, o + 1, t10, ws, bias); putF(y, O, n + 1, o + 1, t11, ws, bias);
  putF(y, O, n, o + 2, t20, ws, bias); putF(y, O, n + 1, o + 2, t21, ws, bias);
  putF(y, O, n, o + 3, t30, ws, bias); putF(y, O, n + 1, o + 3, t31, ws, bias);
}

/** One weight row x one token, float activations. */
function f32Dot(x0: usize, w0: usize, I: i32): f64 {
  let t: f64 = 0;
  const I8 = I & ~7;
  for (let c0 = 0; c0 < I8; c0 += CB) {
    const c1 = min<i32>(c0 + CB, I8);
    let a = f32x4.splat(0), b = f32x4.splat(0);
    for (let i = c0; i < c1; i += 8) {
      const w = v128.load8x8_s(w0 + <usize>i), q = <usize>i << 2;
      a = madd(v128.load(x0 + q), f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(w)), a);
      b = madd(v128.load(x0 + q, 16), f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(w)), b);
    }
    t += hsumF(f32x4.add(a, b));
  }
  for (let i = I8; i < I; i++) t += <f64>f32at(x0, i) * <f64>i8at(w0, i);
  return t;
}

/** 4 weight rows x 1 token, float activations. */
function f32Tile4x1(y: usize, x0: usize, n: i32, w0: usize, o: i32, ws: usize, bias: usize, O: i32, I: i32): void {
  const w1 = w0 + <usize>I, w2 = w1 + <usize>I, w3 = w2 + <usize>I;
  let t0: f64 = 0, t1: f64 = 0, t2: f64 = 0, t3: f64 = 0;
  const I8 = I & ~7;
  for (let c0 = 0; c0 < I8; c0 += CB) {
    const c1 = min<i32>(c0 + CB, I8);
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
    for (let i = c0; i < c1; i += 8) {
      const p = <usize>i, q = p << 2, u = v128.load(x0 + q), v = v128.load(x0 + q, 16);
      let w = v128.load8x8_s(w0 + p);
      a0 = madd(v, whi(w), madd(u, wlo(w), a0));
      w = v128.load8x8_s(w1 + p);
      a1 = madd(v, whi(w), madd(u, wlo(w), a1));
      w = v128.load8x8_s(w2 + p);
      a2 = madd(v, whi(w), madd(u, wlo(w), a2));
      w = v128.load8x8_s(w3 + p);
      a3 = madd(v, whi(w), madd(u, wlo(w), a3));
    }
    t0 += hsumF(a0); t1 += hsumF(a1); t2 += hsumF(a2); t3 += hsumF(a3);
  }
  for (let i = I8; i < I; i++) {
    const u = <f64>f32at(x0, i);
    t0 += <f64>i8at(w0, i) * u; t1 += <f64>i8at(w1, i) * u; t2 += <f64>i8at(w2, i) * u; t3 += <f64>i8at(w3, i) * u;
  }
  putF(y, O, n, o, t0, ws, bias); putF(y, O, n, o + 1, t1, ws, bias);
  putF(y, O, n, o + 2, t2, ws, bias); putF(y, O, n, o + 3, t3, ws, bias);
}

/** y (N,O) = (x (N,I) · Wq (O,I)ᵀ) · wScale[o] (+ bias); rows of W split across chunks. */
export function gemmW8A32(th: i32, tid: i32, nth: i32, y: usize, x: usize, W: usize, ws: usize, bias: usize,
  N: i32, O: i32, I: i32): void {
  const o0 = splitStart(O, nth, tid, 4), o1 = splitStart(O, nth, tid + 1, 4), TB = tokenBlock(I << 2);
  const xrow = <usize>I << 2;
  for (let n0 = 0; n0 < N; n0 += TB) {
    const n1 = min<i32>(N, n0 + TB);
    let o = o0;
    for (; o + 4 <= o1; o += 4) {
      const w0 = W + <usize>(o * I);
      let n = n0;
      for (; n + 2 <= n1; n += 2) f32Tile4x2(y, x + <usize>n * xrow, n, w0, o, ws, bias, O, I);
      if (n < n1) f32Tile4x1(y, x + <usize>n * xrow, n, w0, o, ws, bias, O, I);
    }
    for (; o < o1; o++) {
      for (let n = n0; n < n1; n++) putF(y, O, n, o, f32Dot(x + <usize>n * xrow, W + <usize>(o * I), I), ws, bias);
    }
  }
}

// ------------------------------------------------------------------------------ quantize and embed

/**
 * xq (N,C), xScale (N) = per-token max-abs quantization of x (N,C) to `bits` (quant quantizeTokens):
 * s = f32(max|x| / qmax) (1 when that is not > 0), q = clamp(roundHalfEven(f32(x / s)), qmin, qmax).
 * pmax skips NaN like the reference's `a > m`; a NaN quotient survives pmax/pmin and truncates to 0,
 * as a NaN stored into an Int8Array does. Token rows split across chunks.
 */
export function quantizeRowsI8(th: i32, tid: i32, nth: i32, xq: usize, xs: usize, x: usize, N: i32, C: i32,
  bits: i32): void {
  const n0 = splitStart(N, nth, tid, 1), n1 = splitStart(N, nth, tid + 1, 1);
  const qmax = <f32>((1 << (bits - 1)) - 1), qmin = -qmax - 1;
  const vmax = f32x4.splat(qmax), vmin = f32x4.splat(qmin);
  const C16 = C & ~15;
  for (let n = n0; n < n1; n++) {
    const r = x + (<usize>(n * C) << 2), q = xq + <usize>(n * C);
    let mv = f32x4.splat(0);
    let c = 0;
    for (; c + 4 <= C; c += 4) mv = f32x4.pmax(mv, f32x4.abs(v128.load(r + (<usize>c << 2))));
    let m = max<f32>(max<f32>(f32x4.extract_lane(mv, 0), f32x4.extract_lane(mv, 1)),
      max<f32>(f32x4.extract_lane(mv, 2), f32x4.extract_lane(mv, 3)));
    for (; c < C; c++) { const a = abs<f32>(f32at(r, c)); if (a > m) m = a; }
    let s: f32 = m / qmax;
    if (!(s > 0)) s = 1;
    store<f32>(xs + (<usize>n << 2), s);
    const sv = f32x4.splat(s);
    for (c = 0; c < C16; c += 16) {
      const p = r + (<usize>c << 2);
      const q0 = qv(v128.load(p), sv, vmin, vmax), q1 = qv(v128.load(p, 16), sv, vmin, vmax);
      const q2 = qv(v128.load(p, 32), sv, vmin, vmax), q3 = qv(v128.load(p, 48), sv, vmin, vmax);
      v128.store(q + <usize>c, i8x16.narrow_i16x8_s(i16x8.narrow_i32x4_s(q0, q1), i16x8.narrow_i32x4_s(q2, q3)));
    }
    for (; c < C; c++) {
      const v: f32 = f32at(r, c) / s;
      const t = nearest<f32>(v < qmin ? qmin : v > qmax ? qmax : v);
      store<i8>(q + <usize>c, t != t ? 0 : <i8><i32>t);
    }
  }
}

/** Four quantized lanes as int32: clamp (NaN passes), round half to even, truncate (NaN -> 0). */
// @ts-ignore: decorator
@inline function qv(v: v128, s: v128, lo: v128, hi: v128): v128 {
  return i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.pmin(f32x4.pmax(f32x4.div(v, s), lo), hi)));
}

/** out (N,C) = rows ids[n] of Wq (V,C) times wScale[ids[n]]; token rows split across chunks. */
export function embedI8(th: i32, tid: i32, nth: i32, out: usize, ids: usize, W: usize, ws: usize, N: i32, C: i32): void {
  const n0 = splitStart(N, nth, tid, 1), n1 = splitStart(N, nth, tid + 1, 1);
  const C8 = C & ~7;
  for (let n = n0; n < n1; n++) {
    const id = load<i32>(ids + (<usize>n << 2)), s = f32at(ws, id), sv = f32x4.splat(s);
    const w = W + <usize>id * <usize>C, o = out + (<usize>(n * C) << 2);
    for (let c = 0; c < C8; c += 8) {
      const v = v128.load8x8_s(w + <usize>c), p = o + (<usize>c << 2);
      v128.store(p, f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(v)), sv));
      v128.store(p, f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(v)), sv), 16);
    }
    for (let c = C8; c < C; c++) store<f32>(o + (<usize>c << 2), <f32>i8at(w, c) * s);
  }
}
