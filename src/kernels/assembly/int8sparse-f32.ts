// Sparse W8A32 kernels of the int8 interface (src/kernels/int8.ts): float32 activations times 1 x k
// block-sparse or CSR int8 weights, y = f32(f32(sum) · wScale[o]) (+ bias[o]). Each export takes
// (th, tid, nth, ...): chunk tid of nth owns a contiguous share of the output rows o.
//
// Block sums run in float32 lanes over groups of blocks covering <= 128 columns and are gathered in
// float64 per group, as in the dense W8A32 kernels (int8.ts), so the interface's tolerance holds for any
// I. Tokens go 4 at a time so each block's weights are widened to float32 once per 4 tokens.
import { madd, splitStart } from './simd';
import { f32at, hsumF, i8at, putF, whi, wlo } from './int8';
import { colAt, lo16 } from './int8sparse';

/** Blocks per float32 group: <= 128 columns. */
// @ts-ignore: decorator
@inline function groupOf(k: i32): i32 { return max<i32>(1, 128 / k); }

/** Float sum over blocks [b0, b1) of one row, x (I) float32 (one token). */
// @ts-ignore: decorator
@inline function rowSumF(x: usize, blockCol: usize, vals: usize, b0: i32, b1: i32, k: i32): f64 {
  let t: f64 = 0;
  const G = groupOf(k);
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

/** Row o's blocks [b0, b1) times 4 tokens x0 + t·xrow; writes y[n..n+3, o]. */
// @ts-ignore: decorator
@inline function rowSumF4(y: usize, O: i32, n: i32, o: i32, x0: usize, xrow: usize, blockCol: usize, vals: usize,
  b0: i32, b1: i32, k: i32, ws: usize, bias: usize): void {
  const x1 = x0 + xrow, x2 = x1 + xrow, x3 = x2 + xrow;
  let t0: f64 = 0, t1: f64 = 0, t2: f64 = 0, t3: f64 = 0;
  const G = groupOf(k);
  for (let g = b0; g < b1; g += G) {
    const ge = min<i32>(g + G, b1);
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
    if (k % 8 == 0) {
      // k = 8, 16, 24, ...: 8 columns at a time
      for (let b = g; b < ge; b++) {
        const v = vals + <usize>(b * k), c = colAt(blockCol, b) << 2;
        for (let j = 0; j < k; j += 8) {
          const w = v128.load8x8_s(v + <usize>j), lo = wlo(w), hi = whi(w), q = c + (<usize>j << 2);
          a0 = madd(v128.load(x0 + q, 16), hi, madd(v128.load(x0 + q), lo, a0));
          a1 = madd(v128.load(x1 + q, 16), hi, madd(v128.load(x1 + q), lo, a1));
          a2 = madd(v128.load(x2 + q, 16), hi, madd(v128.load(x2 + q), lo, a2));
          a3 = madd(v128.load(x3 + q, 16), hi, madd(v128.load(x3 + q), lo, a3));
        }
      }
    } else if (k == 4) {
      for (let b = g; b < ge; b++) {
        const w = wlo(lo16(vals + (<usize>b << 2))), q = colAt(blockCol, b) << 2;
        a0 = madd(v128.load(x0 + q), w, a0); a1 = madd(v128.load(x1 + q), w, a1);
        a2 = madd(v128.load(x2 + q), w, a2); a3 = madd(v128.load(x3 + q), w, a3);
      }
    } else {
      for (let b = g; b < ge; b++) {
        const v = vals + <usize>(b * k), c = <i32>colAt(blockCol, b);
        for (let j = 0; j < k; j++) {
          const w = <f64>i8at(v, j);
          t0 += w * <f64>f32at(x0, c + j); t1 += w * <f64>f32at(x1, c + j);
          t2 += w * <f64>f32at(x2, c + j); t3 += w * <f64>f32at(x3, c + j);
        }
      }
    }
    t0 += hsumF(a0); t1 += hsumF(a1); t2 += hsumF(a2); t3 += hsumF(a3);
  }
  putF(y, O, n, o, t0, ws, bias); putF(y, O, n + 1, o, t1, ws, bias);
  putF(y, O, n + 2, o, t2, ws, bias); putF(y, O, n + 3, o, t3, ws, bias);
}

/** gemmW8A32 over a 1 x k block-sparse weight: tokens 4 at a time (rows inner), then one at a time. */
export function gemmBlockW8A32(th: i32, tid: i32, nth: i32, y: usize, x: usize, rowPtr: usize, blockCol: usize,
  vals: usize, ws: usize, bias: usize, N: i32, O: i32, I: i32, k: i32): void {
  const o0 = splitStart(O, nth, tid, 4), o1 = splitStart(O, nth, tid + 1, 4);
  const xrow = <usize>I << 2;
  let n = 0;
  for (; n + 4 <= N; n += 4) {
    const x0 = x + <usize>n * xrow;
    for (let o = o0; o < o1; o++) {
      const r = rowPtr + (<usize>o << 2);
      rowSumF4(y, O, n, o, x0, xrow, blockCol, vals, load<i32>(r), load<i32>(r, 4), k, ws, bias);
    }
  }
  for (; n < N; n++) {
    const x0 = x + <usize>n * xrow;
    for (let o = o0; o < o1; o++) {
      const r = rowPtr + (<usize>o << 2);
      putF(y, O, n, o, rowSumF(x0, blockCol, vals, load<i32>(r), load<i32>(r, 4), k), ws, bias);
    }
  }
}

/** gemmW8A32 over a CSR weight: scalar float64 sums in entry order (as the reference), 4 tokens per pass. */
export function gemmCsrW8A32(th: i32, tid: i32, nth: i32, y: usize, x: usize, rowPtr: usize, col: usize,
  vals: usize, ws: usize, bias: usize, N: i32, O: i32, I: i32): void {
  const o0 = splitStart(O, nth, tid, 4), o1 = splitStart(O, nth, tid + 1, 4);
  const xrow = <usize>I << 2;
  let n = 0;
  for (; n + 4 <= N; n += 4) {
    const x0 = x + <usize>n * xrow, x1 = x0 + xrow, x2 = x1 + xrow, x3 = x2 + xrow;
    for (let o = o0; o < o1; o++) {
      const e0 = load<i32>(rowPtr + (<usize>o << 2)), e1 = load<i32>(rowPtr + (<usize>o << 2), 4);
      let t0: f64 = 0, t1: f64 = 0, t2: f64 = 0, t3: f64 = 0;
      for (let e = e0; e < e1; e++) {
        const c = colAt(col, e) << 2, w = <f64>i8at(vals, e);
        t0 += <f64>load<f32>(x0 + c) * w; t1 += <f64>load<f32>(x1 + c) * w;
        t2 += <f64>load<f32>(x2 + c) * w; t3 += <f64>load<f32>(x3 + c) * w;
      }
      putF(y, O, n, o, t0, ws, bias); putF(y, O, n + 1, o, t1, ws, bias);
      putF(y, O, n + 2, o, t2, ws, bias); putF(y, O, n + 3, o, t3, ws, bias);
    }
  }
  for (; n < N; n++) {
    const x0 = x + <usize>n * xrow;
    for (let o = o0; o < o1; o++) {
      const e0 = load<i32>(rowPtr + (<usize>o << 2)), e1 = load<i32>(rowPtr + (<usize>o << 2), 4);
      let t: f64 = 0;
      for (let e = e0; e < e1; e++) t += <f64>load<f32>(x0 + (colAt(col, e) << 2)) * <f64>i8at(vals, e);
      putF(y, O, n, o, t, ws, bias);
    }
  }
}
