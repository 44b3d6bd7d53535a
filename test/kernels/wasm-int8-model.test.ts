/**
 * The wasm int8 kernels inside the int8 runtime (runtime/int8-model.ts): on the wasm backend,
 * int8KernelsFor picks them (and their format rule re-packs the matrices), and a compact export's
 * logits equal those computed with the plain-TS int8 kernels on the same backend: bit for bit with
 * int8 activations (every int8 x int8 product is exact in both), within float rounding with float
 * activations (W8A32). Prefill (T = 9) and decode steps (T = 1) through the KV cache.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportStudent, loadExport } from '../../src/io/export.js';
import { TsInt8Kernels } from '../../src/kernels/ts/int8.js';
import { createWasmBackend } from '../../src/kernels/wasm/backend.js';
import { WasmInt8Kernels } from '../../src/kernels/wasm/int8.js';
import { Int8Transformer } from '../../src/runtime/int8-model.js';
import { makeStudent, type StudentSpec } from '../runtime/students.js';
import { maxAbsDiff } from '../helpers.js';
import { sameBits } from './wasm-int8-util.js';

const tmp = mkdtempSync(join(tmpdir(), 'qkd-wasm-int8-'));
const backends = await Promise.all([createWasmBackend({ threads: 1 }), createWasmBackend({ threads: 2, forceParallel: true })]);
after(async () => { await Promise.all(backends.map((b) => b.dispose())); });

/** Logits of a prefill of 9 tokens, then 3 decode steps, through one cache. */
function run(m: Int8Transformer): Float32Array[] {
  const cache = m.newCache(1, 16), ids = [5, 17, 300, 2, 9, 1000, 44, 7, 123], out: Float32Array[] = [];
  out.push(m.forward(ids, 1, ids.length, { cache }).slice());
  for (const id of [11, 12, 13]) out.push(m.forward([id], 1, 1, { cache }).slice());
  return out;
}

function compare(name: string, spec: StudentSpec, exact: boolean): void {
  const dir = exportStudent(makeStudent(join(tmp, name), spec), join(tmp, `${name}-x`)).out;
  for (const be of backends) {
    const wasm = new Int8Transformer(be, loadExport(dir));
    assert.ok(wasm.kernels instanceof WasmInt8Kernels, 'the wasm backend gets the wasm int8 kernels');
    const ref = new Int8Transformer(be, loadExport(dir), { kernels: new TsInt8Kernels() });
    const got = run(wasm), want = run(ref);
    got.forEach((g, i) => {
      const what = `${name} threads=${be.threads} step ${i}`;
      if (exact) sameBits(g, want[i], what);
      else assert.ok(maxAbsDiff(g, want[i]) < 1e-4, `${what}: max |diff| ${maxAbsDiff(g, want[i])}`);
    });
  }
}

test('int8 activations, 1x4 block-sparse student: logits bit-identical to the TS int8 kernels', () => {
  compare('block4', { actBits: 8, sparsity: { target: 0.9, granularity: 'block', block: 4 } }, true);
});

test('int8 activations, unstructured 90% (CSR / dense after re-packing), student architecture', () => {
  compare('unstructured', { arch: 'student', actBits: 8, sparsity: { target: 0.9, granularity: 'unstructured' } }, true);
});

test('float activations (W8A32): logits within float rounding of the TS int8 kernels', () => {
  compare('w8a32', { actBits: 0, sparsity: { target: 0.5, granularity: 'block', block: 16 } }, false);
});
