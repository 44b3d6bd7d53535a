/**
 * wasm int8 kernels (dense products, activation quantization, embedding) against the plain-TS reference
 * (kernels/ts/int8.ts): bit-identical where the interface says so, the W8A32 tolerance otherwise; odd
 * shapes, N = 1, 3, 17, 1 and 2 threads, FMA and mul+add builds.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { int8KernelsFor } from '../../src/kernels/int8.js';
import { TsInt8Kernels } from '../../src/kernels/ts/int8.js';
import { WasmInt8Kernels } from '../../src/kernels/wasm/int8.js';
import { QkdError } from '../../src/tensor/errors.js';
import { randoms } from '../helpers.js';
import { inF32, inI8, int8s, openInt8, sameBits, scales, w8a32Close, type Under } from './wasm-int8-util.js';

const ts = new TsInt8Kernels();
let all: Under[] = [];
before(async () => { all = await openInt8(); });
after(async () => { await Promise.all(all.map((u) => u.be.dispose())); });

// (O, I): 1s, below and around the 4-row / 8- and 16-column steps, the W8A32 column block (128), a decode shape
const SHAPES: [number, number][] = [[1, 1], [3, 7], [4, 8], [5, 13], [17, 33], [9, 130], [64, 48], [130, 200], [384, 128]];
const NS = [1, 3, 17];

test('gemmI8 is bit-identical to the reference (shapes, N = 1/3/17, bias or none)', () => {
  SHAPES.forEach(([O, I], si) => {
    for (const N of NS) {
      const seed = 1000 + 10 * si + N;
      const xq = int8s(N * I, seed), Wq = int8s(O * I, seed + 1, 0.3), xs = scales(N, seed + 2), ws = scales(O, seed + 3);
      const bias = N === 3 ? null : randoms(O, seed + 4);
      const want = new Float32Array(N * O);
      ts.gemmI8(want, xq, xs, Wq, ws, N, O, I, bias);
      for (const { label, be, k } of all) {
        const y = be.alloc(N * O);
        k.gemmI8(y, inI8(k, xq), inF32(be, xs), inI8(k, Wq), inF32(be, ws), N, O, I, bias && inF32(be, bias));
        sameBits(y, want, `${label} gemmI8 N=${N} O=${O} I=${I}`);
      }
    }
  });
});

test('gemmI8 at the int32 extremes (every product -128·-128) and with foreign (non-alloc) arrays', () => {
  const N = 3, O = 6, I = 1000;
  const xq = new Int8Array(N * I).fill(-128), Wq = new Int8Array(O * I).fill(-128);
  Wq.fill(127, 0, I);
  const xs = scales(N, 5), ws = scales(O, 6), want = new Float32Array(N * O);
  ts.gemmI8(want, xq, xs, Wq, ws, N, O, I);
  for (const { label, k } of all) {
    const y = new Float32Array(N * O); // plain arrays: copied in and out by the engine
    k.gemmI8(y, xq, xs, Wq, ws, N, O, I);
    sameBits(y, want, `${label} gemmI8 extremes`);
  }
});

test('gemmW8A32 is within the interface tolerance of the reference', () => {
  SHAPES.forEach(([O, I], si) => {
    for (const N of NS) {
      const seed = 2000 + 10 * si + N;
      const x = randoms(N * I, seed, -3, 3), Wq = int8s(O * I, seed + 1, 0.3), ws = scales(O, seed + 3);
      const bias = N === 17 ? null : randoms(O, seed + 4);
      const want = new Float32Array(N * O);
      ts.gemmW8A32(want, x, Wq, ws, N, O, I, bias);
      for (const { label, be, k } of all) {
        const y = be.alloc(N * O);
        k.gemmW8A32(y, inF32(be, x), inI8(k, Wq), inF32(be, ws), N, O, I, bias && inF32(be, bias));
        w8a32Close(y, want, x, Wq, ws, N, O, I, `${label} gemmW8A32 N=${N} O=${O} I=${I}`);
      }
    }
  });
});

test('gemmW8A32 holds the tolerance on a long row with cancelling terms (I = 3000)', () => {
  const N = 2, O = 5, I = 3000;
  const x = randoms(N * I, 77, -1, 1), Wq = int8s(O * I, 78), ws = scales(O, 79), want = new Float32Array(N * O);
  ts.gemmW8A32(want, x, Wq, ws, N, O, I);
  for (const { label, be, k } of all) {
    const y = be.alloc(N * O);
    k.gemmW8A32(y, inF32(be, x), inI8(k, Wq), inF32(be, ws), N, O, I);
    w8a32Close(y, want, x, Wq, ws, N, O, I, `${label} gemmW8A32 long`);
  }
});

/** Rows exercising the quantizer's corners: ties, zeros, NaN, ±Inf, tiny values, odd lengths. */
function quantInputs(N: number, C: number, seed: number): Float32Array {
  const x = randoms(N * C, seed, -4, 4);
  if (N > 1) x.fill(0, C, 2 * C); // all-zero row: scale 1
  if (N > 2) { // s = 1 at 127 bits=8: halves are ties, rounded to even
    for (let c = 0; c < C; c++) x[2 * C + c] = (c % 9) - 4.5;
    x[2 * C] = 127;
  }
  if (N > 3) { x[3 * C] = NaN; x[3 * C + 1] = -Infinity; }
  if (N > 4) x.fill(1e-40, 4 * C, 5 * C); // denormals: scale underflows to 0 -> 1
  if (N > 5) { x[5 * C] = NaN; } // NaN skipped by max, quantized to 0
  return x;
}

test('quantizeRowsI8 is bit-identical to quant quantizeTokens (bits 2..8, corner rows)', () => {
  for (const [N, C] of [[1, 1], [3, 5], [6, 16], [7, 37], [17, 128]] as const) {
    for (let bits = 2; bits <= 8; bits++) {
      const x = quantInputs(N, C, 3000 + N * 10 + bits);
      const wq = new Int8Array(N * C), ws = new Float32Array(N);
      ts.quantizeRowsI8(wq, ws, x, N, C, bits);
      for (const { label, be, k } of all) {
        const q = k.allocI8(N * C), s = be.alloc(N);
        k.quantizeRowsI8(q, s, inF32(be, x), N, C, bits);
        assert.deepEqual([...q], [...wq], `${label} quantize q N=${N} C=${C} bits=${bits}`);
        sameBits(s, ws, `${label} quantize scales N=${N} C=${C} bits=${bits}`);
      }
    }
  }
});

test('embedI8 is bit-identical to the reference', () => {
  const V = 11, C = 21, N = 17;
  const Wq = int8s(V * C, 4000), ws = scales(V, 4001), ids = Int32Array.from({ length: N }, (_, i) => (i * 7) % V);
  const want = new Float32Array(N * C);
  ts.embedI8(want, ids, Wq, ws, N, C);
  for (const { label, be, k } of all) {
    const out = be.alloc(N * C), id = be.allocI32(N);
    id.set(ids);
    k.embedI8(out, id, inI8(k, Wq), inF32(be, ws), N, C);
    sameBits(out, want, `${label} embedI8`);
    assert.throws(() => k.embedI8(out, Int32Array.of(V), Wq, ws, 1, C),
      (e: unknown) => e instanceof QkdError && e.code === 'E_INPUT');
  }
});

test('registry, allocation and argument errors', () => {
  for (const { label, be, k } of all) {
    const got = int8KernelsFor(be, () => ts);
    assert.ok(got instanceof WasmInt8Kernels && got === k, `${label}: int8KernelsFor gives the engine's wasm kernels`);
    assert.equal(got.formatRule, k.formatRule);
    const a = k.allocI8(37), b = k.allocI32(5);
    assert.ok(a.every((v) => v === 0) && b.every((v) => v === 0), `${label}: zero-filled`);
    assert.ok(be.engine.owns(a) && be.engine.owns(b), `${label}: in the shared memory`);
    assert.throws(() => k.free(a.subarray(1)), /not a live allocation|whole allocation/);
    k.free(a); k.free(b);
    const shape = (e: unknown) => e instanceof QkdError && e.code === 'E_SHAPE';
    assert.throws(() => k.gemmI8(be.alloc(4), k.allocI8(3), be.alloc(1), k.allocI8(8), be.alloc(2), 1, 2, 4), shape);
    assert.throws(() => k.gemmW8A32(be.alloc(4), be.alloc(4), k.allocI8(8), be.alloc(2), 1, 2, 4.5), shape);
    assert.throws(() => k.quantizeRowsI8(k.allocI8(4), be.alloc(1), be.alloc(4), 1, 4, 9),
      (e: unknown) => e instanceof QkdError && e.code === 'E_CONFIG');
  }
});
