/**
 * The linear seam. The transformer's one forward (and backward) reaches its weight matrices only
 * through LinearProducts: the token embedding, every projection (q, k, v, o, gate, up, down) and the
 * head. Three implementations give the three models of the method:
 * - FloatProducts over the parameters: the float model (teachers, dense students);
 * - FloatProducts over a StudentModel: the student in training, whose effective weights
 *   are fakeQuant(W ⊙ mask) (src/model/student.ts);
 * - Int8Products (src/runtime/int8-products.ts): the export's integer kernels.
 * Activation quantization belongs to the seam too (`input`): fake quantization in place for the float
 * products, int8 codes in scratch for the integer ones. Both call the same primitive (src/quant), so
 * what a student trains with is what its export computes.
 */
import type { Backend } from '../kernels/backend.js';
import { linearBackward, linearForward } from '../nn/linear.js';
import { fakeQuantTokens, qRange } from '../quant/quantize.js';
import { QkdError } from '../tensor/errors.js';

/** Supplies float weights by parameter name (e.g. `layers.0.q.weight`). */
export interface WeightSource {
  weight(name: string): Float32Array;
}

export interface LinearProducts {
  /**
   * Declares x (N, I) the input of the linear products that follow (several may share it). With
   * activation quantization this quantizes it per token; float products do so in place, so the
   * buffer then holds what the products (and the backward pass) see.
   */
  input(x: Float32Array, N: number, I: number): void;
  /** out (N, O) = x · W[name]ᵀ (+ bias), x declared by input() first. */
  linear(out: Float32Array, x: Float32Array, name: string, bias: Float32Array | null, N: number, I: number, O: number): void;
  /** out (N, C) = embedding rows of ids (+ wpe rows of pos, learned positions). */
  embed(out: Float32Array, ids: Int32Array, N: number, C: number, wpe?: Float32Array, pos?: Int32Array): void;
  /**
   * Backward of linear(): dW (O, I) += dOutᵀ · x, dBias += colsum(dOut), dInp = dOut · W (added when
   * accumulate). Only seams over float weights train; the integer seam throws.
   */
  linearBackward(dInp: Float32Array | null, dW: Float32Array, dBias: Float32Array | null, dOut: Float32Array,
    x: Float32Array, name: string, N: number, I: number, O: number, accumulate?: boolean): void;
}

/** Float (or fake-quantized) weights from a WeightSource, activations fake-quantized at actBits (0 = off). */
export class FloatProducts implements LinearProducts {
  /**
   * `observe` sees every product's input (as quantized) before the product: the student's
   * activation statistics for pruning (model/student.ts).
   */
  constructor(readonly backend: Backend, readonly weights: WeightSource, readonly actBits = 0,
    private readonly observe?: (name: string, x: Float32Array, N: number, I: number) => void) {
    if (actBits !== 0) qRange(actBits);
  }

  input(x: Float32Array, N: number, I: number): void {
    // the quantized buffer is only read again as a product input, so the backward pass sees the
    // quantized values; its gradient is the straight-through identity
    if (this.actBits > 0) fakeQuantTokens(x, x, N, I, this.actBits);
  }

  linear(out: Float32Array, x: Float32Array, name: string, bias: Float32Array | null, N: number, I: number, O: number): void {
    this.observe?.(name, x, N, I);
    linearForward(this.backend, out, x, this.weights.weight(name), bias, N, I, O);
  }

  embed(out: Float32Array, ids: Int32Array, N: number, C: number, wpe?: Float32Array, pos?: Int32Array): void {
    this.backend.embeddingForward(out, ids, this.weights.weight('embed.weight'), N, C, wpe, pos);
  }

  linearBackward(dInp: Float32Array | null, dW: Float32Array, dBias: Float32Array | null, dOut: Float32Array,
    x: Float32Array, name: string, N: number, I: number, O: number, accumulate = false): void {
    linearBackward(this.backend, dInp, dW, dBias, dOut, x, this.weights.weight(name), N, I, O, accumulate);
  }
}

/** For seams that only run forward. */
export function inferenceOnly(what: string): never {
  throw new QkdError('E_INTERNAL', `${what} is inference only: it has no backward pass`);
}
