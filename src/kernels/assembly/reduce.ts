// Row reductions with four independent accumulators: a single accumulator makes every iteration
// wait for the previous one (4-cycle add latency; f32x4.max is ~8 dependent instructions in V8 for its
// NaN rules, so maxima use pmax), which was measured to halve the speed of softmax-like rows.
import { hmax, hsum, madd, vexp } from './simd';

// @ts-ignore: decorator
@inline function p4(base: usize, i: i32): usize { return base + (<usize>i << 2); }

/** max of x[0..n) (-Infinity when n = 0). NaNs are skipped. */
export function rowMax(x: usize, n: i32): f32 {
  let m0 = f32x4.splat(-Infinity), m1 = m0, m2 = m0, m3 = m0;
  let j = 0;
  for (; j + 16 <= n; j += 16) {
    const q = p4(x, j);
    m0 = f32x4.pmax(m0, v128.load(q)); m1 = f32x4.pmax(m1, v128.load(q, 16));
    m2 = f32x4.pmax(m2, v128.load(q, 32)); m3 = f32x4.pmax(m3, v128.load(q, 48));
  }
  for (; j + 4 <= n; j += 4) m0 = f32x4.pmax(m0, v128.load(p4(x, j)));
  let m = hmax(f32x4.pmax(f32x4.pmax(m0, m1), f32x4.pmax(m2, m3)));
  for (; j < n; j++) m = max<f32>(m, load<f32>(p4(x, j)));
  return m;
}

/** min of x[0..n) (+Infinity when n = 0). */
export function rowMin(x: usize, n: i32): f32 {
  let m0 = f32x4.splat(Infinity), m1 = m0, m2 = m0, m3 = m0;
  let j = 0;
  for (; j + 16 <= n; j += 16) {
    const q = p4(x, j);
    m0 = f32x4.pmin(m0, v128.load(q)); m1 = f32x4.pmin(m1, v128.load(q, 16));
    m2 = f32x4.pmin(m2, v128.load(q, 32)); m3 = f32x4.pmin(m3, v128.load(q, 48));
  }
  for (; j + 4 <= n; j += 4) m0 = f32x4.pmin(m0, v128.load(p4(x, j)));
  const s = f32x4.pmin(f32x4.pmin(m0, m1), f32x4.pmin(m2, m3));
  let m = min<f32>(min<f32>(f32x4.extract_lane(s, 0), f32x4.extract_lane(s, 1)),
    min<f32>(f32x4.extract_lane(s, 2), f32x4.extract_lane(s, 3)));
  for (; j < n; j++) m = min<f32>(m, load<f32>(p4(x, j)));
  return m;
}

/** max of scale * x over x[0..n), any sign of scale. */
export function rowMaxScaled(x: usize, n: i32, scale: f32): f32 {
  return scale >= 0 ? rowMax(x, n) * scale : rowMin(x, n) * scale;
}

/** sum of a[j] * b[j] over [0, n); pass a == b for a sum of squares. */
export function rowDot(a: usize, b: usize, n: i32): f32 {
  let s0 = f32x4.splat(0), s1 = s0, s2 = s0, s3 = s0;
  let j = 0;
  for (; j + 16 <= n; j += 16) {
    const qa = p4(a, j), qb = p4(b, j);
    s0 = madd(v128.load(qa), v128.load(qb), s0); s1 = madd(v128.load(qa, 16), v128.load(qb, 16), s1);
    s2 = madd(v128.load(qa, 32), v128.load(qb, 32), s2); s3 = madd(v128.load(qa, 48), v128.load(qb, 48), s3);
  }
  for (; j + 4 <= n; j += 4) s0 = madd(v128.load(p4(a, j)), v128.load(p4(b, j)), s0);
  let s = hsum(f32x4.add(f32x4.add(s0, s1), f32x4.add(s2, s3)));
  for (; j < n; j++) s += load<f32>(p4(a, j)) * load<f32>(p4(b, j));
  return s;
}

/** sum of x[0..n). */
export function rowSum(x: usize, n: i32): f32 {
  let s0 = f32x4.splat(0), s1 = s0, s2 = s0, s3 = s0;
  let j = 0;
  for (; j + 16 <= n; j += 16) {
    const q = p4(x, j);
    s0 = f32x4.add(s0, v128.load(q)); s1 = f32x4.add(s1, v128.load(q, 16));
    s2 = f32x4.add(s2, v128.load(q, 32)); s3 = f32x4.add(s3, v128.load(q, 48));
  }
  for (; j + 4 <= n; j += 4) s0 = f32x4.add(s0, v128.load(p4(x, j)));
  let s = hsum(f32x4.add(f32x4.add(s0, s1), f32x4.add(s2, s3)));
  for (; j < n; j++) s += load<f32>(p4(x, j));
  return s;
}

/** sum of (x[j] - mu)^2 over [0, n). */
export function rowSqDev(x: usize, n: i32, mu: f32): f32 {
  const m = f32x4.splat(mu);
  let s0 = f32x4.splat(0), s1 = s0;
  let j = 0;
  for (; j + 8 <= n; j += 8) {
    const q = p4(x, j), d0 = f32x4.sub(v128.load(q), m), d1 = f32x4.sub(v128.load(q, 16), m);
    s0 = madd(d0, d0, s0); s1 = madd(d1, d1, s1);
  }
  for (; j + 4 <= n; j += 4) { const d = f32x4.sub(v128.load(p4(x, j)), m); s0 = madd(d, d, s0); }
  let s = hsum(f32x4.add(s0, s1));
  for (; j < n; j++) { const d = load<f32>(p4(x, j)) - mu; s += d * d; }
  return s;
}

/**
 * Sum of e_j = exp(scale * x[j] - shift) over [0, n); when `keep`, also writes e_j * post to out[j]
 * (out may alias x).
 */
export function rowExpSum(x: usize, n: i32, scale: f32, shift: f32, out: usize, keep: bool, post: f32): f32 {
  const sc = f32x4.splat(scale), sh = f32x4.splat(shift), po = f32x4.splat(post);
  let s0 = f32x4.splat(0), s1 = s0;
  let j = 0;
  for (; j + 8 <= n; j += 8) {
    const q = p4(x, j);
    const e0 = vexp(f32x4.sub(f32x4.mul(v128.load(q), sc), sh));
    const e1 = vexp(f32x4.sub(f32x4.mul(v128.load(q, 16), sc), sh));
    s0 = f32x4.add(s0, e0); s1 = f32x4.add(s1, e1);
    if (keep) { const o = p4(out, j); v128.store(o, f32x4.mul(e0, po)); v128.store(o, f32x4.mul(e1, po), 16); }
  }
  for (; j + 4 <= n; j += 4) {
    const e = vexp(f32x4.sub(f32x4.mul(v128.load(p4(x, j)), sc), sh));
    s0 = f32x4.add(s0, e);
    if (keep) v128.store(p4(out, j), f32x4.mul(e, po));
  }
  let s = hsum(f32x4.add(s0, s1));
  for (; j < n; j++) {
    const e = f32x4.extract_lane(vexp(f32x4.splat(load<f32>(p4(x, j)) * scale - shift)), 0);
    s += e;
    if (keep) store<f32>(p4(out, j), e * post);
  }
  return s;
}

/** out[j] = x[j] * a + b over [0, n) (out may alias x). */
export function rowAffine(out: usize, x: usize, n: i32, a: f32, b: f32): void {
  const va = f32x4.splat(a), vb = f32x4.splat(b);
  let j = 0;
  for (; j + 4 <= n; j += 4) v128.store(p4(out, j), f32x4.add(f32x4.mul(v128.load(p4(x, j)), va), vb));
  for (; j < n; j++) store<f32>(p4(out, j), load<f32>(p4(x, j)) * a + b);
}
