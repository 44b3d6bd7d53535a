/** The KV cache of incremental decoding: keys and values of past positions, per layer (B,KV,maxT,D). */
import type { Backend } from '../kernels/backend.js';

/** The widths a cache is allocated for (a ModelConfig has them). */
export interface KVShape { nLayer: number; nKVHead: number; headDim: number }

export interface KVCache {
  B: number;
  maxT: number;
  /** Positions filled so far. */
  length: number;
  k: Float32Array[];
  v: Float32Array[];
}

export function allocKVCache(be: Backend, c: KVShape, B: number, maxT: number): KVCache {
  const n = B * c.nKVHead * maxT * c.headDim;
  return {
    B, maxT, length: 0,
    k: Array.from({ length: c.nLayer }, () => be.alloc(n)),
    v: Array.from({ length: c.nLayer }, () => be.alloc(n)),
  };
}

export function freeKVCache(be: Backend, kv: KVCache): void {
  for (const b of [...kv.k, ...kv.v]) be.free(b);
  kv.k.length = 0; kv.v.length = 0;
}
