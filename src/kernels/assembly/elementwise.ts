// Elementwise and small structured kernels: add/scale/bias, activations and gated units, AdamW,
// sum of squares, rotary embeddings, embedding backward. Each export takes (th, tid, nth, ...): thread th
// runs chunk tid of nth, a contiguous share (16-element aligned) unless noted.
import {
  ERF0, ERF1, ERF2, ERF3, ERF4, ERF5, ERF6, ERF7, ERF8, ERF9, GELU_3A, GELU_A, HALF, INV_SQRT_2PI, K, madd, NEG_HALF, ONE,
  SIGN, splitStart, SQRT1_2, SQRT_2_OVER_PI, TWO, vexp,
} from './simd';

// @ts-ignore: decorator
@inline function p4(base: usize, i: i32): usize { return base + (<usize>i << 2); }

export function add(th: i32, tid: i32, nth: i32, out: usize, a: usize, b: usize, n: i32): void {
  const i0 = splitStart(n, nth, tid, 16), i1 = splitStart(n, nth, tid + 1, 16);
  let i = i0;
  for (; i + 4 <= i1; i += 4) v128.store(p4(out, i), f32x4.add(v128.load(p4(a, i)), v128.load(p4(b, i))));
  for (; i < i1; i++) store<f32>(p4(out, i), load<f32>(p4(a, i)) + load<f32>(p4(b, i)));
}

export function scale(th: i32, tid: i32, nth: i32, out: usize, a: usize, s: f32, n: i32): void {
  const i0 = splitStart(n, nth, tid, 16), i1 = splitStart(n, nth, tid + 1, 16);
  const sv = f32x4.splat(s);
  let i = i0;
  for (; i + 4 <= i1; i += 4) v128.store(p4(out, i), f32x4.mul(v128.load(p4(a, i)), sv));
  for (; i < i1; i++) store<f32>(p4(out, i), load<f32>(p4(a, i)) * s);
}

/** out (N,C) += bias (C), rows split across threads. */
export function addBias(th: i32, tid: i32, nth: i32, out: usize, bias: usize, N: i32, C: i32): void {
  const i0 = splitStart(N, nth, tid, 1), i1 = splitStart(N, nth, tid + 1, 1);
  const C4 = C & ~3;
  for (let i = i0; i < i1; i++) {
    const o = p4(out, i * C);
    for (let c = 0; c < C4; c += 4) v128.store(p4(o, c), f32x4.add(v128.load(p4(o, c)), v128.load(p4(bias, c))));
    for (let c = C4; c < C; c++) store<f32>(p4(o, c), load<f32>(p4(o, c)) + load<f32>(p4(bias, c)));
  }
}

/** dBias (C) += column sums of dOut (N,C); columns split across threads so no reduction is needed. */
export function biasBackward(th: i32, tid: i32, nth: i32, dBias: usize, dOut: usize, N: i32, C: i32): void {
  const c0 = splitStart(C, nth, tid, 16), c1 = splitStart(C, nth, tid + 1, 16);
  // 16 columns at a time in registers, rows streamed
  let c = c0;
  for (; c + 16 <= c1; c += 16) {
    let s0 = f32x4.splat(0), s1 = f32x4.splat(0), s2 = f32x4.splat(0), s3 = f32x4.splat(0);
    for (let i = 0; i < N; i++) {
      const r = p4(dOut, i * C + c);
      s0 = f32x4.add(s0, v128.load(r)); s1 = f32x4.add(s1, v128.load(r, 16));
      s2 = f32x4.add(s2, v128.load(r, 32)); s3 = f32x4.add(s3, v128.load(r, 48));
    }
    const d = p4(dBias, c);
    v128.store(d, f32x4.add(v128.load(d), s0)); v128.store(d, f32x4.add(v128.load(d, 16), s1), 16);
    v128.store(d, f32x4.add(v128.load(d, 32), s2), 32); v128.store(d, f32x4.add(v128.load(d, 48), s3), 48);
  }
  for (; c < c1; c++) {
    let s: f32 = 0;
    for (let i = 0; i < N; i++) s += load<f32>(p4(dOut, i * C + c));
    store<f32>(p4(dBias, c), load<f32>(p4(dBias, c)) + s);
  }
}

// ------------------------------------------------------------------ activations
// kind: 0 relu, 1 gelu (erf), 2 gelu_tanh, 3 silu

/** erf per lane (Numerical Recipes' erfc Chebyshev fit, |error| < 1.2e-7, as the TS reference). */
// @ts-ignore: decorator
@inline function verf(x: v128): v128 {
  const z = f32x4.abs(x);
  const t = f32x4.div(K(ONE), madd(K(HALF), z, K(ONE)));
  let p = madd(K(ERF9), t, K(ERF8));
  p = madd(p, t, K(ERF7));
  p = madd(p, t, K(ERF6));
  p = madd(p, t, K(ERF5));
  p = madd(p, t, K(ERF4));
  p = madd(p, t, K(ERF3));
  p = madd(p, t, K(ERF2));
  p = madd(p, t, K(ERF1));
  p = madd(p, t, K(ERF0));
  const r = f32x4.mul(t, vexp(f32x4.sub(p, f32x4.mul(z, z))));
  // erf(-x) = -erf(x): copy the sign bit of x onto 1 - r
  return v128.or(f32x4.sub(K(ONE), r), v128.and(x, K(SIGN)));
}

/** tanh per lane via 1 - 2/(e^{2|u|}+1) with the sign of u restored. */
// @ts-ignore: decorator
@inline function vtanh(u: v128): v128 {
  const e = vexp(f32x4.mul(f32x4.abs(u), K(TWO)));
  const t = f32x4.sub(K(ONE), f32x4.div(K(TWO), f32x4.add(e, K(ONE))));
  return v128.or(t, v128.and(u, K(SIGN)));
}

// @ts-ignore: decorator
@inline function vsigmoid(x: v128): v128 {
  return f32x4.div(K(ONE), f32x4.add(K(ONE), vexp(f32x4.neg(x))));
}

// @ts-ignore: decorator
@inline function act(kind: i32, x: v128): v128 {
  if (kind == 0) return f32x4.pmax(x, f32x4.splat(0));
  if (kind == 1) return f32x4.mul(f32x4.mul(K(HALF), x), f32x4.add(K(ONE), verf(f32x4.mul(x, K(SQRT1_2)))));
  if (kind == 2) {
    const x3 = f32x4.mul(f32x4.mul(x, x), x);
    const u = f32x4.mul(K(SQRT_2_OVER_PI), madd(K(GELU_A), x3, x));
    return f32x4.mul(f32x4.mul(K(HALF), x), f32x4.add(K(ONE), vtanh(u)));
  }
  return f32x4.mul(x, vsigmoid(x));
}

// @ts-ignore: decorator
@inline function actGrad(kind: i32, x: v128): v128 {
  if (kind == 0) return v128.and(f32x4.gt(x, f32x4.splat(0)), K(ONE));
  if (kind == 1) {
    const cdf = f32x4.mul(K(HALF), f32x4.add(K(ONE), verf(f32x4.mul(x, K(SQRT1_2)))));
    const pdf = f32x4.mul(K(INV_SQRT_2PI), vexp(f32x4.mul(K(NEG_HALF), f32x4.mul(x, x))));
    return madd(x, pdf, cdf);
  }
  if (kind == 2) {
    const x2 = f32x4.mul(x, x);
    const u = f32x4.mul(K(SQRT_2_OVER_PI), madd(f32x4.mul(K(GELU_A), x2), x, x));
    const t = vtanh(u);
    const du = f32x4.mul(K(SQRT_2_OVER_PI), madd(K(GELU_3A), x2, K(ONE)));
    const a = f32x4.mul(K(HALF), f32x4.add(K(ONE), t));
    return madd(f32x4.mul(f32x4.mul(K(HALF), x), f32x4.sub(K(ONE), f32x4.mul(t, t))), du, a);
  }
  const s = vsigmoid(x);
  return f32x4.mul(s, madd(x, f32x4.sub(K(ONE), s), K(ONE)));
}

/** Loads up to 4 floats (zero padded) so tails run through the same vector code. */
// @ts-ignore: decorator
@inline function loadN(p: usize, m: i32): v128 {
  if (m >= 4) return v128.load(p);
  let v = f32x4.splat(0);
  if (m > 0) v = f32x4.replace_lane(v, 0, load<f32>(p));
  if (m > 1) v = f32x4.replace_lane(v, 1, load<f32>(p, 4));
  if (m > 2) v = f32x4.replace_lane(v, 2, load<f32>(p, 8));
  return v;
}

// @ts-ignore: decorator
@inline function storeN(p: usize, v: v128, m: i32): void {
  if (m >= 4) { v128.store(p, v); return; }
  if (m > 0) store<f32>(p, f32x4.extract_lane(v, 0));
  if (m > 1) store<f32>(p, f32x4.extract_lane(v, 1), 4);
  if (m > 2) store<f32>(p, f32x4.extract_lane(v, 2), 8);
}

export function activationForward(th: i32, tid: i32, nth: i32, kind: i32, out: usize, inp: usize, n: i32): void {
  const i0 = splitStart(n, nth, tid, 16), i1 = splitStart(n, nth, tid + 1, 16);
  for (let i = i0; i < i1; i += 4) {
    const m = i1 - i;
    storeN(p4(out, i), act(kind, loadN(p4(inp, i), m)), m);
  }
}

export function activationBackward(th: i32, tid: i32, nth: i32, kind: i32, dInp: usize, dOut: usize, inp: usize, n: i32,
  acc: bool): void {
  const i0 = splitStart(n, nth, tid, 16), i1 = splitStart(n, nth, tid + 1, 16);
  for (let i = i0; i < i1; i += 4) {
    const m = i1 - i;
    let g = f32x4.mul(actGrad(kind, loadN(p4(inp, i), m)), loadN(p4(dOut, i), m));
    if (acc) g = f32x4.add(g, loadN(p4(dInp, i), m));
    storeN(p4(dInp, i), g, m);
  }
}

export function gluForward(th: i32, tid: i32, nth: i32, kind: i32, out: usize, gate: usize, up: usize, n: i32): void {
  const i0 = splitStart(n, nth, tid, 16), i1 = splitStart(n, nth, tid + 1, 16);
  for (let i = i0; i < i1; i += 4) {
    const m = i1 - i;
    storeN(p4(out, i), f32x4.mul(act(kind, loadN(p4(gate, i), m)), loadN(p4(up, i), m)), m);
  }
}

export function gluBackward(th: i32, tid: i32, nth: i32, kind: i32, dGate: usize, dUp: usize, dOut: usize, gate: usize,
  up: usize, n: i32): void {
  const i0 = splitStart(n, nth, tid, 16), i1 = splitStart(n, nth, tid + 1, 16);
  for (let i = i0; i < i1; i += 4) {
    const m = i1 - i;
    const g = loadN(p4(gate, i), m), d = loadN(p4(dOut, i), m), u = loadN(p4(up, i), m);
    storeN(p4(dUp, i), f32x4.mul(act(kind, g), d), m);
    storeN(p4(dGate, i), f32x4.mul(f32x4.mul(actGrad(kind, g), u), d), m);
  }
}

// ------------------------------------------------------------------ optimizer

/** AdamW step; ic1 = 1/(1-b1^t), ic2 = 1/(1-b2^t), decay = 1 - lr*wd (computed in float64 by the caller). */
export function adamw(th: i32, tid: i32, nth: i32, p: usize, g: usize, m: usize, v: usize, n: i32, lr: f32, b1: f32,
  b2: f32, eps: f32, decay: f32, ic1: f32, ic2: f32, gs: f32): void {
  const i0 = splitStart(n, nth, tid, 16), i1 = splitStart(n, nth, tid + 1, 16);
  const vb1 = f32x4.splat(b1), vb2 = f32x4.splat(b2), vc1 = f32x4.splat(1 - b1), vc2 = f32x4.splat(1 - b2);
  const vlr = f32x4.splat(lr), veps = f32x4.splat(eps), vdec = f32x4.splat(decay);
  const vi1 = f32x4.splat(ic1), vi2 = f32x4.splat(ic2), vgs = f32x4.splat(gs);
  for (let i = i0; i < i1; i += 4) {
    const k = i1 - i;
    const gi = f32x4.mul(loadN(p4(g, i), k), vgs);
    const mi = madd(vb1, loadN(p4(m, i), k), f32x4.mul(vc1, gi));
    const vi = madd(vb2, loadN(p4(v, i), k), f32x4.mul(vc2, f32x4.mul(gi, gi)));
    storeN(p4(m, i), mi, k); storeN(p4(v, i), vi, k);
    const den = f32x4.add(f32x4.sqrt(f32x4.mul(vi, vi2)), veps);
    const step = f32x4.div(f32x4.mul(vlr, f32x4.mul(mi, vi1)), den);
    storeN(p4(p, i), f32x4.sub(f32x4.mul(loadN(p4(p, i), k), vdec), step), k);
  }
}

/** Sum of squares of chunk tid, in float64 (exact products), written to out[tid] (f64): the caller adds
 * the chunks' sums in chunk order, so the result does not depend on thread timing. */
export function sumSquares(th: i32, tid: i32, nth: i32, out: usize, x: usize, n: i32): void {
  const i0 = splitStart(n, nth, tid, 16), i1 = splitStart(n, nth, tid + 1, 16);
  let a0 = f64x2.splat(0), a1 = f64x2.splat(0);
  let i = i0;
  for (; i + 4 <= i1; i += 4) {
    const v = v128.load(p4(x, i));
    const lo = f64x2.promote_low_f32x4(v), hi = f64x2.promote_low_f32x4(v128.shuffle<f32>(v, v, 2, 3, 0, 1));
    a0 = f64x2.add(a0, f64x2.mul(lo, lo)); a1 = f64x2.add(a1, f64x2.mul(hi, hi));
  }
  const s = f64x2.add(a0, a1);
  let t = f64x2.extract_lane(s, 0) + f64x2.extract_lane(s, 1);
  for (; i < i1; i++) { const e = <f64>load<f32>(p4(x, i)); t += e * e; }
  store<f64>(out + (<usize>tid << 3), t);
}

// ------------------------------------------------------------------ rope, embedding

/** Rotary embedding in place on x (BH,T,D); rows split across threads. See Backend.rope. */
export function rope(th: i32, tid: i32, nth: i32, x: usize, BH: i32, T: i32, D: i32, pos0: i32, cos: usize, sin: usize,
  inverse: bool): void {
  const rows = BH * T, h = D >> 1, h4 = h & ~3;
  const i0 = splitStart(rows, nth, tid, 1), i1 = splitStart(rows, nth, tid + 1, 1);
  const sgn: f32 = inverse ? -1 : 1, vs = f32x4.splat(sgn);
  for (let r = i0; r < i1; r++) {
    const o = p4(x, r * D), c = (pos0 + r % T) * h;
    const oc = p4(cos, c), os = p4(sin, c), o2 = p4(o, h);
    for (let d = 0; d < h4; d += 4) {
      const x1 = v128.load(p4(o, d)), x2 = v128.load(p4(o2, d));
      const co = v128.load(p4(oc, d)), si = f32x4.mul(vs, v128.load(p4(os, d)));
      v128.store(p4(o, d), f32x4.sub(f32x4.mul(x1, co), f32x4.mul(x2, si)));
      v128.store(p4(o2, d), f32x4.add(f32x4.mul(x2, co), f32x4.mul(x1, si)));
    }
    for (let d = h4; d < h; d++) {
      const x1 = load<f32>(p4(o, d)), x2 = load<f32>(p4(o2, d));
      const co = load<f32>(p4(oc, d)), si = sgn * load<f32>(p4(os, d));
      store<f32>(p4(o, d), x1 * co - x2 * si);
      store<f32>(p4(o2, d), x2 * co + x1 * si);
    }
  }
}

/** out (N,C) = wte[ids[i]] (+ wpe[pos[i]]); rows split across threads. */
export function embeddingForward(th: i32, tid: i32, nth: i32, out: usize, ids: usize, wte: usize, N: i32, C: i32,
  wpe: usize, pos: usize, hasPos: bool): void {
  const i0 = splitStart(N, nth, tid, 1), i1 = splitStart(N, nth, tid + 1, 1);
  const row = <usize>C << 2;
  for (let i = i0; i < i1; i++) {
    const o = p4(out, i * C);
    memory.copy(o, p4(wte, load<i32>(p4(ids, i)) * C), row);
    if (hasPos) addRow(o, p4(wpe, load<i32>(p4(pos, i)) * C), 0, C);
  }
}

/** dWte[ids[i]] += dOut[i] (and dWpe[pos[i]]); columns split across threads so rows never collide. */
export function embeddingBackward(th: i32, tid: i32, nth: i32, dWte: usize, dOut: usize, ids: usize, N: i32, C: i32,
  dWpe: usize, pos: usize, hasPos: bool): void {
  const c0 = splitStart(C, nth, tid, 16), c1 = splitStart(C, nth, tid + 1, 16);
  for (let i = 0; i < N; i++) {
    const src = p4(dOut, i * C);
    addRow(p4(dWte, load<i32>(p4(ids, i)) * C), src, c0, c1);
    if (hasPos) addRow(p4(dWpe, load<i32>(p4(pos, i)) * C), src, c0, c1);
  }
}

// @ts-ignore: decorator
@inline function addRow(d: usize, s: usize, c0: i32, c1: i32): void {
  let c = c0;
  for (; c + 4 <= c1; c += 4) v128.store(p4(d, c), f32x4.add(v128.load(p4(d, c)), v128.load(p4(s, c))));
  for (; c < c1; c++) store<f32>(p4(d, c), load<f32>(p4(d, c)) + load<f32>(p4(s, c)));
}

/** out (A,C,B,D) = inp (A,B,C,D); the (a,b) slabs are split across threads. */
export function permute0213(th: i32, tid: i32, nth: i32, out: usize, inp: usize, A: i32, B: i32, C: i32, D: i32): void {
  const n = A * B, s0 = splitStart(n, nth, tid, 1), s1 = splitStart(n, nth, tid + 1, 1);
  const row = <usize>D << 2;
  for (let ab = s0; ab < s1; ab++) {
    const a = ab / B, b = ab % B;
    for (let c = 0; c < C; c++) {
      memory.copy(out + ((<usize>((a * C + c) * B + b)) * row), inp + ((<usize>(ab * C + c)) * row), row);
    }
  }
}
