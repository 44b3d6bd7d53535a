// Single-token int8 x int8 products for the fused decode step (int8-decode.ts), with gemmI8's exact
// semantics (kernels/int8.ts): int32 sums (any order: exact), then putI's float epilogue
// f32(f32(f32(acc) · xs) · ws[o]) (+ bias[o]). Both read the token's activations widened to int16 once
// (x16: shared by every product of the same input), so only weights are widened in the loops.
//
// - gemvTiledI8: a dense weight re-laid in tiles of 4 rows x 16 columns ([O/4][I/16][4][16]): one
//   pointer walks the tiles, where row-major rows need four (measured at 2048 x 128: 9.4 vs 12.5 µs,
//   both bound by instruction count, not memory).
// - blockGemv16: a 1 x 16 block-sparse weight as a flat list of blocks with their rows: no per-row
//   loop (at 90% sparsity most rows of a 128-wide layer hold 0 or 1 block), sums scattered into an
//   int32 row buffer, one vector epilogue per 4 rows.
import { hsum4, hsumI, putI, putRows4 } from './int8';

/** x16 (I) int16 = x (I) int8. */
export function widenI16(x: usize, x16: usize, I: i32): void {
  let i = 0;
  for (; i + 8 <= I; i += 8) v128.store(x16 + (<usize>i << 1), v128.load8x8_s(x + <usize>i));
  for (; i < I; i++) store<i16>(x16 + (<usize>i << 1), <i16>load<i8>(x + <usize>i));
}

/** Wt = W (O, I) in tiles of 4 rows x 16 columns, row-major tiles; O % 4 == 0, I % 16 == 0. */
export function tileRows4x16(W: usize, Wt: usize, O: i32, I: i32): void {
  let t = Wt;
  for (let o = 0; o < O; o += 4) {
    for (let i = 0; i < I; i += 16) {
      for (let r = 0; r < 4; r++) { v128.store(t, v128.load(W + <usize>(o + r) * <usize>I + <usize>i)); t += 16; }
    }
  }
}

/** y (O) = gemmI8 of one token over a weight tiled by tileRows4x16. */
export function gemvTiledI8(y: usize, x16: usize, xs: usize, Wt: usize, ws: usize, bias: usize, O: i32, I: i32): void {
  const xsn = load<f32>(xs), rb = <usize>I << 1;
  let w = Wt;
  for (let o = 0; o < O; o += 4) {
    let a0 = i32x4.splat(0), a1 = i32x4.splat(0), a2 = i32x4.splat(0), a3 = i32x4.splat(0);
    for (let p: usize = 0; p < rb; p += 32) {
      const u = v128.load(x16 + p), v = v128.load(x16 + p, 16);
      a0 = i32x4.add(a0, i32x4.add(i32x4.dot_i16x8_s(v128.load8x8_s(w), u), i32x4.dot_i16x8_s(v128.load8x8_s(w, 8), v)));
      a1 = i32x4.add(a1, i32x4.add(i32x4.dot_i16x8_s(v128.load8x8_s(w, 16), u), i32x4.dot_i16x8_s(v128.load8x8_s(w, 24), v)));
      a2 = i32x4.add(a2, i32x4.add(i32x4.dot_i16x8_s(v128.load8x8_s(w, 32), u), i32x4.dot_i16x8_s(v128.load8x8_s(w, 40), v)));
      a3 = i32x4.add(a3, i32x4.add(i32x4.dot_i16x8_s(v128.load8x8_s(w, 48), u), i32x4.dot_i16x8_s(v128.load8x8_s(w, 56), v)));
      w += 64;
    }
    putRows4(y, O, 0, o, hsum4(a0, a1, a2, a3), xsn, ws, bias);
  }
}

/** The int16 dot product of the 16 weights at v with the 16 activations at p (int32 lanes). */
// @ts-ignore: decorator
@inline function dot16(v: usize, p: usize): v128 {
  return i32x4.add(i32x4.dot_i16x8_s(v128.load8x8_s(v), v128.load(p)), i32x4.dot_i16x8_s(v128.load8x8_s(v, 8), v128.load(p, 16)));
}

// @ts-ignore: decorator
@inline function addAt(acc: usize, rows: usize, b: i32, s: i32): void {
  const q = acc + (<usize>load<i32>(rows + (<usize>b << 2)) << 2);
  store<i32>(q, load<i32>(q) + s);
}

/**
 * y (O) = gemmBlockI8 of one token over nb 1 x 16 blocks: block b holds vals[16b .. 16b+15] at input
 * columns cols[b] .. + 15 of row rows[b]. acc: O int32 of scratch.
 */
export function blockGemv16(y: usize, x16: usize, xs: usize, vals: usize, cols: usize, rows: usize, nb: i32, ws: usize,
  bias: usize, O: i32, acc: usize): void {
  let o = 0;
  for (; o + 4 <= O; o += 4) v128.store(acc + (<usize>o << 2), i32x4.splat(0));
  for (; o < O; o++) store<i32>(acc + (<usize>o << 2), 0);
  let b = 0;
  for (; b + 4 <= nb; b += 4) {
    const v = vals + (<usize>b << 4), c = cols + (<usize>b << 2);
    const s = hsum4(dot16(v, x16 + (<usize>load<i32>(c) << 1)), dot16(v + 16, x16 + (<usize>load<i32>(c, 4) << 1)),
      dot16(v + 32, x16 + (<usize>load<i32>(c, 8) << 1)), dot16(v + 48, x16 + (<usize>load<i32>(c, 12) << 1)));
    addAt(acc, rows, b, i32x4.extract_lane(s, 0)); addAt(acc, rows, b + 1, i32x4.extract_lane(s, 1));
    addAt(acc, rows, b + 2, i32x4.extract_lane(s, 2)); addAt(acc, rows, b + 3, i32x4.extract_lane(s, 3));
  }
  for (; b < nb; b++) {
    addAt(acc, rows, b, hsumI(dot16(vals + (<usize>b << 4), x16 + (<usize>load<i32>(cols + (<usize>b << 2)) << 1))));
  }
  const xsn = load<f32>(xs);
  for (o = 0; o + 4 <= O; o += 4) putRows4(y, O, 0, o, v128.load(acc + (<usize>o << 2)), xsn, ws, bias);
  for (; o < O; o++) putI(y, O, 0, o, load<i32>(acc + (<usize>o << 2)), xs, ws, bias);
}
