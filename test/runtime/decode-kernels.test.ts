/**
 * The single-token int8 products of the fused decoder (assembly/int8-gemv.ts) against the plain-TS
 * reference kernels (kernels/ts/int8.ts): gemvTiledI8 (a dense weight tiled 4 x 16) is gemmI8 and
 * blockGemv16 (a flat list of 1 x 16 blocks) and groupGemv4 (1 x 4 blocks in sorted row groups) are
 * gemmBlockI8, bit for bit, at N = 1, with and without
 * bias, at the int32 extremes, on the FMA and mul+add builds.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { denseToBlock } from '../../src/sparse/storage.js';
import { canGroupBlocks4, groupBlocks4, placeGroupBlocks4 } from '../../src/kernels/wasm/group-blocks.js';
import { TsInt8Kernels } from '../../src/kernels/ts/int8.js';
import type { WasmBackend } from '../../src/kernels/wasm/backend.js';
import { randoms } from '../helpers.js';
import { openAll } from '../kernels/wasm-util.js';
import { blockSparse, int8s, sameBits, scales } from '../kernels/wasm-int8-util.js';

const ts = new TsInt8Kernels();
let backends: [string, WasmBackend][] = [];
before(async () => { backends = (await openAll()).filter(([l]) => l !== '2 threads'); }); // 1 thread and mul+add
after(async () => { await Promise.all(backends.map(([, b]) => b.dispose())); });

type Fn = (...a: number[]) => void;
const fns = (be: WasmBackend) => be.engine.exports as Record<string, Fn>;
function i8In(be: WasmBackend, a: Int8Array): Int8Array { const v = be.engine.allocI8(a.length); v.set(a); return v; }
function f32In(be: WasmBackend, a: Float32Array): Float32Array { const v = be.alloc(a.length); v.set(a); return v; }

/** The token's int8 activations and their int16 copy (widenI16), as the decoder holds them. */
function activations(be: WasmBackend, xq: Int8Array): { x16: Int8Array; xs: Float32Array } {
  const x = i8In(be, xq), x16 = be.engine.allocI8(2 * xq.length);
  fns(be).widenI16(x.byteOffset, x16.byteOffset, xq.length);
  const w = new Int16Array(x16.buffer, x16.byteOffset, xq.length);
  xq.forEach((q, i) => assert.equal(w[i], q, `widenI16 [${i}]`));
  return { x16, xs: f32In(be, scales(1, xq.length)) };
}

test('gemvTiledI8 (4 x 16 tiles) is gemmI8 at N = 1, bit for bit', () => {
  for (const [O, I] of [[4, 16], [8, 48], [2048, 128], [36, 400]]) {
    for (const extreme of [false, true]) {
      const Wq = extreme ? new Int8Array(O * I).fill(-128) : int8s(O * I, O + I, 0.3);
      const xq = extreme ? new Int8Array(I).fill(-128) : int8s(I, O * I), ws = scales(O, 7), bias = randoms(O, 8);
      for (const [label, be] of backends) {
        const { x16, xs } = activations(be, xq), W = i8In(be, Wq), Wt = be.engine.allocI8(O * I);
        fns(be).tileRows4x16(W.byteOffset, Wt.byteOffset, O, I);
        for (const b of [null, bias]) {
          const want = new Float32Array(O), y = be.alloc(O), wsb = f32In(be, ws), bb = b ? f32In(be, b) : null;
          ts.gemmI8(want, xq, xs, Wq, ws, 1, O, I, b);
          fns(be).gemvTiledI8(y.byteOffset, x16.byteOffset, xs.byteOffset, Wt.byteOffset, wsb.byteOffset, bb ? bb.byteOffset : 0, O, I);
          sameBits(y, want, `${label} gemvTiledI8 ${O}x${I}${extreme ? ' extremes' : ''}${b ? ' bias' : ''}`);
        }
      }
    }
  }
});

test('blockGemv16 (flat 1 x 16 block list) is gemmBlockI8 at N = 1, bit for bit', () => {
  // rows with 0, 1 and many blocks; O not a multiple of 4; fewer than 4 blocks; all blocks
  for (const [O, I, empty] of [[128, 128, 0.9], [7, 64, 0.5], [3, 16, 0.4], [130, 384, 0.8], [5, 32, 0]]) {
    const Wd = blockSparse(O, I, 16, empty, O + I), ws = scales(O, 3), bias = randoms(O, 4);
    Wd.fill(-128, 0, 16);
    const B = denseToBlock(Wd, ws, O, I, 16), nb = B.rowPtr[O];
    const xq = int8s(I, 5 * O);
    xq[0] = -128;
    for (const [label, be] of backends) {
      const { x16, xs } = activations(be, xq);
      const vals = i8In(be, B.values), cols = be.engine.allocI32(Math.max(1, nb)), rows = be.engine.allocI32(Math.max(1, nb));
      cols.set(B.blockCol);
      for (let r = 0; r < O; r++) rows.fill(r, B.rowPtr[r], B.rowPtr[r + 1]);
      const acc = be.engine.allocI32(O);
      acc.fill(12345); // the kernel clears its own row sums
      for (const b of [null, bias]) {
        const want = new Float32Array(O), y = be.alloc(O), wsb = f32In(be, ws), bb = b ? f32In(be, b) : null;
        ts.gemmBlockI8(want, xq, xs, B, 1, b);
        fns(be).blockGemv16(y.byteOffset, x16.byteOffset, xs.byteOffset, vals.byteOffset, cols.byteOffset, rows.byteOffset, nb,
          wsb.byteOffset, bb ? bb.byteOffset : 0, O, acc.byteOffset);
        sameBits(y, want, `${label} blockGemv16 ${O}x${I} (${nb} blocks)${b ? ' bias' : ''}`);
      }
    }
  }
});

test('groupGemv4 (1 x 4 blocks in row groups sorted by block count) is gemmBlockI8 at N = 1, bit for bit', () => {
  // empty rows, a full matrix, odd block counts (padding), O = 4, rows of very different lengths
  for (const [O, I, empty] of [[128, 128, 0.9], [8, 64, 0.5], [4, 16, 0], [132, 384, 0.8], [688, 256, 0.9], [256, 688, 0.9]]) {
    const Wd = blockSparse(O, I, 4, empty, O + I), ws = scales(O, 3), bias = randoms(O, 4);
    Wd.fill(-128, 0, 4);
    Wd.fill(0, 5 * I, 6 * I); // one row with no block at all
    const B = denseToBlock(Wd, ws, O, I, 4);
    assert.ok(canGroupBlocks4(B));
    const xq = int8s(I, 5 * O);
    xq[0] = -128;
    for (const b of [null, bias]) {
      const G = groupBlocks4(B, b);
      assert.deepEqual([...G.perm].sort((p, q) => p - q), [...Array(O).keys()], 'perm is a permutation');
      for (let g = 1; g < O / 4; g++) assert.ok(G.steps[g] <= G.steps[g - 1], 'groups sorted by steps');
      for (const [label, be] of backends) {
        const { x16, xs } = activations(be, xq);
        const P = placeGroupBlocks4(be.engine, G), want = new Float32Array(O), y = be.alloc(O);
        y.fill(NaN);
        ts.gemmBlockI8(want, xq, xs, B, 1, b);
        fns(be).groupGemv4(y.byteOffset, x16.byteOffset, xs.byteOffset, P.vals.byteOffset, P.offs.byteOffset, P.steps.byteOffset,
          P.perm.byteOffset, P.scale.byteOffset, P.bias ? P.bias.byteOffset : 0, O);
        sameBits(y, want, `${label} groupGemv4 ${O}x${I} (${B.rowPtr[O]} blocks)${b ? ' bias' : ''}`);
      }
    }
  }
});
