/**
 * The config-driven decoder-only transformer: forward and backward over a batch (B,T), and
 * incremental decoding with a KV cache. Explicit passes over flat buffers; no autograd.
 *
 * Layer: x2 = x + O(attn(norm1(x))); x' = x2 + FFN(norm2(x2)); FFN = down(act(up)) or
 * down(act(gate) * up). Final norm, then logits = nf · Eᵀ (tied) or nf · lm_headᵀ.
 */
import type { Backend } from '../kernels/backend.js';
import { ropeTables } from '../kernels/ts/attention.js';
import { attendWithCache, type AttnShape } from '../nn/attention.js';
import { linearForward } from '../nn/linear.js';
import { fakeQuantTokens } from '../quant/quantize.js';
import { QkdError } from '../tensor/errors.js';
import { allocActs, allocKVCache, freeActs, type Acts, type KVCache } from './activations.js';
import type { ModelConfig } from './config.js';
import { ParamStore } from './params.js';
import { TransformerGrad } from './backward.js';

/** Supplies the weight matrices the passes use (fake quantization and masks plug in here). */
export interface WeightSource {
  /** Effective weight of a linear layer or embedding by parameter name (e.g. `layers.0.q.weight`). */
  weight(name: string): Float32Array;
}

export interface ForwardOptions {
  /** Continue from (and append to) this cache: positions start at cache.length. */
  cache?: KVCache;
  /** Sparse attention: keep the top-k scores per query (0 = dense). */
  topK?: number;
}

export class Transformer {
  readonly params: ParamStore;
  readonly rope: { cos: Float32Array; sin: Float32Array } | null;
  weights: WeightSource;
  acts: Acts | null = null;
  private grad: TransformerGrad | null = null;

  constructor(readonly backend: Backend, readonly config: ModelConfig) {
    this.params = new ParamStore(backend, config);
    this.weights = { weight: (n) => this.params.get(n) };
    if (config.pos === 'rope') {
      const t = ropeTables(config.maxPos, config.headDim, config.ropeTheta);
      const cos = backend.alloc(t.cos.length), sin = backend.alloc(t.sin.length);
      cos.set(t.cos); sin.set(t.sin);
      this.rope = { cos, sin };
    } else this.rope = null;
  }

  /** Head weight: the embedding when tied. */
  headName(): string { return this.config.tieEmbeddings ? 'embed.weight' : 'lm_head.weight'; }

  private bias(name: string): Float32Array | null {
    return this.config.bias ? this.params.get(`${name}.bias`) : null;
  }

  /** Activation buffers for (B,T,Tk), reused when the shape is unchanged. */
  private ensureActs(B: number, T: number, Tk: number): Acts {
    const a = this.acts;
    if (a && a.B === B && a.T === T && a.Tk === Tk) return a;
    if (a) freeActs(this.backend, a);
    this.acts = allocActs(this.backend, this.config, B, T, Tk);
    return this.acts;
  }

  newCache(B: number, maxT = this.config.maxPos): KVCache {
    if (maxT > this.config.maxPos) {
      throw new QkdError('E_CONFIG', `cache length ${maxT} exceeds the model's ${this.config.maxPos} positions`);
    }
    return allocKVCache(this.backend, this.config, B, maxT);
  }

  /**
   * Forward pass over ids (B·T). Returns the logits (B·T, V) (a view owned by the model, valid until the
   * next forward). With a cache, processes T new positions per sequence and appends their keys/values.
   */
  forward(ids: ArrayLike<number>, B: number, T: number, opt: ForwardOptions = {}): Float32Array {
    const c = this.config, be = this.backend, cache = opt.cache;
    const P = cache ? cache.length : 0, Tk = P + T;
    if (ids.length !== B * T) throw new QkdError('E_SHAPE', `forward: ${ids.length} ids for B=${B}, T=${T}`);
    if (Tk > c.maxPos) throw new QkdError('E_CONFIG', `sequence of ${Tk} positions exceeds the model's ${c.maxPos}`);
    if (cache && (cache.B !== B || Tk > cache.maxT)) {
      throw new QkdError('E_SHAPE', `forward: cache holds B=${cache.B}, ${cache.maxT} positions; asked B=${B}, ${Tk}`);
    }
    const a = this.ensureActs(B, T, Tk), N = B * T, C = c.dim;
    for (let i = 0; i < N; i++) {
      const id = ids[i];
      if (!(id >= 0 && id < c.vocabSize)) throw new QkdError('E_INPUT', `token id ${id} is outside the vocabulary of ${c.vocabSize}`);
      a.ids[i] = id;
      a.pos[i] = P + (i % T);
    }
    const W = this.weights;
    const x0 = a.layers[0].x;
    if (c.pos === 'learned') be.embeddingForward(x0, a.ids, W.weight('embed.weight'), N, C, this.params.get('pos_embed.weight'), a.pos);
    else be.embeddingForward(x0, a.ids, W.weight('embed.weight'), N, C);
    for (let l = 0; l < c.nLayer; l++) {
      const next = l + 1 < c.nLayer ? a.layers[l + 1].x : a.xf;
      this.layerForward(l, a, next, P, opt);
    }
    this.norm('final_norm', a.nf, a.nfMean, a.nfRstd, a.xf, N);
    this.actQuant(a.nf, N, C);
    be.matmul(a.logits, a.nf, W.weight(this.headName()), N, c.vocabSize, C, false, true);
    if (cache) cache.length = Tk;
    return a.logits;
  }

  private norm(name: string, out: Float32Array, mean: Float32Array, rstd: Float32Array, inp: Float32Array, N: number): void {
    const c = this.config;
    if (c.norm === 'layernorm') {
      this.backend.layerNormForward(out, mean, rstd, inp, this.params.get(`${name}.weight`),
        this.params.get(`${name}.bias`), N, c.dim, c.normEps);
    } else this.backend.rmsNormForward(out, rstd, inp, this.params.get(`${name}.weight`), N, c.dim, c.normEps);
  }

  /**
   * Per-token fake quantization of a linear layer's input, in place (the int8 runtime's dynamic
   * activation quantization). The buffers quantized here are only read again as matmul inputs, so the
   * backward pass sees the quantized values; its gradient is the straight-through identity.
   */
  private actQuant(x: Float32Array, N: number, C: number): void {
    const bits = this.config.quant?.actBits ?? 0;
    if (bits > 0) fakeQuantTokens(x, x, N, C, bits);
  }

  attnShape(T: number, Tk: number, Tmax: number, B: number, topK = 0): AttnShape {
    const c = this.config;
    return { B, H: c.nHead, KV: c.nKVHead, T, Tk, Tmax, D: c.headDim, topK };
  }

  private layerForward(l: number, a: Acts, out: Float32Array, P: number, opt: ForwardOptions): void {
    const c = this.config, be = this.backend, W = this.weights, L = a.layers[l], p = `layers.${l}`;
    const { B, T } = a, N = B * T, C = c.dim, D = c.headDim, H = c.nHead, KV = c.nKVHead, F = c.ffnDim;
    this.norm(`${p}.attn_norm`, L.n1, L.n1Mean, L.n1Rstd, L.x, N);
    this.actQuant(L.n1, N, C);
    // projections (N, heads·D) then (B,T,heads,D) -> (B,heads,T,D)
    linearForward(be, a.proj, L.n1, W.weight(`${p}.q.weight`), this.bias(`${p}.q`), N, C, H * D);
    be.permute0213(L.q, a.proj, B, T, H, D);
    linearForward(be, a.proj, L.n1, W.weight(`${p}.k.weight`), this.bias(`${p}.k`), N, C, KV * D);
    be.permute0213(L.k, a.proj, B, T, KV, D);
    linearForward(be, a.proj, L.n1, W.weight(`${p}.v.weight`), this.bias(`${p}.v`), N, C, KV * D);
    be.permute0213(L.v, a.proj, B, T, KV, D);
    if (this.rope) {
      be.rope(L.q, B, H, T, D, P, this.rope.cos, this.rope.sin);
      be.rope(L.k, B, KV, T, D, P, this.rope.cos, this.rope.sin);
    }
    attendWithCache(be, L.heads, L.att, L.q, L.k, L.v, opt.cache, l, { B, H, KV, T, D, P, topK: opt.topK ?? c.attnTopK });
    be.permute0213(L.y, L.heads, B, H, T, D);
    this.actQuant(L.y, N, H * D);
    linearForward(be, L.x2, L.y, W.weight(`${p}.o.weight`), this.bias(`${p}.o`), N, H * D, C);
    be.add(L.x2, L.x2, L.x, N * C);
    this.norm(`${p}.mlp_norm`, L.n2, L.n2Mean, L.n2Rstd, L.x2, N);
    this.actQuant(L.n2, N, C);
    linearForward(be, L.up, L.n2, W.weight(`${p}.up.weight`), this.bias(`${p}.up`), N, C, F);
    if (L.gate) {
      linearForward(be, L.gate, L.n2, W.weight(`${p}.gate.weight`), this.bias(`${p}.gate`), N, C, F);
      be.gluForward(c.act, L.h, L.gate, L.up, N * F);
    } else be.activationForward(c.act, L.h, L.up, N * F);
    this.actQuant(L.h, N, F);
    linearForward(be, out, L.h, W.weight(`${p}.down.weight`), this.bias(`${p}.down`), N, F, C);
    be.add(out, out, L.x2, N * C);
  }

  /** Backward pass state (gradient scratch), created on first use. */
  grads(): TransformerGrad {
    if (!this.grad) this.grad = new TransformerGrad(this);
    return this.grad;
  }

  /**
   * Mean cross-entropy of the last forward's logits against targets (B·T; negative = ignored), and,
   * when `backward` is set, the gradient of scale × that mean added into params.grad (scale < 1 for
   * gradient accumulation over micro-batches).
   */
  crossEntropy(targets: ArrayLike<number>, backward = false, scale = 1): number {
    return this.grads().crossEntropy(targets, backward, scale);
  }

  dispose(): void {
    if (this.acts) freeActs(this.backend, this.acts);
    this.acts = null;
    this.grad?.dispose();
    this.grad = null;
    if (this.rope) { this.backend.free(this.rope.cos); this.backend.free(this.rope.sin); }
    this.params.dispose();
  }
}
