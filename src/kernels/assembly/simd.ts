// Shared SIMD helpers for the kernels. `FMA` is a compile-time constant set by `asc --use FMA=0|1`:
// the FMA build uses relaxed_madd (vfmadd on x86), the other one a separate mul + add.

// Vector constants live in a table in memory: V8 rebuilds a v128.const with several instructions at
// every use inside a loop, while a load from a constant address folds into the arithmetic
// (measured: exp 7.1 -> 2.5 ns per vector). Each entry is one value in all four lanes.
export const ONE: i32 = 0;  // also the bits of 127 << 23, the float32 exponent bias
export const HALF: i32 = 1;
export const TWO: i32 = 2;
export const EXP_HI: i32 = 3;
export const EXP_LO: i32 = 4;
export const LOG2E: i32 = 5;
export const MAGIC: i32 = 6;  // 1.5 * 2^23: adding it rounds to an integer kept in the low mantissa bits
export const LN2_HI: i32 = 7;
export const LN2_LO: i32 = 8;
export const P6: i32 = 9;
export const P5: i32 = 10;
export const P4: i32 = 11;
export const P3: i32 = 12;
export const SIGN: i32 = 13;  // the sign bit
export const SQRT1_2: i32 = 14;
export const INV_SQRT_2PI: i32 = 15;
export const SQRT_2_OVER_PI: i32 = 16;
export const GELU_A: i32 = 17;
export const GELU_3A: i32 = 18;
export const NEG_HALF: i32 = 19;
export const ERF9: i32 = 20;
export const ERF8: i32 = 21;
export const ERF7: i32 = 22;
export const ERF6: i32 = 23;
export const ERF5: i32 = 24;
export const ERF4: i32 = 25;
export const ERF3: i32 = 26;
export const ERF2: i32 = 27;
export const ERF1: i32 = 28;
export const ERF0: i32 = 29;

const TAB = memory.data<f32>([
  1.0, 1.0, 1.0, 1.0,
  0.5, 0.5, 0.5, 0.5,
  2.0, 2.0, 2.0, 2.0,
  88.3, 88.3, 88.3, 88.3,
  -87.3, -87.3, -87.3, -87.3,
  1.44269504, 1.44269504, 1.44269504, 1.44269504,
  12582912.0, 12582912.0, 12582912.0, 12582912.0,
  0.693359375, 0.693359375, 0.693359375, 0.693359375,
  -2.12194440e-4, -2.12194440e-4, -2.12194440e-4, -2.12194440e-4,
  0.0013888889, 0.0013888889, 0.0013888889, 0.0013888889,
  0.0083333333, 0.0083333333, 0.0083333333, 0.0083333333,
  0.041666667, 0.041666667, 0.041666667, 0.041666667,
  0.16666667, 0.16666667, 0.16666667, 0.16666667,
  -0.0, -0.0, -0.0, -0.0,
  0.70710678, 0.70710678, 0.70710678, 0.70710678,
  0.39894228, 0.39894228, 0.39894228, 0.39894228,
  0.79788456, 0.79788456, 0.79788456, 0.79788456,
  0.044715, 0.044715, 0.044715, 0.044715,
  0.134145, 0.134145, 0.134145, 0.134145,
  -0.5, -0.5, -0.5, -0.5,
  0.17087277, 0.17087277, 0.17087277, 0.17087277,
  -0.82215223, -0.82215223, -0.82215223, -0.82215223,
  1.48851587, 1.48851587, 1.48851587, 1.48851587,
  -1.13520398, -1.13520398, -1.13520398, -1.13520398,
  0.27886807, 0.27886807, 0.27886807, 0.27886807,
  -0.18628806, -0.18628806, -0.18628806, -0.18628806,
  0.09678418, 0.09678418, 0.09678418, 0.09678418,
  0.37409196, 0.37409196, 0.37409196, 0.37409196,
  1.00002368, 1.00002368, 1.00002368, 1.00002368,
  -1.26551223, -1.26551223, -1.26551223, -1.26551223,
]);

/** The table constant `i` (one of the indices above) in all lanes. */
// @ts-ignore: decorator
@inline export function K(i: i32): v128 { return v128.load(TAB + (<usize>i << 4)); }

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
 * exp(x) per lane, relative error < 2.3e-7 on [-87, 88]: x = n ln2 + r with |r| <= ln2/2, a degree-6
 * Taylor polynomial for e^r and 2^n built in the exponent bits. Lanes below -87.3 give exactly 0
 * (the float32 result would be denormal); lanes above 88.3 saturate to ~2.1e38 (n <= 127). pmin/pmax map to
 * single instructions (min/max would add NaN handling); NaN inputs are not supported.
 */
// @ts-ignore: decorator
@inline export function vexp(x: v128): v128 {
  const xc = f32x4.pmax(f32x4.pmin(x, K(EXP_HI)), K(EXP_LO));
  const t = madd(xc, K(LOG2E), K(MAGIC));
  const n = f32x4.sub(t, K(MAGIC));
  // ln2 split in a high part exact in float32 and a low correction (Cody-Waite)
  let r = f32x4.sub(xc, f32x4.mul(n, K(LN2_HI)));
  r = f32x4.sub(r, f32x4.mul(n, K(LN2_LO)));
  let p = madd(K(P6), r, K(P5));
  p = madd(p, r, K(P4));
  p = madd(p, r, K(P3));
  p = madd(p, r, K(HALF));
  p = madd(p, r, K(ONE));
  p = madd(p, r, K(ONE));
  // t's low mantissa bits hold n: shifting them into the exponent field and adding the bias gives 2^n
  const e = i32x4.add(i32x4.shl(t, 23), K(ONE));
  return v128.andnot(f32x4.mul(p, e), f32x4.lt(x, K(EXP_LO)));
}

/** Lanes of [i0, i1) owned by thread tid of nth, in chunks aligned to `align` elements. */
// @ts-ignore: decorator
@inline export function splitStart(n: i32, nth: i32, tid: i32, align: i32): i32 {
  const units = (n + align - 1) / align;
  const per = (units + nth - 1) / nth;
  return min<i32>(n, tid * per * align);
}
