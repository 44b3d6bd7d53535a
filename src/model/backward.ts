/**
 * The transformer's backward pass. Reads the activations of the last forward (no cache) and adds
 * parameter gradients into params.grad; scratch buffers are allocated per (B,T) and reused.
 */
import type { Backend } from '../kernels/backend.js';
import { attentionBackward, type AttnShape } from '../nn/attention.js';
import { normBackward } from '../nn/norm.js';
import { QkdError } from '../tensor/errors.js';
import type { Acts } from './activations.js';
import type { ModelConfig } from './config.js';
import type { ParamStore } from './params.js';
import type { LinearProducts } from './products.js';

/** What the backward pass reads of the model (the Transformer; declared here so the import points one way). */
export interface ForwardState {
  readonly backend: Backend;
  readonly config: ModelConfig;
  readonly params: ParamStore;
  readonly products: LinearProducts;
  readonly acts: Acts | null;
  readonly rope: { cos: Float32Array; sin: Float32Array } | null;
  headName(): string;
  attnShape(T: number, Tk: number, Tmax: number, B: number, topK?: number): AttnShape;
}

interface Scratch {
  N: number;
  dx: Float32Array;      // (N,C) gradient of the residual stream
  dn: Float32Array;      // (N,C) gradient of a norm output
  dF: Float32Array;      // (N,F) gradient of the FFN activation output
  dUp: Float32Array;     // (N,F)
  dGate: Float32Array;   // (N,F)
  dy: Float32Array;      // (N,H·D)
  dHeads: Float32Array;  // (B,H,T,D)
  dq: Float32Array;      // (B,H,T,D)
  dk: Float32Array;      // (B,KV,T,D)
  dv: Float32Array;      // (B,KV,T,D)
  dAtt: Float32Array;    // (B,H,T,T)
  dProj: Float32Array;   // (N,H·D)
  losses: Float32Array;  // (N)
  targets: Int32Array;   // (N)
  dLogits: Float32Array; // (N,V)
  all: (Float32Array | Int32Array)[];
}

export class TransformerGrad {
  private s: Scratch | null = null;
  constructor(private readonly m: ForwardState) {}

  private scratch(a: Acts): Scratch {
    const N = a.B * a.T;
    if (this.s && this.s.N === N) return this.s;
    this.dispose();
    const be = this.m.backend, c = this.m.config, D = c.headDim, all: (Float32Array | Int32Array)[] = [];
    const f = (n: number) => { const b = be.alloc(n); all.push(b); return b; };
    const targets = be.allocI32(N);
    all.push(targets);
    this.s = {
      N, dx: f(N * c.dim), dn: f(N * c.dim), dF: f(N * c.ffnDim), dUp: f(N * c.ffnDim), dGate: f(N * c.ffnDim),
      dy: f(N * c.nHead * D), dHeads: f(N * c.nHead * D), dq: f(N * c.nHead * D), dk: f(N * c.nKVHead * D),
      dv: f(N * c.nKVHead * D), dAtt: f(a.B * c.nHead * a.T * a.T), dProj: f(N * Math.max(c.nHead, c.nKVHead) * D),
      losses: f(N), targets, dLogits: f(N * c.vocabSize), all,
    };
    return this.s;
  }

  private acts(): Acts {
    const a = this.m.acts;
    if (!a) throw new QkdError('E_INTERNAL', 'backward called before forward');
    if (a.Tk !== a.T) throw new QkdError('E_INTERNAL', 'backward needs a forward without a KV cache');
    return a;
  }

  /** The dLogits buffer (N,V) of the current shape, for losses computed outside (distillation). */
  dLogitsBuffer(): Float32Array { return this.scratch(this.acts()).dLogits; }

  /** Mean cross-entropy; with backward, adds the gradient of (scale × mean) into params.grad. */
  crossEntropy(targets: ArrayLike<number>, backward: boolean, scale = 1): number {
    const a = this.acts(), s = this.scratch(a), N = a.B * a.T, V = this.m.config.vocabSize;
    if (targets.length !== N) throw new QkdError('E_SHAPE', `crossEntropy: ${targets.length} targets for ${N} positions`);
    let count = 0;
    for (let i = 0; i < N; i++) { s.targets[i] = targets[i]; if (targets[i] >= 0) count++; }
    if (count === 0) return 0;
    this.m.backend.crossEntropy(s.losses, a.logits, s.targets, N, V, backward ? s.dLogits : null, scale / count);
    let sum = 0;
    for (let i = 0; i < N; i++) sum += s.losses[i];
    if (backward) this.backward(s.dLogits);
    return sum / count;
  }

  /** Backpropagates dLogits (N,V) through the model, adding into params.grad. */
  backward(dLogits: Float32Array): void {
    const m = this.m, c = m.config, be = m.backend, a = this.acts(), s = this.scratch(a), P = m.params;
    const N = a.B * a.T, C = c.dim;
    const head = m.headName();
    // logits = nf · headᵀ
    m.products.linearBackward(s.dn, P.g(head), null, dLogits, a.nf, head, N, C, c.vocabSize);
    s.dx.fill(0);
    this.normBackward('final_norm', s.dx, s.dn, a.xf, a.nfMean, a.nfRstd, N);
    for (let l = c.nLayer - 1; l >= 0; l--) this.layerBackward(l, a, s);
    const dE = P.g('embed.weight');
    if (c.pos === 'learned') be.embeddingBackward(dE, s.dx, a.ids, N, C, P.g('pos_embed.weight'), a.pos);
    else be.embeddingBackward(dE, s.dx, a.ids, N, C);
  }

  /** dInp += norm backward of dOut. */
  private normBackward(name: string, dInp: Float32Array, dOut: Float32Array, inp: Float32Array, mean: Float32Array,
    rstd: Float32Array, N: number): void {
    const c = this.m.config, P = this.m.params;
    normBackward(this.m.backend, c, dInp, P.g(`${name}.weight`), c.norm === 'layernorm' ? P.g(`${name}.bias`) : null,
      dOut, inp, P.get(`${name}.weight`), mean, rstd, N);
  }

  private dBias(name: string): Float32Array | null {
    return this.m.config.bias ? this.m.params.g(`${name}.bias`) : null;
  }

  /** s.dx holds d(layer output); on return it holds d(layer input). */
  private layerBackward(l: number, a: Acts, s: Scratch): void {
    const m = this.m, c = m.config, be: Backend = m.backend, X = m.products, P = m.params, L = a.layers[l];
    const p = `layers.${l}`, { B, T } = a, N = B * T, C = c.dim, D = c.headDim, H = c.nHead, KV = c.nKVHead, F = c.ffnDim;
    // FFN: out = x2 + down(h)
    X.linearBackward(s.dF, P.g(`${p}.down.weight`), this.dBias(`${p}.down`), s.dx, L.h, `${p}.down.weight`, N, F, C);
    if (L.gate) {
      be.gluBackward(c.act, s.dGate, s.dUp, s.dF, L.gate, L.up, N * F);
      X.linearBackward(s.dn, P.g(`${p}.gate.weight`), this.dBias(`${p}.gate`), s.dGate, L.n2, `${p}.gate.weight`, N, C, F);
      X.linearBackward(s.dn, P.g(`${p}.up.weight`), this.dBias(`${p}.up`), s.dUp, L.n2, `${p}.up.weight`, N, C, F, true);
    } else {
      be.activationBackward(c.act, s.dUp, s.dF, L.up, N * F);
      X.linearBackward(s.dn, P.g(`${p}.up.weight`), this.dBias(`${p}.up`), s.dUp, L.n2, `${p}.up.weight`, N, C, F);
    }
    this.normBackward(`${p}.mlp_norm`, s.dx, s.dn, L.x2, L.n2Mean, L.n2Rstd, N);
    // attention: x2 = x + o(y)
    X.linearBackward(s.dy, P.g(`${p}.o.weight`), this.dBias(`${p}.o`), s.dx, L.y, `${p}.o.weight`, N, H * D, C);
    be.permute0213(s.dHeads, s.dy, B, T, H, D);
    attentionBackward(be, s.dq, s.dk, s.dv, s.dAtt, s.dHeads, L.att, L.q, L.k, L.v, m.attnShape(T, T, T, B));
    if (m.rope) {
      be.rope(s.dq, B, H, T, D, 0, m.rope.cos, m.rope.sin, true);
      be.rope(s.dk, B, KV, T, D, 0, m.rope.cos, m.rope.sin, true);
    }
    be.permute0213(s.dProj, s.dq, B, H, T, D);
    X.linearBackward(s.dn, P.g(`${p}.q.weight`), this.dBias(`${p}.q`), s.dProj, L.n1, `${p}.q.weight`, N, C, H * D);
    be.permute0213(s.dProj, s.dk, B, KV, T, D);
    X.linearBackward(s.dn, P.g(`${p}.k.weight`), this.dBias(`${p}.k`), s.dProj, L.n1, `${p}.k.weight`, N, C, KV * D, true);
    be.permute0213(s.dProj, s.dv, B, KV, T, D);
    X.linearBackward(s.dn, P.g(`${p}.v.weight`), this.dBias(`${p}.v`), s.dProj, L.n1, `${p}.v.weight`, N, C, KV * D, true);
    this.normBackward(`${p}.attn_norm`, s.dx, s.dn, L.x, L.n1Mean, L.n1Rstd, N);
  }

  dispose(): void {
    if (!this.s) return;
    for (const b of this.s.all) this.m.backend.free(b);
    this.s = null;
  }
}
