/**
 * The layout of a 1 x 4 block-sparse int8 weight that the fused decoder's groupGemv4
 * (assembly/int8-gemv.ts) reads: rows sorted by block count (most first, stable) and taken 4 at a
 * time; a group runs as many steps as its fullest row needs (2 blocks of each row per step), the other
 * rows padded with zero weights. Sorting keeps the padding small and makes consecutive groups run
 * loops of the same length, which is what the branch predictor needs (measured: docs/export-format.md).
 * Browser-safe.
 */
import type { BlockI8Matrix } from '../../sparse/storage.js';

export interface GroupedBlocks4 {
  /** (steps total, 4 rows, 2 blocks, 4) int8 weights. */
  readonly vals: Int8Array;
  /** (steps total, 4 rows, 2 blocks) byte offsets of the blocks' activations in the int16 input. */
  readonly offs: Uint16Array;
  /** (O / 4) steps per group. */
  readonly steps: Int32Array;
  /** (O) output row of each grouped row. */
  readonly perm: Int32Array;
  /** (O) row scales and bias in group order. */
  readonly scale: Float32Array;
  readonly bias: Float32Array | null;
}

/** True when groupBlocks4 can lay out W: 1 x 4 blocks, O a multiple of 4, offsets within u16. */
export function canGroupBlocks4(W: BlockI8Matrix): boolean {
  return W.k === 4 && W.O % 4 === 0 && W.O > 0 && 2 * W.I <= 0xffff;
}

export function groupBlocks4(W: BlockI8Matrix, bias: Float32Array | null): GroupedBlocks4 {
  if (!canGroupBlocks4(W)) throw new Error(`groupBlocks4: ${W.O} x ${W.I} in 1 x ${W.k} blocks cannot be grouped`);
  const { O, rowPtr, blockCol, values } = W, count = (r: number) => rowPtr[r + 1] - rowPtr[r];
  const perm = Int32Array.from({ length: O }, (_, i) => i).sort((a, b) => count(b) - count(a) || a - b);
  const steps = new Int32Array(O / 4);
  let total = 0;
  for (let g = 0; g < O / 4; g++) { steps[g] = Math.ceil(count(perm[4 * g]) / 2); total += steps[g]; }
  const vals = new Int8Array(total * 32), offs = new Uint16Array(total * 8);
  let at = 0;
  for (let g = 0; g < O / 4; g++) {
    for (let j = 0; j < steps[g]; j++, at++) {
      for (let r = 0; r < 4; r++) {
        const row = perm[4 * g + r];
        for (let h = 0; h < 2; h++) {
          const b = rowPtr[row] + 2 * j + h;
          if (b >= rowPtr[row + 1]) continue; // padding: zero weights at offset 0
          offs[at * 8 + r * 2 + h] = 2 * blockCol[b];
          vals.set(values.subarray(4 * b, 4 * b + 4), at * 32 + r * 8 + h * 4);
        }
      }
    }
  }
  const scale = Float32Array.from(perm, (r) => W.scale[r]);
  return { vals, offs, steps, perm, scale, bias: bias ? Float32Array.from(perm, (r) => bias[r]) : null };
}

/** Where groupGemv4 reads a grouped matrix: its arrays in a wasm engine's memory (bias null: none). */
export interface PlacedBlocks4 {
  vals: Int8Array; offs: Int8Array; steps: Int32Array; perm: Int32Array; scale: Float32Array; bias: Float32Array | null;
}

interface EngineMemory {
  allocI8(n: number): Int8Array;
  allocI32(n: number): Int32Array;
  allocF32(n: number): Float32Array;
}

/**
 * G copied into the engine's memory; every buffer goes through `keep` (the caller's record of what it
 * frees later). The offsets' u16 pairs travel as their bytes.
 */
export function placeGroupBlocks4(e: EngineMemory, G: GroupedBlocks4,
  keep: <T extends Int8Array | Int32Array | Float32Array>(v: T) => T = (v) => v): PlacedBlocks4 {
  const put = <T extends Int8Array | Int32Array | Float32Array>(v: T, src: ArrayLike<number>): T => { const k = keep(v); k.set(src); return k; };
  return {
    vals: put(e.allocI8(Math.max(1, G.vals.length)), G.vals),
    offs: put(e.allocI8(Math.max(2, G.offs.byteLength)), new Int8Array(G.offs.buffer, G.offs.byteOffset, G.offs.byteLength)),
    steps: put(e.allocI32(G.steps.length), G.steps),
    perm: put(e.allocI32(G.perm.length), G.perm),
    scale: put(e.allocF32(G.scale.length), G.scale),
    bias: G.bias ? put(e.allocF32(G.bias.length), G.bias) : null,
  };
}
