/**
 * native backend (OpenBLAS sgemm through the qkd_native addon) against the TS reference: matmul and bmm
 * on every transpose variant, accumulate, odd shapes, views at byte offsets inside the shared wasm
 * memory and plain (non-shared) arrays, 1 and 2 threads. The addon must be built (scripts/build.mjs does
 * so when libopenblas-dev is installed, as .ci/run does): a missing addon fails here, it is not skipped.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { TsBackend } from '../../src/kernels/ts/backend.js';
import { createBackend } from '../../src/kernels/registry.js';
import { loadNativeAddon, NATIVE_ADDON_PATH, type NativeBackend } from '../../src/kernels/native/backend.js';
import { QkdError } from '../../src/tensor/errors.js';
import { randoms } from '../helpers.js';

/** As test/kernels/wasm-gemm: |c - ref| <= RTOL * sum_k |a_ik b_kj| (+ |c0| when accumulating) + ATOL. */
const GEMM_RTOL = 2e-5, GEMM_ATOL = 1e-6;
const SHAPES: [number, number, number][] = [
  [1, 1, 1], [1, 7, 3], [3, 1, 5], [5, 3, 1], [17, 130, 33], [130, 17, 300], [64, 64, 64], [1, 300, 513],
  [300, 1, 513], [2, 2, 600], [200, 260, 513],
];
const VARIANTS = [[false, false], [true, false], [false, true], [true, true]] as const;

const ts = new TsBackend();
let backends: [string, NativeBackend][] = [];

before(async () => {
  try {
    backends = [['1 thread', await createBackend('native', { threads: 1 }) as NativeBackend],
      ['2 threads', await createBackend('native', { threads: 2 }) as NativeBackend]];
  } catch (e) {
    assert.fail(`the native backend is not available: ${String(e)}`);
  }
});
after(async () => { await Promise.all(backends.map(([, be]) => be.dispose())); });

function reference(A: Float32Array, B: Float32Array, C0: Float32Array, batch: number, M: number, N: number, K: number,
  tA: boolean, tB: boolean, acc: boolean): { want: Float32Array; mag: Float32Array } {
  const want = Float32Array.from(C0), mag = acc ? C0.map(Math.abs) : new Float32Array(C0.length);
  ts.bmm(want, A, B, batch, M, N, K, tA, tB, acc);
  ts.bmm(mag, A.map(Math.abs), B.map(Math.abs), batch, M, N, K, tA, tB, acc);
  return { want, mag };
}

function check(got: Float32Array, want: Float32Array, mag: Float32Array, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < want.length; i++) {
    if (!(Math.abs(got[i] - want[i]) <= GEMM_ATOL + GEMM_RTOL * mag[i])) assert.fail(`${what}: C[${i}] = ${got[i]}, reference ${want[i]}`);
  }
}

/**
 * Operands placed `pad` floats into larger shared-memory blocks (so the views have byte offsets that
 * are not the allocation's), or in plain arrays when `plain`; guard values around C must survive.
 */
function runCase(batch: number, M: number, N: number, K: number, seed: number, pad: number, plain = false): void {
  const A = randoms(batch * M * K, seed), B = randoms(batch * K * N, seed + 1), C0 = randoms(batch * M * N, seed + 2);
  for (const [tA, tB] of VARIANTS) {
    for (const acc of [false, true]) {
      const { want, mag } = reference(A, B, C0, batch, M, N, K, tA, tB, acc);
      for (const [label, be] of backends) {
        const blocks = [A, B, C0].map((x) => (plain ? new Float32Array(x.length + 2 * pad) : be.alloc(x.length + 2 * pad)));
        const [a, b, c] = blocks.map((blk, i) => blk.subarray(pad, pad + [A, B, C0][i].length));
        a.set(A); b.set(B); c.set(C0);
        blocks[2].fill(7, 0, pad); blocks[2].fill(7, pad + C0.length);
        if (batch === 1) be.matmul(c, a, b, M, N, K, tA, tB, acc);
        else be.bmm(c, a, b, batch, M, N, K, tA, tB, acc);
        const what = `${label}${plain ? ' plain' : ''} pad ${pad} ${batch}x(${M},${N},${K}) tA=${tA} tB=${tB} acc=${acc}`;
        check(c, want, mag, what);
        assert.ok([...blocks[2].subarray(0, pad), ...blocks[2].subarray(pad + C0.length)].every((v) => v === 7),
          `${what}: wrote outside C`);
        if (!plain) blocks.forEach((blk) => be.free(blk));
      }
    }
  }
}

test('matmul matches the reference on every shape, transpose variant and accumulate flag', () => {
  SHAPES.forEach(([M, N, K], i) => runCase(1, M, N, K, 100 + 10 * i, 0));
});

test('bmm matches the reference (training and decode shapes)', () => {
  const cases: [number, number, number, number][] = [[3, 17, 5, 33], [4, 64, 64, 32], [5, 1, 40, 16], [8, 13, 9, 7],
    [2, 130, 70, 64], [9, 1, 1, 16]];
  cases.forEach(([b, M, N, K], i) => runCase(b, M, N, K, 500 + 10 * i, 0));
});

test('views at byte offsets inside the shared memory, and plain arrays, are read and written in place', () => {
  for (const pad of [1, 3, 17]) runCase(1, 13, 21, 9, 900 + pad, pad);
  runCase(3, 7, 5, 11, 950, 5);
  runCase(1, 33, 17, 40, 960, 2, true);
  runCase(2, 9, 8, 7, 970, 1, true);
  const [, be] = backends[0];
  assert.ok(be.engine.owns(be.alloc(4).subarray(1)), 'alloc() views live in the shared WebAssembly.Memory');
});

test('K = 0 zeroes C (or leaves it when accumulating); M or N = 0 is a no-op', () => {
  for (const [label, be] of backends) {
    const c = be.alloc(6);
    c.fill(3);
    be.matmul(c, be.alloc(0), be.alloc(0), 2, 3, 0, false, false, true);
    assert.deepEqual([...c], [3, 3, 3, 3, 3, 3], label);
    be.matmul(c, be.alloc(0), be.alloc(0), 2, 3, 0);
    assert.deepEqual([...c], [0, 0, 0, 0, 0, 0], label);
    be.bmm(c, be.alloc(0), be.alloc(30), 2, 0, 3, 5);
    assert.deepEqual([...c], [0, 0, 0, 0, 0, 0], label);
  }
});

test('shape errors are QkdError E_SHAPE naming the operand, before OpenBLAS sees the call', () => {
  const [, be] = backends[0];
  const err = (re: RegExp) => (e: unknown) => e instanceof QkdError && e.code === 'E_SHAPE' && re.test(e.message);
  assert.throws(() => be.matmul(be.alloc(5), be.alloc(6), be.alloc(6), 2, 3, 3), err(/native matmul C: has 5 elements, the shapes need 6/));
  assert.throws(() => be.bmm(be.alloc(12), be.alloc(11), be.alloc(12), 2, 2, 3, 3), err(/native bmm A: has 11/));
  assert.throws(() => be.matmul(be.alloc(6), be.alloc(6), be.alloc(6), 2, 3.5, 3), err(/N = 3.5/));
  // the addon's own checks (a direct call bypassing the TS ones)
  const lib = loadNativeAddon();
  assert.throws(() => lib.sgemm(new Float32Array(3), new Float32Array(6), new Float32Array(6), 2, 2, 3), /C has 3 elements/);
  assert.throws(() => lib.sgemm(new Float64Array(4) as unknown as Float32Array, new Float32Array(6), new Float32Array(6), 2, 2, 3),
    /C must be a Float32Array/);
});

test('the backend reports itself and OpenBLAS; the thread count follows the backend in use', () => {
  const [[, one], [, two]] = backends, lib = loadNativeAddon();
  assert.equal(one.name, 'native');
  assert.match(one.blas.config, /OpenBLAS/);
  const c = one.alloc(4), a = one.alloc(4), b = one.alloc(4);
  two.matmul(c, a, b, 2, 2, 2);
  assert.equal(lib.getThreads(), 2);
  one.matmul(c, a, b, 2, 2, 2);
  assert.equal(lib.getThreads(), 1);
});

test('a missing addon is E_UNSUPPORTED naming what to install', () => {
  assert.throws(() => loadNativeAddon(`${NATIVE_ADDON_PATH}.absent`),
    (e: unknown) => e instanceof QkdError && e.code === 'E_UNSUPPORTED' && /apt-get install -y libopenblas-dev/.test(e.message));
});
