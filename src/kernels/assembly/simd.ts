// Shared SIMD helpers for the kernels. `FMA` is a compile-time constant set by `asc --use FMA=0|1`:
// the FMA build uses relaxed_madd (vfmadd on x86), the other one a separate mul + add.

// @ts-ignore: decorator
@inline export function madd(a: v128, b: v128, c: v128): v128 {
  if (FMA) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(c, f32x4.mul(a, b));
}

// @ts-ignore: decorator
@inline export function hsum(v: v128): f32 {
  const s = f32x4.add(v, v128.shuffle<f32>(v, v, 2, 3, 0, 1));
  return f32x4.extract_lane(s, 0) + f32x4.extract_lane(s, 1);
}

// @ts-ignore: decorator
@inline export function hmax(v: v128): f32 {
  const s = f32x4.max(v, v128.shuffle<f32>(v, v, 2, 3, 0, 1));
  return max<f32>(f32x4.extract_lane(s, 0), f32x4.extract_lane(s, 1));
}

/**
 * exp(x) per lane, relative error < 2e-7 on [-87, 88]: x = n ln2 + r with |r| <= ln2/2, a degree-6
 * Taylor polynomial for e^r and 2^n built in the exponent bits. Lanes below -87.3 give exactly 0
 * (the float32 result would be denormal); lanes above 88.7 saturate to ~3.4e38.
 */
// @ts-ignore: decorator
@inline export function vexp(x: v128): v128 {
  const lo = f32x4.lt(x, f32x4.splat(-87.3));
  const xc = f32x4.min(x, f32x4.splat(88.7));
  const xm = f32x4.max(xc, f32x4.splat(-87.3));
  const n = f32x4.nearest(f32x4.mul(xm, f32x4.splat(1.44269504)));
  // ln2 split in a high part exact in float32 and a low correction (Cody-Waite)
  let r = f32x4.sub(xm, f32x4.mul(n, f32x4.splat(0.693359375)));
  r = f32x4.sub(r, f32x4.mul(n, f32x4.splat(-2.12194440e-4)));
  let p = f32x4.splat(1.0 / 720.0);
  p = madd(p, r, f32x4.splat(1.0 / 120.0));
  p = madd(p, r, f32x4.splat(1.0 / 24.0));
  p = madd(p, r, f32x4.splat(1.0 / 6.0));
  p = madd(p, r, f32x4.splat(0.5));
  p = madd(p, r, f32x4.splat(1.0));
  p = madd(p, r, f32x4.splat(1.0));
  const e = i32x4.shl(i32x4.add(i32x4.trunc_sat_f32x4_s(n), i32x4.splat(127)), 23);
  return v128.andnot(f32x4.mul(p, e), lo);
}

/** Lanes of [i0, i1) owned by thread tid of nth, in chunks aligned to `align` elements. */
// @ts-ignore: decorator
@inline export function splitStart(n: i32, nth: i32, tid: i32, align: i32): i32 {
  const units = (n + align - 1) / align;
  const per = (units + nth - 1) / nth;
  return min<i32>(n, tid * per * align);
}
