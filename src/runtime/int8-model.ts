/**
 * Int8Transformer: runs a "qkd-int8" export with integer kernels for every linear layer and the head
 * (int8 weights x int8 per-token activations with int32 accumulation, or x float activations for
 * students trained without activation quantization), dense / block / CSR per matrix, and the float
 * backend's kernels for norms, RoPE, attention and softmax. Same forward(ids, B, T, {cache}) -> logits
 * contract as the float Transformer (runtime/generate.ts CausalLM). Browser-safe: bring the files'
 * bytes (fetch them) and call fromFiles; Node code can use io/export.ts loadExport.
 *
 * Computes exactly what the distilled student's fake-quantized float forward computes, up to float
 * rounding inside the products: the export holds the integers and scales whose products are the
 * student's weights bit for bit, and activations are quantized by the same primitive (src/quant).
 */
import type { Backend } from '../kernels/backend.js';
import {
  chooseFormat, denseToBlock, denseToCsr, FORMAT_RULE, int8KernelsFor, linearI8, sparsityStats, toDenseValues,
  type Int8DecodeLinear, type Int8DecodeModel, type Int8Decoder, type Int8Kernels, type Int8Matrix,
} from '../kernels/int8.js';
import { TsInt8Kernels } from '../kernels/ts/int8.js';
import { ropeTables } from '../kernels/ts/attention.js';
import { allocKVCache, type KVCache } from '../model/activations.js';
import type { ModelConfig } from '../model/config.js';
import type { ForwardOptions } from '../model/transformer.js';
import { attendWithCache } from '../nn/attention.js';
import { fakeQuantTokens, qRange } from '../quant/quantize.js';
import { QkdError } from '../tensor/errors.js';
import { parseExport, type ExportFiles, type LoadedExport } from '../io/export-read.js';
import type { CausalLM } from './generate.js';

/**
 * Scratch buffers of one forward shape (B, T), att sized for up to attTk keys (a cache's length, so
 * decode steps reuse one scratch); nothing is kept between layers.
 */
interface Scratch {
  B: number; T: number; attTk: number;
  ids: Int32Array; pos: Int32Array;
  x: Float32Array; x2: Float32Array; n: Float32Array; tmp: Float32Array; // (N,C)
  mean: Float32Array; rstd: Float32Array; // (N)
  proj: Float32Array; // (N, max(H,KV)·D)
  q: Float32Array; k: Float32Array; v: Float32Array; heads: Float32Array; y: Float32Array;
  att: Float32Array; // (B,H,T,Tk)
  up: Float32Array; gate: Float32Array | null; h: Float32Array; // (N,F)
  logits: Float32Array; // (N,V)
  xq: Int8Array; xScale: Float32Array; // (N, max(C,H·D,F)), (N)
  f32: Float32Array[];
}

export interface Int8ModelOptions {
  /** Integer kernels (default: those registered for the backend, else the plain-TS reference). */
  kernels?: Int8Kernels;
  /**
   * Overrides the export's activation quantization (bits, 0 = float activations). Anything other than
   * what the student was trained with changes its outputs: an explicit speed / accuracy trade.
   */
  actBits?: number;
  /**
   * Run single-token decode steps (B = 1, T = 1, with a cache) through the kernels' fused decoder when
   * they have one (Int8Kernels.decoder; default true). Its logits are bit-identical to the composed
   * step's; false composes every step from single kernels (tests, profiles).
   */
  fused?: boolean;
}

export class Int8Transformer implements CausalLM {
  readonly config: ModelConfig;
  readonly kernels: Int8Kernels;
  readonly actBits: number;
  readonly matrices: Map<string, Int8Matrix>;
  private readonly floats = new Map<string, Float32Array>();
  private readonly rope: { cos: Float32Array; sin: Float32Array } | null;
  private s: Scratch | null = null;
  private readonly fused: boolean;
  /** The fused decoder: undefined until the first decode step asks for it, null when there is none. */
  private dec: Int8Decoder | null | undefined;

  constructor(readonly backend: Backend, loaded: LoadedExport, opts: Int8ModelOptions = {}) {
    this.config = loaded.config;
    this.kernels = opts.kernels ?? int8KernelsFor(backend, () => new TsInt8Kernels());
    this.actBits = opts.actBits ?? loaded.actBits;
    this.fused = opts.fused ?? true;
    if (this.actBits !== 0) qRange(this.actBits);
    this.matrices = new Map();
    for (const [name, W] of loaded.matrices) this.matrices.set(name, this.repack(W));
    for (const [name, f] of loaded.floats) {
      const buf = backend.alloc(f.length);
      buf.set(f);
      this.floats.set(name, buf);
    }
    const c = this.config;
    if (c.pos === 'rope') {
      const t = ropeTables(c.maxPos, c.headDim, c.ropeTheta), cos = backend.alloc(t.cos.length), sin = backend.alloc(t.sin.length);
      cos.set(t.cos); sin.set(t.sin);
      this.rope = { cos, sin };
    } else this.rope = null;
  }

  /** Parses and validates export files held in memory (browser: fetched bytes), then builds the model. */
  static fromFiles(backend: Backend, files: ExportFiles, opts: Int8ModelOptions = {}): Int8Transformer {
    const kernels = opts.kernels ?? int8KernelsFor(backend, () => new TsInt8Kernels());
    return new Int8Transformer(backend, parseExport(files, kernels), { ...opts, kernels });
  }

  /** The stored format, or the one the kernels' own measured rule prefers. */
  private repack(stored: Int8Matrix): Int8Matrix {
    const scale = this.backend.alloc(stored.O); // float operands live in the backend's memory
    scale.set(stored.scale);
    const W = { ...stored, scale }, rule = this.kernels.formatRule;
    if (!rule || rule === FORMAT_RULE || W.O * W.I === 0) return W;
    const dense = toDenseValues(W), k = W.format === 'block' ? W.k : 16;
    const want = chooseFormat(sparsityStats(dense, W.O, W.I, k), rule);
    if (want === W.format) return W;
    const K = this.kernels;
    if (want === 'block') return denseToBlock(dense, W.scale, W.O, W.I, k, K);
    if (want === 'csr') return denseToCsr(dense, W.scale, W.O, W.I, K);
    const values = K.allocI8(dense.length);
    values.set(dense);
    return { format: 'dense', O: W.O, I: W.I, values, scale: W.scale };
  }

  newCache(B: number, maxT = this.config.maxPos): KVCache {
    if (maxT > this.config.maxPos) {
      throw new QkdError('E_CONFIG', `cache length ${maxT} exceeds the model's ${this.config.maxPos} positions`);
    }
    return allocKVCache(this.backend, this.config, B, maxT);
  }

  private scratch(B: number, T: number, Tk: number): Scratch {
    const old = this.s;
    if (old && old.B === B && old.T === T && old.attTk >= Tk) return old;
    this.freeScratch();
    const c = this.config, be = this.backend, N = B * T, C = c.dim, D = c.headDim, F = c.ffnDim;
    const f32: Float32Array[] = [], f = (n: number) => { const a = be.alloc(n); f32.push(a); return a; };
    const HD = c.nHead * D, KD = c.nKVHead * D;
    this.s = {
      B, T, attTk: Tk, ids: be.allocI32(N), pos: be.allocI32(N),
      x: f(N * C), x2: f(N * C), n: f(N * C), tmp: f(N * C), mean: f(N), rstd: f(N),
      proj: f(N * Math.max(HD, KD)), q: f(N * HD), k: f(N * KD), v: f(N * KD), heads: f(N * HD), y: f(N * HD),
      att: f(B * c.nHead * T * Tk), up: f(N * F), gate: c.gated ? f(N * F) : null, h: f(N * F),
      logits: f(N * c.vocabSize), xq: this.kernels.allocI8(N * Math.max(C, HD, F)), xScale: f(N), f32,
    };
    return this.s;
  }

  private freeScratch(): void {
    const s = this.s;
    if (!s) return;
    for (const a of s.f32) this.backend.free(a);
    this.backend.free(s.ids); this.backend.free(s.pos);
    this.kernels.free(s.xq);
    this.s = null;
  }

  /** Logits (B·T, V) for ids (B·T); with a cache, T new positions per sequence after cache.length. */
  forward(ids: ArrayLike<number>, B: number, T: number, opt: ForwardOptions = {}): Float32Array {
    const c = this.config, be = this.backend, cache = opt.cache;
    const P = cache ? cache.length : 0, Tk = P + T, N = B * T, C = c.dim;
    if (ids.length !== N) throw new QkdError('E_SHAPE', `forward: ${ids.length} ids for B=${B}, T=${T}`);
    if (Tk > c.maxPos) throw new QkdError('E_CONFIG', `sequence of ${Tk} positions exceeds the model's ${c.maxPos}`);
    if (cache && (cache.B !== B || Tk > cache.maxT)) {
      throw new QkdError('E_SHAPE', `forward: cache holds B=${cache.B}, ${cache.maxT} positions; asked B=${B}, ${Tk}`);
    }
    for (let i = 0; i < N; i++) {
      if (!(ids[i] >= 0 && ids[i] < c.vocabSize)) throw new QkdError('E_INPUT', `token id ${ids[i]} is outside the vocabulary of ${c.vocabSize}`);
    }
    if (T === 1 && B === 1 && cache) {
      const topK = opt.topK ?? c.attnTopK, dec = topK > 0 && topK < Tk ? null : this.decoder();
      if (dec) {
        const logits = dec.step(ids[0], P, cache.k, cache.v, cache.maxT);
        cache.length = Tk;
        return logits;
      }
    }
    if (cache) this.dec?.invalidate(P); // this step writes positions P.. of the cache itself
    const s = this.scratch(B, T, cache ? cache.maxT : Tk);
    for (let i = 0; i < N; i++) {
      s.ids[i] = ids[i];
      s.pos[i] = P + (i % T);
    }
    this.embed(s, N);
    for (let l = 0; l < c.nLayer; l++) this.layer(l, s, P, opt);
    this.norm('final_norm', s.n, s.x, s, N);
    const head = c.tieEmbeddings ? 'embed.weight' : 'lm_head.weight', W = this.matrices.get(head);
    if (W) this.linear(s.logits, W, null, s.n, N, s);
    else {
      if (this.actBits > 0) fakeQuantTokens(s.n, s.n, N, C, this.actBits);
      be.matmul(s.logits, s.n, this.floats.get(head)!, N, c.vocabSize, C, false, true);
    }
    if (cache) cache.length = Tk;
    return s.logits;
  }

  private embed(s: Scratch, N: number): void {
    const c = this.config, be = this.backend, E = this.matrices.get('embed.weight');
    const wpe = c.pos === 'learned' ? this.floats.get('pos_embed.weight')! : undefined;
    if (!E) { be.embeddingForward(s.x, s.ids, this.floats.get('embed.weight')!, N, c.dim, wpe, s.pos); return; }
    if (E.format !== 'dense') throw new QkdError('E_INTERNAL', 'int8 runtime: the embedding must be stored dense');
    this.kernels.embedI8(s.x, s.ids, E.values, E.scale, N, c.dim);
    if (wpe) {
      be.embeddingForward(s.tmp, s.pos, wpe, N, c.dim);
      be.add(s.x, s.x, s.tmp, N * c.dim);
    }
  }

  private norm(name: string, out: Float32Array, inp: Float32Array, s: Scratch, N: number): void {
    const c = this.config, w = this.floats.get(`${name}.weight`)!;
    if (c.norm === 'layernorm') this.backend.layerNormForward(out, s.mean, s.rstd, inp, w, this.floats.get(`${name}.bias`)!, N, c.dim, c.normEps);
    else this.backend.rmsNormForward(out, s.rstd, inp, w, N, c.dim, c.normEps);
  }

  /** Quantizes x (N, I) per token into the scratch (once; several linears may read it). */
  private quantize(x: Float32Array, N: number, I: number, s: Scratch): void {
    if (this.actBits > 0) this.kernels.quantizeRowsI8(s.xq, s.xScale, x, N, I, this.actBits);
  }

  /** y = x · Wᵀ (+ bias); x must have been passed to quantize() first when activations are quantized. */
  private linear(y: Float32Array, W: Int8Matrix, bias: Float32Array | null, x: Float32Array, N: number, s: Scratch,
    quantized = false): void {
    if (this.actBits > 0) {
      if (!quantized) this.quantize(x, N, W.I, s);
      linearI8(this.kernels, y, W, N, bias, { xq: s.xq, xScale: s.xScale });
    } else linearI8(this.kernels, y, W, N, bias, { x });
  }

  private W(name: string): Int8Matrix { return this.matrices.get(`${name}.weight`)!; }
  private bias(name: string): Float32Array | null { return this.config.bias ? this.floats.get(`${name}.bias`)! : null; }

  private layer(l: number, s: Scratch, P: number, opt: ForwardOptions): void {
    const c = this.config, be = this.backend, p = `layers.${l}`;
    const { B, T } = s, N = B * T, C = c.dim, D = c.headDim, H = c.nHead, KV = c.nKVHead, F = c.ffnDim;
    this.norm(`${p}.attn_norm`, s.n, s.x, s, N);
    this.quantize(s.n, N, C, s);
    // (B,T,heads,D) -> (B,heads,T,D); with T = 1 both layouts are the same and the projection lands in place
    const proj = (dst: Float32Array, name: string, heads: number) => {
      this.linear(T === 1 ? dst : s.proj, this.W(`${p}.${name}`), this.bias(`${p}.${name}`), s.n, N, s, true);
      if (T !== 1) be.permute0213(dst, s.proj, B, T, heads, D);
    };
    proj(s.q, 'q', H);
    proj(s.k, 'k', KV);
    proj(s.v, 'v', KV);
    if (this.rope) {
      be.rope(s.q, B, H, T, D, P, this.rope.cos, this.rope.sin);
      be.rope(s.k, B, KV, T, D, P, this.rope.cos, this.rope.sin);
    }
    attendWithCache(be, s.heads, s.att, s.q, s.k, s.v, opt.cache, l, { B, H, KV, T, D, P, topK: opt.topK ?? c.attnTopK });
    if (T !== 1) be.permute0213(s.y, s.heads, B, H, T, D);
    this.linear(s.x2, this.W(`${p}.o`), this.bias(`${p}.o`), T === 1 ? s.heads : s.y, N, s);
    be.add(s.x2, s.x2, s.x, N * C);
    this.norm(`${p}.mlp_norm`, s.n, s.x2, s, N);
    this.quantize(s.n, N, C, s);
    this.linear(s.up, this.W(`${p}.up`), this.bias(`${p}.up`), s.n, N, s, true);
    if (s.gate) {
      this.linear(s.gate, this.W(`${p}.gate`), this.bias(`${p}.gate`), s.n, N, s, true);
      be.gluForward(c.act, s.h, s.gate, s.up, N * F);
    } else be.activationForward(c.act, s.h, s.up, N * F);
    this.linear(s.x, this.W(`${p}.down`), this.bias(`${p}.down`), s.h, N, s);
    be.add(s.x, s.x, s.x2, N * C);
  }

  /** The kernels' fused decoder for this model (built once), or null. */
  private decoder(): Int8Decoder | null {
    if (this.dec !== undefined) return this.dec;
    const model = this.fused && this.kernels.decoder ? this.decodeModel() : null;
    this.dec = model ? this.kernels.decoder!(this.backend, model) : null;
    return this.dec;
  }

  /** The model as Int8Kernels.decoder sees it; null when its head is not an int8 matrix. */
  private decodeModel(): Int8DecodeModel | null {
    const c = this.config, head = this.matrices.get(c.tieEmbeddings ? 'embed.weight' : 'lm_head.weight');
    const E = this.matrices.get('embed.weight'), fl = (n: string) => this.floats.get(n) ?? null;
    if (!head || (E && E.format !== 'dense')) return null;
    const lin = (n: string): Int8DecodeLinear => ({ W: this.W(n), bias: this.bias(n) ?? null });
    const norm = (n: string) => ({ w: fl(`${n}.weight`)!, b: c.norm === 'layernorm' ? fl(`${n}.bias`) : null });
    const layers = Array.from({ length: c.nLayer }, (_, l) => {
      const p = `layers.${l}`;
      return {
        attnNorm: norm(`${p}.attn_norm`), q: lin(`${p}.q`), k: lin(`${p}.k`), v: lin(`${p}.v`), o: lin(`${p}.o`),
        mlpNorm: norm(`${p}.mlp_norm`), up: lin(`${p}.up`), gate: c.gated ? lin(`${p}.gate`) : null, down: lin(`${p}.down`),
      };
    });
    return {
      C: c.dim, H: c.nHead, KV: c.nKVHead, D: c.headDim, F: c.ffnDim, V: c.vocabSize, norm: c.norm, normEps: c.normEps,
      act: c.act, gated: c.gated, actBits: this.actBits, embed: E ? { int8: E } : { float: fl('embed.weight')! },
      wpe: c.pos === 'learned' ? fl('pos_embed.weight') : null, rope: this.rope, maxPos: c.maxPos, layers,
      finalNorm: norm('final_norm'), head,
    };
  }

  dispose(): void {
    this.dec?.dispose();
    this.dec = null;
    this.freeScratch();
    for (const f of this.floats.values()) this.backend.free(f);
    this.floats.clear();
    if (this.rope) { this.backend.free(this.rope.cos); this.backend.free(this.rope.sin); }
    for (const W of this.matrices.values()) {
      this.kernels.free(W.values);
      this.backend.free(W.scale);
      if (W.format !== 'dense') { this.kernels.free(W.rowPtr); this.kernels.free(W.format === 'block' ? W.blockCol : W.col); }
    }
    this.matrices.clear();
  }
}
