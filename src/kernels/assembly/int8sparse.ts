// Sparse int8 x int8 kernels of the int8 interface (src/kernels/int8.ts): 1 x k block-sparse and CSR
// weights, exact int32 sums, the dense kernels' float epilogue (W8A32: int8sparse-f32.ts). Each export takes
// (th, tid, nth, ...): chunk tid of nth owns a contiguous share of the output rows o.
//
// Block format: row o owns blocks rowPtr[o] .. rowPtr[o+1]-1; block b covers input columns
// blockCol[b] .. + k-1 and holds values[b·k .. b·k+k-1]. The kernels for k = 16, 8, 4 load a block's
// weights contiguously and the matching activations at blockCol[b] (for k = 4 two blocks share one
// int16 vector: the weights of blocks b, b+1 are adjacent, their activations are gathered with
// load32_zero + load32_lane). Other k run 8 columns at a time with a scalar tail. Tokens are taken 4 at
// a time, so each block's weights are loaded once per 4 tokens.
import { splitStart } from './simd';
import { dotAdd, f32at, hsum4, hsumI, i8at, putI, putRows4, vec4 } from './int8';

// @ts-ignore: decorator
@inline export function colAt(blockCol: usize, b: i32): usize { return <usize>load<i32>(blockCol + (<usize>b << 2)); }

// @ts-ignore: decorator
@inline export function lo16(p: usize): v128 { return i16x8.extend_low_i8x16_s(v128.load32_zero(p)); }

// @ts-ignore: decorator
@inline function pair16(p: usize, q: usize): v128 {
  return i16x8.extend_low_i8x16_s(v128.load32_lane(q, v128.load32_zero(p), 1));
}

/** Lane partial sums (their total is the row's dot product) over blocks [b0, b1) of one row, one token x (I). */
// @ts-ignore: decorator
@inline function rowAcc(x: usize, blockCol: usize, vals: usize, b0: i32, b1: i32, k: i32): v128 {
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
    a2 = i32x4.replace_lane(a2, 0, s);
  }
  return i32x4.add(a, a2);
}

/**
 * Lane i of the result: the dot product of row blocks [b0, b1) with token x0 + i·I (4 tokens), so each
 * block's weights are loaded once for the 4 tokens.
 */
// @ts-ignore: decorator
@inline function rowAcc4(x0: usize, I: i32, blockCol: usize, vals: usize, b0: i32, b1: i32, k: i32): v128 {
  const x1 = x0 + <usize>I, x2 = x1 + <usize>I, x3 = x2 + <usize>I;
  let a0 = i32x4.splat(0), a1 = i32x4.splat(0), a2 = i32x4.splat(0), a3 = i32x4.splat(0);
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
    let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
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
    return i32x4.add(hsum4(a0, a1, a2, a3), i32x4.replace_lane(i32x4.replace_lane(i32x4.replace_lane(
      i32x4.splat(s0), 1, s1), 2, s2), 3, s3));
  }
  return hsum4(a0, a1, a2, a3);
}

/** y[n..n+3, o] from the 4 tokens' int32 sums s. */
// @ts-ignore: decorator
@inline function putTokens4(y: usize, O: i32, n: i32, o: i32, s: v128, xs: usize, ws: f32, bias: usize): void {
  let v = f32x4.mul(f32x4.convert_i32x4_s(s), v128.load(xs + (<usize>n << 2)));
  v = f32x4.mul(v, f32x4.splat(ws));
  if (bias) v = f32x4.add(v, f32x4.splat(f32at(bias, o)));
  const p = y + (<usize>(n * O + o) << 2), st = <usize>O << 2;
  v128.store32_lane(p, v, 0); v128.store32_lane(p + st, v, 1);
  v128.store32_lane(p + 2 * st, v, 2); v128.store32_lane(p + 3 * st, v, 3);
}

/**
 * gemmI8 over a 1 x k block-sparse weight (O rows, I inputs). Tokens 4 at a time (rows inner, so the 4
 * tokens' activations stay in L1), the remaining tokens one at a time with rows 4 at a time (one
 * vector epilogue per 4 rows: at I = 128 and 90% sparsity a row holds ~1 block, so per-row costs matter).
 */
export function gemmBlockI8(th: i32, tid: i32, nth: i32, y: usize, xq: usize, xs: usize, rowPtr: usize, blockCol: usize,
  vals: usize, ws: usize, bias: usize, N: i32, O: i32, I: i32, k: i32): void {
  const o0 = splitStart(O, nth, tid, 4), o1 = splitStart(O, nth, tid + 1, 4);
  let n = 0;
  for (; n + 4 <= N; n += 4) {
    const x0 = xq + <usize>(n * I);
    for (let o = o0; o < o1; o++) {
      const r = rowPtr + (<usize>o << 2);
      putTokens4(y, O, n, o, rowAcc4(x0, I, blockCol, vals, load<i32>(r), load<i32>(r, 4), k), xs, f32at(ws, o), bias);
    }
  }
  for (; n < N; n++) {
    const x = xq + <usize>(n * I), xsn = f32at(xs, n);
    let o = o0;
    for (; o + 4 <= o1; o += 4) {
      const r = rowPtr + (<usize>o << 2);
      const e0 = load<i32>(r), e1 = load<i32>(r, 4), e2 = load<i32>(r, 8), e3 = load<i32>(r, 12), e4 = load<i32>(r, 16);
      const s = hsum4(rowAcc(x, blockCol, vals, e0, e1, k), rowAcc(x, blockCol, vals, e1, e2, k),
        rowAcc(x, blockCol, vals, e2, e3, k), rowAcc(x, blockCol, vals, e3, e4, k));
      putRows4(y, O, n, o, s, xsn, ws, bias);
    }
    for (; o < o1; o++) {
      const r = rowPtr + (<usize>o << 2);
      putI(y, O, n, o, hsumI(rowAcc(x, blockCol, vals, load<i32>(r), load<i32>(r, 4), k)), xs, ws, bias);
    }
  }
}

// -------------------------------------------------------------------------------------------- CSR

/** Σ over CSR entries [e0, e1) of x[col[e]] · values[e], one token (two chains). */
// @ts-ignore: decorator
@inline function csrDot(x: usize, col: usize, vals: usize, e0: i32, e1: i32): i32 {
  let s0 = 0, s1 = 0, e = e0;
  for (; e + 2 <= e1; e += 2) {
    s0 += i8at(vals, e) * <i32>load<i8>(x + colAt(col, e));
    s1 += i8at(vals, e + 1) * <i32>load<i8>(x + colAt(col, e + 1));
  }
  if (e < e1) s0 += i8at(vals, e) * <i32>load<i8>(x + colAt(col, e));
  return s0 + s1;
}

/** gemmI8 over a CSR weight: scalar products, 4 tokens per pass over a row's entries, vector epilogues. */
export function gemmCsrI8(th: i32, tid: i32, nth: i32, y: usize, xq: usize, xs: usize, rowPtr: usize, col: usize,
  vals: usize, ws: usize, bias: usize, N: i32, O: i32, I: i32): void {
  const o0 = splitStart(O, nth, tid, 4), o1 = splitStart(O, nth, tid + 1, 4);
  let n = 0;
  for (; n + 4 <= N; n += 4) {
    const x0 = xq + <usize>(n * I), x1 = x0 + <usize>I, x2 = x1 + <usize>I, x3 = x2 + <usize>I;
    for (let o = o0; o < o1; o++) {
      const e0 = load<i32>(rowPtr + (<usize>o << 2)), e1 = load<i32>(rowPtr + (<usize>o << 2), 4);
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      for (let e = e0; e < e1; e++) {
        const c = colAt(col, e), w = i8at(vals, e);
        s0 += w * <i32>load<i8>(x0 + c); s1 += w * <i32>load<i8>(x1 + c);
        s2 += w * <i32>load<i8>(x2 + c); s3 += w * <i32>load<i8>(x3 + c);
      }
      putTokens4(y, O, n, o, vec4(s0, s1, s2, s3), xs, f32at(ws, o), bias);
    }
  }
  for (; n < N; n++) {
    const x = xq + <usize>(n * I), xsn = f32at(xs, n);
    let o = o0;
    for (; o + 4 <= o1; o += 4) {
      const r = rowPtr + (<usize>o << 2);
      const e0 = load<i32>(r), e1 = load<i32>(r, 4), e2 = load<i32>(r, 8), e3 = load<i32>(r, 12), e4 = load<i32>(r, 16);
      putRows4(y, O, n, o, vec4(csrDot(x, col, vals, e0, e1), csrDot(x, col, vals, e1, e2), csrDot(x, col, vals, e2, e3),
        csrDot(x, col, vals, e3, e4)), xsn, ws, bias);
    }
    for (; o < o1; o++) {
      const r = rowPtr + (<usize>o << 2);
      putI(y, O, n, o, csrDot(x, col, vals, load<i32>(r), load<i32>(r, 4)), xs, ws, bias);
    }
  }
}
