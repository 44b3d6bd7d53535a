/**
 * The integer implementation of the linear seam (model/products.ts): every matrix the export stores
 * as int8 (dense, block or CSR) runs on the Int8Kernels, with int8 per-token activations (int32
 * accumulation) or float activations (W8A32) for students trained without activation quantization.
 * Matrices the export keeps float (a float embedding or head) run as float products on activations
 * fake-quantized by the same primitive. Browser-safe.
 */
import type { Backend } from '../kernels/backend.js';
import { linearI8, type Int8Kernels, type Int8Matrix } from '../kernels/int8.js';
import { linearForward } from '../nn/linear.js';
import { inferenceOnly, type LinearProducts } from '../model/products.js';
import { fakeQuantTokens, qRange } from '../quant/quantize.js';
import { QkdError } from '../tensor/errors.js';

export class Int8Products implements LinearProducts {
  /** Codes and per-token scales of the declared input (when actBits > 0). */
  private xq: Int8Array | null = null;
  private xScale: Float32Array | null = null;
  /** The declared input and its shape: its codes are made once, for the products that read it. */
  private x: Float32Array | null = null;
  private xN = 0;
  private xI = 0;
  private coded = false;
  private tmp: Float32Array | null = null;

  constructor(readonly backend: Backend, readonly kernels: Int8Kernels, readonly matrices: ReadonlyMap<string, Int8Matrix>,
    readonly floats: ReadonlyMap<string, Float32Array>, readonly actBits: number) {
    if (actBits !== 0) qRange(actBits);
  }

  input(x: Float32Array, N: number, I: number): void {
    this.x = x; this.xN = N; this.xI = I; this.coded = false;
  }

  /** The int8 codes of the declared input x (N, I), made on first use. */
  private codes(x: Float32Array, N: number, I: number): { xq: Int8Array; xScale: Float32Array } {
    if (x !== this.x || N !== this.xN || I !== this.xI) this.input(x, N, I);
    if (!this.xq || this.xq.length < N * I) {
      if (this.xq) this.kernels.free(this.xq);
      this.xq = this.kernels.allocI8(N * I);
    }
    if (!this.xScale || this.xScale.length < N) {
      if (this.xScale) this.backend.free(this.xScale);
      this.xScale = this.backend.alloc(N);
    }
    if (!this.coded) { this.kernels.quantizeRowsI8(this.xq, this.xScale, x, N, I, this.actBits); this.coded = true; }
    return { xq: this.xq, xScale: this.xScale };
  }

  linear(out: Float32Array, x: Float32Array, name: string, bias: Float32Array | null, N: number, I: number, O: number): void {
    const W = this.matrices.get(name);
    if (W) {
      linearI8(this.kernels, out, W, N, bias, this.actBits > 0 ? this.codes(x, N, I) : { x });
      return;
    }
    const f = this.floats.get(name);
    if (!f) throw new QkdError('E_INTERNAL', `int8 runtime: no weight ${name}`);
    // a float matrix reads the same per-token quantized activations, in float
    if (this.actBits > 0) fakeQuantTokens(x, x, N, I, this.actBits);
    this.x = null;
    linearForward(this.backend, out, x, f, bias, N, I, O);
  }

  embed(out: Float32Array, ids: Int32Array, N: number, C: number, wpe?: Float32Array, pos?: Int32Array): void {
    const E = this.matrices.get('embed.weight'), be = this.backend;
    if (!E) { be.embeddingForward(out, ids, this.floats.get('embed.weight')!, N, C, wpe, pos); return; }
    if (E.format !== 'dense') throw new QkdError('E_INTERNAL', 'int8 runtime: the embedding must be stored dense');
    this.kernels.embedI8(out, ids, E.values, E.scale, N, C);
    if (wpe && pos) {
      if (!this.tmp || this.tmp.length < N * C) { if (this.tmp) be.free(this.tmp); this.tmp = be.alloc(N * C); }
      const t = this.tmp.subarray(0, N * C);
      be.embeddingForward(t, pos, wpe, N, C);
      be.add(out, out, t, N * C);
    }
  }

  linearBackward(): void { inferenceOnly('the int8 runtime'); }

  dispose(): void {
    if (this.xq) this.kernels.free(this.xq);
    if (this.xScale) this.backend.free(this.xScale);
    if (this.tmp) this.backend.free(this.tmp);
    this.xq = null; this.xScale = null; this.tmp = null;
  }
}
