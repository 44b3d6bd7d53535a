/**
 * Checks and measures a compressed student: sparsity of every pruned matrix, whether every quantized
 * weight lies exactly on its per-row grid (value = integer · scale, integer in range), and the size
 * in bits of the quantized parameters.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { readSafetensors } from '../io/safetensors.js';
import type { ModelConfig } from '../model/config.js';
import { qRange, rowScalesMaxAbs } from '../quant/quantize.js';

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

const PRUNED = /^layers\.\d+\.(q|k|v|o|gate|up|down)\.weight$/;
const EMBED = /^(embed|lm_head)\.weight$/;

function offGridCount(w: Float32Array, scales: Float32Array, rows: number, cols: number, bits: number): number {
  const { qmin, qmax } = qRange(bits);
  let bad = 0;
  for (let r = 0; r < rows; r++) {
    const s = scales[r];
    for (let c = 0; c < cols; c++) {
      const v = w[r * cols + c], k = Math.round(v / s);
      if (!(k >= qmin && k <= qmax && Math.fround(k * s) === v)) bad++;
    }
  }
  return bad;
}

/** Report for a model's parameters (internal names) under its config's quant/sparsity settings. */
export function compressionReport(config: ModelConfig, tensors: Map<string, Float32Array>, shapes: Map<string, number[]>,
  scales?: Map<string, Float32Array>): CompressionReport {
  const q = config.quant, matrices: MatrixReport[] = [];
  let params = 0, bits = 0, zeros = 0, pruned = 0;
  for (const [name, w] of tensors) {
    params += w.length;
    const [rows, cols] = shapes.get(name) ?? [1, w.length];
    const b = q ? (PRUNED.test(name) ? q.bits : EMBED.test(name) ? q.embedBits : 0) : 0;
    bits += w.length * (b || 32);
    if (!PRUNED.test(name) && !b) continue;
    let z = 0;
    for (let i = 0; i < w.length; i++) if (w[i] === 0) z++;
    let off = 0;
    if (b) {
      const s = scales?.get(`${name}_scale`) ?? (() => { const t = new Float32Array(rows); rowScalesMaxAbs(t, w, rows, cols, b); return t; })();
      off = offGridCount(w, s, rows, cols, b);
    }
    if (PRUNED.test(name)) { zeros += z; pruned += w.length; }
    matrices.push({ name, rows, cols, bits: b, sparsity: z / w.length, offGrid: off });
  }
  const sp = matrices.filter((m) => PRUNED.test(m.name)).map((m) => m.sparsity);
  return {
    matrices, overallSparsity: pruned ? zeros / pruned : 0, minSparsity: sp.length ? Math.min(...sp) : 0,
    maxSparsity: sp.length ? Math.max(...sp) : 0, offGrid: matrices.reduce((s, m) => s + m.offGrid, 0), params, bits,
  };
}

/** The learned scales saved beside a distilled model (quant_scales.safetensors), if any. */
export function readSavedScales(dir: string): Map<string, Float32Array> | undefined {
  const p = join(dir, 'quant_scales.safetensors');
  if (!existsSync(p)) return undefined;
  const f = readSafetensors(p);
  return new Map([...f.tensors.keys()].map((k) => [k, f.getF32(k)]));
}
