/**
 * Quantization-aware training state of a set of matrices: each one's per-row scales (max-abs,
 * recomputed from the masked weights every refresh, or learned LSQ scales with their gradients), the
 * fake-quantized forward weight, and the backward rule (straight-through for max-abs scales; LSQ's
 * clipped straight-through plus the step-size gradient for learned ones). Browser-safe.
 */
import { lsqBackward, lsqInitRowScales } from './lsq.js';
import { fakeQuantRows, rowScalesMaxAbs } from './quantize.js';

export interface QatMatrix { name: string; rows: number; cols: number; bits: number }

interface Entry extends QatMatrix {
  /** (rows) the scales in use: max-abs ones, or a view into the learned store. */
  scales: Float32Array;
  /** (rows) the learned scales' gradient (LSQ only). */
  scaleGrad: Float32Array | null;
}

/** Learned scales as one flat parameter vector (the shape AdamW takes). */
export interface ScaleStore { data: Float32Array; grad: Float32Array; decayCount: number; size: number }

export class FakeQuantizer {
  private readonly entries = new Map<string, Entry>();
  /** The learned (LSQ) scales of every matrix, or null for max-abs scales. */
  readonly store: ScaleStore | null;
  private scratch = new Float32Array(0);

  /**
   * `alloc` gives zero-filled float buffers (the backend's memory); `initial` gives each matrix's
   * starting weights for the LSQ initialisation.
   */
  constructor(matrices: QatMatrix[], readonly scheme: 'maxabs' | 'lsq', alloc: (n: number) => Float32Array,
    initial: (name: string) => Float32Array) {
    const lsq = scheme === 'lsq';
    const total = lsq ? matrices.reduce((s, m) => s + m.rows, 0) : 0;
    const data = total ? alloc(total) : null, grad = total ? alloc(total) : null;
    let off = 0;
    for (const m of matrices) {
      if (data && grad) {
        const e = { ...m, scales: data.subarray(off, off + m.rows), scaleGrad: grad.subarray(off, off + m.rows) };
        lsqInitRowScales(e.scales, initial(m.name), m.rows, m.cols, m.bits);
        this.entries.set(m.name, e);
        off += m.rows;
      } else this.entries.set(m.name, { ...m, scales: new Float32Array(m.rows), scaleGrad: null });
    }
    this.store = data && grad ? { data, grad, decayCount: 0, size: total } : null;
  }

  has(name: string): boolean { return this.entries.has(name); }

  /** The scales a matrix is quantized with now. */
  scales(name: string): Float32Array { return this.entries.get(name)!.scales; }

  /** eff = fakeQuant(w) at the matrix's bits (in place allowed); max-abs scales are taken from w first. */
  forward(name: string, eff: Float32Array, w: Float32Array): void {
    const e = this.entries.get(name)!;
    if (this.scheme === 'maxabs') rowScalesMaxAbs(e.scales, w, e.rows, e.cols, e.bits);
    fakeQuantRows(eff, w, e.scales, e.rows, e.cols, e.bits);
  }

  /**
   * Turns g, the gradient w.r.t. the fake-quantized weight, into the gradient w.r.t. w (in place),
   * adding the learned scales' gradient. Max-abs: the identity (straight-through; max-abs never clips).
   */
  backward(name: string, g: Float32Array, w: Float32Array): void {
    if (this.scheme !== 'lsq') return;
    const e = this.entries.get(name)!;
    if (this.scratch.length < g.length) this.scratch = new Float32Array(g.length);
    const dW = this.scratch.subarray(0, g.length);
    dW.fill(0);
    lsqBackward(dW, e.scaleGrad!, g, w, e.scales, e.rows, e.cols, e.bits);
    g.set(dW);
  }

  zeroGrad(): void { this.store?.grad.fill(0); }

  /** Learned scales kept positive after an optimizer step. */
  clampScales(): void {
    const d = this.store?.data;
    if (d) for (let i = 0; i < d.length; i++) if (!(d[i] > 1e-8)) d[i] = 1e-8;
  }

  /** Every matrix's current scales, keyed by matrix name (copies). */
  scaleMap(): Map<string, Float32Array> {
    return new Map([...this.entries.values()].map((e) => [e.name, e.scales.slice()]));
  }
}
