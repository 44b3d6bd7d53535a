/** wasm backend memory: the heap (alloc/free/reuse/coalescing/growth), foreign arrays, errors, dispose. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { TsBackend } from '../../src/kernels/ts/backend.js';
import { createWasmBackend } from '../../src/kernels/wasm/backend.js';
import { ALIGN, Heap } from '../../src/kernels/wasm/heap.js';
import { randoms } from '../helpers.js';
import { close } from './wasm-util.js';

const PAGE = 65536;

test('heap: aligned, non-overlapping blocks; freed space is reused and coalesced; growth on demand', () => {
  const mem = new WebAssembly.Memory({ initial: 2, maximum: 512, shared: true });
  let grows = 0;
  const heap = new Heap(mem, 100, 512, () => { grows++; });
  const live = new Map<number, number>();
  let seed = 7;
  const rnd = (n: number): number => { seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0; return seed % n; };
  for (let step = 0; step < 2000; step++) {
    if (live.size > 0 && rnd(3) === 0) {
      const keys = [...live.keys()], off = keys[rnd(keys.length)];
      heap.free(off); live.delete(off);
    } else {
      const bytes = 1 + rnd(rnd(10) === 0 ? 300000 : 5000), off = heap.alloc(bytes);
      assert.equal(off % ALIGN, 0);
      assert.ok(off >= 100 && off + bytes <= mem.buffer.byteLength, 'block inside the managed region');
      for (const [o, n] of live) assert.ok(off + bytes <= o || o + n <= off, `block ${off} overlaps ${o}`);
      live.set(off, bytes);
    }
  }
  assert.ok(grows > 0, 'the memory grew');
  for (const off of [...live.keys()]) heap.free(off);
  assert.equal(heap.freeBlocks, 1, 'everything coalesces back into one block');
  assert.equal(heap.usedBytes, 0);
  const a = heap.alloc(1000);
  heap.free(a);
  assert.equal(heap.alloc(900), a, 'a freed block is reused first-fit');
  assert.throws(() => heap.free(a + 64), { name: 'QkdError' });
  assert.throws(() => heap.alloc(512 * PAGE), { name: 'QkdError' }, 'beyond the maximum');
});

test('alloc/free on the backend: zero-filled shared views, reuse, growth keeps old views valid', async () => {
  const be = await createWasmBackend({ threads: 2, memoryMB: 256 });
  try {
    const a = be.alloc(1000);
    assert.ok(a.buffer instanceof SharedArrayBuffer);
    assert.equal(a.byteOffset % 64, 0);
    a.fill(5);
    be.free(a);
    const b = be.alloc(1000);
    assert.equal(b.byteOffset, a.byteOffset, 'reused');
    assert.ok(b.every((x) => x === 0), 'zero-filled even when reused');
    const ids = be.allocI32(7);
    assert.ok(ids instanceof Int32Array && ids.every((x) => x === 0));
    // 48 MiB more than the initial 32 MiB: the memory grows; earlier views keep working in kernels
    const M = 64, K = 64, A = be.alloc(M * K), B = be.alloc(K * M);
    A.set(randoms(M * K, 1)); B.set(randoms(K * M, 2));
    const big = be.alloc(12 * 1024 * 1024);
    assert.notEqual(big.buffer, A.buffer, 'a grow made a new buffer object');
    const C = be.alloc(M * M), want = new Float32Array(M * M);
    be.matmul(C, A, B, M, M, K);
    new TsBackend().matmul(want, A, B, M, M, K);
    close(C, want, 1e-5, 1e-5, 'matmul on views made before the grow');
    assert.throws(() => be.free(A.subarray(4)), { name: 'QkdError' }, 'subarray');
    assert.throws(() => be.free(new Float32Array(4)), { name: 'QkdError' }, 'plain array');
    be.free(big);
    assert.throws(() => be.free(big), { name: 'QkdError' }, 'double free');
    assert.throws(() => be.alloc(300 * 1024 * 1024), { name: 'QkdError' }, 'beyond memoryMB');
  } finally {
    await be.dispose();
  }
});

test('plain Float32Array/Int32Array arguments are copied in and out', async () => {
  const be = await createWasmBackend({ threads: 2, forceParallel: true });
  const ts = new TsBackend();
  try {
    const M = 9, N = 14, K = 5, A = randoms(M * K, 1), B = randoms(N * K, 2);
    const C = randoms(M * N, 3), want = C.slice();
    be.matmul(C, A, B, M, N, K, false, true, true);
    ts.matmul(want, A, B, M, N, K, false, true, true);
    close(C, want, 1e-5, 1e-5, 'matmul with plain arrays');
    // mixed: shared logits, plain targets and losses, gradient written in place into a plain copy
    const used = be.engine.heap.usedBytes;
    const V = 11, logits = be.alloc(3 * V), t = Int32Array.of(1, -1, 10), loss = new Float32Array(3);
    logits.set(randoms(3 * V, 4));
    const refLogits = logits.slice(), refLoss = new Float32Array(3), g = logits.slice();
    ts.crossEntropy(refLoss, refLogits, t, 3, V, refLogits);
    be.crossEntropy(loss, g, t, 3, V, g);
    close(loss, refLoss, 1e-5, 1e-5, 'losses');
    close(g, refLogits, 1e-6, 1e-5, 'in-place gradient');
    be.free(logits);
    assert.equal(be.engine.heap.usedBytes, used, 'temporaries freed');
    assert.throws(() => be.matmul(new Float32Array(3), A, B, M, N, K), { name: 'QkdError', message: /matmul C/ });
  } finally {
    await be.dispose();
  }
});

test('a trapping kernel surfaces as an error (caller or worker) and the pool keeps working', async () => {
  const be = await createWasmBackend({ threads: 2, forceParallel: true });
  try {
    const beyond = be.engine.memory.buffer.byteLength + 4096, n = 1 << 16;
    // 8 chunks: whichever thread claims one traps on the out-of-bounds address
    for (let k = 0; k < 5; k++) assert.throws(() => be.engine.run('scale', 8, [beyond, beyond, 2, n]));
    const a = be.alloc(100), o = be.alloc(100);
    a.fill(3);
    be.scale(o, a, 2, 100);
    assert.ok(o.every((x) => x === 6));
  } finally {
    await be.dispose();
  }
});

test('dispose stops the workers; later calls throw; a forgotten dispose does not keep Node alive', async () => {
  const be = await createWasmBackend({ threads: 2 });
  await be.dispose();
  await be.dispose();
  assert.throws(() => be.scale(be.alloc(4), be.alloc(4), 2, 4), { name: 'QkdError' });
  const url = pathToFileURL(resolve('dist/src/kernels/wasm/backend.js')).href;
  const script = `const m = await import(${JSON.stringify(url)}); const be = await m.createWasmBackend({ threads: 2 });
    const a = be.alloc(1 << 18); be.scale(a, a, 2, 1 << 18); console.log('ran');`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { timeout: 20000, encoding: 'utf8' });
  assert.equal(r.signal, null, 'the process exited by itself');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /ran/);
});
