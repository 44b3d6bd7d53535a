/** wasm matmul/bmm against the TS reference: all transpose variants, accumulate, odd shapes, 1 and 2 threads. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { TsBackend } from '../../src/kernels/ts/backend.js';
import type { WasmBackend } from '../../src/kernels/wasm/backend.js';
import { randoms } from '../helpers.js';
import { openAll } from './wasm-util.js';

/**
 * Float32 sums in K blocks vs the float64 reference: |c - ref| <= GEMM_RTOL * sum_k |a_ik b_kj| (+ |c0|
 * when accumulating) + GEMM_ATOL. The worst case of float32 summation is ~K * 6e-8; blocked sums stay
 * far below it.
 */
const GEMM_RTOL = 2e-5, GEMM_ATOL = 1e-6;

// (M, N, K): 1s, odd sizes around the 3x12 / 4x8 tiles, K > KC = 256, M > MC = 126, N > NC = 2040,
// matrix-vector products (M = 1, N = 1)
const SHAPES: [number, number, number][] = [
  [1, 1, 1], [1, 7, 3], [3, 1, 5], [5, 3, 1], [3, 12, 4], [17, 130, 33], [130, 17, 300], [64, 64, 64],
  [1, 300, 513], [300, 1, 513], [2, 2, 600], [200, 260, 513], [7, 2100, 20],
];
const VARIANTS = [[false, false], [true, false], [false, true], [true, true]] as const;

const ts = new TsBackend();
let backends: [string, WasmBackend][] = [];
before(async () => { backends = await openAll(); });
after(async () => { await Promise.all(backends.map(([, be]) => be.dispose())); });

function abs(x: Float32Array): Float32Array { return x.map(Math.abs); }

/** Reference result and the magnitude bound sum |a||b| (+|c0|) for one case. */
function reference(A: Float32Array, B: Float32Array, C0: Float32Array, batch: number, M: number, N: number, K: number,
  tA: boolean, tB: boolean, acc: boolean): { want: Float32Array; mag: Float32Array } {
  const want = Float32Array.from(C0), mag = acc ? abs(C0) : new Float32Array(C0.length);
  ts.bmm(want, A, B, batch, M, N, K, tA, tB, acc);
  ts.bmm(mag, abs(A), abs(B), batch, M, N, K, tA, tB, acc);
  return { want, mag };
}

function check(got: Float32Array, want: Float32Array, mag: Float32Array, what: string): void {
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(got[i] - want[i]);
    if (!(d <= GEMM_ATOL + GEMM_RTOL * mag[i])) assert.fail(`${what}: C[${i}] = ${got[i]}, reference ${want[i]}`);
  }
}

function runCase(batch: number, M: number, N: number, K: number, seed: number): void {
  const A = randoms(batch * M * K, seed), B = randoms(batch * K * N, seed + 1), C0 = randoms(batch * M * N, seed + 2);
  for (const [tA, tB] of VARIANTS) {
    for (const acc of [false, true]) {
      const { want, mag } = reference(A, B, C0, batch, M, N, K, tA, tB, acc);
      for (const [label, be] of backends) {
        const a = be.alloc(A.length), b = be.alloc(B.length), c = be.alloc(C0.length);
        a.set(A); b.set(B); c.set(C0);
        if (batch === 1) be.matmul(c, a, b, M, N, K, tA, tB, acc);
        else be.bmm(c, a, b, batch, M, N, K, tA, tB, acc);
        check(c, want, mag, `${label} ${batch}x(${M},${N},${K}) tA=${tA} tB=${tB} acc=${acc}`);
        be.free(a); be.free(b); be.free(c);
      }
    }
  }
}

test('matmul matches the reference on every shape, transpose variant and accumulate flag', () => {
  SHAPES.forEach(([M, N, K], i) => runCase(1, M, N, K, 100 + 10 * i));
});

test('bmm matches the reference (batch split, per-item split, decode shapes)', () => {
  // batch % 2 == 0 and batch >= 8 split whole items; batch 3 or 5 split each item across threads
  const cases: [number, number, number, number][] = [[3, 17, 5, 33], [4, 64, 64, 32], [5, 1, 40, 16], [8, 13, 9, 7],
    [2, 130, 70, 64], [9, 1, 1, 16]];
  cases.forEach(([b, M, N, K], i) => runCase(b, M, N, K, 500 + 10 * i));
});

test('matmul with K = 0 zeroes C (or leaves it when accumulating)', () => {
  for (const [label, be] of backends) {
    const c = be.alloc(6);
    c.fill(3);
    be.matmul(c, be.alloc(0), be.alloc(0), 2, 3, 0, false, false, true);
    assert.deepEqual([...c], [3, 3, 3, 3, 3, 3], label);
    be.matmul(c, be.alloc(0), be.alloc(0), 2, 3, 0);
    assert.deepEqual([...c], [0, 0, 0, 0, 0, 0], label);
  }
});

test('the FMA build is picked when the host validates relaxed SIMD', () => {
  const [, one] = backends[0];
  assert.equal(one.fma, true, 'Node 20 with --experimental-wasm-relaxed-simd set at start-up accepts the FMA build');
  assert.equal(backends[2][1].fma, false);
});
