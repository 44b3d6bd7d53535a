/**
 * Checks and measures a compressed student: sparsity of every pruned matrix, whether every quantized
 * weight lies exactly on its per-row grid (value = integer · scale, integer in range), and the size
 * in bits of the quantized parameters.
 */
import { isLinear, scaleKey, specOf, weightBits } from '../model/compression.js';
import type { ModelConfig } from '../model/config.js';
import { offGrid, rowScalesMaxAbs } from '../quant/quantize.js';

export interface MatrixReport {
  name: string;
  rows: number;
  cols: number;
  bits: number;
  sparsity: number;
  /** Weights not equal to k·scale with k an integer in range (0 when on the grid). */
  offGrid: number;
}

export interface CompressionReport {
  matrices: MatrixReport[];
  /** Sparsity over all pruned matrices together. */
  overallSparsity: number;
  minSparsity: number;
  maxSparsity: number;
  offGrid: number;
  /** Parameters and bits if every quantized weight used `bits` bits and the rest 32. */
  params: number;
  bits: number;
}

/** Report for a model's parameters (internal names) under its config's quant/sparsity settings. */
export function compressionReport(config: ModelConfig, tensors: Map<string, Float32Array>, shapes: Map<string, number[]>,
  scales?: Map<string, Float32Array>): CompressionReport {
  const spec = specOf(config), matrices: MatrixReport[] = [];
  let params = 0, bits = 0, zeros = 0, pruned = 0;
  for (const [name, w] of tensors) {
    params += w.length;
    const [rows, cols] = shapes.get(name) ?? [1, w.length];
    const b = weightBits(spec, name);
    bits += w.length * (b || 32);
    if (!isLinear(name) && !b) continue;
    let z = 0;
    for (let i = 0; i < w.length; i++) if (w[i] === 0) z++;
    let off = 0;
    if (b) {
      const s = scales?.get(scaleKey(name)) ?? (() => { const t = new Float32Array(rows); rowScalesMaxAbs(t, w, rows, cols, b); return t; })();
      off = offGrid(w, s, rows, cols, b).count;
    }
    if (isLinear(name)) { zeros += z; pruned += w.length; }
    matrices.push({ name, rows, cols, bits: b, sparsity: z / w.length, offGrid: off });
  }
  const sp = matrices.filter((m) => isLinear(m.name)).map((m) => m.sparsity);
  return {
    matrices, overallSparsity: pruned ? zeros / pruned : 0, minSparsity: sp.length ? Math.min(...sp) : 0,
    maxSparsity: sp.length ? Math.max(...sp) : 0, offGrid: matrices.reduce((s, m) => s + m.offGrid, 0), params, bits,
  };
}
