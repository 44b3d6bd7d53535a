/**
 * The `wasm` backend: AssemblyScript SIMD kernels on a shared WebAssembly.Memory, run on a worker pool.
 * It extends the TS reference, so kernels not overridden here (top-k softmax) run the reference code on
 * views of the shared memory. Buffers should come from alloc(); plain typed arrays
 * also work (copied in and out around each call, see engine.ts).
 */
import type { Activation, BackendName } from '../backend.js';
import { TsBackend } from '../ts/backend.js';
import { QkdError } from '../../tensor/errors.js';
import { Io, WasmEngine, type WasmBackendOptions } from './engine.js';
import { RESULTS_BYTE } from './layout.js';
import { wasmInt8Kernels, type WasmInt8Kernels } from './int8.js';

export type { WasmBackendOptions } from './engine.js';

const { In, Out, InOut } = Io;
const ACT: { readonly [K in Activation]: number } = { relu: 0, gelu: 1, gelu_tanh: 2, silu: 3 };
/** Work (multiply-adds or elements) below which a call stays on the caller's thread. */
const PAR_GEMM = 1 << 17, PAR_ROWS = 1 << 14, PAR_EW = 1 << 16, PAR_EW_HEAVY = 1 << 13;

export async function createWasmBackend(opts: WasmBackendOptions = {}): Promise<WasmBackend> {
  return new WasmBackend(await WasmEngine.create(opts));
}

export class WasmBackend extends TsBackend {
  override readonly name: BackendName = 'wasm';
  override readonly threads: number;
  /** Whether the relaxed-SIMD FMA build was loaded. */
  readonly fma: boolean;

  /** The int8 kernels on this backend's engine (kernels/int8.ts int8KernelsFor). */
  int8Kernels(): WasmInt8Kernels { return wasmInt8Kernels(this); }

  constructor(readonly engine: WasmEngine) {
    super();
    this.threads = engine.threads;
    this.fma = engine.fma;
  }

  override alloc(n: number): Float32Array { return this.engine.allocF32(n); }
  override allocI32(n: number): Int32Array { return this.engine.allocI32(n); }
  override free(buf: Float32Array | Int32Array): void { this.engine.free(buf); }
  override async dispose(): Promise<void> { await this.engine.dispose(); }

  override matmul(C: Float32Array, A: Float32Array, B: Float32Array, M: number, N: number, K: number,
    transA = false, transB = false, accumulate = false): void {
    this.gemm('matmul', C, A, B, 1, M, N, K, transA, transB, accumulate);
  }

  override bmm(C: Float32Array, A: Float32Array, B: Float32Array, batch: number, M: number, N: number, K: number,
    transA = false, transB = false, accumulate = false): void {
    this.gemm('bmm', C, A, B, batch, M, N, K, transA, transB, accumulate);
  }

  private gemm(kind: 'matmul' | 'bmm', C: Float32Array, A: Float32Array, B: Float32Array, batch: number, M: number,
    N: number, K: number, tA: boolean, tB: boolean, acc: boolean): void {
    for (const [k, v] of [['batch', batch], ['M', M], ['N', N], ['K', K]] as const) {
      if (!Number.isInteger(v) || v < 0 || v > 0x7fffffff) throw new QkdError('E_SHAPE', `wasm ${kind}: ${k} = ${v} is not a size`);
    }
    const e = this.engine;
    const c = e.f32(C, batch * M * N, `${kind} C`, acc ? InOut : Out);
    const a = e.f32(A, batch * M * K, `${kind} A`, In), b = e.f32(B, batch * K * N, `${kind} B`, In);
    const flags = [+tA, +tB, +acc, e.wsBase, e.wsStride];
    const th = e.threads, big = e.chunks(batch * M * N * K, PAR_GEMM) > 1;
    // Whole items per chunk when there are enough to balance; else each item is split in M or N.
    const byItem = batch >= 2 * th || batch % th === 0;
    // Each split-dimension chunk repacks the other operand (a K x N or M x K copy), so chunks keep
    // >= ~240 rows or columns: the copy then costs a few % of the chunk's multiply-adds.
    const split = Math.max(M, N) === 1 ? 256 : 240;
    const perItem = Math.min(4 * th, Math.max(th, Math.floor(Math.max(M, N) / split)));
    const chunks = !big ? 1 : batch > 1 && byItem ? Math.min(batch, 4 * th) : perItem;
    if (kind === 'matmul') e.run('matmul', chunks, [c, a, b, M, N, K, ...flags]);
    else e.run('bmm', chunks, [c, a, b, batch, M, N, K, ...flags, +byItem]);
  }

  override addBias(out: Float32Array, bias: Float32Array, N: number, C: number): void {
    const e = this.engine;
    e.run('addBias', e.chunks(N * C, PAR_EW), [e.f32(out, N * C, 'addBias out', InOut), e.f32(bias, C, 'addBias bias', In), N, C]);
  }
  override biasBackward(dBias: Float32Array, dOut: Float32Array, N: number, C: number): void {
    const e = this.engine;
    // column split: one chunk per thread, since every chunk streams all N rows
    e.run('biasBackward', e.chunks(N * C, PAR_EW, 1),
      [e.f32(dBias, C, 'biasBackward dBias', InOut), e.f32(dOut, N * C, 'biasBackward dOut', In), N, C]);
  }
  override add(out: Float32Array, a: Float32Array, b: Float32Array, n: number): void {
    const e = this.engine;
    e.run('add', e.chunks(n, PAR_EW), [e.f32(out, n, 'add out', Out), e.f32(a, n, 'add a', In), e.f32(b, n, 'add b', In), n]);
  }
  override addInPlace(out: Float32Array, a: Float32Array, n: number): void {
    const e = this.engine, o = e.f32(out, n, 'addInPlace out', InOut);
    e.run('add', e.chunks(n, PAR_EW), [o, o, e.f32(a, n, 'addInPlace a', In), n]);
  }
  override scale(out: Float32Array, a: Float32Array, s: number, n: number): void {
    const e = this.engine;
    e.run('scale', e.chunks(n, PAR_EW), [e.f32(out, n, 'scale out', Out), e.f32(a, n, 'scale a', In), s, n]);
  }
  override permute0213(out: Float32Array, inp: Float32Array, A: number, B: number, C: number, D: number): void {
    const e = this.engine, n = A * B * C * D;
    e.run('permute0213', e.chunks(n, PAR_EW),
      [e.f32(out, n, 'permute0213 out', Out), e.f32(inp, n, 'permute0213 inp', In), A, B, C, D]);
  }

  override embeddingForward(out: Float32Array, ids: Int32Array, wte: Float32Array, N: number, C: number,
    wpe?: Float32Array, pos?: Int32Array): void {
    const e = this.engine, hasPos = wpe !== undefined && pos !== undefined;
    checkIndices(ids, N, wte.length / C, 'embeddingForward ids');
    if (hasPos) checkIndices(pos, N, wpe.length / C, 'embeddingForward pos');
    e.run('embeddingForward', e.chunks(N * C, PAR_EW), [e.f32(out, N * C, 'embeddingForward out', Out),
      e.i32(ids, N, 'embeddingForward ids', In), e.f32(wte, wte.length, 'embeddingForward wte', In), N, C,
      hasPos ? e.f32(wpe, wpe.length, 'embeddingForward wpe', In) : 0, hasPos ? e.i32(pos, N, 'embeddingForward pos', In) : 0,
      +hasPos]);
  }

  override embeddingBackward(dWte: Float32Array, dOut: Float32Array, ids: Int32Array, N: number, C: number,
    dWpe?: Float32Array, pos?: Int32Array): void {
    const e = this.engine, hasPos = dWpe !== undefined && pos !== undefined;
    checkIndices(ids, N, dWte.length / C, 'embeddingBackward ids');
    if (hasPos) checkIndices(pos, N, dWpe.length / C, 'embeddingBackward pos');
    const args = [e.f32(dWte, dWte.length, 'embeddingBackward dWte', InOut), e.f32(dOut, N * C, 'embeddingBackward dOut', In),
      e.i32(ids, N, 'embeddingBackward ids', In), N, C,
      hasPos ? e.f32(dWpe, dWpe.length, 'embeddingBackward dWpe', InOut) : 0,
      hasPos ? e.i32(pos, N, 'embeddingBackward pos', In) : 0, +hasPos];
    e.run('embeddingBackward', e.chunks(N * C, PAR_EW, 1), args); // column split, as biasBackward
  }

  override layerNormForward(out: Float32Array, mean: Float32Array, rstd: Float32Array, inp: Float32Array,
    weight: Float32Array, bias: Float32Array | null, N: number, C: number, eps: number): void {
    const e = this.engine, w = 'layerNormForward';
    e.run('layerNormForward', e.chunks(N * C, PAR_ROWS), [e.f32(out, N * C, `${w} out`, Out), e.f32(mean, N, `${w} mean`, Out),
      e.f32(rstd, N, `${w} rstd`, Out), e.f32(inp, N * C, `${w} inp`, In), e.f32(weight, C, `${w} weight`, In),
      bias ? e.f32(bias, C, `${w} bias`, In) : 0, +(bias !== null), N, C, eps]);
  }

  override layerNormBackward(dInp: Float32Array, dWeight: Float32Array, dBias: Float32Array | null,
    dOut: Float32Array, inp: Float32Array, weight: Float32Array, mean: Float32Array, rstd: Float32Array,
    N: number, C: number): void {
    const e = this.engine, w = 'layerNormBackward', chunks = e.chunks(N * C, PAR_ROWS);
    const rows = [e.f32(dOut, N * C, `${w} dOut`, In), e.f32(inp, N * C, `${w} inp`, In), e.f32(weight, C, `${w} weight`, In),
      e.f32(mean, N, `${w} mean`, In), e.f32(rstd, N, `${w} rstd`, In), N, C];
    const dx = e.f32(dInp, N * C, `${w} dInp`, InOut);
    this.withPartials(chunks, C, [dWeight, dBias], (dw, db, stride) => {
      e.run('layerNormBackward', chunks, [dx, dw, db, stride, +(dBias !== null), ...rows]);
    }, w);
  }

  override rmsNormForward(out: Float32Array, rstd: Float32Array, inp: Float32Array, weight: Float32Array, N: number,
    C: number, eps: number): void {
    const e = this.engine, w = 'rmsNormForward';
    e.run('rmsNormForward', e.chunks(N * C, PAR_ROWS), [e.f32(out, N * C, `${w} out`, Out), e.f32(rstd, N, `${w} rstd`, Out),
      e.f32(inp, N * C, `${w} inp`, In), e.f32(weight, C, `${w} weight`, In), N, C, eps]);
  }

  override rmsNormBackward(dInp: Float32Array, dWeight: Float32Array, dOut: Float32Array, inp: Float32Array,
    weight: Float32Array, rstd: Float32Array, N: number, C: number): void {
    const e = this.engine, w = 'rmsNormBackward', chunks = e.chunks(N * C, PAR_ROWS);
    const rows = [e.f32(dOut, N * C, `${w} dOut`, In), e.f32(inp, N * C, `${w} inp`, In), e.f32(weight, C, `${w} weight`, In),
      e.f32(rstd, N, `${w} rstd`, In), N, C];
    const dx = e.f32(dInp, N * C, `${w} dInp`, InOut);
    this.withPartials(chunks, C, [dWeight, null], (dw, _db, stride) => {
      e.run('rmsNormBackward', chunks, [dx, dw, stride, ...rows]);
    }, w);
  }

  /**
   * Norm backward kernels sum dWeight/dBias over rows. In one chunk they accumulate straight into the
   * gradients; otherwise each chunk fills its own zeroed partial (C floats per gradient) and the
   * partials are added here afterwards (C is small).
   */
  private withPartials(chunks: number, C: number, grads: [Float32Array, Float32Array | null],
    body: (dw: number, db: number, strideBytes: number) => void, what: string): void {
    const e = this.engine, [gw, gb] = grads;
    if (gw.length < C || (gb && gb.length < C)) throw new QkdError('E_SHAPE', `wasm ${what}: dWeight/dBias shorter than C=${C}`);
    if (chunks === 1) {
      body(e.f32(gw, C, `${what} dWeight`, InOut), gb ? e.f32(gb, C, `${what} dBias`, InOut) : 0, 0);
      return;
    }
    const part = e.allocF32(chunks * 2 * C); // (chunks, 2, C): dWeight then dBias partials per chunk
    try {
      body(part.byteOffset, part.byteOffset + C * 4, 2 * C * 4);
      // summed in chunk order, so the gradient does not depend on which thread ran which chunk
      for (let t = 0; t < chunks; t++) {
        const o = t * 2 * C;
        for (let c = 0; c < C; c++) gw[c] += part[o + c];
        if (gb) for (let c = 0; c < C; c++) gb[c] += part[o + C + c];
      }
    } finally {
      e.free(part);
    }
  }

  override activationForward(kind: Activation, out: Float32Array, inp: Float32Array, n: number): void {
    const e = this.engine;
    e.run('activationForward', e.chunks(n, kind === 'relu' ? PAR_EW : PAR_EW_HEAVY),
      [ACT[kind], e.f32(out, n, 'activationForward out', Out), e.f32(inp, n, 'activationForward inp', In), n]);
  }
  override activationBackward(kind: Activation, dInp: Float32Array, dOut: Float32Array, inp: Float32Array, n: number,
    accumulate = false): void {
    const e = this.engine, w = 'activationBackward';
    e.run('activationBackward', e.chunks(n, kind === 'relu' ? PAR_EW : PAR_EW_HEAVY), [ACT[kind],
      e.f32(dInp, n, `${w} dInp`, accumulate ? InOut : Out), e.f32(dOut, n, `${w} dOut`, In), e.f32(inp, n, `${w} inp`, In),
      n, +accumulate]);
  }
  override gluForward(kind: Activation, out: Float32Array, gate: Float32Array, up: Float32Array, n: number): void {
    const e = this.engine, w = 'gluForward';
    e.run('gluForward', e.chunks(n, PAR_EW_HEAVY), [ACT[kind], e.f32(out, n, `${w} out`, Out), e.f32(gate, n, `${w} gate`, In),
      e.f32(up, n, `${w} up`, In), n]);
  }
  override gluBackward(kind: Activation, dGate: Float32Array, dUp: Float32Array, dOut: Float32Array,
    gate: Float32Array, up: Float32Array, n: number): void {
    const e = this.engine, w = 'gluBackward';
    e.run('gluBackward', e.chunks(n, PAR_EW_HEAVY), [ACT[kind], e.f32(dGate, n, `${w} dGate`, Out),
      e.f32(dUp, n, `${w} dUp`, Out), e.f32(dOut, n, `${w} dOut`, In), e.f32(gate, n, `${w} gate`, In),
      e.f32(up, n, `${w} up`, In), n]);
  }

  override softmaxForward(P: Float32Array, S: Float32Array, rows: number, Tq: number, Tk: number, scale: number,
    causalOffset: number | null, topK = 0): void {
    // top-k selection (sparse attention) stays on the reference path
    if (topK > 0 && topK < Tk) { super.softmaxForward(P, S, rows, Tq, Tk, scale, causalOffset, topK); return; }
    const e = this.engine, n = rows * Tk;
    e.run('softmaxForward', e.chunks(n, PAR_ROWS), [e.f32(P, n, 'softmaxForward P', Out), e.f32(S, n, 'softmaxForward S', In),
      rows, Tq, Tk, scale, +(causalOffset !== null), causalOffset ?? 0]);
  }
  override softmaxBackward(dS: Float32Array, dP: Float32Array, P: Float32Array, rows: number, Tk: number,
    scale: number): void {
    const e = this.engine, n = rows * Tk;
    e.run('softmaxBackward', e.chunks(n, PAR_ROWS), [e.f32(dS, n, 'softmaxBackward dS', Out),
      e.f32(dP, n, 'softmaxBackward dP', In), e.f32(P, n, 'softmaxBackward P', In), rows, Tk, scale]);
  }
  override rope(x: Float32Array, B: number, H: number, T: number, D: number, pos0: number, cos: Float32Array,
    sin: Float32Array, inverse = false): void {
    const e = this.engine, n = B * H * T * D, tab = (pos0 + T) * (D >> 1);
    if (D % 2 !== 0) throw new QkdError('E_SHAPE', `wasm rope: head dim D=${D} must be even`);
    e.run('rope', e.chunks(n, PAR_EW), [e.f32(x, n, 'rope x', InOut), B * H, T, D, pos0, e.f32(cos, tab, 'rope cos', In),
      e.f32(sin, tab, 'rope sin', In), +inverse]);
  }

  override crossEntropy(losses: Float32Array, logits: Float32Array, targets: Int32Array, N: number, V: number,
    dLogits: Float32Array | null = null, dScale = 1): void {
    const e = this.engine, w = 'crossEntropy';
    checkIndices(targets, N, V, `${w} targets`, true);
    e.run('crossEntropy', e.chunks(N * V, PAR_ROWS), [e.f32(losses, N, `${w} losses`, Out), e.f32(logits, N * V, `${w} logits`, In),
      e.i32(targets, N, `${w} targets`, In), N, V, dLogits ? e.f32(dLogits, N * V, `${w} dLogits`, Out) : 0,
      +(dLogits !== null), dScale]);
  }
  override logSoftmaxForward(out: Float32Array, inp: Float32Array, rows: number, V: number, scale = 1): void {
    const e = this.engine, n = rows * V;
    e.run('logSoftmaxForward', e.chunks(n, PAR_ROWS),
      [e.f32(out, n, 'logSoftmaxForward out', Out), e.f32(inp, n, 'logSoftmaxForward inp', In), rows, V, scale]);
  }
  override logSoftmaxBackward(dInp: Float32Array, dOut: Float32Array, out: Float32Array, rows: number, V: number,
    scale = 1, accumulate = false): void {
    const e = this.engine, n = rows * V, w = 'logSoftmaxBackward';
    e.run('logSoftmaxBackward', e.chunks(n, PAR_ROWS), [e.f32(dInp, n, `${w} dInp`, accumulate ? InOut : Out),
      e.f32(dOut, n, `${w} dOut`, In), e.f32(out, n, `${w} out`, In), rows, V, scale, +accumulate]);
  }

  override sumSquares(x: Float32Array, n: number): number {
    const e = this.engine, res = e.pool.results, chunks = e.chunks(n, PAR_EW);
    e.run('sumSquares', chunks, [e.ctrl + RESULTS_BYTE, e.f32(x, n, 'sumSquares x', In), n]);
    let s = 0;
    for (let c = 0; c < chunks; c++) s += res[c]; // chunk order: independent of thread timing
    return s;
  }
  override adamw(p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, n: number, t: number, lr: number,
    b1: number, b2: number, eps: number, wd: number, gradScale: number): void {
    const e = this.engine, w = 'adamw';
    const ic1 = 1 / (1 - Math.pow(b1, t)), ic2 = 1 / (1 - Math.pow(b2, t));
    e.run('adamw', e.chunks(n, PAR_EW_HEAVY), [e.f32(p, n, `${w} p`, InOut), e.f32(g, n, `${w} g`, In),
      e.f32(m, n, `${w} m`, InOut), e.f32(v, n, `${w} v`, InOut), n, lr, b1, b2, eps, 1 - lr * wd, ic1, ic2, gradScale]);
  }
}

/** Indices must address rows of the table (out-of-range ids would write outside it in shared memory). */
function checkIndices(ids: Int32Array, N: number, rows: number, what: string, allowNegative = false): void {
  if (ids.length < N) throw new QkdError('E_SHAPE', `wasm ${what}: has ${ids.length} elements, needs ${N}`);
  for (let i = 0; i < N; i++) {
    const id = ids[i];
    if (id >= rows || (id < 0 && !allowNegative)) {
      throw new QkdError('E_INPUT', `wasm ${what}[${i}] = ${id} is outside [0, ${rows})`);
    }
  }
}
