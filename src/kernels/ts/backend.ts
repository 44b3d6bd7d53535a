/**
 * The `ts` backend: plain TypeScript reference kernels. Single-threaded, allocates ordinary typed
 * arrays. The wasm backend extends this class and overrides alloc and the hot kernels, so every
 * kernel it does not override still runs (on views of its shared memory) with these definitions.
 */
import type { Activation, Backend, BackendName } from '../backend.js';
import { bmmRef, matmulRef } from './matmul.js';
import * as ops from './ops.js';
import * as att from './attention.js';
import * as loss from './loss.js';

export class TsBackend implements Backend {
  readonly name: BackendName = 'ts';
  readonly threads: number = 1;

  alloc(n: number): Float32Array { return new Float32Array(n); }
  allocI32(n: number): Int32Array { return new Int32Array(n); }
  free(_buf: Float32Array | Int32Array): void { /* garbage collected */ }
  async dispose(): Promise<void> { /* nothing to stop */ }

  matmul(C: Float32Array, A: Float32Array, B: Float32Array, M: number, N: number, K: number,
    transA = false, transB = false, accumulate = false): void {
    matmulRef(C, A, B, M, N, K, transA, transB, accumulate);
  }
  bmm(C: Float32Array, A: Float32Array, B: Float32Array, batch: number, M: number, N: number, K: number,
    transA = false, transB = false, accumulate = false): void {
    bmmRef(C, A, B, batch, M, N, K, transA, transB, accumulate);
  }

  addBias(out: Float32Array, bias: Float32Array, N: number, C: number): void { ops.addBias(out, bias, N, C); }
  biasBackward(dBias: Float32Array, dOut: Float32Array, N: number, C: number): void { ops.biasBackward(dBias, dOut, N, C); }
  add(out: Float32Array, a: Float32Array, b: Float32Array, n: number): void { for (let i = 0; i < n; i++) out[i] = a[i] + b[i]; }
  addInPlace(out: Float32Array, a: Float32Array, n: number): void { for (let i = 0; i < n; i++) out[i] += a[i]; }
  scale(out: Float32Array, a: Float32Array, s: number, n: number): void { for (let i = 0; i < n; i++) out[i] = a[i] * s; }
  permute0213(out: Float32Array, inp: Float32Array, A: number, B: number, C: number, D: number): void {
    ops.permute0213(out, inp, A, B, C, D);
  }

  embeddingForward(out: Float32Array, ids: Int32Array, wte: Float32Array, N: number, C: number,
    wpe?: Float32Array, pos?: Int32Array): void { ops.embeddingForward(out, ids, wte, N, C, wpe, pos); }
  embeddingBackward(dWte: Float32Array, dOut: Float32Array, ids: Int32Array, N: number, C: number,
    dWpe?: Float32Array, pos?: Int32Array): void { ops.embeddingBackward(dWte, dOut, ids, N, C, dWpe, pos); }

  layerNormForward(out: Float32Array, mean: Float32Array, rstd: Float32Array, inp: Float32Array, weight: Float32Array,
    bias: Float32Array | null, N: number, C: number, eps: number): void {
    ops.layerNormForward(out, mean, rstd, inp, weight, bias, N, C, eps);
  }
  layerNormBackward(dInp: Float32Array, dWeight: Float32Array, dBias: Float32Array | null, dOut: Float32Array,
    inp: Float32Array, weight: Float32Array, mean: Float32Array, rstd: Float32Array, N: number, C: number): void {
    ops.layerNormBackward(dInp, dWeight, dBias, dOut, inp, weight, mean, rstd, N, C);
  }
  rmsNormForward(out: Float32Array, rstd: Float32Array, inp: Float32Array, weight: Float32Array, N: number, C: number,
    eps: number): void { ops.rmsNormForward(out, rstd, inp, weight, N, C, eps); }
  rmsNormBackward(dInp: Float32Array, dWeight: Float32Array, dOut: Float32Array, inp: Float32Array, weight: Float32Array,
    rstd: Float32Array, N: number, C: number): void { ops.rmsNormBackward(dInp, dWeight, dOut, inp, weight, rstd, N, C); }

  activationForward(kind: Activation, out: Float32Array, inp: Float32Array, n: number): void {
    ops.activationForward(kind, out, inp, n);
  }
  activationBackward(kind: Activation, dInp: Float32Array, dOut: Float32Array, inp: Float32Array, n: number,
    accumulate = false): void { ops.activationBackward(kind, dInp, dOut, inp, n, accumulate); }
  gluForward(kind: Activation, out: Float32Array, gate: Float32Array, up: Float32Array, n: number): void {
    ops.gluForward(kind, out, gate, up, n);
  }
  gluBackward(kind: Activation, dGate: Float32Array, dUp: Float32Array, dOut: Float32Array, gate: Float32Array,
    up: Float32Array, n: number): void { ops.gluBackward(kind, dGate, dUp, dOut, gate, up, n); }

  softmaxForward(P: Float32Array, S: Float32Array, rows: number, Tq: number, Tk: number, scale: number,
    causalOffset: number | null, topK = 0): void { att.softmaxForward(P, S, rows, Tq, Tk, scale, causalOffset, topK); }
  softmaxBackward(dS: Float32Array, dP: Float32Array, P: Float32Array, rows: number, Tk: number, scale: number): void {
    att.softmaxBackward(dS, dP, P, rows, Tk, scale);
  }
  rope(x: Float32Array, B: number, H: number, T: number, D: number, pos0: number, cos: Float32Array, sin: Float32Array,
    inverse = false): void { att.rope(x, B, H, T, D, pos0, cos, sin, inverse); }

  crossEntropy(losses: Float32Array, logits: Float32Array, targets: Int32Array, N: number, V: number,
    dLogits: Float32Array | null = null, dScale = 1): void {
    loss.crossEntropy(losses, logits, targets, N, V, dLogits, dScale);
  }
  logSoftmaxForward(out: Float32Array, inp: Float32Array, rows: number, V: number, scale = 1): void {
    loss.logSoftmaxForward(out, inp, rows, V, scale);
  }
  logSoftmaxBackward(dInp: Float32Array, dOut: Float32Array, out: Float32Array, rows: number, V: number, scale = 1,
    accumulate = false): void { loss.logSoftmaxBackward(dInp, dOut, out, rows, V, scale, accumulate); }
  sumSquares(x: Float32Array, n: number): number { return loss.sumSquares(x, n); }
  adamw(p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, n: number, t: number, lr: number,
    b1: number, b2: number, eps: number, wd: number, gradScale: number): void {
    loss.adamw(p, g, m, v, n, t, lr, b1, b2, eps, wd, gradScale);
  }
}
