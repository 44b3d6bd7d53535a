/**
 * Quantization-aware training and pruning state of a student: the `WeightSource` the transformer's
 * passes read (effective weights = fakeQuant(W ⊙ mask)), the backward rules (straight-through for
 * max-abs scales, LSQ for learned scales; pruned weights get no gradient), magnitude masks on a
 * schedule, and the extra state a checkpoint must hold (masks, learned scales and their moments).
 *
 * Pruned: every attention and feed-forward matrix (q, k, v, o, gate, up, down). Quantized: those at
 * `bits`, and the embedding / untied head at `embedBits`.
 */
import type { Backend } from '../kernels/backend.js';
import type { ModelConfig } from '../model/config.js';
import type { Transformer } from '../model/transformer.js';
import { FloatProducts, type WeightSource } from '../model/products.js';
import { fakeQuantRows, rowScalesMaxAbs } from '../quant/quantize.js';
import { lsqBackward, lsqInitRowScales } from '../quant/lsq.js';
import { applyMask, globalMagnitudeMasks, measuredSparsity, type Granularity } from '../sparse/mask.js';
import { QkdError } from '../tensor/errors.js';
import { AdamW } from '../train/optim.js';
import type { DistillConfig } from './config.js';

interface Entry {
  name: string;
  rows: number;
  cols: number;
  bits: number;          // 0 = not quantized
  mask: Float32Array | null;
  /** Per-row scales (max-abs recomputed each refresh, or learned: a view into scaleStore.data). */
  scales: Float32Array | null;
  scaleGrad: Float32Array | null;
  /** Effective weight the passes use (backend memory). */
  eff: Float32Array | null;
}

const PRUNED = /^layers\.\d+\.(q|k|v|o|gate|up|down)\.weight$/;
const EMBED = /^(embed|lm_head)\.weight$/;

export class CompressedWeights implements WeightSource {
  readonly entries = new Map<string, Entry>();
  /** Learned (LSQ) scales as one flat parameter vector, with its own AdamW. */
  readonly scaleStore: { backend: Backend; data: Float32Array; grad: Float32Array; decayCount: number; size: number } | null;
  readonly scaleOpt: AdamW | null;
  private scratch: Float32Array;

  constructor(readonly model: Transformer, readonly cfg: Pick<DistillConfig, 'quant' | 'sparsity' | 'weightDecay'>) {
    const be = model.backend, q = cfg.quant, lsq = q?.scheme === 'lsq';
    let scaleCount = 0, maxSize = 0;
    for (const e of model.params.entries) {
      const pruned = !!cfg.sparsity && PRUNED.test(e.name);
      const bits = q ? (PRUNED.test(e.name) ? q.bits : EMBED.test(e.name) ? q.embedBits : 0) : 0;
      if (!pruned && bits === 0) continue;
      const [rows, cols] = e.shape;
      this.entries.set(e.name, {
        name: e.name, rows, cols, bits, mask: pruned ? new Float32Array(e.size).fill(1) : null,
        scales: bits ? new Float32Array(rows) : null, scaleGrad: null, eff: be.alloc(e.size),
      });
      if (bits && lsq) scaleCount += rows;
      maxSize = Math.max(maxSize, e.size);
    }
    this.scratch = new Float32Array(maxSize);
    if (lsq && scaleCount > 0) {
      const data = be.alloc(scaleCount), grad = be.alloc(scaleCount);
      let off = 0;
      for (const en of this.entries.values()) {
        if (!en.bits) continue;
        en.scales = data.subarray(off, off + en.rows);
        en.scaleGrad = grad.subarray(off, off + en.rows);
        lsqInitRowScales(en.scales, model.params.get(en.name), en.rows, en.cols, en.bits);
        off += en.rows;
      }
      this.scaleStore = { backend: be, data, grad, decayCount: 0, size: scaleCount };
      this.scaleOpt = new AdamW(this.scaleStore as never, { lr: 0, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 });
    } else {
      this.scaleStore = null;
      this.scaleOpt = null;
    }
    model.products = new FloatProducts(be, this, q?.actBits ?? 0);
  }

  weight(name: string): Float32Array {
    return this.entries.get(name)?.eff ?? this.model.params.get(name);
  }

  /** Recomputes every effective weight from the current parameters (once per step, before forward). */
  refresh(): void {
    const lsq = this.cfg.quant?.scheme === 'lsq';
    for (const e of this.entries.values()) {
      const w = this.model.params.get(e.name), eff = e.eff!;
      eff.set(w);
      if (e.mask) applyMask(eff, e.mask);
      if (e.bits) {
        if (!lsq) rowScalesMaxAbs(e.scales!, eff, e.rows, e.cols, e.bits);
        fakeQuantRows(eff, eff, e.scales!, e.rows, e.cols, e.bits);
      }
    }
  }

  /** Turns gradients w.r.t. effective weights into gradients of the parameters (and LSQ scales). */
  afterBackward(): void {
    const lsq = this.cfg.quant?.scheme === 'lsq';
    for (const e of this.entries.values()) {
      const g = this.model.params.g(e.name);
      if (e.bits && lsq) {
        // LSQ: clipped straight-through for W, step-size gradient for the scales (input: W ⊙ mask)
        const wm = this.scratch.subarray(0, g.length);
        wm.set(this.model.params.get(e.name));
        if (e.mask) applyMask(wm, e.mask);
        const dW = new Float32Array(g.length);
        lsqBackward(dW, e.scaleGrad!, g, wm, e.scales!, e.rows, e.cols, e.bits);
        g.set(dW);
      }
      if (e.mask) applyMask(g, e.mask);
    }
  }

  /** After the optimizer: pruned weights back to exactly zero, learned scales kept positive. */
  afterStep(): void {
    for (const e of this.entries.values()) if (e.mask) applyMask(this.model.params.get(e.name), e.mask);
    if (this.scaleStore) {
      const d = this.scaleStore.data;
      for (let i = 0; i < d.length; i++) if (!(d[i] > 1e-8)) d[i] = 1e-8;
    }
  }

  zeroScaleGrad(): void { this.scaleStore?.grad.fill(0); }

  /** Magnitude masks at sparsity s (per matrix or one global threshold), applied to the weights. */
  updateMasks(s: number): void {
    const sp = this.cfg.sparsity;
    if (!sp) return;
    const g: Granularity = sp.granularity === 'block' ? { kind: 'block', k: sp.block }
      : sp.granularity === 'nm' ? { kind: 'nm', n: sp.n, m: sp.m } : { kind: 'unstructured' };
    const targets = [...this.entries.values()].filter((e) => e.mask)
      .map((e) => ({ mask: e.mask!, w: this.model.params.get(e.name), rows: e.rows, cols: e.cols, name: e.name }));
    if (sp.granularity === 'nm' && s < 1 - sp.n / sp.m - 1e-9) {
      // N:M has one sparsity; before the schedule reaches it, prune unstructured
      globalMagnitudeMasks(targets, s, { kind: 'unstructured' });
    } else if (sp.scope === 'global' || sp.granularity === 'nm') {
      if (sp.scope === 'global') globalMagnitudeMasks(targets, s, g);
      else for (const t of targets) globalMagnitudeMasks([t], s, g);
    } else for (const t of targets) globalMagnitudeMasks([t], s, g);
    for (const t of targets) applyMask(t.w, t.mask);
  }

  /** Sparsity of each pruned matrix. */
  sparsities(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const e of this.entries.values()) if (e.mask) out[e.name] = measuredSparsity(e.mask);
    return out;
  }

  /** The parameters as the model computes with them (effective weights for compressed tensors). */
  effectiveMap(): Map<string, Float32Array> {
    this.refresh();
    const m = this.model.params.toMap();
    for (const e of this.entries.values()) m.set(e.name, e.eff!.slice());
    return m;
  }

  /** Per-matrix scales (for the export) keyed `<name>_scale`. */
  scaleMap(): Map<string, Float32Array> {
    const m = new Map<string, Float32Array>();
    for (const e of this.entries.values()) if (e.scales) m.set(`${e.name}_scale`, e.scales.slice());
    return m;
  }

  /** Flat buffers a checkpoint must hold (masks; learned scales and their moments). */
  stateBuffers(): Record<string, Float32Array> {
    const out: Record<string, Float32Array> = {};
    for (const e of this.entries.values()) if (e.mask) out[`mask:${e.name}`] = e.mask;
    if (this.scaleStore && this.scaleOpt) {
      out['lsq:scales'] = this.scaleStore.data;
      out['lsq:m'] = this.scaleOpt.m;
      out['lsq:v'] = this.scaleOpt.v;
    }
    return out;
  }

  stateSizes(): Record<string, number> {
    return Object.fromEntries(Object.entries(this.stateBuffers()).map(([k, v]) => [k, v.length]));
  }

  loadState(buffers: Record<string, Float32Array>, scaleStep: number): void {
    for (const [k, v] of Object.entries(this.stateBuffers())) {
      const src = buffers[k];
      if (!src) throw new QkdError('E_MISSING', `checkpoint: buffer ${k} is missing`);
      v.set(src);
    }
    if (this.scaleOpt) this.scaleOpt.step = scaleStep;
  }

  dispose(): void {
    for (const e of this.entries.values()) if (e.eff) this.model.backend.free(e.eff);
    this.scaleOpt?.dispose();
    if (this.scaleStore) { this.model.backend.free(this.scaleStore.data); this.model.backend.free(this.scaleStore.grad); }
  }
}

/** Config fields recording what the weights were trained for (model config.json). */
export function compressedConfig(c: ModelConfig, cfg: Pick<DistillConfig, 'quant' | 'sparsity' | 'attnTopK'>): ModelConfig {
  const q = cfg.quant, s = cfg.sparsity;
  return {
    ...c,
    attnTopK: cfg.attnTopK,
    quant: q ? { bits: q.bits, embedBits: q.embedBits, actBits: q.actBits, scheme: q.scheme } : null,
    sparsity: s ? { target: s.target, granularity: s.granularity, block: s.block, n: s.n, m: s.m, scope: s.scope } : null,
  };
}
