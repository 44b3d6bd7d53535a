/**
 * The fused single-token decoder of the wasm int8 kernels (kernels/wasm/int8-decode.ts,
 * assembly/int8-decode.ts) against the step the runtime composes from single kernels
 * (Int8Transformer with fused: false), which is the reference: logits bit-identical at every decode
 * step, for block / CSR / dense layers, int8 and float activations, Llama (RMSNorm, RoPE, GQA, SwiGLU,
 * tied head) and student (LayerNorm, learned positions, biases, ReLU, own head) architectures, on
 * 1 thread, 2 threads and the mul+add build. Its attention (attendDecode) is checked on its own against
 * nn/attention.ts on the same backend (bit for bit) and on the plain-TS backend (float rounding),
 * including sequences past the GEMM's 256-long blocks.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportStudent, loadExport } from '../../src/io/export.js';
import type { Int8Decoder } from '../../src/kernels/int8.js';
import { TsBackend } from '../../src/kernels/ts/backend.js';
import { TsInt8Kernels } from '../../src/kernels/ts/int8.js';
import type { WasmBackend } from '../../src/kernels/wasm/backend.js';
import { wasmInt8Kernels } from '../../src/kernels/wasm/int8.js';
import { attentionForward } from '../../src/nn/attention.js';
import { Int8Transformer } from '../../src/runtime/int8-model.js';
import { freeKVCache, type KVCache } from '../../src/nn/kv-cache.js';
import { randoms } from '../helpers.js';
import { openAll, close } from '../kernels/wasm-util.js';
import { sameBits } from '../kernels/wasm-int8-util.js';
import { makeStudent, type StudentSpec } from './students.js';

const tmp = mkdtempSync(join(tmpdir(), 'qkd-decode-fused-'));
let backends: [string, WasmBackend][] = [];
before(async () => { backends = await openAll(); });
after(async () => { await Promise.all(backends.map(([, b]) => b.dispose())); });

/**
 * Logits of every step of: a prompt then greedy-ish decode steps; the cache rewound to 4 positions, a
 * 3-token prefill over the old ones, more steps; then all again on a second cache of another length.
 */
function decode(m: Int8Transformer, steps: number): Float32Array[] {
  const out: Float32Array[] = [], V = m.config.vocabSize;
  const run = (cache: KVCache, prompt: number[], n: number) => {
    let l = m.forward(prompt, 1, prompt.length, { cache }).slice(-V);
    out.push(l);
    for (let s = 0; s < n; s++) {
      let best = 0;
      for (let j = 1; j < V; j++) if (l[j] > l[best]) best = j;
      l = m.forward([(best * 7 + s) % V], 1, 1, { cache }).slice();
      out.push(l);
    }
  };
  for (const [maxT, prompt] of [[40, [5, 17, 300, 2, 9, 1000, 44]], [64, [3]]] as [number, number[]][]) {
    const cache = m.newCache(1, maxT);
    run(cache, prompt, steps);
    cache.length = 4;
    run(cache, [8, 800, 80], 5);
    freeKVCache(m.backend, cache);
  }
  return out;
}

function compare(name: string, spec: StudentSpec): void {
  const dir = exportStudent(makeStudent(join(tmp, name), spec), join(tmp, `${name}-x`)).out;
  for (const [label, be] of backends) {
    const K = wasmInt8Kernels(be), made: (Int8Decoder | null)[] = [];
    // integer arrays in the kernels' memory, as loadInt8Model places them (foreign ones: no fused decoder)
    const fused = new Int8Transformer(be, loadExport(dir, K), {
      kernels: Object.assign(Object.create(K) as typeof K, {
        decoder: (...a: Parameters<typeof K.decoder>) => { const d = K.decoder(...a); made.push(d); return d; },
      }),
    });
    const composed = new Int8Transformer(be, loadExport(dir, K), { fused: false });
    const got = decode(fused, 30), want = decode(composed, 30);
    assert.equal(made.length, 1, `${name} ${label}: one decoder per model`);
    assert.ok(made[0] !== null, `${name} ${label}: the wasm kernels build a fused decoder`);
    got.forEach((g, i) => sameBits(g, want[i], `${name} ${label} step ${i}`));
    // the composed step with the plain-TS int8 kernels gives the same bits (int8 activations)
    if (spec.actBits !== 0 && label === '1 thread') {
      const ref = decode(new Int8Transformer(be, loadExport(dir), { kernels: new TsInt8Kernels() }), 30);
      ref.forEach((r, i) => sameBits(got[i], r, `${name} ${label} vs ts int8 kernels, step ${i}`));
    }
    fused.dispose(); composed.dispose();
  }
}

test('fused decode: Llama student, 1x16 blocks, int8 activations (the anchor recipe)', () => {
  compare('block16', { actBits: 8, sparsity: { target: 0.9, granularity: 'block', block: 16 } });
});

test('fused decode: Llama student, 1x4 blocks, int8 activations', () => {
  compare('block4', { actBits: 8, sparsity: { target: 0.9, granularity: 'block', block: 4 } });
});

test('fused decode: student architecture, unstructured 90% (CSR / dense), int8 activations', () => {
  compare('unstructured', { arch: 'student', actBits: 8, sparsity: { target: 0.9, granularity: 'unstructured' } });
});

test('fused decode: float activations (W8A32), both architectures', () => {
  compare('w8a32', { actBits: 0, sparsity: { target: 0.5, granularity: 'block', block: 16 } });
  compare('w8a32-student', { arch: 'student', actBits: 0, sparsity: { target: 0.9, granularity: 'unstructured' } });
});

test('fused decode: top-k attention and a float head fall back to the composed step', () => {
  const dir = exportStudent(makeStudent(join(tmp, 'topk'), { actBits: 8, attnTopK: 3 }), join(tmp, 'topk-x')).out;
  const be = backends[0][1], K = wasmInt8Kernels(be);
  const got = decode(new Int8Transformer(be, loadExport(dir, K)), 8);
  const want = decode(new Int8Transformer(be, loadExport(dir, K), { fused: false }), 8);
  got.forEach((g, i) => sameBits(g, want[i], `top-k step ${i}`));
  const fdir = exportStudent(makeStudent(join(tmp, 'fhead'), { actBits: 8, embedBits: 0 }), join(tmp, 'fhead-x')).out;
  const m = new Int8Transformer(be, loadExport(fdir, K));
  assert.equal(m.matrices.has('embed.weight'), false, 'float embedding / head');
  const a = decode(m, 5), b = decode(new Int8Transformer(be, loadExport(fdir, K), { fused: false }), 5);
  a.forEach((g, i) => sameBits(g, b[i], `float head step ${i}`));
});

// (H, KV, D, Tk, Tmax): GQA r = 2, 3, 4, plain r = 1 (the GEMM's matrix-vector path), Tk = 1, a full
// cache, a head dim that is not a multiple of 4, one past the GEMM's K block (256) and keys past 2 blocks
const ATT: [number, number, number, number, number][] = [
  [4, 2, 32, 1, 8], [4, 2, 32, 2, 8], [4, 2, 32, 7, 9], [4, 2, 32, 9, 9], [2, 2, 16, 5, 8], [6, 2, 20, 13, 16],
  [4, 1, 30, 11, 12], [4, 2, 260, 5, 6], [4, 2, 32, 600, 640], [3, 1, 8, 257, 300],
];

test('attendDecode (keys as stored, and transposed by syncKeys) is nn/attention.ts at T = 1: bit-identical on the wasm backend, close to the TS backend', () => {
  const ts = new TsBackend();
  ATT.forEach(([H, KV, D, Tk, Tmax], c) => {
    const q0 = randoms(H * D, 10 + c, -2, 2), k0 = randoms(KV * Tmax * D, 20 + c, -2, 2), v0 = randoms(KV * Tmax * D, 30 + c);
    const wantOut = new Float32Array(H * D), wantAtt = new Float32Array(H * Tk);
    attentionForward(ts, wantOut, wantAtt, q0, k0, v0, { B: 1, H, KV, T: 1, Tk, Tmax, D, topK: 0 });
    for (const [label, be] of backends) {
      const buf = (a: Float32Array) => { const v = be.alloc(a.length); v.set(a); return v; };
      const q = buf(q0), k = buf(k0), v = buf(v0), out = be.alloc(H * D), att = be.alloc(H * Tk);
      const refOut = be.alloc(H * D), refAtt = be.alloc(H * Tk), e = be.engine, fn = e.exports as Record<string, (...a: number[]) => void>;
      attentionForward(be, refOut, refAtt, q, k, v, { B: 1, H, KV, T: 1, Tk, Tmax, D, topK: 0 });
      const ldT = Math.ceil(Tmax / 16) * 16, kT = be.alloc(KV * D * ldT);
      fn.syncKeys(kT.byteOffset, ldT, k.byteOffset, KV, D, Tmax, 0, Math.min(3, Tk)); // in two pieces
      fn.syncKeys(kT.byteOffset, ldT, k.byteOffset, KV, D, Tmax, Math.min(3, Tk), Tk);
      for (const [t, ld] of [[0, 0], [kT.byteOffset, ldT]]) {
        out.fill(NaN); att.fill(NaN);
        fn.attendDecode(out.byteOffset, att.byteOffset, q.byteOffset, k.byteOffset, v.byteOffset, t, ld, H, KV, D, Tk, Tmax,
          1 / Math.sqrt(D), e.wsBase);
        const what = `${label} H=${H} KV=${KV} D=${D} Tk=${Tk} Tmax=${Tmax} ${t ? 'kT' : 'K'}`;
        sameBits(att, refAtt, `${what} probabilities`);
        sameBits(out, refOut, `${what} output`);
        close(out, wantOut, 1e-5, 1e-4, `${what} vs ts backend`);
      }
      for (const a of [q, k, v, out, att, refOut, refAtt, kT]) be.free(a);
    }
  });
});
