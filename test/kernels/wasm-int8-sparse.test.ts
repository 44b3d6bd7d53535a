/**
 * wasm block-sparse (1 x k) and CSR int8 kernels against the plain-TS reference: int8 x int8 bit-identical,
 * W8A32 within the interface tolerance; k = 4, 8, 16 (SIMD paths) and other widths (generic path), odd
 * shapes, N = 1, 3, 17 (4-token passes and the single-token tail), 1 and 2 threads.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { denseToBlock, denseToCsr, type BlockI8Matrix } from '../../src/sparse/storage.js';
import { TsInt8Kernels } from '../../src/kernels/ts/int8.js';
import { QkdError } from '../../src/tensor/errors.js';
import { randoms } from '../helpers.js';
import { blockSparse, inF32, inI8, int8s, openInt8, sameBits, scales, w8a32Close, type Under } from './wasm-int8-util.js';

const ts = new TsInt8Kernels();
let all: Under[] = [];
before(async () => { all = await openInt8(); });
after(async () => { await Promise.all(all.map((u) => u.be.dispose())); });

// (O, I): I a multiple of every k tested with it
const SHAPES: [number, number][] = [[1, 48], [5, 48], [17, 96], [33, 144], [130, 208]];
const NS = [1, 3, 17];
const KS = [1, 2, 4, 8, 12, 16, 24];

type CaseFn = (O: number, I: number, N: number, k: number, Wd: Int8Array, ws: Float32Array, bias: Float32Array | null,
  seed: number) => void;

/** Runs fn for every (shape, N, k) with a weight whose blocks are `empty` empty, plus its scales and bias. */
function forCases(empty: number, seed0: number, fn: CaseFn): void {
  SHAPES.forEach(([O, I], si) => {
    for (const k of KS) {
      if (I % k !== 0) continue;
      for (const N of NS) {
        const seed = seed0 + 1000 * si + 10 * k + N;
        fn(O, I, N, k, blockSparse(O, I, k, empty, seed), scales(O, seed + 1), N === 3 ? null : randoms(O, seed + 2), seed);
      }
    }
  });
}

test('gemmBlockI8 is bit-identical to the reference (k = 1..24, 90% and 30% empty blocks)', () => {
  for (const empty of [0.9, 0.3]) {
    forCases(empty, 10_000, (O, I, N, k, Wd, ws, bias, seed) => {
      const xq = int8s(N * I, seed + 3), xs = scales(N, seed + 4), want = new Float32Array(N * O);
      ts.gemmBlockI8(want, xq, xs, denseToBlock(Wd, ws, O, I, k), N, bias);
      for (const { label, be, k: K } of all) {
        const W = denseToBlock(Wd, inF32(be, ws), O, I, k, K), y = be.alloc(N * O);
        K.gemmBlockI8(y, inI8(K, xq), inF32(be, xs), W, N, bias && inF32(be, bias));
        sameBits(y, want, `${label} gemmBlockI8 k=${k} N=${N} O=${O} I=${I} empty=${empty}`);
      }
    });
  }
});

test('gemmBlockW8A32 is within the interface tolerance of the reference', () => {
  forCases(0.6, 20_000, (O, I, N, k, Wd, ws, bias, seed) => {
    const x = randoms(N * I, seed + 3, -2, 2), want = new Float32Array(N * O);
    ts.gemmBlockW8A32(want, x, denseToBlock(Wd, ws, O, I, k), N, bias);
    for (const { label, be, k: K } of all) {
      const W = denseToBlock(Wd, inF32(be, ws), O, I, k, K), y = be.alloc(N * O);
      K.gemmBlockW8A32(y, inF32(be, x), W, N, bias && inF32(be, bias));
      w8a32Close(y, want, x, Wd, ws, N, O, I, `${label} gemmBlockW8A32 k=${k} N=${N} O=${O} I=${I}`);
    }
  });
});

test('CSR kernels: int8 x int8 bit-identical, W8A32 within tolerance (90% and 50% zeros, empty rows)', () => {
  SHAPES.forEach(([O, I], si) => {
    for (const zeros of [0.9, 0.5]) {
      for (const N of NS) {
        const seed = 30_000 + 100 * si + N + (zeros === 0.9 ? 0 : 50);
        const Wd = int8s(O * I, seed, zeros);
        if (O > 2) Wd.fill(0, I, 2 * I); // an empty row
        const ws = scales(O, seed + 1), bias = N === 1 ? null : randoms(O, seed + 2);
        const xq = int8s(N * I, seed + 3), xs = scales(N, seed + 4), x = randoms(N * I, seed + 5, -2, 2);
        const ref = denseToCsr(Wd, ws, O, I), wantI = new Float32Array(N * O), wantF = new Float32Array(N * O);
        ts.gemmCsrI8(wantI, xq, xs, ref, N, bias);
        ts.gemmCsrW8A32(wantF, x, ref, N, bias);
        for (const { label, be, k: K } of all) {
          const W = denseToCsr(Wd, inF32(be, ws), O, I, K), y = be.alloc(N * O), b = bias && inF32(be, bias);
          K.gemmCsrI8(y, inI8(K, xq), inF32(be, xs), W, N, b);
          sameBits(y, wantI, `${label} gemmCsrI8 N=${N} O=${O} I=${I} zeros=${zeros}`);
          K.gemmCsrW8A32(y, inF32(be, x), W, N, b);
          w8a32Close(y, wantF, x, Wd, ws, N, O, I, `${label} gemmCsrW8A32 N=${N} O=${O} I=${I}`);
        }
      }
    }
  });
});

test('sparse kernels accept matrices in plain (non-alloc) arrays and an all-empty matrix', () => {
  const O = 7, I = 32, N = 3, Wd = blockSparse(O, I, 8, 0.7, 5), ws = scales(O, 6), xq = int8s(N * I, 7), xs = scales(N, 8);
  const want = new Float32Array(N * O);
  ts.gemmBlockI8(want, xq, xs, denseToBlock(Wd, ws, O, I, 8), N);
  const zero = new Float32Array(N * O), empty = denseToBlock(new Int8Array(O * I), ws, O, I, 16);
  for (const { label, k: K } of all) {
    const y = new Float32Array(N * O);
    K.gemmBlockI8(y, xq, xs, denseToBlock(Wd, ws, O, I, 8), N);
    sameBits(y, want, `${label} plain arrays`);
    y.fill(5);
    K.gemmBlockI8(y, xq, xs, empty, N);
    sameBits(y, zero, `${label} empty matrix`);
  }
});

test('malformed sparse matrices are rejected before any kernel runs', () => {
  const O = 2, I = 16, ws = scales(O, 1), Wd = int8s(O * I, 2);
  const input = (e: unknown) => e instanceof QkdError && e.code === 'E_INPUT';
  const shape = (e: unknown) => e instanceof QkdError && e.code === 'E_SHAPE';
  for (const { be, k: K } of all) {
    const y = be.alloc(O), xq = K.allocI8(I), xs = be.alloc(1);
    const good = denseToBlock(Wd, ws, O, I, 8, K);
    const badCol: BlockI8Matrix = { ...good, blockCol: Int32Array.from(good.blockCol, (c, i) => (i === 1 ? 12 : c)) };
    assert.throws(() => K.gemmBlockI8(y, xq, xs, badCol, 1), input);
    assert.throws(() => K.gemmBlockI8(y, xq, xs, { ...good, k: 5 }, 1), shape);
    assert.throws(() => K.gemmBlockI8(y, xq, xs, { ...good, rowPtr: Int32Array.of(0, 3, 1) }, 1), input);
    const csr = denseToCsr(Wd, ws, O, I, K);
    assert.throws(() => K.gemmCsrI8(y, xq, xs, { ...csr, col: Int32Array.from(csr.col, (c) => c + 1) }, 1), input);
    assert.throws(() => K.gemmCsrW8A32(y, be.alloc(I), { ...csr, values: csr.values.subarray(1) }, 1), shape);
  }
});
