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

/** Activations of two 1 x 4 blocks: the int16 quads at x16 + the two byte offsets stored at c (u16). */
// @ts-ignore: decorator
@inline function pairAt(x16: usize, c: usize): v128 {
  return v128.load64_lane(x16 + <usize>load<u16>(c, 2), v128.load64_zero(x16 + <usize>load<u16>(c)), 1);
}

/**
 * y (O) = gemmBlockI8 of one token over a 1 x 4 block-sparse weight re-laid in groups of 4 rows
 * (wasm/int8-decode.ts groupBlocks4): the rows sorted by block count, so the 4 rows of a group hold
 * nearly as many blocks and consecutive groups run loops of the same length (the per-row loop of
 * gemmBlockI8 ends at an unpredictable count: one branch miss per row). Group g runs steps[g] steps;
 * a step is 2 blocks of each of its 4 rows: 32 weights at vals, 8 u16 byte offsets into x16 at offs
 * (padding: zero weights at offset 0). wsP / biasP: the rows' scales and bias in group order; perm:
 * the output row of each grouped row. O % 4 == 0.
 */
export function groupGemv4(y: usize, x16: usize, xs: usize, vals: usize, offs: usize, steps: usize, perm: usize,
  wsP: usize, biasP: usize, O: i32): void {
  const xsn = f32x4.splat(load<f32>(xs));
  let v = vals, c = offs;
  for (let g = 0; g < O; g += 4) {
    const m = load<i32>(steps + <usize>g);
    let a0 = i32x4.splat(0), a1 = i32x4.splat(0), a2 = i32x4.splat(0), a3 = i32x4.splat(0);
    for (let j = 0; j < m; j++) {
      a0 = i32x4.add(a0, i32x4.dot_i16x8_s(v128.load8x8_s(v), pairAt(x16, c)));
      a1 = i32x4.add(a1, i32x4.dot_i16x8_s(v128.load8x8_s(v, 8), pairAt(x16, c + 4)));
      a2 = i32x4.add(a2, i32x4.dot_i16x8_s(v128.load8x8_s(v, 16), pairAt(x16, c + 8)));
      a3 = i32x4.add(a3, i32x4.dot_i16x8_s(v128.load8x8_s(v, 24), pairAt(x16, c + 12)));
      v += 32; c += 16;
    }
    let f = f32x4.mul(f32x4.convert_i32x4_s(hsum4(a0, a1, a2, a3)), xsn);
    f = f32x4.mul(f, v128.load(wsP + (<usize>g << 2)));
    if (biasP) f = f32x4.add(f, v128.load(biasP + (<usize>g << 2)));
    const p = perm + (<usize>g << 2);
    v128.store32_lane(y + (<usize>load<i32>(p) << 2), f, 0);
    v128.store32_lane(y + (<usize>load<i32>(p, 4) << 2), f, 1);
    v128.store32_lane(y + (<usize>load<i32>(p, 8) << 2), f, 2);
    v128.store32_lane(y + (<usize>load<i32>(p, 12) << 2), f, 3);
  }
}
