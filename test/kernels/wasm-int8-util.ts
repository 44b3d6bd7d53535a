/** Shared pieces of the wasm int8 kernel tests: backends, seeded int8 data, bit-exact and W8A32 checks. */
import assert from 'node:assert/strict';
import type { Int8Kernels } from '../../src/kernels/int8.js';
import type { WasmBackend } from '../../src/kernels/wasm/backend.js';
import { wasmInt8Kernels, type WasmInt8Kernels } from '../../src/kernels/wasm/int8.js';
import { randoms } from '../helpers.js';
import { openAll } from './wasm-util.js';

export interface Under { label: string; be: WasmBackend; k: WasmInt8Kernels }

/** 1 thread; 2 threads with every call split; the mul+add build on 2 threads (W8A32 without FMA). */
export async function openInt8(): Promise<Under[]> {
  return (await openAll()).map(([label, be]) => ({ label, be, k: wasmInt8Kernels(be) }));
}

/** Seeded integers in [lo, hi] as int8, each zero with probability `zeros`. */
export function int8s(n: number, seed: number, zeros = 0, lo = -128, hi = 127): Int8Array {
  const u = randoms(n, seed, 0, 1), z = randoms(n, seed + 7, 0, 1), out = new Int8Array(n);
  for (let i = 0; i < n; i++) out[i] = z[i] < zeros ? 0 : lo + Math.min(hi - lo, Math.floor(u[i] * (hi - lo + 1)));
  return out;
}

/** A dense (O, I) int8 weight in which a fraction `emptyBlocks` of the aligned 1 x k blocks is all zero. */
export function blockSparse(O: number, I: number, k: number, emptyBlocks: number, seed: number): Int8Array {
  const w = int8s(O * I, seed, 0.1), keep = randoms(O * (I / k), seed + 3, 0, 1);
  for (let b = 0; b < keep.length; b++) if (keep[b] < emptyBlocks) w.fill(0, b * k, b * k + k);
  return w;
}

/** Positive seeded float32 scales. */
export function scales(n: number, seed: number): Float32Array {
  return randoms(n, seed, 0.001, 0.05);
}

/** Copies a into memory the kernels can reach (alloc*), as the runtime does. */
export function inI8(k: Int8Kernels, a: Int8Array): Int8Array { const v = k.allocI8(a.length); v.set(a); return v; }
export function inF32(be: WasmBackend, a: Float32Array): Float32Array { const v = be.alloc(a.length); v.set(a); return v; }

/** Asserts got and want hold the same float32 bit patterns (first difference named). */
export function sameBits(got: Float32Array, want: Float32Array, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  const g = new Uint32Array(got.buffer, got.byteOffset, got.length);
  const w = new Uint32Array(want.buffer, want.byteOffset, want.length);
  for (let i = 0; i < w.length; i++) {
    if (g[i] !== w[i]) {
      assert.fail(`${what}: y[${i}] = ${got[i]}, reference ${want[i]} (bits ${g[i].toString(16)} vs ${w[i].toString(16)})`);
    }
  }
}

/**
 * The interface's W8A32 tolerance: |got - want| <= 1e-5 · Σ_i |x[n,i] · Wq[o,i]| · wScale[o], plus one
 * float32 ulp of the result for the final bias addition (a sum that moved by δ can round the biased
 * output to the neighbouring float).
 */
export function w8a32Close(got: Float32Array, want: Float32Array, x: Float32Array, Wd: Int8Array, ws: Float32Array,
  N: number, O: number, I: number, what: string): void {
  for (let n = 0; n < N; n++) {
    for (let o = 0; o < O; o++) {
      let mag = 0;
      for (let i = 0; i < I; i++) mag += Math.abs(x[n * I + i] * Wd[o * I + i]);
      const j = n * O + o, tol = 1e-5 * mag * ws[o] + Math.abs(want[j]) * 2 ** -23;
      if (!(Math.abs(got[j] - want[j]) <= tol)) {
        assert.fail(`${what}: y[${n},${o}] = ${got[j]}, reference ${want[j]}, tolerance ${tol}`);
      }
    }
  }
}
