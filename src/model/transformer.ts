/**
 * The config-driven decoder-only transformer: forward and backward over a batch (B,T), and
 * incremental decoding with a KV cache. Explicit passes over flat buffers; no autograd. This one
 * forward serves the float model, the student in training and the int8 export: their weight
 * products differ only behind the linear seam (`products`, model/products.ts).
 *
 * Layer: x2 = x + O(attn(norm1(x))); x' = x2 + FFN(norm2(x2)); FFN = down(act(up)) or
 * down(act(gate) * up). Final norm, then logits = nf · Eᵀ (tied) or nf · lm_headᵀ.
 */
import type { Backend } from '../kernels/backend.js';
import { attendWithCache, type AttnShape } from '../nn/attention.js';
import { normForward } from '../nn/norm.js';
import { QkdError } from '../tensor/errors.js';
import { ropeTables } from '../tensor/rope.js';
import { allocActs, freeActs, type Acts } from './activations.js';
import { allocKVCache, type KVCache } from '../nn/kv-cache.js';
import type { ModelConfig } from './config.js';
import { ParamStore } from './params.js';
import { FloatProducts, type LinearProducts } from './products.js';
import { TransformerGrad } from './backward.js';

export interface ForwardOptions {
  /** Continue from (and append to) this cache: positions start at cache.length. */
  cache?: KVCache;
  /** Sparse attention: keep the top-k scores per query (0 = dense). */
  topK?: number;
}

export interface TransformerOptions {
  /**
   * Which parameters the float store holds (default all). The int8 runtime keeps its matrices behind
   * its own products and stores only norms, biases and any float tables here.
   */
  storeParam?: (name: string) => boolean;
}

export class Transformer {
  readonly params: ParamStore;
  readonly rope: { cos: Float32Array; sin: Float32Array } | null;
  /** The linear seam: float weights and the config's activation quantization unless replaced. */
  products: LinearProducts;
  acts: Acts | null = null;
  private grad: TransformerGrad | null = null;

  constructor(readonly backend: Backend, readonly config: ModelConfig, opts: TransformerOptions = {}) {
    this.params = new ParamStore(backend, config, opts.storeParam);
    this.products = new FloatProducts(backend, { weight: (n) => this.params.get(n) }, config.quant?.actBits ?? 0);
    if (config.pos === 'rope') {
      const t = ropeTables(config.maxPos, config.headDim, config.ropeTheta);
      const cos = backend.alloc(t.cos.length), sin = backend.alloc(t.sin.length);
      cos.set(t.cos); sin.set(t.sin);
      this.rope = { cos, sin };
    } else this.rope = null;
  }

  /** Head weight: the embedding when tied. */
  headName(): string { return this.config.tieEmbeddings ? 'embed.weight' : 'lm_head.weight'; }

  /** Bias of a linear layer (`layers.0.q`), null without biases. */
  protected linearBias(name: string): Float32Array | null {
    return this.config.bias ? this.params.get(`${name}.bias`) : null;
  }

  /**
   * Activation buffers for (B,T) with room for up to `cap` keys (a cache's length, so decode steps
   * reuse one set), reused while the shape fits; a.Tk is set to this pass's key count.
   */
  private ensureActs(B: number, T: number, Tk: number, cap: number): Acts {
    let a = this.acts;
    if (!(a && a.B === B && a.T === T && a.cap >= Tk)) {
      if (a) freeActs(this.backend, a);
      a = this.acts = allocActs(this.backend, this.config, B, T, cap);
    }
    a.Tk = Tk;
    return a;
  }

  /**
   * A step the model computes some other way (the int8 runtime's fused decoder), given the checked
   * inputs of a pass with a cache: logits, or null to run the composed forward below.
   */
  protected cachedStep(_ids: ArrayLike<number>, _B: number, _T: number, _P: number, _cache: KVCache, _topK: number): Float32Array | null {
    return null;
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
    for (let i = 0; i < ids.length; i++) {
      if (!(ids[i] >= 0 && ids[i] < c.vocabSize)) throw new QkdError('E_INPUT', `token id ${ids[i]} is outside the vocabulary of ${c.vocabSize}`);
    }
    const topK = opt.topK ?? c.attnTopK;
    if (cache) {
      const done = this.cachedStep(ids, B, T, P, cache, topK);
      if (done) { cache.length = Tk; return done; }
    }
    const a = this.ensureActs(B, T, Tk, cache ? cache.maxT : Tk), N = B * T, C = c.dim, X = this.products;
    for (let i = 0; i < N; i++) {
      a.ids[i] = ids[i];
      a.pos[i] = P + (i % T);
    }
    const x0 = a.layers[0].x;
    if (c.pos === 'learned') X.embed(x0, a.ids, N, C, this.params.get('pos_embed.weight'), a.pos);
    else X.embed(x0, a.ids, N, C);
    for (let l = 0; l < c.nLayer; l++) {
      const next = l + 1 < c.nLayer ? a.layers[l + 1].x : a.xf;
      this.layerForward(l, a, next, P, topK, cache);
    }
    this.norm('final_norm', a.nf, a.nfMean, a.nfRstd, a.xf, N);
    X.input(a.nf, N, C);
    X.linear(a.logits, a.nf, this.headName(), null, N, C, c.vocabSize);
    if (cache) cache.length = Tk;
    return a.logits;
  }

  private norm(name: string, out: Float32Array, mean: Float32Array, rstd: Float32Array, inp: Float32Array, N: number): void {
    const P = this.params;
    normForward(this.backend, this.config, out, mean, rstd, inp, P.get(`${name}.weight`),
      this.config.norm === 'layernorm' ? P.get(`${name}.bias`) : null, N);
  }

  attnShape(T: number, Tk: number, Tmax: number, B: number, topK = 0): AttnShape {
    const c = this.config;
    return { B, H: c.nHead, KV: c.nKVHead, T, Tk, Tmax, D: c.headDim, topK };
  }

  private layerForward(l: number, a: Acts, out: Float32Array, P: number, topK: number, cache: KVCache | undefined): void {
    const c = this.config, be = this.backend, X = this.products, L = a.layers[l], p = `layers.${l}`;
    const { B, T } = a, N = B * T, C = c.dim, D = c.headDim, H = c.nHead, KV = c.nKVHead, F = c.ffnDim;
    this.norm(`${p}.attn_norm`, L.n1, L.n1Mean, L.n1Rstd, L.x, N);
    X.input(L.n1, N, C);
    // projections (N, heads·D) then (B,T,heads,D) -> (B,heads,T,D)
    X.linear(a.proj, L.n1, `${p}.q.weight`, this.linearBias(`${p}.q`), N, C, H * D);
    be.permute0213(L.q, a.proj, B, T, H, D);
    X.linear(a.proj, L.n1, `${p}.k.weight`, this.linearBias(`${p}.k`), N, C, KV * D);
    be.permute0213(L.k, a.proj, B, T, KV, D);
    X.linear(a.proj, L.n1, `${p}.v.weight`, this.linearBias(`${p}.v`), N, C, KV * D);
    be.permute0213(L.v, a.proj, B, T, KV, D);
    if (this.rope) {
      be.rope(L.q, B, H, T, D, P, this.rope.cos, this.rope.sin);
      be.rope(L.k, B, KV, T, D, P, this.rope.cos, this.rope.sin);
    }
    attendWithCache(be, L.heads, L.att, L.q, L.k, L.v, cache, l, { B, H, KV, T, D, P, topK });
    be.permute0213(L.y, L.heads, B, H, T, D);
    X.input(L.y, N, H * D);
    X.linear(L.x2, L.y, `${p}.o.weight`, this.linearBias(`${p}.o`), N, H * D, C);
    be.add(L.x2, L.x2, L.x, N * C);
    this.norm(`${p}.mlp_norm`, L.n2, L.n2Mean, L.n2Rstd, L.x2, N);
    X.input(L.n2, N, C);
    X.linear(L.up, L.n2, `${p}.up.weight`, this.linearBias(`${p}.up`), N, C, F);
    if (L.gate) {
      X.linear(L.gate, L.n2, `${p}.gate.weight`, this.linearBias(`${p}.gate`), N, C, F);
      be.gluForward(c.act, L.h, L.gate, L.up, N * F);
    } else be.activationForward(c.act, L.h, L.up, N * F);
    X.input(L.h, N, F);
    X.linear(out, L.h, `${p}.down.weight`, this.linearBias(`${p}.down`), N, F, C);
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
