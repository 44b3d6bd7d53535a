/**
 * Activation buffers of a forward pass over N = B·T tokens, kept for the backward pass (llm.c style:
 * allocated once per shape and reused), and the KV cache for incremental decoding.
 */
import type { Backend } from '../kernels/backend.js';
import type { ModelConfig } from './config.js';

export interface LayerActs {
  x: Float32Array;      // (N,C) residual stream entering the layer
  n1: Float32Array;     // (N,C) attention-norm output
  n1Mean: Float32Array; // (N)
  n1Rstd: Float32Array; // (N)
  q: Float32Array;      // (B,H,T,D) after RoPE
  k: Float32Array;      // (B,KV,T,D) after RoPE (training; decoding writes into the cache)
  v: Float32Array;      // (B,KV,T,D)
  att: Float32Array;    // (B,H,T,Tk) attention probabilities (room for (B,H,T,cap))
  heads: Float32Array;  // (B,H,T,D) attention output per head
  y: Float32Array;      // (N,H·D) heads merged
  x2: Float32Array;     // (N,C) residual after attention
  n2: Float32Array;     // (N,C)
  n2Mean: Float32Array;
  n2Rstd: Float32Array;
  gate: Float32Array | null; // (N,F) gate pre-activation (gated FFN)
  up: Float32Array;     // (N,F) up pre-activation
  h: Float32Array;      // (N,F) activation output
}

export interface Acts {
  B: number; T: number;
  /** Keys of the current pass (past + T), at most cap. */
  Tk: number;
  /** Keys the att buffers have room for. */
  cap: number;
  ids: Int32Array;      // (N)
  pos: Int32Array;      // (N)
  layers: LayerActs[];
  xf: Float32Array;     // (N,C) residual after the last layer
  nf: Float32Array;     // (N,C) final-norm output
  nfMean: Float32Array;
  nfRstd: Float32Array;
  logits: Float32Array; // (N,V)
  proj: Float32Array;   // (N, max(H·D, KV·D)) scratch for projections before permuting
  all: (Float32Array | Int32Array)[];
}

export function allocActs(be: Backend, c: ModelConfig, B: number, T: number, cap: number): Acts {
  const all: (Float32Array | Int32Array)[] = [];
  const f = (n: number) => { const a = be.alloc(n); all.push(a); return a; };
  const N = B * T, C = c.dim, D = c.headDim, F = c.ffnDim;
  const layers: LayerActs[] = [];
  for (let l = 0; l < c.nLayer; l++) {
    layers.push({
      x: f(N * C), n1: f(N * C), n1Mean: f(N), n1Rstd: f(N),
      q: f(N * c.nHead * D), k: f(N * c.nKVHead * D), v: f(N * c.nKVHead * D),
      att: f(B * c.nHead * T * cap), heads: f(N * c.nHead * D), y: f(N * c.nHead * D),
      x2: f(N * C), n2: f(N * C), n2Mean: f(N), n2Rstd: f(N),
      gate: c.gated ? f(N * F) : null, up: f(N * F), h: f(N * F),
    });
  }
  const ids = be.allocI32(N), pos = be.allocI32(N);
  all.push(ids, pos);
  return {
    B, T, Tk: cap, cap, ids, pos, layers, xf: f(N * C), nf: f(N * C), nfMean: f(N), nfRstd: f(N), logits: f(N * c.vocabSize),
    proj: f(N * Math.max(c.nHead, c.nKVHead) * D), all,
  };
}

export function freeActs(be: Backend, a: Acts): void {
  for (const buf of a.all) be.free(buf);
  a.all.length = 0;
}
