// Row kernels: masked softmax and its backward, cross-entropy with fused backward, LayerNorm and
// RMSNorm forward/backward. Each export takes (th, tid, nth, ...): thread th processes chunk tid of nth
// of the rows.
// Sums run in float32 lanes (the TS reference uses float64; tests bound the difference).
import { hsum, madd, vexp, splitStart } from './simd';
import { rowAffine, rowDot, rowExpSum, rowMax, rowMaxScaled, rowSqDev, rowSum } from './reduce';

// @ts-ignore: decorator
@inline function p4(base: usize, i: i32): usize { return base + (<usize>i << 2); }

/** Rows are dealt in blocks of 8 round-robin so causal (triangular) work balances across threads. */
// @ts-ignore: decorator
@inline function ownsRow(r: i32, nth: i32, tid: i32): bool { return ((r >> 3) % nth) == tid; }

/** P = softmax(scale*S) over the first `visible` keys of each row, 0 beyond; see Backend.softmaxForward. */
export function softmaxForward(th: i32, tid: i32, nth: i32, P: usize, S: usize, rows: i32, Tq: i32, Tk: i32,
  scale: f32, causal: bool, offset: i32): void {
  for (let r = 0; r < rows; r++) {
    if (!ownsRow(r, nth, tid)) continue;
    const s = p4(S, r * Tk), p = p4(P, r * Tk);
    const vis = causal ? max<i32>(0, min<i32>(Tk, r % Tq + offset + 1)) : Tk;
    if (vis > 0) {
      const mx = rowMaxScaled(s, vis, scale);
      const sum = rowExpSum(s, vis, scale, mx, p, true, 1);
      rowAffine(p, p, vis, sum > 0 ? 1 / sum : 0, 0);
    }
    if (vis < Tk) memory.fill(p4(p, vis), 0, <usize>(Tk - vis) << 2);
  }
}

/** dS = scale * P * (dP - sum(P*dP)) per row. dS may alias dP. */
export function softmaxBackward(th: i32, tid: i32, nth: i32, dS: usize, dP: usize, P: usize, rows: i32, Tk: i32,
  scale: f32): void {
  const T4 = Tk & ~3, sc = f32x4.splat(scale);
  for (let r = 0; r < rows; r++) {
    if (!ownsRow(r, nth, tid)) continue;
    const o = r * Tk, p = p4(P, o), dp = p4(dP, o), ds = p4(dS, o);
    const dot = rowDot(p, dp, Tk), d = f32x4.splat(dot);
    for (let j = 0; j < T4; j += 4) {
      const v = f32x4.mul(f32x4.mul(sc, v128.load(p4(p, j))), f32x4.sub(v128.load(p4(dp, j)), d));
      v128.store(p4(ds, j), v);
    }
    for (let j = T4; j < Tk; j++) store<f32>(p4(ds, j), scale * load<f32>(p4(p, j)) * (load<f32>(p4(dp, j)) - dot));
  }
}

/** losses (N) and optionally dLogits (N,V) = (softmax - onehot) * dScale; see Backend.crossEntropy. */
export function crossEntropy(th: i32, tid: i32, nth: i32, losses: usize, logits: usize, targets: usize, N: i32, V: i32,
  dLogits: usize, hasGrad: bool, dScale: f32): void {
  const i0 = splitStart(N, nth, tid, 1), i1 = splitStart(N, nth, tid + 1, 1);
  for (let i = i0; i < i1; i++) {
    const x = p4(logits, i * V), t = load<i32>(p4(targets, i));
    const mx = rowMax(x, V);
    const lse = <f32>(<f64>mx + Math.log(<f64>rowExpSum(x, V, 1, mx, 0, false, 0)));
    store<f32>(p4(losses, i), t >= 0 ? lse - load<f32>(p4(x, t)) : 0);
    if (!hasGrad) continue;
    const g = p4(dLogits, i * V);
    if (t < 0) { memory.fill(g, 0, <usize>V << 2); continue; }
    // g may alias x: the target's probability is recomputed from the saved logit
    const xt = load<f32>(p4(x, t));
    rowExpSum(x, V, 1, lse, g, true, dScale);
    store<f32>(p4(g, t), (f32x4.extract_lane(vexp(f32x4.splat(xt - lse)), 0) - 1) * dScale);
  }
}

/** LayerNorm forward over this thread's rows; bias is skipped when hasBias is false. */
export function layerNormForward(th: i32, tid: i32, nth: i32, out: usize, mean: usize, rstd: usize, inp: usize,
  weight: usize, bias: usize, hasBias: bool, N: i32, C: i32, eps: f32): void {
  const i0 = splitStart(N, nth, tid, 1), i1 = splitStart(N, nth, tid + 1, 1);
  const C4 = C & ~3;
  for (let i = i0; i < i1; i++) {
    const x = p4(inp, i * C), y = p4(out, i * C);
    const mu = rowSum(x, C) / <f32>C, m = f32x4.splat(mu);
    const var_ = rowSqDev(x, C, mu);
    const r = <f32>(1 / Math.sqrt(<f64>(var_ / <f32>C) + <f64>eps)), rv = f32x4.splat(r);
    for (let c = 0; c < C4; c += 4) {
      let v = f32x4.mul(f32x4.mul(f32x4.sub(v128.load(p4(x, c)), m), rv), v128.load(p4(weight, c)));
      if (hasBias) v = f32x4.add(v, v128.load(p4(bias, c)));
      v128.store(p4(y, c), v);
    }
    for (let c = C4; c < C; c++) {
      let v = (load<f32>(p4(x, c)) - mu) * r * load<f32>(p4(weight, c));
      if (hasBias) v += load<f32>(p4(bias, c));
      store<f32>(p4(y, c), v);
    }
    store<f32>(p4(mean, i), mu); store<f32>(p4(rstd, i), r);
  }
}

/**
 * LayerNorm backward: dInp += ... for this chunk's rows; dWeight/dBias sums go to dW/dB, which are
 * per-chunk partial buffers (chunk tid's at tid * partStride, reduced afterwards in chunk order so
 * the result does not depend on which thread ran which chunk) or the gradients themselves when the
 * call is one chunk.
 */
export function layerNormBackward(th: i32, tid: i32, nth: i32, dInp: usize, dW: usize, dB: usize, partStride: i32,
  hasBias: bool, dOut: usize, inp: usize, weight: usize, mean: usize, rstd: usize, N: i32, C: i32): void {
  const i0 = splitStart(N, nth, tid, 1), i1 = splitStart(N, nth, tid + 1, 1);
  const dw = dW + <usize>(tid * partStride), db = dB + <usize>(tid * partStride);
  const C4 = C & ~3, invC: f32 = 1 / <f32>C;
  for (let i = i0; i < i1; i++) {
    const o = i * C, x = p4(inp, o), dy = p4(dOut, o), dx = p4(dInp, o);
    const mu = load<f32>(p4(mean, i)), r = load<f32>(p4(rstd, i)), m = f32x4.splat(mu), rv = f32x4.splat(r);
    let s1 = f32x4.splat(0), s2 = f32x4.splat(0);
    for (let c = 0; c < C4; c += 4) {
      const xh = f32x4.mul(f32x4.sub(v128.load(p4(x, c)), m), rv);
      const dn = f32x4.mul(v128.load(p4(dy, c)), v128.load(p4(weight, c)));
      s1 = f32x4.add(s1, dn); s2 = madd(dn, xh, s2);
    }
    let sumD = hsum(s1), sumDX = hsum(s2);
    for (let c = C4; c < C; c++) {
      const xh = (load<f32>(p4(x, c)) - mu) * r, dn = load<f32>(p4(dy, c)) * load<f32>(p4(weight, c));
      sumD += dn; sumDX += dn * xh;
    }
    sumD *= invC; sumDX *= invC;
    const sd = f32x4.splat(sumD), sdx = f32x4.splat(sumDX);
    for (let c = 0; c < C4; c += 4) {
      const xh = f32x4.mul(f32x4.sub(v128.load(p4(x, c)), m), rv), g = v128.load(p4(dy, c));
      const dn = f32x4.mul(g, v128.load(p4(weight, c)));
      const t = f32x4.sub(f32x4.sub(dn, sd), f32x4.mul(xh, sdx));
      v128.store(p4(dx, c), madd(rv, t, v128.load(p4(dx, c))));
      v128.store(p4(dw, c), madd(g, xh, v128.load(p4(dw, c))));
      if (hasBias) v128.store(p4(db, c), f32x4.add(g, v128.load(p4(db, c))));
    }
    for (let c = C4; c < C; c++) {
      const xh = (load<f32>(p4(x, c)) - mu) * r, g = load<f32>(p4(dy, c));
      const dn = g * load<f32>(p4(weight, c));
      store<f32>(p4(dx, c), load<f32>(p4(dx, c)) + r * (dn - sumD - xh * sumDX));
      store<f32>(p4(dw, c), load<f32>(p4(dw, c)) + g * xh);
      if (hasBias) store<f32>(p4(db, c), load<f32>(p4(db, c)) + g);
    }
  }
}

/** RMSNorm forward: out = fround(x * rstd) * weight (the Hugging Face rounding order). */
export function rmsNormForward(th: i32, tid: i32, nth: i32, out: usize, rstd: usize, inp: usize, weight: usize,
  N: i32, C: i32, eps: f32): void {
  const i0 = splitStart(N, nth, tid, 1), i1 = splitStart(N, nth, tid + 1, 1);
  const C4 = C & ~3;
  for (let i = i0; i < i1; i++) {
    const x = p4(inp, i * C), y = p4(out, i * C);
    const ss = rowDot(x, x, C);
    const r = <f32>(1 / Math.sqrt(<f64>(ss / <f32>C) + <f64>eps)), rv = f32x4.splat(r);
    for (let c = 0; c < C4; c += 4) {
      v128.store(p4(y, c), f32x4.mul(f32x4.mul(v128.load(p4(x, c)), rv), v128.load(p4(weight, c))));
    }
    for (let c = C4; c < C; c++) store<f32>(p4(y, c), load<f32>(p4(x, c)) * r * load<f32>(p4(weight, c)));
    store<f32>(p4(rstd, i), r);
  }
}

/** RMSNorm backward; dW is a per-chunk partial buffer when nth > 1 (see layerNormBackward). */
export function rmsNormBackward(th: i32, tid: i32, nth: i32, dInp: usize, dW: usize, partStride: i32, dOut: usize,
  inp: usize, weight: usize, rstd: usize, N: i32, C: i32): void {
  const i0 = splitStart(N, nth, tid, 1), i1 = splitStart(N, nth, tid + 1, 1);
  const dw = dW + <usize>(tid * partStride);
  const C4 = C & ~3, invC: f32 = 1 / <f32>C;
  for (let i = i0; i < i1; i++) {
    const o = i * C, x = p4(inp, o), dy = p4(dOut, o), dx = p4(dInp, o);
    const r = load<f32>(p4(rstd, i)), rv = f32x4.splat(r);
    let sv = f32x4.splat(0);
    for (let c = 0; c < C4; c += 4) {
      const xh = f32x4.mul(v128.load(p4(x, c)), rv);
      sv = madd(f32x4.mul(v128.load(p4(dy, c)), v128.load(p4(weight, c))), xh, sv);
    }
    let s = hsum(sv);
    for (let c = C4; c < C; c++) s += load<f32>(p4(dy, c)) * load<f32>(p4(weight, c)) * load<f32>(p4(x, c)) * r;
    s *= invC;
    const sv2 = f32x4.splat(s);
    for (let c = 0; c < C4; c += 4) {
      const xh = f32x4.mul(v128.load(p4(x, c)), rv), g = v128.load(p4(dy, c));
      const t = f32x4.sub(f32x4.mul(g, v128.load(p4(weight, c))), f32x4.mul(xh, sv2));
      v128.store(p4(dx, c), madd(rv, t, v128.load(p4(dx, c))));
      v128.store(p4(dw, c), madd(g, xh, v128.load(p4(dw, c))));
    }
    for (let c = C4; c < C; c++) {
      const xh = load<f32>(p4(x, c)) * r, g = load<f32>(p4(dy, c));
      store<f32>(p4(dx, c), load<f32>(p4(dx, c)) + r * (g * load<f32>(p4(weight, c)) - xh * s));
      store<f32>(p4(dw, c), load<f32>(p4(dw, c)) + g * xh);
    }
  }
}

/** out (rows,V) = log_softmax(scale * inp) per row; out may alias inp. */
export function logSoftmaxForward(th: i32, tid: i32, nth: i32, out: usize, inp: usize, rows: i32, V: i32, scale: f32): void {
  const i0 = splitStart(rows, nth, tid, 1), i1 = splitStart(rows, nth, tid + 1, 1);
  for (let i = i0; i < i1; i++) {
    const x = p4(inp, i * V);
    const mx = rowMaxScaled(x, V, scale);
    const lse = <f32>(<f64>mx + Math.log(<f64>rowExpSum(x, V, scale, mx, 0, false, 0)));
    rowAffine(p4(out, i * V), x, V, scale, -lse);
  }
}

/** dInp (+)= scale * (dOut - exp(out) * rowsum(dOut)); dInp may alias dOut. */
export function logSoftmaxBackward(th: i32, tid: i32, nth: i32, dInp: usize, dOut: usize, out: usize, rows: i32, V: i32,
  scale: f32, acc: bool): void {
  const i0 = splitStart(rows, nth, tid, 1), i1 = splitStart(rows, nth, tid + 1, 1);
  const V4 = V & ~3, sc = f32x4.splat(scale);
  for (let i = i0; i < i1; i++) {
    const o = i * V, dy = p4(dOut, o), y = p4(out, o), dx = p4(dInp, o);
    const sum = rowSum(dy, V), s = f32x4.splat(sum);
    for (let v = 0; v < V4; v += 4) {
      let g = f32x4.mul(sc, f32x4.sub(v128.load(p4(dy, v)), f32x4.mul(vexp(v128.load(p4(y, v))), s)));
      if (acc) g = f32x4.add(g, v128.load(p4(dx, v)));
      v128.store(p4(dx, v), g);
    }
    for (let v = V4; v < V; v++) {
      const e = f32x4.extract_lane(vexp(f32x4.splat(load<f32>(p4(y, v)))), 0);
      let g = scale * (load<f32>(p4(dy, v)) - e * sum);
      if (acc) g += load<f32>(p4(dx, v));
      store<f32>(p4(dx, v), g);
    }
  }
}
