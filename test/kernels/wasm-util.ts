/** Shared pieces of the wasm backend tests: the backends under test and tolerance checks. */
import assert from 'node:assert/strict';
import { createWasmBackend, type WasmBackend, type WasmBackendOptions } from '../../src/kernels/wasm/backend.js';
import { randoms } from '../helpers.js';

/** 1 thread, 2 threads with every call split (so small shapes exercise the split paths), the mul+add build. */
export const CONFIGS: [string, WasmBackendOptions][] = [
  ['1 thread', { threads: 1 }],
  ['2 threads', { threads: 2, forceParallel: true }],
  ['mul+add build, 2 threads', { threads: 2, forceParallel: true, fma: false }],
];

export async function openAll(): Promise<[string, WasmBackend][]> {
  return Promise.all(CONFIGS.map(async ([label, o]) => [label, await createWasmBackend(o)] as [string, WasmBackend]));
}

/** A buffer of `be` filled with seeded uniform randoms in [lo, hi). */
export function filled(be: WasmBackend, n: number, seed: number, lo = -1, hi = 1): Float32Array {
  const v = be.alloc(n);
  v.set(randoms(n, seed, lo, hi));
  return v;
}

/** Asserts |got - want| <= atol + rtol |want| elementwise (first failure named). */
export function close(got: ArrayLike<number>, want: ArrayLike<number>, atol: number, rtol: number, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(got[i] - want[i]);
    if (!(d <= atol + rtol * Math.abs(want[i]))) {
      assert.fail(`${what}: element ${i} is ${got[i]}, reference ${want[i]} (atol ${atol}, rtol ${rtol})`);
    }
  }
}
