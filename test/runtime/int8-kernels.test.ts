/**
 * The plain-TS int8 kernels (kernels/ts/int8.ts) against float math and exact integer sums: the
 * interface's rounding order bit for bit, sparse formats equal to dense, and the format rule.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { linearI8, type Int8Kernels } from '../../src/kernels/int8.js';
import { chooseFormat, denseToBlock, denseToCsr, sparsityStats, toDenseValues } from '../../src/sparse/storage.js';
import { TsInt8Kernels } from '../../src/kernels/ts/int8.js';
import { dequantizeRows, fakeQuantTokens, quantizeTokens } from '../../src/quant/quantize.js';
import { rng } from '../../src/runtime/generate.js';

const K: Int8Kernels = new TsInt8Kernels();
const f = Math.fround;

function randI8(n: number, r: () => number, density = 1, lo = -128, hi = 127): Int8Array {
  const q = new Int8Array(n);
  for (let i = 0; i < n; i++) if (r() < density) q[i] = lo + Math.floor(r() * (hi - lo + 1));
  return q;
}
function randF32(n: number, r: () => number, scale = 1): Float32Array {
  return Float32Array.from({ length: n }, () => (r() * 2 - 1) * scale);
}
/** Zero out 1 x k blocks with probability 1 - keep. */
function blockSparse(q: Int8Array, O: number, I: number, k: number, keep: number, r: () => number): Int8Array {
  for (let o = 0; o < O; o++) for (let c = 0; c < I; c += k) if (r() >= keep) q.fill(0, o * I + c, o * I + c + k);
  return q;
}

/** Exact integer dot products (N, O) by the definition. */
function intDots(xq: Int8Array, Wq: Int8Array, N: number, O: number, I: number): number[] {
  const out: number[] = [];
  for (let n = 0; n < N; n++) for (let o = 0; o < O; o++) {
    let s = 0;
    for (let i = 0; i < I; i++) s += xq[n * I + i] * Wq[o * I + i];
    out.push(s);
  }
  return out;
}

test('gemmI8: exact int32 sums, scaled in the interface order (bit-identical)', () => {
  const r = rng(1);
  for (const [N, O, I] of [[1, 7, 13], [3, 16, 64], [5, 9, 4096]]) {
    const xq = randI8(N * I, r), Wq = randI8(O * I, r), xs = randF32(N, r, 0.1).map(Math.abs), ws = randF32(O, r, 0.01).map(Math.abs);
    const bias = randF32(O, r);
    const y = new Float32Array(N * O), yb = new Float32Array(N * O);
    K.gemmI8(y, xq, xs, Wq, ws, N, O, I);
    K.gemmI8(yb, xq, xs, Wq, ws, N, O, I, bias);
    const dots = intDots(xq, Wq, N, O, I);
    for (let n = 0; n < N; n++) for (let o = 0; o < O; o++) {
      const want = f(f(f(dots[n * O + o]) * xs[n]) * ws[o]);
      assert.equal(y[n * O + o], want);
      assert.equal(yb[n * O + o], f(want + bias[o]));
    }
  }
  // extreme values: all -128 · -128 over I = 4096 is 2^26, beyond float32's exact integers
  const I = 4096, xq = new Int8Array(I).fill(-128), Wq = new Int8Array(I).fill(-128), y = new Float32Array(1);
  K.gemmI8(y, xq, new Float32Array([1]), Wq, new Float32Array([1]), 1, 1, I);
  assert.equal(y[0], 2 ** 26);
});

test('gemmI8 and gemmW8A32 agree with float math on dequantized operands', () => {
  const r = rng(2), N = 4, O = 24, I = 96, bits = 8;
  const x = randF32(N * I, r, 3), Wq = randI8(O * I, r), ws = randF32(O, r, 0.02).map((v) => Math.abs(v) + 1e-4);
  const xq = new Int8Array(N * I), xs = new Float32Array(N), xf = new Float32Array(N * I), Wf = new Float32Array(O * I);
  K.quantizeRowsI8(xq, xs, x, N, I, bits);
  fakeQuantTokens(xf, x, N, I, bits);
  dequantizeRows(Wf, Wq, ws, O, I);
  const yI = new Float32Array(N * O), yF = new Float32Array(N * O);
  K.gemmI8(yI, xq, xs, Wq, ws, N, O, I);
  K.gemmW8A32(yF, x, Wq, ws, N, O, I);
  for (let n = 0; n < N; n++) for (let o = 0; o < O; o++) {
    let sq = 0, sf = 0, mag = 0;
    for (let i = 0; i < I; i++) { sq += xf[n * I + i] * Wf[o * I + i]; sf += x[n * I + i] * Wf[o * I + i]; mag += Math.abs(x[n * I + i] * Wf[o * I + i]); }
    assert.ok(Math.abs(yI[n * O + o] - sq) <= 1e-6 * mag + 1e-12, `int8 (${n},${o}) ${yI[n * O + o]} vs ${sq}`);
    assert.ok(Math.abs(yF[n * O + o] - sf) <= 1e-6 * mag + 1e-12, `w8a32 (${n},${o}) ${yF[n * O + o]} vs ${sf}`);
  }
});

test('quantizeRowsI8 is quantizeTokens; embedI8 gathers dequantized rows', () => {
  const r = rng(3), N = 5, C = 33;
  for (const bits of [8, 4, 2]) {
    const x = randF32(N * C, r, 2);
    x.fill(0, C, 2 * C); // an all-zero token
    const q1 = new Int8Array(N * C), s1 = new Float32Array(N), q2 = new Int8Array(N * C), s2 = new Float32Array(N);
    K.quantizeRowsI8(q1, s1, x, N, C, bits);
    quantizeTokens(q2, s2, x, N, C, bits);
    assert.deepEqual(q1, q2);
    assert.deepEqual(s1, s2);
  }
  const V = 11, Wq = randI8(V * C, r), ws = randF32(V, r, 0.1).map(Math.abs), deq = new Float32Array(V * C);
  dequantizeRows(deq, Wq, ws, V, C);
  const ids = Int32Array.from([3, 0, 10, 3]), out = new Float32Array(ids.length * C);
  K.embedI8(out, ids, Wq, ws, ids.length, C);
  ids.forEach((id, n) => assert.deepEqual(out.subarray(n * C, (n + 1) * C), deq.subarray(id * C, (id + 1) * C)));
});

test('block and CSR kernels equal the dense kernels on the densified matrix', () => {
  const r = rng(4);
  for (const [N, O, I, k] of [[1, 16, 64, 4], [3, 10, 48, 16], [2, 5, 32, 8]]) {
    const Wq = blockSparse(randI8(O * I, r), O, I, k, 0.3, r);
    Wq[0] = 0; Wq[1] = 7; // a block with an explicit zero inside
    const ws = randF32(O, r, 0.05).map(Math.abs), bias = randF32(O, r);
    const B = denseToBlock(Wq, ws, O, I, k), C = denseToCsr(Wq, ws, O, I);
    assert.deepEqual(toDenseValues(B), Wq);
    assert.deepEqual(toDenseValues(C), Wq);
    const x = randF32(N * I, r, 2), xq = new Int8Array(N * I), xs = new Float32Array(N);
    K.quantizeRowsI8(xq, xs, x, N, I, 8);
    const want = new Float32Array(N * O), got = new Float32Array(N * O);
    K.gemmI8(want, xq, xs, Wq, ws, N, O, I, bias);
    for (const W of [B, C]) {
      linearI8(K, got, W, N, bias, { xq, xScale: xs });
      assert.deepEqual(got, want, `${W.format} int8`);
    }
    K.gemmW8A32(want, x, Wq, ws, N, O, I, bias);
    for (const W of [B, C]) {
      linearI8(K, got, W, N, bias, { x });
      for (let i = 0; i < want.length; i++) assert.ok(Math.abs(got[i] - want[i]) <= 1e-5 * (1 + Math.abs(want[i])), `${W.format} w8a32`);
    }
  }
});

test('chooseFormat: blocks when mostly empty, CSR for sparse unstructured, dense otherwise', () => {
  const r = rng(5), O = 64, I = 128;
  const blocky = blockSparse(randI8(O * I, r, 1, 1, 100), O, I, 16, 0.1, r);
  assert.equal(chooseFormat(sparsityStats(blocky, O, I, 16)), 'block');
  const unstructured = randI8(O * I, r, 0.1, 1, 100);
  assert.equal(chooseFormat(sparsityStats(unstructured, O, I, 16)), 'csr');
  assert.equal(chooseFormat(sparsityStats(unstructured, O, I, 0)), 'csr');
  assert.equal(chooseFormat(sparsityStats(randI8(O * I, r, 0.9, 1, 100), O, I, 4)), 'dense');
});
