/**
 * The int8 kernel interface (kernels/int8.ts) on the wasm engine: AssemblyScript SIMD kernels
 * (assembly/int8.ts, assembly/int8sparse.ts) over the backend's shared memory, output rows split across
 * the worker pool when a call is large enough. allocI8 / allocI32 hand out blocks of that memory;
 * arrays from elsewhere still work (copied in, and out for outputs, around each call).
 *
 * The 'wasm' and 'native' backends (the native one is the wasm one with OpenBLAS products) hand them
 * out through int8Kernels(), one instance per engine.
 */
import type { Backend } from '../backend.js';
import {
  type BlockI8Matrix, type CsrI8Matrix, type FormatRule, type Int8DecodeModel, type Int8Decoder,
  type Int8Kernels, type Int8Matrix,
} from '../int8.js';
import { QkdError } from '../../tensor/errors.js';
import { Io, type WasmEngine } from './engine.js';
import { wasmDecoder } from './int8-decode.js';

const { In, Out } = Io;

/**
 * Multiply-adds (N · stored weights) below which a product stays on the caller's thread: a hand-off to
 * the pool costs ~1 µs (shared/notes/wasm-engine.md), and the kernels run ~15-30k int8 multiply-adds
 * per µs (bench/int8.ts), so a split pays from ~3-4 µs of work.
 */
const PAR_MAC = 1 << 16;
/** Elements below which quantize / embed stay on the caller's thread. */
const PAR_EW = 1 << 15;

/**
 * This implementation's format rule, measured by bench/int8.ts (density sweep, 1 thread, int8 x int8,
 * O x I in {384x128, 128x384, 2048x128}, N = 1 and 16; time relative to the SIMD dense kernel):
 * - 1 x 16 and 1 x 8 blocks: ~0.25 + 1.2 · fill (1 x 4: ~0.4 + 1.75 · fill); no slower than dense up to
 *   fill 0.5 for k = 16 and 8 in every case (0.3 for k = 4), 3-5x faster at fill 0.1.
 * - scalar CSR: ~0.1 + 10 · density (its gathers cost ~10x a SIMD block value): 0.75-0.87x dense at
 *   10% density, break-even at ~5%.
 * (W8A32, whose dense kernel is ~2x slower, breaks even later: blocks 0.5-0.6, CSR 0.1.)
 */
export const WASM_FORMAT_RULE: FormatRule = Object.freeze({ maxBlockFill: 0.5, maxCsrDensity: 0.05 });

const MAX_I32 = 0x7fffffff;

/**
 * A sparse product's work in dense multiply-adds: the stored weights, plus ~32 per output row and token
 * for the per-row cost (loop set-up and epilogue: ~1.5 ns, measured at I = 128 with ~1 block per row).
 */
const sparseWork = (N: number, stored: number, O: number): number => N * (stored + 32 * O);

/**
 * Each size a non-negative int32, and `bytes` (the largest int8 operand) below 2^31: the kernels index
 * int8 operands with int32 arithmetic. (Float operands are at most 2^30 elements in a 4 GiB memory;
 * their lengths are checked by the engine.) `names` lists the sizes' names, comma-separated.
 */
function checkSizes(what: string, names: string, bytes: number, a: number, b = 0, c = 0, d = 0): void {
  const ok = (v: number): boolean => Number.isInteger(v) && v >= 0 && v <= MAX_I32;
  if (ok(a) && ok(b) && ok(c) && ok(d) && bytes <= MAX_I32) return;
  const vals = [a, b, c, d], list = names.split(',').map((n, i) => `${n} = ${vals[i]}`).join(', ');
  throw new QkdError('E_SHAPE', `wasm ${what}: ${list}: not sizes, or an int8 operand of 2 GiB or more`);
}

export class WasmInt8Kernels implements Int8Kernels {
  readonly name = 'wasm';
  readonly formatRule: FormatRule = WASM_FORMAT_RULE;
  /** Sparse matrices whose index arrays were validated (once per matrix object). */
  private readonly checked = new WeakSet<object>();

  constructor(readonly engine: WasmEngine) {}

  allocI8(n: number): Int8Array { checkSizes('allocI8', 'n', n, n); return this.engine.allocI8(n); }
  allocI32(n: number): Int32Array { checkSizes('allocI32', 'n', 0, n); return this.engine.allocI32(n); }
  free(buf: Int8Array | Int32Array): void { this.engine.free(buf); }

  quantizeRowsI8(xq: Int8Array, xScale: Float32Array, x: Float32Array, N: number, C: number, bits: number): void {
    const e = this.engine, w = 'quantizeRowsI8';
    checkSizes(w, 'N,C', N * C, N, C);
    if (!Number.isInteger(bits) || bits < 2 || bits > 8) {
      throw new QkdError('E_CONFIG', `wasm ${w}: bits must be an integer in 2..8, got ${bits}`);
    }
    e.run('quantizeRowsI8', e.chunks(N * C, PAR_EW), [e.i8(xq, N * C, 'quantizeRowsI8 xq', Out),
      e.f32(xScale, N, 'quantizeRowsI8 xScale', Out), e.f32(x, N * C, 'quantizeRowsI8 x', In), N, C, bits]);
  }

  gemmI8(y: Float32Array, xq: Int8Array, xScale: Float32Array, Wq: Int8Array, wScale: Float32Array,
    N: number, O: number, I: number, bias?: Float32Array | null): void {
    const e = this.engine;
    checkSizes('gemmI8', 'N,O,I', Math.max(N, O) * I, N, O, I);
    e.run('gemmI8', e.chunks(N * O * I, PAR_MAC), [e.f32(y, N * O, 'gemmI8 y', Out),
      e.i8(xq, N * I, 'gemmI8 xq', In), e.f32(xScale, N, 'gemmI8 xScale', In), e.i8(Wq, O * I, 'gemmI8 Wq', In),
      e.f32(wScale, O, 'gemmI8 wScale', In), bias ? e.f32(bias, O, 'gemmI8 bias', In) : 0, N, O, I]);
  }

  gemmW8A32(y: Float32Array, x: Float32Array, Wq: Int8Array, wScale: Float32Array,
    N: number, O: number, I: number, bias?: Float32Array | null): void {
    const e = this.engine;
    checkSizes('gemmW8A32', 'N,O,I', O * I, N, O, I);
    e.run('gemmW8A32', e.chunks(N * O * I, PAR_MAC), [e.f32(y, N * O, 'gemmW8A32 y', Out),
      e.f32(x, N * I, 'gemmW8A32 x', In), e.i8(Wq, O * I, 'gemmW8A32 Wq', In), e.f32(wScale, O, 'gemmW8A32 wScale', In),
      bias ? e.f32(bias, O, 'gemmW8A32 bias', In) : 0, N, O, I]);
  }

  gemmBlockI8(y: Float32Array, xq: Int8Array, xScale: Float32Array, W: BlockI8Matrix, N: number,
    bias?: Float32Array | null): void {
    const e = this.engine, nb = this.checkBlock(W, N, 'gemmBlockI8'), { O, I, k } = W;
    e.run('gemmBlockI8', e.chunks(sparseWork(N, nb * k, O), PAR_MAC), [e.f32(y, N * O, 'gemmBlockI8 y', Out),
      e.i8(xq, N * I, 'gemmBlockI8 xq', In), e.f32(xScale, N, 'gemmBlockI8 xScale', In),
      e.i32(W.rowPtr, O + 1, 'block W.rowPtr', In), e.i32(W.blockCol, nb, 'block W.blockCol', In),
      e.i8(W.values, nb * k, 'block W.values', In), e.f32(W.scale, O, 'block W.scale', In),
      bias ? e.f32(bias, O, 'gemmBlockI8 bias', In) : 0, N, O, I, k]);
  }

  gemmBlockW8A32(y: Float32Array, x: Float32Array, W: BlockI8Matrix, N: number, bias?: Float32Array | null): void {
    const e = this.engine, nb = this.checkBlock(W, N, 'gemmBlockW8A32'), { O, I, k } = W;
    e.run('gemmBlockW8A32', e.chunks(sparseWork(N, nb * k, O), PAR_MAC), [e.f32(y, N * O, 'gemmBlockW8A32 y', Out),
      e.f32(x, N * I, 'gemmBlockW8A32 x', In),
      e.i32(W.rowPtr, O + 1, 'block W.rowPtr', In), e.i32(W.blockCol, nb, 'block W.blockCol', In),
      e.i8(W.values, nb * k, 'block W.values', In), e.f32(W.scale, O, 'block W.scale', In),
      bias ? e.f32(bias, O, 'gemmBlockW8A32 bias', In) : 0, N, O, I, k]);
  }

  gemmCsrI8(y: Float32Array, xq: Int8Array, xScale: Float32Array, W: CsrI8Matrix, N: number,
    bias?: Float32Array | null): void {
    const e = this.engine, nnz = this.checkCsr(W, N, 'gemmCsrI8'), { O, I } = W;
    e.run('gemmCsrI8', e.chunks(sparseWork(N, nnz, O), PAR_MAC), [e.f32(y, N * O, 'gemmCsrI8 y', Out),
      e.i8(xq, N * I, 'gemmCsrI8 xq', In), e.f32(xScale, N, 'gemmCsrI8 xScale', In),
      e.i32(W.rowPtr, O + 1, 'csr W.rowPtr', In), e.i32(W.col, nnz, 'csr W.col', In),
      e.i8(W.values, nnz, 'csr W.values', In), e.f32(W.scale, O, 'csr W.scale', In),
      bias ? e.f32(bias, O, 'gemmCsrI8 bias', In) : 0, N, O, I]);
  }

  gemmCsrW8A32(y: Float32Array, x: Float32Array, W: CsrI8Matrix, N: number, bias?: Float32Array | null): void {
    const e = this.engine, nnz = this.checkCsr(W, N, 'gemmCsrW8A32'), { O, I } = W;
    e.run('gemmCsrW8A32', e.chunks(sparseWork(N, nnz, O), PAR_MAC), [e.f32(y, N * O, 'gemmCsrW8A32 y', Out),
      e.f32(x, N * I, 'gemmCsrW8A32 x', In),
      e.i32(W.rowPtr, O + 1, 'csr W.rowPtr', In), e.i32(W.col, nnz, 'csr W.col', In),
      e.i8(W.values, nnz, 'csr W.values', In), e.f32(W.scale, O, 'csr W.scale', In),
      bias ? e.f32(bias, O, 'gemmCsrW8A32 bias', In) : 0, N, O, I]);
  }

  embedI8(out: Float32Array, ids: Int32Array, Wq: Int8Array, wScale: Float32Array, N: number, C: number): void {
    const e = this.engine, w = 'embedI8';
    checkSizes(w, 'N,C', Math.min(Wq.length, MAX_I32), N, C);
    const V = Math.min(wScale.length, C > 0 ? Math.floor(Wq.length / C) : wScale.length);
    if (ids.length < N) throw new QkdError('E_SHAPE', `wasm ${w}: ids has ${ids.length} elements, needs ${N}`);
    // ids address the table in shared memory: an out-of-range id would read another buffer
    for (let n = 0; n < N; n++) {
      if (!(ids[n] >= 0 && ids[n] < V)) {
        throw new QkdError('E_INPUT', `wasm ${w}: ids[${n}] = ${ids[n]} is outside [0, ${V})`);
      }
    }
    e.run('embedI8', e.chunks(N * C, PAR_EW), [e.f32(out, N * C, 'embedI8 out', Out), e.i32(ids, N, 'embedI8 ids', In),
      e.i8(Wq, V * C, 'embedI8 Wq', In), e.f32(wScale, V, 'embedI8 wScale', In), N, C]);
  }

  /** The fused decoder (wasm/int8-decode.ts) when `backend` is this engine's plain wasm backend, else null. */
  decoder(backend: Backend, model: Int8DecodeModel): Int8Decoder | null {
    return wasmDecoder(this.engine, backend, model, (W, what) => this.validate(W, what));
  }

  /** Checks a matrix as the kernels do before a call (sizes; indices once per matrix). */
  private validate(W: Int8Matrix, what: string): void {
    if (W.format === 'block') this.checkBlock(W, 1, `decoder ${what}`);
    else if (W.format === 'csr') this.checkCsr(W, 1, `decoder ${what}`);
    else {
      checkSizes(`decoder ${what}`, 'O,I', W.O * W.I, W.O, W.I);
      if (W.values.length < W.O * W.I) throw new QkdError('E_SHAPE', `wasm decoder ${what}: ${W.values.length} values for ${W.O} x ${W.I}`);
    }
    if (W.scale.length < W.O) throw new QkdError('E_SHAPE', `wasm decoder ${what}: ${W.scale.length} scales for ${W.O} rows`);
  }

  /**
   * The block count, after checking the format's invariants (once per matrix object: the kernels read
   * activations at blockCol, so a bad index would read another buffer of the shared memory).
   */
  private checkBlock(W: BlockI8Matrix, N: number, w: string): number {
    const { O, I, k } = W;
    checkSizes(w, 'N,O,I,k', Math.max(N * I, W.values.length), N, O, I, k);
    if (k < 1 || I % k !== 0) throw new QkdError('E_SHAPE', `wasm ${w}: block width k = ${k} does not divide I = ${I}`);
    const nb = rowCount(W.rowPtr, O, w);
    if (W.blockCol.length < nb || W.values.length < nb * k) {
      throw new QkdError('E_SHAPE', `wasm ${w}: ${nb} blocks need ${nb} blockCol and ${nb * k} values ` +
        `(have ${W.blockCol.length}, ${W.values.length})`);
    }
    if (!this.checked.has(W)) {
      checkRowPtr(W.rowPtr, O, w);
      for (let b = 0; b < nb; b++) {
        const c = W.blockCol[b];
        if (!(c >= 0 && c + k <= I && c % k === 0)) {
          throw new QkdError('E_INPUT', `wasm ${w}: W.blockCol[${b}] = ${c} is not a multiple of ${k} in [0, ${I - k}]`);
        }
      }
      this.checked.add(W);
    }
    return nb;
  }

  private checkCsr(W: CsrI8Matrix, N: number, w: string): number {
    const { O, I } = W;
    checkSizes(w, 'N,O,I', Math.max(N * I, W.values.length), N, O, I);
    const nnz = rowCount(W.rowPtr, O, w);
    if (W.col.length < nnz || W.values.length < nnz) {
      throw new QkdError('E_SHAPE', `wasm ${w}: ${nnz} entries need ${nnz} col and values ` +
        `(have ${W.col.length}, ${W.values.length})`);
    }
    if (!this.checked.has(W)) {
      checkRowPtr(W.rowPtr, O, w);
      for (let i = 0; i < nnz; i++) {
        const c = W.col[i];
        if (!(c >= 0 && c < I)) throw new QkdError('E_INPUT', `wasm ${w}: W.col[${i}] = ${c} is outside [0, ${I})`);
      }
      this.checked.add(W);
    }
    return nnz;
  }
}

/** rowPtr[O], the stored blocks or entries, after checking rowPtr's length (every call). */
function rowCount(rowPtr: Int32Array, O: number, w: string): number {
  if (rowPtr.length < O + 1) {
    throw new QkdError('E_SHAPE', `wasm ${w}: W.rowPtr has ${rowPtr.length} elements, needs ${O + 1}`);
  }
  return rowPtr[O];
}

/** rowPtr (O+1) starts at 0 and never decreases. */
function checkRowPtr(rowPtr: Int32Array, O: number, w: string): void {
  if (rowPtr[0] !== 0) throw new QkdError('E_INPUT', `wasm ${w}: W.rowPtr[0] = ${rowPtr[0]}, must be 0`);
  for (let o = 0; o < O; o++) {
    if (rowPtr[o + 1] < rowPtr[o]) throw new QkdError('E_INPUT', `wasm ${w}: W.rowPtr decreases at row ${o}`);
  }
}

/** One kernels object per engine, for the backends built on it. */
const byEngine = new WeakMap<WasmEngine, WasmInt8Kernels>();

export function wasmInt8Kernels(backend: Backend): WasmInt8Kernels {
  const engine = (backend as { engine?: WasmEngine }).engine;
  if (!engine) throw new QkdError('E_INTERNAL', `wasm int8 kernels: backend '${backend.name}' has no wasm engine`);
  let k = byEngine.get(engine);
  if (!k) { k = new WasmInt8Kernels(engine); byEngine.set(engine, k); }
  return k;
}

