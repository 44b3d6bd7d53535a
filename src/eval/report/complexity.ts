/**
 * Complexity (docs/report.md "complexity"): model size in bits and compute per token, each by the
 * seed's formula next to what is counted from the files.
 *
 * Size. The seed: StudentModelSize = vocab·dim·q_b + layers·dim²·q_b, TeacherModelSize = vocab·dim +
 * layers·dim² (parameters; at 32 bits each for an fp32 teacher). Counted exactly: every parameter times
 * its bits from the compression spec (model/compression.ts weightBits; 0 there = float32 = 32 bits),
 * grouped by the formula's O-terms (the embedding / head term, the layers term) plus what the formula
 * leaves out (norms, biases, positions, the per-row scales of quantized matrices).
 *
 * Compute per token. The seed: TeacherModelCompute = seq_len·layers·heads·dim², StudentModelCompute =
 * seq_len·layers·heads·dim·k·q_b, per token (seq_len = 1), with k = the mean nonzero weights per row of
 * the pruned matrices. Counted: multiply-adds of every weight matrix (dense = rows·cols; nonzero =
 * its nonzero weights, read from the export's integers or the teacher's floats; stored = what the
 * export's sparse format computes, zeros inside kept blocks included) plus attention at context c:
 * layers·nHead·headDim·(c + c') with c' = min(c, attnTopK) when top-k attention is on, else c.
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { LoadedExport } from '../../io/export.js';
import { EMBED_RE, isLinear, weightBits, type CompressionSpec } from '../../model/compression.js';
import { paramLayout, type ModelConfig } from '../../model/config.js';
import type { Int8Matrix } from '../../sparse/storage.js';

export interface SizeTerm { term: string; tensors: number; params: number; bitsPerParam: number | 'mixed'; bits: number }
export interface Formula { name: string; expression: string; inputs: Record<string, number>; value: number; unit: string }
export interface SizeEntry {
  formula: Formula & { bits: number };
  exact: { terms: SizeTerm[]; params: number; bits: number; nonzeroBits: number };
  disk: { files: Record<string, number>; bytes: number; bitsPerParam: number; fp32Bytes: number; dtype: string };
}
export interface MatrixCount { name: string; rows: number; cols: number; nnz: number; stored: number }
export interface MacCount { dense: number; nonzero: number; stored: number }
export interface ComputeEntry {
  formula: Formula;
  counted: { context: number; linear: MacCount; head: MacCount; attention: number; total: MacCount; k: number };
  measured: { decodeTokPerS: number; prefillTokPerS: number | null; threads: number | null; nonzeroMacPerS: number } | null;
}

/** What size and compute need of one model. */
export interface ModelFacts {
  role: 'teacher' | 'student';
  config: ModelConfig;
  spec: CompressionSpec;
  /** Every weight matrix the forward multiplies by (linear layers, embedding, head). */
  matrices: MatrixCount[];
  /** Model files on disk (name -> bytes). */
  files: Record<string, number>;
  dtype: string;
}

const MODEL_FILES = /^(config\.json|generation_config\.json|tokenizer\.json|tokenizer_config\.json|.*\.safetensors|model\.safetensors\.index\.json)$/;

/** Regular files of a model folder that make up the model (not hidden files, not references beside it). */
export function modelFiles(dir: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const n of readdirSync(dir).sort()) {
    const st = statSync(join(dir, n));
    if (st.isFile() && MODEL_FILES.test(n)) out[n] = st.size;
  }
  return out;
}

const countNonzero = (a: ArrayLike<number>) => { let n = 0; for (let i = 0; i < a.length; i++) if (a[i] !== 0) n++; return n; };

/** Counts of a float model's matrices (internal names -> float32 data). */
export function floatMatrices(config: ModelConfig, tensors: Map<string, Float32Array>): MatrixCount[] {
  return paramLayout(config).filter((p) => p.shape.length === 2 && (isLinear(p.name) || EMBED_RE.test(p.name))).map((p) => {
    const w = tensors.get(p.name)!;
    return { name: p.name, rows: p.shape[0], cols: p.shape[1], nnz: countNonzero(w), stored: w.length };
  });
}

function int8Count(name: string, m: Int8Matrix): MatrixCount {
  return { name, rows: m.O, cols: m.I, nnz: countNonzero(m.values), stored: m.values.length };
}

/** Counts of an export's matrices (the integers as stored; a float embedding from its floats). */
export function exportMatrices(e: LoadedExport): MatrixCount[] {
  return paramLayout(e.config).filter((p) => p.shape.length === 2 && (isLinear(p.name) || EMBED_RE.test(p.name))).map((p) => {
    const m = e.matrices.get(p.name);
    if (m) return int8Count(p.name, m);
    const w = e.floats.get(p.name)!;
    return { name: p.name, rows: p.shape[0], cols: p.shape[1], nnz: countNonzero(w), stored: w.length };
  });
}

const bitsOf = (spec: CompressionSpec, name: string) => weightBits(spec, name) || 32;

function term(term: string, specs: { size: number; bits: number }[]): SizeTerm {
  const bits = specs.reduce((s, p) => s + p.size * p.bits, 0), params = specs.reduce((s, p) => s + p.size, 0);
  const kinds = new Set(specs.map((p) => p.bits));
  return { term, tensors: specs.length, params, bitsPerParam: kinds.size === 1 ? [...kinds][0] : kinds.size === 0 ? 0 : 'mixed', bits };
}

/** StudentModelSize / TeacherModelSize, the exact count and the bytes on disk. */
export function sizeEntry(f: ModelFacts): SizeEntry {
  const c = f.config, layout = paramLayout(c), q = f.spec.quant;
  const p = (re: (n: string) => boolean) => layout.filter((x) => re(x.name)).map((x) => ({ size: x.size, bits: bitsOf(f.spec, x.name) }));
  const quantized = layout.filter((x) => weightBits(f.spec, x.name) > 0);
  const terms = [
    term('embedding and head (vocab·dim)', p((n) => EMBED_RE.test(n))),
    term('layers (layers·dim²): q, k, v, o, gate, up, down', p(isLinear)),
    term('outside the O-terms: norms, biases, positions (float32)', p((n) => !EMBED_RE.test(n) && !isLinear(n))),
  ];
  if (quantized.length) terms.push(term('per-row scales of the quantized matrices (float32)', quantized.map((x) => ({ size: x.shape[0], bits: 32 }))));
  const bits = terms.reduce((s, t) => s + t.bits, 0), params = layout.reduce((s, x) => s + x.size, 0);
  const nnz = new Map(f.matrices.map((m) => [m.name, m.nnz]));
  const nonzeroBits = bits - quantized.reduce((s, x) => s + (x.size - (nnz.get(x.name) ?? x.size)) * weightBits(f.spec, x.name), 0);
  const inputs = { vocab: c.vocabSize, dim: c.dim, layers: c.nLayer, ...(f.role === 'student' ? { q_b: q?.bits ?? 32 } : {}) };
  const base = c.vocabSize * c.dim + c.nLayer * c.dim * c.dim;
  const formula = f.role === 'student'
    ? { name: 'StudentModelSize', expression: 'vocab·dim·q_b + layers·dim²·q_b', inputs, value: base * (q?.bits ?? 32), unit: 'bits', bits: base * (q?.bits ?? 32) }
    : { name: 'TeacherModelSize', expression: 'vocab·dim + layers·dim²', inputs, value: base, unit: 'parameters (× 32 bits, fp32)', bits: base * 32 };
  const bytes = Object.values(f.files).reduce((s, b) => s + b, 0);
  return {
    formula, exact: { terms, params, bits, nonzeroBits },
    disk: { files: f.files, bytes, bitsPerParam: (8 * bytes) / params, fp32Bytes: 4 * params, dtype: f.dtype },
  };
}

function sumMacs(ms: MatrixCount[]): MacCount {
  return ms.reduce((a, m) => ({ dense: a.dense + m.rows * m.cols, nonzero: a.nonzero + m.nnz, stored: a.stored + m.stored }),
    { dense: 0, nonzero: 0, stored: 0 });
}

/** Multiply-adds per token at context c, counted from the matrices. */
export function countMacs(f: ModelFacts, context: number): ComputeEntry['counted'] {
  const c = f.config, linear = f.matrices.filter((m) => isLinear(m.name));
  const headName = c.tieEmbeddings ? 'embed.weight' : 'lm_head.weight';
  const head = sumMacs(f.matrices.filter((m) => m.name === headName));
  const lin = sumMacs(linear);
  const kept = c.attnTopK > 0 ? Math.min(context, c.attnTopK) : context;
  const attention = c.nLayer * c.nHead * c.headDim * (context + kept);
  const rows = linear.reduce((s, m) => s + m.rows, 0);
  return {
    context, linear: lin, head, attention, k: rows ? lin.nonzero / rows : 0,
    total: { dense: lin.dense + head.dense + attention, nonzero: lin.nonzero + head.nonzero + attention, stored: lin.stored + head.stored + attention },
  };
}

/** StudentModelCompute / TeacherModelCompute per token, the counted multiply-adds and the measured speed. */
export function computeEntry(f: ModelFacts, context: number, speed: { decodeTokPerS: number; prefillTokPerS?: number } | null,
  threads: number | null): ComputeEntry {
  const c = f.config, counted = countMacs(f, context), bits = f.spec.quant?.bits ?? 32;
  const formula: Formula = f.role === 'student'
    ? { name: 'StudentModelCompute', expression: 'seq_len·layers·heads·dim·k·q_b (per token: seq_len = 1)',
      inputs: { seq_len: 1, layers: c.nLayer, heads: c.nHead, dim: c.dim, k: counted.k, q_b: bits },
      value: c.nLayer * c.nHead * c.dim * counted.k * bits, unit: 'bit-weighted multiply-adds (O-expression, constant 1)' }
    : { name: 'TeacherModelCompute', expression: 'seq_len·layers·heads·dim² (per token: seq_len = 1)',
      inputs: { seq_len: 1, layers: c.nLayer, heads: c.nHead, dim: c.dim },
      value: c.nLayer * c.nHead * c.dim * c.dim, unit: 'multiply-adds (O-expression, constant 1)' };
  const measured = speed ? {
    decodeTokPerS: speed.decodeTokPerS, prefillTokPerS: speed.prefillTokPerS ?? null, threads,
    nonzeroMacPerS: speed.decodeTokPerS * counted.total.nonzero,
  } : null;
  return { formula, counted, measured };
}
