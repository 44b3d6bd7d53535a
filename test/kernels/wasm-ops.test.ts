/** wasm row/elementwise kernels against the TS reference (1 thread, 2 threads, mul+add build). */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Activation, Backend } from '../../src/kernels/backend.js';
import { TsBackend } from '../../src/kernels/ts/backend.js';
import { ropeTables } from '../../src/tensor/rope.js';
import type { WasmBackend } from '../../src/kernels/wasm/backend.js';
import { randoms } from '../helpers.js';
import { close, openAll } from './wasm-util.js';

// Named tolerances (float32 SIMD vs the float64 reference):
/** adds, scales, copies, bias sums over <= 64 rows, rope: a few float32 roundings. */
const EXACTISH = { atol: 1e-6, rtol: 1e-5 };
/** exp/erf/tanh polynomials (relative error < 3e-7) inside activations and softmaxes. */
const TRANSCENDENTAL = { atol: 2e-6, rtol: 2e-5 };
/** norms: float32 row sums of C <= 384 terms, then rstd (1/sqrt) amplifying them. */
const NORM = { atol: 1e-5, rtol: 1e-4 };
/** AdamW in float32 vs float64: the update divides by sqrt(v) + eps. */
const ADAM = { atol: 1e-6, rtol: 1e-5 };

type Buf = Float32Array | Int32Array;
const ts = new TsBackend();
let backends: [string, WasmBackend][] = [];
before(async () => { backends = await openAll(); });
after(async () => { await Promise.all(backends.map(([, be]) => be.dispose())); });

function copyInto(be: Backend, x: Buf): Buf {
  const v = x instanceof Int32Array ? be.allocI32(x.length) : be.alloc(x.length);
  v.set(x);
  return v;
}

/**
 * Runs `fn` on the reference (plain copies) and on every wasm backend (copies in shared memory), then
 * compares the buffers listed in `outs` (indices into `inputs`).
 */
function compare(what: string, inputs: Buf[], outs: number[], tol: { atol: number; rtol: number },
  fn: (be: Backend, b: Buf[]) => void): void {
  const ref = inputs.map((x) => x.slice());
  fn(ts, ref);
  for (const [label, be] of backends) {
    const bufs = inputs.map((x) => copyInto(be, x));
    fn(be, bufs);
    for (const o of outs) close(bufs[o], ref[o], tol.atol, tol.rtol, `${label} ${what} output ${o}`);
    for (const b of bufs) be.free(b);
  }
}

const f = (b: Buf): Float32Array => b as Float32Array;
const ints = (n: number, hi: number, seed: number): Int32Array =>
  Int32Array.from(randoms(n, seed, 0, hi), (x) => Math.floor(x));

test('add, addInPlace, scale, addBias, biasBackward, permute0213', () => {
  for (const n of [1, 3, 17, 130, 100003]) {
    const a = randoms(n, n), b = randoms(n, n + 1), o = randoms(n, n + 2);
    compare(`add n=${n}`, [o, a, b], [0], EXACTISH, (be, x) => be.add(f(x[0]), f(x[1]), f(x[2]), n));
    compare(`addInPlace n=${n}`, [o, a], [0], EXACTISH, (be, x) => be.addInPlace(f(x[0]), f(x[1]), n));
    compare(`scale n=${n}`, [o, a], [0], EXACTISH, (be, x) => be.scale(f(x[0]), f(x[1]), 0.37, n));
  }
  for (const [N, C] of [[1, 1], [3, 5], [17, 130], [64, 384]]) {
    compare(`addBias ${N}x${C}`, [randoms(N * C, 1), randoms(C, 2)], [0], EXACTISH,
      (be, x) => be.addBias(f(x[0]), f(x[1]), N, C));
    compare(`biasBackward ${N}x${C}`, [randoms(C, 3), randoms(N * C, 4)], [0], EXACTISH,
      (be, x) => be.biasBackward(f(x[0]), f(x[1]), N, C));
  }
  for (const [A, B, C, D] of [[2, 3, 5, 7], [1, 4, 64, 16], [3, 1, 2, 1]]) {
    const n = A * B * C * D;
    compare(`permute0213 ${A}x${B}x${C}x${D}`, [new Float32Array(n), randoms(n, 5)], [0], EXACTISH,
      (be, x) => be.permute0213(f(x[0]), f(x[1]), A, B, C, D));
  }
});

test('embedding forward and backward (with and without positions) and the index check', () => {
  for (const [N, C, V] of [[1, 3, 2], [17, 130, 11], [64, 48, 7]]) {
    const ids = ints(N, V, 7), pos = ints(N, N, 8);
    compare(`embeddingForward ${N}x${C}`, [new Float32Array(N * C), ids, randoms(V * C, 1)], [0], EXACTISH,
      (be, x) => be.embeddingForward(f(x[0]), x[1] as Int32Array, f(x[2]), N, C));
    compare(`embeddingForward+pos ${N}x${C}`, [new Float32Array(N * C), ids, randoms(V * C, 1), randoms(N * C, 3), pos],
      [0], EXACTISH, (be, x) => be.embeddingForward(f(x[0]), x[1] as Int32Array, f(x[2]), N, C, f(x[3]), x[4] as Int32Array));
    compare(`embeddingBackward ${N}x${C}`, [randoms(V * C, 1), randoms(N * C, 2), ids], [0], EXACTISH,
      (be, x) => be.embeddingBackward(f(x[0]), f(x[1]), x[2] as Int32Array, N, C));
    compare(`embeddingBackward+pos ${N}x${C}`, [randoms(V * C, 1), randoms(N * C, 2), ids, randoms(N * C, 3), pos],
      [0, 3], EXACTISH, (be, x) => be.embeddingBackward(f(x[0]), f(x[1]), x[2] as Int32Array, N, C, f(x[3]), x[4] as Int32Array));
  }
  const [, be] = backends[0];
  assert.throws(() => be.embeddingBackward(be.alloc(6), be.alloc(3), Int32Array.of(2), 1, 3), { name: 'QkdError' });
});

test('layerNorm and rmsNorm forward and backward', () => {
  for (const [N, C] of [[1, 1], [3, 5], [17, 130], [33, 384]]) {
    const inp = randoms(N * C, 1, -2, 3), w = randoms(C, 2, 0.5, 1.5), bias = randoms(C, 3);
    const z = (n: number): Float32Array => new Float32Array(n);
    for (const withBias of [true, false]) {
      compare(`layerNormForward ${N}x${C} bias=${withBias}`, [z(N * C), z(N), z(N), inp, w, bias], [0, 1, 2], NORM,
        (be, x) => be.layerNormForward(f(x[0]), f(x[1]), f(x[2]), f(x[3]), f(x[4]), withBias ? f(x[5]) : null, N, C, 1e-5));
    }
    const mean = z(N), rstd = z(N);
    ts.layerNormForward(z(N * C), mean, rstd, inp, w, bias, N, C, 1e-5);
    const dOut = randoms(N * C, 4);
    for (const withBias of [true, false]) {
      compare(`layerNormBackward ${N}x${C} bias=${withBias}`,
        [randoms(N * C, 5), randoms(C, 6), randoms(C, 7), dOut, inp, w, mean, rstd], [0, 1, 2], NORM,
        (be, x) => be.layerNormBackward(f(x[0]), f(x[1]), withBias ? f(x[2]) : null, f(x[3]), f(x[4]), f(x[5]),
          f(x[6]), f(x[7]), N, C));
    }
    compare(`rmsNormForward ${N}x${C}`, [z(N * C), z(N), inp, w], [0, 1], NORM,
      (be, x) => be.rmsNormForward(f(x[0]), f(x[1]), f(x[2]), f(x[3]), N, C, 1e-6));
    const r2 = z(N);
    ts.rmsNormForward(z(N * C), r2, inp, w, N, C, 1e-6);
    compare(`rmsNormBackward ${N}x${C}`, [randoms(N * C, 5), randoms(C, 6), dOut, inp, w, r2], [0, 1], NORM,
      (be, x) => be.rmsNormBackward(f(x[0]), f(x[1]), f(x[2]), f(x[3]), f(x[4]), f(x[5]), N, C));
  }
});

test('activations and gated units, forward and backward, every kind', () => {
  const kinds: Activation[] = ['relu', 'gelu', 'gelu_tanh', 'silu'];
  for (const n of [1, 3, 17, 1000]) {
    // wide range: saturated tails (|x| ~ 20) as well as the curved middle
    const x = randoms(n, n, -8, 8), up = randoms(n, n + 1), d = randoms(n, n + 2), prev = randoms(n, n + 3);
    if (n > 3) { x[0] = 20; x[1] = -20; x[2] = 0; }
    for (const k of kinds) {
      compare(`activationForward ${k} n=${n}`, [new Float32Array(n), x], [0], TRANSCENDENTAL,
        (be, b) => be.activationForward(k, f(b[0]), f(b[1]), n));
      for (const acc of [false, true]) {
        compare(`activationBackward ${k} n=${n} acc=${acc}`, [prev, d, x], [0], TRANSCENDENTAL,
          (be, b) => be.activationBackward(k, f(b[0]), f(b[1]), f(b[2]), n, acc));
      }
      compare(`gluForward ${k} n=${n}`, [new Float32Array(n), x, up], [0], TRANSCENDENTAL,
        (be, b) => be.gluForward(k, f(b[0]), f(b[1]), f(b[2]), n));
      compare(`gluBackward ${k} n=${n}`, [prev, prev.slice(), d, x, up], [0, 1], TRANSCENDENTAL,
        (be, b) => be.gluBackward(k, f(b[0]), f(b[1]), f(b[2]), f(b[3]), f(b[4]), n));
    }
  }
});

test('softmax forward (causal, decode offset, unmasked, aliasing, top-k fallback) and backward', () => {
  const cases: [number, number, number, number | null][] = [[2, 17, 17, 0], [3, 5, 130, 125], [1, 130, 130, null],
    [2, 1, 9, 8], [1, 4, 4, -2]];
  for (const [batch, Tq, Tk, off] of cases) {
    const rows = batch * Tq, n = rows * Tk, S = randoms(n, rows, -4, 4);
    compare(`softmaxForward ${batch}x${Tq}x${Tk} offset=${off}`, [new Float32Array(n), S], [0], TRANSCENDENTAL,
      (be, b) => be.softmaxForward(f(b[0]), f(b[1]), rows, Tq, Tk, 0.125, off));
    compare(`softmaxForward in place ${batch}x${Tq}x${Tk}`, [S], [0], TRANSCENDENTAL,
      (be, b) => be.softmaxForward(f(b[0]), f(b[0]), rows, Tq, Tk, 2.5, off));
    compare(`softmaxForward topK ${batch}x${Tq}x${Tk}`, [new Float32Array(n), S], [0], TRANSCENDENTAL,
      (be, b) => be.softmaxForward(f(b[0]), f(b[1]), rows, Tq, Tk, 1, off, 3));
    const P = new Float32Array(n);
    ts.softmaxForward(P, S, rows, Tq, Tk, 0.125, off);
    const dP = randoms(n, 9);
    compare(`softmaxBackward ${rows}x${Tk}`, [new Float32Array(n), dP, P], [0], TRANSCENDENTAL,
      (be, b) => be.softmaxBackward(f(b[0]), f(b[1]), f(b[2]), rows, Tk, 0.125));
    compare(`softmaxBackward in place ${rows}x${Tk}`, [dP, P], [0], TRANSCENDENTAL,
      (be, b) => be.softmaxBackward(f(b[0]), f(b[0]), f(b[1]), rows, Tk, 0.125));
  }
});

test('crossEntropy (loss only, fused backward, in place, ignored targets) and logSoftmax', () => {
  for (const [N, V] of [[1, 1], [5, 17], [7, 2048]]) {
    const logits = randoms(N * V, V, -6, 6), t = ints(N, V, 3);
    if (N > 1) t[1] = -1;
    const z = (n: number): Float32Array => new Float32Array(n);
    compare(`crossEntropy ${N}x${V}`, [z(N), logits, t], [0], TRANSCENDENTAL,
      (be, b) => be.crossEntropy(f(b[0]), f(b[1]), b[2] as Int32Array, N, V));
    compare(`crossEntropy+grad ${N}x${V}`, [z(N), logits, t, z(N * V)], [0, 3], TRANSCENDENTAL,
      (be, b) => be.crossEntropy(f(b[0]), f(b[1]), b[2] as Int32Array, N, V, f(b[3]), 0.5));
    compare(`crossEntropy in place ${N}x${V}`, [z(N), logits, t], [0, 1], TRANSCENDENTAL,
      (be, b) => be.crossEntropy(f(b[0]), f(b[1]), b[2] as Int32Array, N, V, f(b[1]), 1 / N));
    for (const scale of [1, 0.5]) {
      compare(`logSoftmaxForward ${N}x${V} scale=${scale}`, [z(N * V), logits], [0], TRANSCENDENTAL,
        (be, b) => be.logSoftmaxForward(f(b[0]), f(b[1]), N, V, scale));
      const out = z(N * V);
      ts.logSoftmaxForward(out, logits, N, V, scale);
      for (const acc of [false, true]) {
        compare(`logSoftmaxBackward ${N}x${V} acc=${acc}`, [randoms(N * V, 4), randoms(N * V, 5), out], [0],
          TRANSCENDENTAL, (be, b) => be.logSoftmaxBackward(f(b[0]), f(b[1]), f(b[2]), N, V, scale, acc));
      }
    }
  }
});

test('rope forward and inverse (even and odd half-dims, offset positions)', () => {
  for (const [B, H, T, D, pos0] of [[1, 1, 1, 2, 0], [2, 3, 5, 8, 2], [1, 2, 7, 6, 0], [2, 2, 16, 64, 3]]) {
    const { cos, sin } = ropeTables(pos0 + T + 1, D, 10000);
    for (const inverse of [false, true]) {
      compare(`rope ${B}x${H}x${T}x${D} inverse=${inverse}`, [randoms(B * H * T * D, D), cos, sin], [0], EXACTISH,
        (be, b) => be.rope(f(b[0]), B, H, T, D, pos0, f(b[1]), f(b[2]), inverse));
    }
  }
});

test('sumSquares and adamw', () => {
  for (const n of [1, 17, 100003]) {
    const x = randoms(n, n);
    const want = ts.sumSquares(x, n);
    for (const [label, be] of backends) {
      const v = be.alloc(n);
      v.set(x);
      const got = be.sumSquares(v, n);
      assert.ok(Math.abs(got - want) <= 1e-12 * want, `${label} sumSquares n=${n}: ${got} vs ${want}`);
      be.free(v);
    }
    for (const [t, wd] of [[1, 0], [10, 0.1]]) {
      compare(`adamw n=${n} t=${t}`, [randoms(n, 1), randoms(n, 2), randoms(n, 3, -0.1, 0.1), randoms(n, 4, 0, 0.01)],
        [0, 2, 3], ADAM, (be, b) => be.adamw(f(b[0]), f(b[1]), f(b[2]), f(b[3]), n, t, 1e-3, 0.9, 0.95, 1e-8, wd, 0.8));
    }
  }
});

test('results are bitwise reproducible: repeated 2-thread calls, and GEMM across thread counts', () => {
  // dynamic chunk claiming must not change reduction order (training resumes must reproduce runs)
  const [, one] = backends[0], [, two] = backends[1];
  const N = 64, C = 130, inp = randoms(N * C, 1), dOut = randoms(N * C, 2), w = randoms(C, 3, 0.5, 1.5);
  const mean = new Float32Array(N), rstd = new Float32Array(N);
  ts.layerNormForward(new Float32Array(N * C), mean, rstd, inp, w, null, N, C, 1e-5);
  const run = (): number[] => {
    const dx = two.alloc(N * C), dw = two.alloc(C), db = two.alloc(C), dr = two.alloc(C);
    two.layerNormBackward(dx, dw, db, dOut, inp, w, mean, rstd, N, C);
    two.rmsNormBackward(dx, dr, dOut, inp, w, rstd, N, C);
    const out = [...dx, ...dw, ...db, ...dr, two.sumSquares(dOut, N * C)];
    for (const b of [dx, dw, db, dr]) two.free(b);
    return out;
  };
  const first = run();
  for (let r = 0; r < 20; r++) assert.deepEqual(run(), first, `repeat ${r}`);
  const M = 70, K = 300, A = randoms(M * K, 4), B = randoms(K * M, 5);
  const c1 = new Float32Array(M * M), c2 = new Float32Array(M * M);
  one.matmul(c1, A, B, M, M, K, true, false);
  two.matmul(c2, A, B, M, M, K, true, false);
  assert.deepEqual(c2, c1, 'matmul on 1 and 2 threads');
});
