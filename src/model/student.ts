/**
 * StudentModel: a Transformer plus its compression (model/compression.ts) in training. It is the
 * WeightSource of the fake-quant implementation of the linear seam: effective weights
 * fakeQuant(W ⊙ mask) (quant/qat.ts, sparse/pruning.ts), activations quantized per token at actBits,
 * so the student computes in training what its int8 export computes at run time. It also holds the
 * backward rules (pruned weights get no gradient; straight-through or LSQ) and the state a
 * checkpoint must keep (masks, learned scales).
 */
import { FakeQuantizer, type ScaleStore } from '../quant/qat.js';
import { Pruner } from '../sparse/pruning.js';
import { QkdError } from '../tensor/errors.js';
import { compressionSpec, granularityOf, isPruned, scaleKey, weightBits, type CompressionSpec } from './compression.js';
import type { ModelConfig } from './config.js';
import { FloatProducts, type WeightSource } from './products.js';
import type { Transformer } from './transformer.js';

export class StudentModel implements WeightSource {
  readonly quant: FakeQuantizer | null;
  readonly pruning: Pruner | null;
  /** Effective weights of the compressed tensors (backend memory). */
  private readonly eff = new Map<string, Float32Array>();
  /**
   * Pruning criterion `activation`: per pruned matrix, the sum over recorded tokens of each input
   * column's square (float32; in checkpoints), and the token count (inputCount[0]).
   */
  private readonly inputSq = new Map<string, Float32Array>();
  private readonly inputCount = new Float32Array(1);
  /** The pruned matrix whose inputs count the tokens (every pruned matrix of a forward sees the same). */
  private readonly countAt: string | undefined;
  /** Whether forward passes add to the input statistics (the training loop turns it on while pruning). */
  recording = false;

  readonly spec: CompressionSpec;

  constructor(readonly model: Transformer, compression: CompressionSpec, criterion: 'magnitude' | 'activation' = 'magnitude') {
    const spec = this.spec = compressionSpec(compression.quant, compression.sparsity);
    const be = model.backend, P = model.params, compressed = P.entries.filter((e) => isPruned(spec, e.name) || weightBits(spec, e.name) > 0);
    const mat = (name: string) => { const [rows, cols] = P.entry(name).shape; return { name, rows, cols }; };
    const pruned = compressed.filter((e) => isPruned(spec, e.name)).map((e) => mat(e.name));
    this.pruning = spec.sparsity && pruned.length
      ? new Pruner(pruned, { granularity: granularityOf(spec.sparsity), scope: spec.sparsity.scope }) : null;
    const quantized = compressed.filter((e) => weightBits(spec, e.name) > 0).map((e) => ({ ...mat(e.name), bits: weightBits(spec, e.name) }));
    this.quant = spec.quant && quantized.length
      ? new FakeQuantizer(quantized, spec.quant.scheme, (n) => be.alloc(n), (n) => P.get(n)) : null;
    for (const e of compressed) this.eff.set(e.name, be.alloc(e.size));
    if (this.pruning && criterion === 'activation') for (const m of pruned) this.inputSq.set(m.name, new Float32Array(m.cols));
    this.countAt = this.inputSq.keys().next().value;
    model.products = new FloatProducts(be, this, spec.quant?.actBits ?? 0,
      this.inputSq.size ? (name, x, N, I) => this.observe(name, x, N, I) : undefined);
  }

  private observe(name: string, x: Float32Array, N: number, I: number): void {
    const sq = this.inputSq.get(name);
    if (!this.recording || !sq) return;
    for (let n = 0; n < N; n++) {
      const row = n * I;
      for (let j = 0; j < I; j++) sq[j] += x[row + j] * x[row + j];
    }
    if (name === this.countAt) this.inputCount[0] += N;
  }

  /** |w_ij| · RMS of input column j since the last mask update (the activation criterion's score). */
  private activationScore(name: string): Float32Array {
    const w = this.model.params.get(name), sq = this.inputSq.get(name)!, I = sq.length, n = Math.max(1, this.inputCount[0]);
    const rms = Float32Array.from(sq, (v) => Math.sqrt(v / n)), out = new Float32Array(w.length);
    for (let i = 0; i < w.length; i++) out[i] = Math.abs(w[i]) * rms[i % I];
    return out;
  }

  weight(name: string): Float32Array {
    return this.eff.get(name) ?? this.model.params.get(name);
  }

  /** The learned scales (LSQ), which the training loop optimizes beside the weights. */
  get scaleStore(): ScaleStore | null { return this.quant?.store ?? null; }

  /** Recomputes every effective weight from the current parameters (once per step, before forward). */
  refresh(): void {
    for (const [name, eff] of this.eff) {
      eff.set(this.model.params.get(name));
      this.pruning?.apply(name, eff);
      if (this.quant?.has(name)) this.quant.forward(name, eff, eff);
    }
  }

  /** Turns gradients w.r.t. effective weights into gradients of the parameters (and LSQ scales). */
  afterBackward(): void {
    for (const name of this.eff.keys()) {
      const g = this.model.params.g(name);
      if (this.quant?.has(name) && this.quant.scheme === 'lsq') {
        // LSQ's input is the masked weight
        const wm = this.model.params.get(name).slice();
        this.pruning?.apply(name, wm);
        this.quant.backward(name, g, wm);
      }
      this.pruning?.apply(name, g);
    }
  }

  /** After the optimizer: pruned weights back to exactly zero, learned scales kept positive. */
  afterStep(): void {
    if (this.pruning) for (const name of this.pruning.masks.keys()) this.pruning.apply(name, this.model.params.get(name));
    this.quant?.clampScales();
  }

  zeroScaleGrad(): void { this.quant?.zeroGrad(); }

  /**
   * Masks at sparsity s (by |w|, or by |w| times input RMS with the activation criterion once inputs
   * were recorded), applied to the weights; the input statistics start over.
   */
  updateMasks(s: number): void {
    const score = this.inputSq.size && this.inputCount[0] > 0 ? (n: string) => this.activationScore(n) : undefined;
    this.pruning?.update(s, (n) => this.model.params.get(n), score);
    for (const sq of this.inputSq.values()) sq.fill(0);
    this.inputCount[0] = 0;
  }

  sparsities(): Record<string, number> { return this.pruning?.sparsities() ?? {}; }

  /** The parameters as the model computes with them (effective weights for compressed tensors). */
  effectiveMap(): Map<string, Float32Array> {
    this.refresh();
    const m = this.model.params.toMap();
    for (const [name, eff] of this.eff) m.set(name, eff.slice());
    return m;
  }

  /** Per-matrix row scales for the saved model, keyed scaleKey(name). */
  scaleMap(): Map<string, Float32Array> {
    return new Map([...(this.quant?.scaleMap() ?? [])].map(([n, s]) => [scaleKey(n), s]));
  }

  /** The model config that records this compression (config.json's quant / sparsity). */
  savedConfig(attnTopK: number): ModelConfig {
    return { ...this.model.config, attnTopK, quant: this.spec.quant, sparsity: this.spec.sparsity };
  }

  /** Flat buffers a checkpoint must hold (masks; learned scales). */
  stateBuffers(): Record<string, Float32Array> {
    const out: Record<string, Float32Array> = {};
    if (this.pruning) for (const [n, m] of this.pruning.masks) out[`mask:${n}`] = m;
    if (this.scaleStore) out['lsq:scales'] = this.scaleStore.data;
    for (const [n, sq] of this.inputSq) out[`inputsq:${n}`] = sq;
    if (this.inputSq.size) out['inputsq:count'] = this.inputCount;
    return out;
  }

  loadState(buffers: Record<string, Float32Array>): void {
    for (const [k, v] of Object.entries(this.stateBuffers())) {
      const src = buffers[k];
      if (!src) throw new QkdError('E_MISSING', `checkpoint: buffer ${k} is missing`);
      v.set(src);
    }
  }

  dispose(): void {
    const be = this.model.backend;
    for (const e of this.eff.values()) be.free(e);
    this.eff.clear();
    if (this.scaleStore) { be.free(this.scaleStore.data); be.free(this.scaleStore.grad); }
  }
}
