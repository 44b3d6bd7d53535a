/**
 * Causal scaled dot-product attention with grouped-query heads, composed from batched matmuls and
 * the masked softmax kernel.
 *
 * Layouts: q (B,H,T,D); keys/values (B,KV,Tmax,D) of which the first Tk positions are valid (the
 * T new ones are the last T of those). The r = H/KV query heads sharing a key/value head are
 * contiguous in q, so a group's scores are one product (r·T, D) · (D, Tk): no key/value copies.
 * att (B,KV,r·T,Tk) = (B,H,T,Tk) holds the probabilities (kept for the backward pass).
 */
import type { Backend } from '../kernels/backend.js';
import type { KVCache } from '../nn/kv-cache.js';

export interface AttnShape {
  B: number; H: number; KV: number; T: number;
  /** Valid keys (past + T). */
  Tk: number;
  /** Allocated key positions per (b, kv head). */
  Tmax: number;
  D: number;
  /** Keep only the top-k scores per query (0 = all). */
  topK: number;
}

export function attentionForward(be: Backend, out: Float32Array, att: Float32Array, q: Float32Array,
  k: Float32Array, v: Float32Array, s: AttnShape): void {
  const { B, H, KV, T, Tk, Tmax, D } = s, rT = (H / KV) * T, G = B * KV, scale = 1 / Math.sqrt(D);
  if (Tk === Tmax) {
    be.bmm(att, q, k, G, rT, Tk, D, false, true);
    be.softmaxForward(att, att, G * rT, T, Tk, scale, Tk - T, s.topK);
    be.bmm(out, att, v, G, rT, D, Tk);
    return;
  }
  for (let g = 0; g < G; g++) {
    const qg = q.subarray(g * rT * D, (g + 1) * rT * D), ag = att.subarray(g * rT * Tk, (g + 1) * rT * Tk);
    const kg = k.subarray(g * Tmax * D, (g * Tmax + Tk) * D), vg = v.subarray(g * Tmax * D, (g * Tmax + Tk) * D);
    be.matmul(ag, qg, kg, rT, Tk, D, false, true);
    be.softmaxForward(ag, ag, rT, T, Tk, scale, Tk - T, s.topK);
    be.matmul(out.subarray(g * rT * D, (g + 1) * rT * D), ag, vg, rT, D, Tk);
  }
}

/**
 * Backward for the training case (no cache: Tk = Tmax = T). dOut (B,H,T,D) is consumed; dq, dk, dv are
 * overwritten. dAtt is scratch of att's size.
 */
export function attentionBackward(be: Backend, dq: Float32Array, dk: Float32Array, dv: Float32Array,
  dAtt: Float32Array, dOut: Float32Array, att: Float32Array, q: Float32Array, k: Float32Array, v: Float32Array,
  s: AttnShape): void {
  const { B, H, KV, T, D } = s, rT = (H / KV) * T, G = B * KV, scale = 1 / Math.sqrt(D);
  be.bmm(dAtt, dOut, v, G, rT, T, D, false, true);       // dP = dO · Vᵀ
  be.bmm(dv, att, dOut, G, T, D, rT, true, false);       // dV = Pᵀ · dO
  be.softmaxBackward(dAtt, dAtt, att, G * rT, T, scale); // dS (scaled)
  be.bmm(dq, dAtt, k, G, rT, D, T);                      // dQ = dS · K
  be.bmm(dk, dAtt, q, G, T, D, rT, true, false);         // dK = dSᵀ · Q
}

/**
 * Attention of T new positions per sequence after P cached ones: appends k, v (B,KV,T,D) to layer l of
 * the cache (when given) and attends over all P + T keys. Without a cache, P must be 0.
 */
export function attendWithCache(be: Backend, out: Float32Array, att: Float32Array, q: Float32Array, k: Float32Array,
  v: Float32Array, cache: KVCache | undefined, l: number,
  s: { B: number; H: number; KV: number; T: number; D: number; P: number; topK: number }): void {
  const { B, H, KV, T, D, P, topK } = s;
  let kAll = k, vAll = v, Tmax = T;
  if (cache) {
    kAll = cache.k[l]; vAll = cache.v[l]; Tmax = cache.maxT;
    for (let g = 0; g < B * KV; g++) {
      kAll.set(k.subarray(g * T * D, (g + 1) * T * D), (g * Tmax + P) * D);
      vAll.set(v.subarray(g * T * D, (g + 1) * T * D), (g * Tmax + P) * D);
    }
  }
  attentionForward(be, out, att, q, kAll, vAll, { B, H, KV, T, Tk: P + T, Tmax, D, topK });
}
