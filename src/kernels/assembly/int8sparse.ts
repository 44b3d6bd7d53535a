// Sparse int8 kernels of the int8 interface (src/kernels/int8.ts): 1 x k block-sparse and CSR weights,
// int8 x int8 (exact int32 sums, the dense kernels' float epilogue) and W8A32. Each export takes
// (th, tid, nth, ...): chunk tid of nth owns a contiguous share of the output rows o.
//
// Block format: row o owns blocks rowPtr[o] .. rowPtr[o+1]-1; block b covers input columns
// blockCol[b] .. + k-1 and holds values[b·k .. b·k+k-1]. The kernels for k = 16, 8, 4 load a block's
// weights contiguously and the matching activations at blockCol[b] (for k = 4 two blocks share one
// int16 vector: the weights of blocks b, b+1 are adjacent, their activations are gathered with
// load32_zero + load32_lane). Other k run 8 columns at a time with a scalar tail. Tokens are taken 4 at
// a time, so each block's weights are loaded once per 4 tokens.
import { madd, splitStart } from './simd';
import { dotAdd, f32at, hsumF, hsumI, i8at, putF, putI } from './int8';

// @ts-ignore: decorator
@inline function colAt(blockCol: usize, b: i32): usize { return <usize>load<i32>(blockCol + (<usize>b << 2)); }

// @ts-ignore: decorator
@inline function lo16(p: usize): v128 { return i16x8.extend_low_i8x16_s(v128.load32_zero(p)); }

// @ts-ignore: decorator
@inline function pair16(p: usize, q: usize): v128 {
  return i16x8.extend_low_i8x16_s(v128.load32_lane(q, v128.load32_zero(p), 1));
}

/** Σ over blocks [b0, b1) of one row: weights vals (nBlocks,k), activations x (I) int8. */
function blockDot1(x: usize, blockCol: usize, vals: usize, b0: i32, b1: i32, k: i32): i32 {
  let a = i32x4.splat(0), a2 = i32x4.splat(0);
  let b = b0;
  if (k == 16) {
    for (; b < b1; b++) {
      const v = vals + (<usize>b << 4), p = x + colAt(blockCol, b);
      a = dotAdd(a, v128.load8x8_s(v), v128.load8x8_s(p));
      a2 = dotAdd(a2, v128.load8x8_s(v, 8), v128.load8x8_s(p, 8));
    }
  } else if (k == 8) {
    for (; b + 2 <= b1; b += 2) {
      const v = vals + (<usize>b << 3);
      a = dotAdd(a, v128.load8x8_s(v), v128.load8x8_s(x + colAt(blockCol, b)));
      a2 = dotAdd(a2, v128.load8x8_s(v, 8), v128.load8x8_s(x + colAt(blockCol, b + 1)));
    }
    if (b < b1) a = dotAdd(a, v128.load8x8_s(vals + (<usize>b << 3)), v128.load8x8_s(x + colAt(blockCol, b)));
  } else if (k == 4) {
    for (; b + 2 <= b1; b += 2) {
      a = dotAdd(a, v128.load8x8_s(vals + (<usize>b << 2)), pair16(x + colAt(blockCol, b), x + colAt(blockCol, b + 1)));
    }
    if (b < b1) a = dotAdd(a, lo16(vals + (<usize>b << 2)), lo16(x + colAt(blockCol, b)));
  } else {
    let s = 0;
    for (; b < b1; b++) {
      const v = vals + <usize>(b * k), p = x + colAt(blockCol, b);
      let j = 0;
      for (; j + 8 <= k; j += 8) a = dotAdd(a, v128.load8x8_s(v + <usize>j), v128.load8x8_s(p + <usize>j));
      for (; j < k; j++) s += i8at(v, j) * i8at(p, j);
    }
    return s + hsumI(a);
  }
  return hsumI(i32x4.add(a, a2));
}

/** Blocks [b0, b1) of row o for 4 tokens x0 + t·I; writes y[n..n+3, o]. */
function blockRow4(y: usize, x0: usize, n: i32, xs: usize, blockCol: usize, vals: usize, b0: i32, b1: i32, k: i32,
  o: i32, ws: usize, bias: usize, O: i32, I: i32): void {
  const x1 = x0 + <usize>I, x2 = x1 + <usize>I, x3 = x2 + <usize>I;
  let a0 = i32x4.splat(0), a1 = i32x4.splat(0), a2 = i32x4.splat(0), a3 = i32x4.splat(0);
  let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  let b = b0;
  if (k == 16) {
    for (; b < b1; b++) {
      const v = vals + (<usize>b << 4), c = colAt(blockCol, b);
      const w = v128.load8x8_s(v), u = v128.load8x8_s(v, 8);
      a0 = dotAdd(dotAdd(a0, w, v128.load8x8_s(x0 + c)), u, v128.load8x8_s(x0 + c, 8));
      a1 = dotAdd(dotAdd(a1, w, v128.load8x8_s(x1 + c)), u, v128.load8x8_s(x1 + c, 8));
      a2 = dotAdd(dotAdd(a2, w, v128.load8x8_s(x2 + c)), u, v128.load8x8_s(x2 + c, 8));
      a3 = dotAdd(dotAdd(a3, w, v128.load8x8_s(x3 + c)), u, v128.load8x8_s(x3 + c, 8));
    }
  } else if (k == 8) {
    for (; b < b1; b++) {
      const w = v128.load8x8_s(vals + (<usize>b << 3)), c = colAt(blockCol, b);
      a0 = dotAdd(a0, w, v128.load8x8_s(x0 + c)); a1 = dotAdd(a1, w, v128.load8x8_s(x1 + c));
      a2 = dotAdd(a2, w, v128.load8x8_s(x2 + c)); a3 = dotAdd(a3, w, v128.load8x8_s(x3 + c));
    }
  } else if (k == 4) {
    for (; b + 2 <= b1; b += 2) {
      const w = v128.load8x8_s(vals + (<usize>b << 2)), c = colAt(blockCol, b), d = colAt(blockCol, b + 1);
      a0 = dotAdd(a0, w, pair16(x0 + c, x0 + d)); a1 = dotAdd(a1, w, pair16(x1 + c, x1 + d));
      a2 = dotAdd(a2, w, pair16(x2 + c, x2 + d)); a3 = dotAdd(a3, w, pair16(x3 + c, x3 + d));
    }
    if (b < b1) {
      const w = lo16(vals + (<usize>b << 2)), c = colAt(blockCol, b);
      a0 = dotAdd(a0, w, lo16(x0 + c)); a1 = dotAdd(a1, w, lo16(x1 + c));
      a2 = dotAdd(a2, w, lo16(x2 + c)); a3 = dotAdd(a3, w, lo16(x3 + c));
    }
  } else {
    for (; b < b1; b++) {
      const v = vals + <usize>(b * k), c = colAt(blockCol, b);
      let j = 0;
      for (; j + 8 <= k; j += 8) {
        const w = v128.load8x8_s(v + <usize>j), cj = c + <usize>j;
        a0 = dotAdd(a0, w, v128.load8x8_s(x0 + cj)); a1 = dotAdd(a1, w, v128.load8x8_s(x1 + cj));
        a2 = dotAdd(a2, w, v128.load8x8_s(x2 + cj)); a3 = dotAdd(a3, w, v128.load8x8_s(x3 + cj));
      }
      for (; j < k; j++) {
        const w = i8at(v, j), cj = <i32>c + j;
        s0 += w * i8at(x0, cj); s1 += w * i8at(x1, cj); s2 += w * i8at(x2, cj); s3 += w * i8at(x3, cj);
      }
    }
  }
  putI(y, O, n, o, s0 + hsumI(a0), xs, ws, bias); putI(y, O, n + 1, o, s1 + hsumI(a1), xs, ws, bias);
  putI(y, O, n + 2, o, s2 + hsumI(a2), xs, ws, bias); putI(y, O, n + 3, o, s3 + hsumI(a3), xs, ws, bias);
}

/** gemmI8 over a 1 x k block-sparse weight (O rows, I inputs). */
export function gemmBlockI8(th: i32, tid: i32, nth: i32, y: usize, xq: usize, xs: usize, rowPtr: usize, blockCol: usize,
  vals: usize, ws: usize, bias: usize, N: i32, O: i32, I: i32, k: i32): void {
  const o0 = splitStart(O, nth, tid, 1), o1 = splitStart(O, nth, tid + 1, 1);
  for (let o = o0; o < o1; o++) {
    const b0 = load<i32>(rowPtr + (<usize>o << 2)), b1 = load<i32>(rowPtr + (<usize>o << 2), 4);
    let n = 0;
    for (; n + 4 <= N; n += 4) blockRow4(y, xq + <usize>(n * I), n, xs, blockCol, vals, b0, b1, k, o, ws, bias, O, I);
    for (; n < N; n++) putI(y, O, n, o, blockDot1(xq + <usize>(n * I), blockCol, vals, b0, b1, k), xs, ws, bias);
  }
}

// ------------------------------------------------------------------------------------------ W8A32

// @ts-ignore: decorator
@inline function wlo(w: v128): v128 { return f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(w)); }
// @ts-ignore: decorator
@inline function whi(w: v128): v128 { return f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(w)); }

/**
 * Float sum over blocks [b0, b1) of one row, x (I) float32: float32 lanes over groups of blocks
 * covering ~128 columns, totals in float64 (as the dense W8A32 kernels).
 */
function blockDotF(x: usize, blockCol: usize, vals: usize, b0: i32, b1: i32, k: i32): f64 {
  let t: f64 = 0;
  const G = max<i32>(1, 128 / k);
  for (let g = b0; g < b1; g += G) {
    const ge = min<i32>(g + G, b1);
    let a = f32x4.splat(0), a2 = f32x4.splat(0);
    let b = g;
    if (k == 16) {
      for (; b < ge; b++) {
        const v = vals + (<usize>b << 4), p = x + (colAt(blockCol, b) << 2);
        const w = v128.load8x8_s(v), u = v128.load8x8_s(v, 8);
        a = madd(v128.load(p), wlo(w), a); a2 = madd(v128.load(p, 16), whi(w), a2);
        a = madd(v128.load(p, 32), wlo(u), a); a2 = madd(v128.load(p, 48), whi(u), a2);
      }
    } else if (k == 8) {
      for (; b < ge; b++) {
        const w = v128.load8x8_s(vals + (<usize>b << 3)), p = x + (colAt(blockCol, b) << 2);
        a = madd(v128.load(p), wlo(w), a); a2 = madd(v128.load(p, 16), whi(w), a2);
      }
    } else if (k == 4) {
      for (; b + 2 <= ge; b += 2) {
        const w = v128.load8x8_s(vals + (<usize>b << 2));
        a = madd(v128.load(x + (colAt(blockCol, b) << 2)), wlo(w), a);
        a2 = madd(v128.load(x + (colAt(blockCol, b + 1) << 2)), whi(w), a2);
      }
      if (b < ge) a = madd(v128.load(x + (colAt(blockCol, b) << 2)), wlo(lo16(vals + (<usize>b << 2))), a);
    } else {
      for (; b < ge; b++) {
        const v = vals + <usize>(b * k), c = <i32>colAt(blockCol, b);
        let j = 0;
        for (; j + 8 <= k; j += 8) {
          const w = v128.load8x8_s(v + <usize>j), p = x + (<usize>(c + j) << 2);
          a = madd(v128.load(p), wlo(w), a); a2 = madd(v128.load(p, 16), whi(w), a2);
        }
        for (; j < k; j++) t += <f64>i8at(v, j) * <f64>f32at(x, c + j);
      }
    }
    t += hsumF(f32x4.add(a, a2));
  }
  return t;
}

/** gemmW8A32 over a 1 x k block-sparse weight; tokens one at a time (each a float row). */
export function gemmBlockW8A32(th: i32, tid: i32, nth: i32, y: usize, x: usize, rowPtr: usize, blockCol: usize,
  vals: usize, ws: usize, bias: usize, N: i32, O: i32, I: i32, k: i32): void {
  const o0 = splitStart(O, nth, tid, 1), o1 = splitStart(O, nth, tid + 1, 1);
  const xrow = <usize>I << 2;
  for (let o = o0; o < o1; o++) {
    const b0 = load<i32>(rowPtr + (<usize>o << 2)), b1 = load<i32>(rowPtr + (<usize>o << 2), 4);
    for (let n = 0; n < N; n++) putF(y, O, n, o, blockDotF(x + <usize>n * xrow, blockCol, vals, b0, b1, k), ws, bias);
  }
}

// -------------------------------------------------------------------------------------------- CSR

/** gemmI8 over a CSR weight: scalar, 4 tokens per pass over a row's entries. */
export function gemmCsrI8(th: i32, tid: i32, nth: i32, y: usize, xq: usize, xs: usize, rowPtr: usize, col: usize,
  vals: usize, ws: usize, bias: usize, N: i32, O: i32, I: i32): void {
  const o0 = splitStart(O, nth, tid, 1), o1 = splitStart(O, nth, tid + 1, 1);
  for (let o = o0; o < o1; o++) {
    const e0 = load<i32>(rowPtr + (<usize>o << 2)), e1 = load<i32>(rowPtr + (<usize>o << 2), 4);
    let n = 0;
    for (; n + 4 <= N; n += 4) {
      const x0 = xq + <usize>(n * I), x1 = x0 + <usize>I, x2 = x1 + <usize>I, x3 = x2 + <usize>I;
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      for (let e = e0; e < e1; e++) {
        const c = colAt(col, e), w = i8at(vals, e);
        s0 += w * <i32>load<i8>(x0 + c); s1 += w * <i32>load<i8>(x1 + c);
        s2 += w * <i32>load<i8>(x2 + c); s3 += w * <i32>load<i8>(x3 + c);
      }
      putI(y, O, n, o, s0, xs, ws, bias); putI(y, O, n + 1, o, s1, xs, ws, bias);
      putI(y, O, n + 2, o, s2, xs, ws, bias); putI(y, O, n + 3, o, s3, xs, ws, bias);
    }
    for (; n < N; n++) {
      const x0 = xq + <usize>(n * I);
      let s0 = 0, s1 = 0, e = e0;
      for (; e + 2 <= e1; e += 2) {
        s0 += i8at(vals, e) * <i32>load<i8>(x0 + colAt(col, e));
        s1 += i8at(vals, e + 1) * <i32>load<i8>(x0 + colAt(col, e + 1));
      }
      if (e < e1) s0 += i8at(vals, e) * <i32>load<i8>(x0 + colAt(col, e));
      putI(y, O, n, o, s0 + s1, xs, ws, bias);
    }
  }
}

/** gemmW8A32 over a CSR weight: scalar float64 sums in entry order, as the reference. */
export function gemmCsrW8A32(th: i32, tid: i32, nth: i32, y: usize, x: usize, rowPtr: usize, col: usize,
  vals: usize, ws: usize, bias: usize, N: i32, O: i32, I: i32): void {
  const o0 = splitStart(O, nth, tid, 1), o1 = splitStart(O, nth, tid + 1, 1);
  const xrow = <usize>I << 2;
  for (let o = o0; o < o1; o++) {
    const e0 = load<i32>(rowPtr + (<usize>o << 2)), e1 = load<i32>(rowPtr + (<usize>o << 2), 4);
    for (let n = 0; n < N; n++) {
      const x0 = x + <usize>n * xrow;
      let t: f64 = 0;
      for (let e = e0; e < e1; e++) t += <f64>load<f32>(x0 + (colAt(col, e) << 2)) * <f64>i8at(vals, e);
      putF(y, O, n, o, t, ws, bias);
    }
  }
}
