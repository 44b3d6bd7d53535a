/**
 * Int8Transformer: a "qkd-int8" export loaded into the one Transformer forward, with the integer
 * implementation of its linear seam (runtime/int8-products.ts: int8 weights x int8 per-token
 * activations with int32 accumulation, or x float activations for students trained without activation
 * quantization; dense / block / CSR per matrix) and the float backend's kernels for norms, RoPE,
 * attention and softmax. Single-token decode steps run on the kernels' fused decoder when they have
 * one. Browser-safe: bring the files' bytes (fetch them) and call fromFiles; Node code can use
 * io/export.ts loadExport.
 *
 * Computes exactly what the distilled student's fake-quantized float forward computes, up to float
 * rounding inside the products: the export holds the integers and scales whose products are the
 * student's weights bit for bit, and activations are quantized by the same primitive (src/quant).
 */
import type { Backend } from '../kernels/backend.js';
import { int8KernelsFor, type Int8DecodeLinear, type Int8DecodeModel, type Int8Decoder, type Int8Kernels } from '../kernels/int8.js';
import { chooseFormat, denseToBlock, denseToCsr, FORMAT_RULE, sparsityStats, toDenseValues, type Int8Matrix } from '../sparse/storage.js';
import { TsInt8Kernels } from '../kernels/ts/int8.js';
import type { KVCache } from '../nn/kv-cache.js';
import { Transformer } from '../model/transformer.js';
import { parseExport, type ExportFiles, type LoadedExport } from '../io/export-read.js';
import type { CausalLM } from './generate.js';
import { Int8Products } from './int8-products.js';

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

export class Int8Transformer extends Transformer implements CausalLM {
  readonly kernels: Int8Kernels;
  readonly actBits: number;
  readonly matrices: Map<string, Int8Matrix>;
  private readonly floats: Map<string, Float32Array>;
  private readonly fused: boolean;
  /** The fused decoder: undefined until the first decode step asks for it, null when there is none. */
  private dec: Int8Decoder | null | undefined;

  constructor(backend: Backend, loaded: LoadedExport, opts: Int8ModelOptions = {}) {
    super(backend, loaded.config, { storeParam: (n) => !loaded.matrices.has(n) });
    this.kernels = opts.kernels ?? int8KernelsFor(backend, () => new TsInt8Kernels());
    this.actBits = opts.actBits ?? loaded.actBits;
    this.fused = opts.fused ?? true;
    this.matrices = new Map();
    for (const [name, W] of loaded.matrices) this.matrices.set(name, this.repack(W));
    // float tensors live in the parameter store (backend memory), where the forward reads norms and biases
    this.params.load(loaded.floats, 'export');
    this.floats = new Map(this.params.entries.map((e) => [e.name, this.params.get(e.name)]));
    this.products = new Int8Products(backend, this.kernels, this.matrices, this.floats, this.actBits);
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

  /** Single-token decode steps (B = 1, T = 1) run on the kernels' fused decoder when there is one. */
  protected override cachedStep(ids: ArrayLike<number>, B: number, T: number, P: number, cache: KVCache, topK: number): Float32Array | null {
    if (T === 1 && B === 1) {
      const dec = topK > 0 && topK < P + 1 ? null : this.decoder();
      if (dec) return dec.step(ids[0], P, cache.k, cache.v, cache.maxT);
    }
    this.dec?.invalidate(P); // the composed pass writes positions P.. of the cache itself
    return null;
  }

  private W(name: string): Int8Matrix { return this.matrices.get(`${name}.weight`)!; }

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
    const lin = (n: string): Int8DecodeLinear => ({ W: this.W(n), bias: this.linearBias(n) });
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

  override dispose(): void {
    this.dec?.dispose();
    this.dec = null;
    (this.products as Int8Products).dispose();
    for (const W of this.matrices.values()) {
      this.kernels.free(W.values);
      this.backend.free(W.scale);
      if (W.format !== 'dense') { this.kernels.free(W.rowPtr); this.kernels.free(W.format === 'block' ? W.blockCol : W.col); }
    }
    this.matrices.clear();
    this.floats.clear();
    super.dispose();
  }
}
