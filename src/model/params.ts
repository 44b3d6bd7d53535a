/**
 * Parameter store: all parameters of a model in one contiguous buffer (decayed tensors first, see
 * paramLayout), with named views, and a gradient buffer of the same layout. One buffer lets AdamW,
 * gradient clipping and checkpointing run as single passes.
 */
import type { Backend } from '../kernels/backend.js';
import { QkdError } from '../tensor/errors.js';
import { paramLayout, type ModelConfig, type ParamSpec } from './config.js';

export interface ParamEntry extends ParamSpec {
  offset: number;
}

export class ParamStore {
  readonly entries: ParamEntry[];
  readonly byName = new Map<string, ParamEntry>();
  /** All parameters. */
  readonly data: Float32Array;
  /** Number of leading elements that take weight decay. */
  readonly decayCount: number;
  readonly size: number;
  private gradBuf: Float32Array | null = null;

  /** `only`: which parameters to hold (default all); the others do not exist in this store. */
  constructor(readonly backend: Backend, readonly config: ModelConfig, only?: (name: string) => boolean) {
    let off = 0;
    this.entries = paramLayout(config).filter((p) => !only || only(p.name)).map((p) => {
      const e = { ...p, offset: off };
      off += p.size;
      return e;
    });
    for (const e of this.entries) this.byName.set(e.name, e);
    this.size = off;
    this.decayCount = this.entries.filter((e) => e.decay).reduce((s, e) => s + e.size, 0);
    this.data = backend.alloc(off);
  }

  has(name: string): boolean { return this.byName.has(name); }

  entry(name: string): ParamEntry {
    const e = this.byName.get(name);
    if (!e) throw new QkdError('E_MISSING', `parameter ${name} does not exist in this model`);
    return e;
  }

  /** View of a parameter's values. */
  get(name: string): Float32Array {
    const e = this.entry(name);
    return this.data.subarray(e.offset, e.offset + e.size);
  }

  /** The gradient buffer (allocated on first use, zero-filled). */
  get grad(): Float32Array {
    if (!this.gradBuf) this.gradBuf = this.backend.alloc(this.size);
    return this.gradBuf;
  }

  /** View of a parameter's gradient. */
  g(name: string): Float32Array {
    const e = this.entry(name);
    return this.grad.subarray(e.offset, e.offset + e.size);
  }

  zeroGrad(): void { this.grad.fill(0); }

  /** Copies tensors in (internal names and shapes); every parameter must be present with its size. */
  load(tensors: Map<string, Float32Array>, where = 'weights'): void {
    for (const e of this.entries) {
      const t = tensors.get(e.name);
      if (!t) throw new QkdError('E_MISSING', `${where}: tensor ${e.name} is missing`);
      if (t.length !== e.size) {
        throw new QkdError('E_SHAPE', `${where}: tensor ${e.name} has ${t.length} values, expected ${e.size} (shape [${e.shape}])`);
      }
      this.data.set(t, e.offset);
    }
  }

  /** Copies of all parameters keyed by internal name. */
  toMap(): Map<string, Float32Array> {
    return new Map(this.entries.map((e) => [e.name, this.get(e.name).slice()]));
  }

  dispose(): void {
    this.backend.free(this.data);
    if (this.gradBuf) this.backend.free(this.gradBuf);
    this.gradBuf = null;
  }
}
