// Single-precision GEMM: C (M,N) (+)= op(A) (M,K) · op(B) (K,N), GotoBLAS/BLIS-style.
// A is packed into MR-tall panels ([k][MR]) and B into NR-wide panels ([k][NR]) per (KC x NC) block,
// so every transpose variant runs the same register-tiled micro-kernel; transposes happen in packing.
// Pointers are byte offsets into the shared memory; leading dimensions are in elements.
import { madd, splitStart } from './simd';

// Micro-tiles, measured per core (CPU time) in the FMA build: 3x12 is best on wide outputs (9
// accumulators + 3 B vectors + 1 broadcast = 13 of V8's ~15 xmm registers: 52 vs 50 GFLOP/s for 4x8
// at 512^3); 4x8 wins when N is a small multiple of 8 but not of 12, e.g. attention's head dim 64
// (47 vs 42: no padded columns); 2x16 was slower everywhere. The mul+add build always uses 4x8 (its
// products need temporaries). Tile ids: 1 = 3x12, 0 = 4x8.
export const KC: i32 = 256;
const MC_MAX: i32 = 128;   // an A block of MC x KC floats lives in L2 (126 rows for 3x12, 128 for 4x8)
export const NC: i32 = 2040; // multiple of 12 and 8; a B block of KC x NC floats (~2 MB)

/** Bytes of per-thread workspace the GEMM needs (packed A, packed B, one edge tile). */
export function gemmWorkspaceBytes(): i32 {
  return (MC_MAX * KC + KC * NC + 64) * 4;
}

/** The micro-tile for a product with N output columns (see above). */
export function pickTile(N: i32): i32 {
  if (!FMA) return 0;
  return N <= 192 && N % 8 == 0 && N % 12 != 0 ? 0 : 1;
}
// @ts-ignore: decorator
@inline export function tileMR(tile: i32): i32 { return FMA && tile == 1 ? 3 : 4; }
// @ts-ignore: decorator
@inline export function tileNR(tile: i32): i32 { return FMA && tile == 1 ? 12 : 8; }

/** Packs rows [0, mc) x cols [0, kc) of op(A) (already offset to the block) into MR-tall panels. */
function packA(A: usize, lda: i32, tA: bool, mc: i32, kc: i32, dst: usize, MR: i32): void {
  for (let ir = 0; ir < mc; ir += MR) {
    const mr = min<i32>(MR, mc - ir);
    if (tA) {
      // A stored (K,M): the MR values of one k are contiguous
      for (let k = 0; k < kc; k++) {
        const src = A + ((<usize>k * lda + ir) << 2), d = dst + (<usize>(k * MR) << 2);
        let r = 0;
        for (; r < mr; r++) store<f32>(d + (<usize>r << 2), load<f32>(src + (<usize>r << 2)));
        for (; r < MR; r++) store<f32>(d + (<usize>r << 2), 0);
      }
    } else {
      for (let r = 0; r < MR; r++) {
        const d = dst + (<usize>r << 2);
        if (r < mr) {
          const src = A + (<usize>(ir + r) * lda << 2);
          for (let k = 0; k < kc; k++) store<f32>(d + (<usize>(k * MR) << 2), load<f32>(src + (<usize>k << 2)));
        } else {
          for (let k = 0; k < kc; k++) store<f32>(d + (<usize>(k * MR) << 2), 0);
        }
      }
    }
    dst += <usize>(kc * MR) << 2;
  }
}

/** Packs rows [0, kc) x cols [0, nc) of op(B) (already offset to the block) into NR-wide panels. */
function packB(B: usize, ldb: i32, tB: bool, kc: i32, nc: i32, dst: usize, NR: i32): void {
  for (let jr = 0; jr < nc; jr += NR) {
    const nr = min<i32>(NR, nc - jr);
    if (!tB) {
      // B stored (K,N): one k row of the panel is NR contiguous floats
      for (let k = 0; k < kc; k++) {
        const src = B + ((<usize>k * ldb + jr) << 2), d = dst + (<usize>(k * NR) << 2);
        if (nr == NR) {
          for (let c = 0; c < NR; c += 4) v128.store(d + (<usize>c << 2), v128.load(src + (<usize>c << 2)));
        } else {
          let c = 0;
          for (; c < nr; c++) store<f32>(d + (<usize>c << 2), load<f32>(src + (<usize>c << 2)));
          for (; c < NR; c++) store<f32>(d + (<usize>c << 2), 0);
        }
      }
    } else {
      // B stored (N,K): column j of op(B) is row j of B, contiguous in k
      for (let c = 0; c < NR; c++) {
        const d = dst + (<usize>c << 2);
        if (c < nr) {
          const src = B + (<usize>(jr + c) * ldb << 2);
          let k = 0;
          for (; k + 4 <= kc; k += 4) {
            const v = v128.load(src + (<usize>k << 2));
            const o = d + (<usize>(k * NR) << 2);
            v128.store32_lane(o, v, 0);
            v128.store32_lane(o + (<usize>NR << 2), v, 1);
            v128.store32_lane(o + (<usize>(2 * NR) << 2), v, 2);
            v128.store32_lane(o + (<usize>(3 * NR) << 2), v, 3);
          }
          for (; k < kc; k++) store<f32>(d + (<usize>(k * NR) << 2), load<f32>(src + (<usize>k << 2)));
        } else {
          for (let k = 0; k < kc; k++) store<f32>(d + (<usize>(k * NR) << 2), 0);
        }
      }
    }
    dst += <usize>(kc * NR) << 2;
  }
}

// @ts-ignore: decorator
@inline function out(c: usize, v: v128, addC: bool): void {
  v128.store(c, addC ? f32x4.add(v, v128.load(c)) : v);
}

/** 3x12 FMA micro-kernel: C[3][12] (+)= Ap (kc,3) · Bp (kc,12). ldc in bytes. */
function micro3x12(a: usize, b: usize, kc: i32, c: usize, ldc: usize, addC: bool): void {
  let c00 = f32x4.splat(0), c01 = f32x4.splat(0), c02 = f32x4.splat(0);
  let c10 = f32x4.splat(0), c11 = f32x4.splat(0), c12 = f32x4.splat(0);
  let c20 = f32x4.splat(0), c21 = f32x4.splat(0), c22 = f32x4.splat(0);
  for (let k = 0; k < kc; k++) {
    const b0 = v128.load(b), b1 = v128.load(b, 16), b2 = v128.load(b, 32);
    let a0 = v128.load32_splat(a);
    c00 = madd(a0, b0, c00); c01 = madd(a0, b1, c01); c02 = madd(a0, b2, c02);
    a0 = v128.load32_splat(a, 4);
    c10 = madd(a0, b0, c10); c11 = madd(a0, b1, c11); c12 = madd(a0, b2, c12);
    a0 = v128.load32_splat(a, 8);
    c20 = madd(a0, b0, c20); c21 = madd(a0, b1, c21); c22 = madd(a0, b2, c22);
    a += 12; b += 48;
  }
  out(c, c00, addC); out(c + 16, c01, addC); out(c + 32, c02, addC); c += ldc;
  out(c, c10, addC); out(c + 16, c11, addC); out(c + 32, c12, addC); c += ldc;
  out(c, c20, addC); out(c + 16, c21, addC); out(c + 32, c22, addC);
}

/** 4x8 micro-kernel (both builds). */
function micro4x8(a: usize, b: usize, kc: i32, c: usize, ldc: usize, addC: bool): void {
  let c00 = f32x4.splat(0), c01 = f32x4.splat(0), c10 = f32x4.splat(0), c11 = f32x4.splat(0);
  let c20 = f32x4.splat(0), c21 = f32x4.splat(0), c30 = f32x4.splat(0), c31 = f32x4.splat(0);
  for (let k = 0; k < kc; k++) {
    const b0 = v128.load(b), b1 = v128.load(b, 16);
    let a0 = v128.load32_splat(a);
    c00 = madd(a0, b0, c00); c01 = madd(a0, b1, c01);
    a0 = v128.load32_splat(a, 4);
    c10 = madd(a0, b0, c10); c11 = madd(a0, b1, c11);
    a0 = v128.load32_splat(a, 8);
    c20 = madd(a0, b0, c20); c21 = madd(a0, b1, c21);
    a0 = v128.load32_splat(a, 12);
    c30 = madd(a0, b0, c30); c31 = madd(a0, b1, c31);
    a += 16; b += 32;
  }
  out(c, c00, addC); out(c + 16, c01, addC); c += ldc;
  out(c, c10, addC); out(c + 16, c11, addC); c += ldc;
  out(c, c20, addC); out(c + 16, c21, addC); c += ldc;
  out(c, c30, addC); out(c + 16, c31, addC);
}

// @ts-ignore: decorator
@inline function micro(tile: i32, a: usize, b: usize, kc: i32, c: usize, ldc: usize, addC: bool): void {
  if (FMA && tile == 1) micro3x12(a, b, kc, c, ldc, addC);
  else micro4x8(a, b, kc, c, ldc, addC);
}

/** Copies the valid mr x nr corner of an MR x NR tile into C (edge tiles). */
function edgeTile(tile: usize, c: usize, ldc: i32, mr: i32, nr: i32, addC: bool, NR: i32): void {
  for (let r = 0; r < mr; r++) {
    const s = tile + (<usize>(r * NR) << 2), d = c + (<usize>(r * ldc) << 2);
    for (let j = 0; j < nr; j++) {
      const v = load<f32>(s + (<usize>j << 2));
      const o = d + (<usize>j << 2);
      store<f32>(o, addC ? v + load<f32>(o) : v);
    }
  }
}

/**
 * One thread's GEMM on a sub-problem with micro-tile t. A and B point at element (0,0) of op(A) / op(B) of the
 * sub-problem; lda/ldb/ldc are the row strides of the stored matrices.
 */
export function gemm(M: i32, N: i32, K: i32, A: usize, lda: i32, tA: bool, B: usize, ldb: i32, tB: bool,
  C: usize, ldc: i32, acc: bool, ws: usize, t: i32): void {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) { if (!acc) zeroC(C, ldc, M, N); return; }
  const MR = tileMR(t), NR = tileNR(t), MC = MR * (MC_MAX / MR);
  const ap = ws, bp = ws + (<usize>(MC_MAX * KC) << 2), tile = bp + (<usize>(KC * NC) << 2);
  for (let jc = 0; jc < N; jc += NC) {
    const nc = min<i32>(NC, N - jc);
    for (let pc = 0; pc < K; pc += KC) {
      const kc = min<i32>(KC, K - pc);
      const bsrc = tB ? B + ((<usize>jc * ldb + pc) << 2) : B + ((<usize>pc * ldb + jc) << 2);
      packB(bsrc, ldb, tB, kc, nc, bp, NR);
      const addC = acc || pc > 0;
      for (let ic = 0; ic < M; ic += MC) {
        const mc = min<i32>(MC, M - ic);
        const asrc = tA ? A + ((<usize>pc * lda + ic) << 2) : A + ((<usize>ic * lda + pc) << 2);
        packA(asrc, lda, tA, mc, kc, ap, MR);
        for (let jr = 0; jr < nc; jr += NR) {
          const nr = min<i32>(NR, nc - jr);
          const bpan = bp + (<usize>(jr * kc) << 2);
          for (let ir = 0; ir < mc; ir += MR) {
            const mr = min<i32>(MR, mc - ir);
            const apan = ap + (<usize>(ir * kc) << 2);
            const cp = C + ((<usize>(ic + ir) * ldc + jc + jr) << 2);
            if (mr == MR && nr == NR) micro(t, apan, bpan, kc, cp, <usize>ldc << 2, addC);
            else {
              micro(t, apan, bpan, kc, tile, <usize>NR << 2, false);
              edgeTile(tile, cp, ldc, mr, nr, addC, NR);
            }
          }
        }
      }
    }
  }
}

function zeroC(C: usize, ldc: i32, M: i32, N: i32): void {
  for (let i = 0; i < M; i++) memory.fill(C + (<usize>(i * ldc) << 2), 0, <usize>N << 2);
}

/** c (N) (+)= a (K) · B (K,N) with row stride ldb; columns [j0, j1). */
function gemvN(a: usize, B: usize, ldb: i32, c: usize, K: i32, j0: i32, j1: i32, acc: bool): void {
  if (!acc) memory.fill(c + (<usize>j0 << 2), 0, <usize>(j1 - j0) << 2);
  let k = 0;
  // four rows of B per pass over c: 4 B loads and one c load/store per 4 multiply-adds
  for (; k + 4 <= K; k += 4) {
    const a0 = v128.load32_splat(a + (<usize>k << 2)), a1 = v128.load32_splat(a + (<usize>(k + 1) << 2));
    const a2 = v128.load32_splat(a + (<usize>(k + 2) << 2)), a3 = v128.load32_splat(a + (<usize>(k + 3) << 2));
    const r0 = B + (<usize>k * ldb << 2), st = <usize>ldb << 2;
    let j = j0;
    for (; j + 4 <= j1; j += 4) {
      const o = <usize>j << 2;
      let v = v128.load(c + o);
      v = madd(a0, v128.load(r0 + o), v);
      v = madd(a1, v128.load(r0 + st + o), v);
      v = madd(a2, v128.load(r0 + 2 * st + o), v);
      v = madd(a3, v128.load(r0 + 3 * st + o), v);
      v128.store(c + o, v);
    }
    for (; j < j1; j++) {
      const o = <usize>j << 2;
      let s = load<f32>(c + o);
      s += f32x4.extract_lane(a0, 0) * load<f32>(r0 + o) + f32x4.extract_lane(a1, 0) * load<f32>(r0 + st + o)
        + f32x4.extract_lane(a2, 0) * load<f32>(r0 + 2 * st + o) + f32x4.extract_lane(a3, 0) * load<f32>(r0 + 3 * st + o);
      store<f32>(c + o, s);
    }
  }
  for (; k < K; k++) {
    const av = load<f32>(a + (<usize>k << 2)), a0 = f32x4.splat(av);
    const r0 = B + (<usize>k * ldb << 2);
    let j = j0;
    for (; j + 4 <= j1; j += 4) {
      const o = <usize>j << 2;
      v128.store(c + o, madd(a0, v128.load(r0 + o), v128.load(c + o)));
    }
    for (; j < j1; j++) {
      const o = <usize>j << 2;
      store<f32>(c + o, load<f32>(c + o) + av * load<f32>(r0 + o));
    }
  }
}

/** c[j] (+)= dot(a (K), B row j) for B stored (N,K) with row stride ldb; rows [j0, j1). */
function gemvT(a: usize, B: usize, ldb: i32, c: usize, K: i32, j0: i32, j1: i32, acc: bool): void {
  let j = j0;
  const K4 = K & ~3;
  for (; j + 4 <= j1; j += 4) {
    const r0 = B + (<usize>j * ldb << 2), st = <usize>ldb << 2;
    const r1 = r0 + st, r2 = r1 + st, r3 = r2 + st;
    let s0 = f32x4.splat(0), s1 = f32x4.splat(0), s2 = f32x4.splat(0), s3 = f32x4.splat(0);
    for (let k = 0; k < K4; k += 4) {
      const o = <usize>k << 2, av = v128.load(a + o);
      s0 = madd(av, v128.load(r0 + o), s0); s1 = madd(av, v128.load(r1 + o), s1);
      s2 = madd(av, v128.load(r2 + o), s2); s3 = madd(av, v128.load(r3 + o), s3);
    }
    // transpose-and-add: lane i of the result is the full sum of s_i
    const t0 = f32x4.add(v128.shuffle<f32>(s0, s1, 0, 1, 4, 5), v128.shuffle<f32>(s0, s1, 2, 3, 6, 7));
    const t1 = f32x4.add(v128.shuffle<f32>(s2, s3, 0, 1, 4, 5), v128.shuffle<f32>(s2, s3, 2, 3, 6, 7));
    let r = f32x4.add(v128.shuffle<f32>(t0, t1, 0, 2, 4, 6), v128.shuffle<f32>(t0, t1, 1, 3, 5, 7));
    for (let k = K4; k < K; k++) {
      const o = <usize>k << 2, av = load<f32>(a + o);
      r = f32x4.replace_lane(r, 0, f32x4.extract_lane(r, 0) + av * load<f32>(r0 + o));
      r = f32x4.replace_lane(r, 1, f32x4.extract_lane(r, 1) + av * load<f32>(r1 + o));
      r = f32x4.replace_lane(r, 2, f32x4.extract_lane(r, 2) + av * load<f32>(r2 + o));
      r = f32x4.replace_lane(r, 3, f32x4.extract_lane(r, 3) + av * load<f32>(r3 + o));
    }
    const co = c + (<usize>j << 2);
    v128.store(co, acc ? f32x4.add(r, v128.load(co)) : r);
  }
  for (; j < j1; j++) {
    const r0 = B + (<usize>j * ldb << 2);
    let s = f32x4.splat(0);
    for (let k = 0; k < K4; k += 4) s = madd(v128.load(a + (<usize>k << 2)), v128.load(r0 + (<usize>k << 2)), s);
    let t = f32x4.extract_lane(s, 0) + f32x4.extract_lane(s, 1) + f32x4.extract_lane(s, 2) + f32x4.extract_lane(s, 3);
    for (let k = K4; k < K; k++) t += load<f32>(a + (<usize>k << 2)) * load<f32>(r0 + (<usize>k << 2));
    const co = c + (<usize>j << 2);
    store<f32>(co, acc ? t + load<f32>(co) : t);
  }
}

/**
 * Chunk tid of nth of one matmul (see Backend.matmul). Splits the larger of M and N into
 * tile-aligned ranges; a matrix-vector product (M = 1 or N = 1) runs without packing.
 */
export function matmulShare(tid: i32, nth: i32, C: usize, A: usize, B: usize, M: i32, N: i32, K: i32,
  tA: bool, tB: bool, acc: bool, ws: usize): void {
  const lda = tA ? M : K, ldb = tB ? K : N;
  if (M == 1 || N == 1) {
    // (1,K)·op(B) directly; (M,K)·(K,1) as the transposed problem b^T·op(A)^T. A single row or
    // column is contiguous whatever its transpose flag.
    const len = M == 1 ? N : M;
    const j0 = splitStart(len, nth, tid, 16), j1 = splitStart(len, nth, tid + 1, 16);
    if (j0 >= j1) return;
    const vec = M == 1 ? A : B, mat = M == 1 ? B : A;
    const ld = M == 1 ? ldb : lda, rowsAreOutputs = M == 1 ? tB : !tA;
    if (rowsAreOutputs) gemvT(vec, mat, ld, C, K, j0, j1, acc);
    else gemvN(vec, mat, ld, C, K, j0, j1, acc);
    return;
  }
  const t = pickTile(N), MR = tileMR(t), NR = tileNR(t);
  if (M >= N) {
    const i0 = splitStart(M, nth, tid, MR), i1 = splitStart(M, nth, tid + 1, MR);
    if (i0 >= i1) return;
    const a = tA ? A + (<usize>i0 << 2) : A + (<usize>i0 * lda << 2);
    gemm(i1 - i0, N, K, a, lda, tA, B, ldb, tB, C + (<usize>i0 * N << 2), N, acc, ws, t);
  } else {
    const j0 = splitStart(N, nth, tid, NR), j1 = splitStart(N, nth, tid + 1, NR);
    if (j0 >= j1) return;
    const b = tB ? B + (<usize>j0 * ldb << 2) : B + (<usize>j0 << 2);
    gemm(M, j1 - j0, K, A, lda, tA, b, ldb, tB, C + (<usize>j0 << 2), N, acc, ws, t);
  }
}
