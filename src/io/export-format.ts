/**
 * The compact export format "qkd-int8" (docs/export-format.md): spec types and the encoder from
 * quantized matrices to the files of an export directory. Browser-safe (no Node imports).
 *
 * Tensors in model.safetensors (engine names, e.g. `layers.0.q.weight`):
 *   <w>.values   I8 (dense: [O, I]; block: [nBlocks, k]; csr: [nnz]) or, for bits <= 4, U8 packed
 *                (int4 / int2 layout of quant/pack.ts over the same run of values)
 *   <w>.scale    F32 [O]         per-output-row scale
 *   <w>.row_ptr  U16 | I32 [O + 1]   sparse formats only (version 1: I32)
 *   <w>.col      U8 | U16 | I32  the column of each csr entry [nnz] or block [nBlocks], in units of the
 *                                block width (version 2: column / k; version 1: the column itself)
 *   <p>          F32             every other parameter (norms, biases, learned positions, a float embedding)
 */
import { z } from 'zod';
import type { Int8Matrix } from '../kernels/int8.js';
import { isLinear } from '../model/compression.js';
import { paramLayout, type ModelConfig } from '../model/config.js';
import { packInt2, packInt4 } from '../quant/pack.js';
import { QkdError } from '../tensor/errors.js';
import { hfConfigFor } from './hf-config.js';
import { crcHex, encodeSt, type StTensor } from './export-st.js';

export const EXPORT_FORMAT = 'qkd-int8';
/** The version written. Version 2 stores block columns as block ordinals and the smallest index
 *  dtypes that fit (U8 columns for inputs of up to 256 units, U16 row pointers); readers take 1 and 2. */
export const EXPORT_VERSION = 2;
export const READABLE_VERSIONS = [1, 2] as const;
export const EXPORT_FILES = { config: 'config.json', model: 'model.safetensors', tokenizer: 'tokenizer.json', generation: 'generation_config.json' } as const;


const Count = z.number().int().nonnegative();
export const MatrixSpecSchema = z.object({
  format: z.enum(['dense', 'block', 'csr']),
  bits: z.number().int().min(2).max(8),
  rows: Count,
  cols: Count,
  /** Number of int values stored: rows·cols (dense), nBlocks·block (block), nnz (csr). */
  stored: Count,
  /** Nonzero weights (sparsity = 1 - nnz / (rows·cols)). */
  nnz: Count,
  /** Storage of the values: one per byte, or packed (quant/pack.ts). */
  packing: z.enum(['int8', 'int4', 'int2']),
  /** Block width along the input dimension (block format only). */
  block: z.number().int().positive().optional(),
  /** dtype of the column tensor (sparse formats only; U8 from version 2). */
  index: z.enum(['U8', 'U16', 'I32']).optional(),
  /** dtype of the row pointers (sparse formats only, version 2; version 1: always I32). */
  rowPtr: z.enum(['U16', 'I32']).optional(),
}).strict();
export type MatrixSpec = z.infer<typeof MatrixSpecSchema>;

export const QuantizationSchema = z.object({
  format: z.literal(EXPORT_FORMAT),
  version: z.union([z.literal(1), z.literal(2)]),
  scheme: z.literal('symmetric-per-channel'),
  /** Bits of the linear layers and of the embedding/head (0: the embedding is stored float32). */
  bits: z.number().int().min(2).max(8),
  embedBits: z.union([z.literal(0), z.number().int().min(2).max(8)]),
  /** qat: values exactly as the distilled student computes with them; ptq: max-abs of a float model. */
  source: z.enum(['qat', 'ptq']),
  /** How the scales were made in training (maxabs or learned LSQ), or ptq-maxabs. */
  scales: z.enum(['maxabs', 'lsq', 'ptq-maxabs']),
  /** Activation quantization of every linear input: dynamic per token, or none (float activations). */
  activations: z.union([
    z.object({ mode: z.literal('dynamic-per-token'), bits: z.number().int().min(2).max(8) }).strict(),
    z.object({ mode: z.literal('none') }).strict(),
  ]),
  sparsity: z.object({
    /** The pruning the student was trained with (model config), or null. */
    trained: z.unknown(),
    /** Zeros / size over the linear layers, as stored. */
    measured: z.number().min(0).max(1),
  }).strict(),
  matrices: z.record(z.string(), MatrixSpecSchema),
}).strict();
export type QuantizationBlock = z.infer<typeof QuantizationSchema>;

/** A quantized matrix as the exporter hands it over. */
export interface QuantMatrix { matrix: Int8Matrix; bits: number }

export interface ExportContent {
  config: ModelConfig;
  quant: Omit<QuantizationBlock, 'format' | 'version' | 'scheme' | 'matrices' | 'sparsity'>;
  /** Quantized matrices by parameter name. */
  matrices: Map<string, QuantMatrix>;
  /** Every other parameter, float32. */
  floats: Map<string, Float32Array>;
  /** tokenizer.json bytes, copied verbatim. */
  tokenizer?: Uint8Array;
}

/** Key-sorted JSON: a stable text for checksums of parsed objects. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o).filter((k) => o[k] !== undefined).sort().map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

/** The checksum tying config.json's meaning (not its whitespace) to model.safetensors. */
export function configChecksum(config: ModelConfig, q: QuantizationBlock): string {
  return crcHex(new TextEncoder().encode(canonicalJson({ config, quantization: q })));
}

export function packingFor(bits: number): MatrixSpec['packing'] {
  return bits <= 2 ? 'int2' : bits <= 4 ? 'int4' : 'int8';
}

function packedValues(values: Int8Array, packing: MatrixSpec['packing']): { dtype: 'I8' | 'U8'; data: Int8Array | Uint8Array } {
  if (packing === 'int8') return { dtype: 'I8', data: values };
  return { dtype: 'U8', data: packing === 'int4' ? packInt4(values) : packInt2(values) };
}

function countNonzero(v: Int8Array): number {
  let n = 0;
  for (let i = 0; i < v.length; i++) if (v[i] !== 0) n++;
  return n;
}

/** The tensors and spec of one quantized matrix. */
function matrixTensors(name: string, qm: QuantMatrix, out: Map<string, StTensor>): MatrixSpec {
  const W = qm.matrix, packing = packingFor(qm.bits);
  const spec: MatrixSpec = { format: W.format, bits: qm.bits, rows: W.O, cols: W.I, stored: W.values.length, nnz: countNonzero(W.values), packing };
  const v = packedValues(W.values, packing);
  const valueShape = packing !== 'int8' ? [v.data.length]
    : W.format === 'dense' ? [W.O, W.I] : W.format === 'block' ? [W.values.length / W.k, W.k] : [W.values.length];
  out.set(`${name}.values`, { dtype: v.dtype, shape: valueShape, data: v.data });
  out.set(`${name}.scale`, { dtype: 'F32', shape: [W.O], data: W.scale });
  if (W.format !== 'dense') {
    // columns in units of the block width (csr: 1), in the smallest dtype that holds every unit
    const width = W.format === 'block' ? W.k : 1, cols = W.format === 'block' ? W.blockCol : W.col;
    const units = Math.ceil(W.I / width), count = cols.length;
    spec.index = units <= 256 ? 'U8' : units <= 65536 ? 'U16' : 'I32';
    spec.rowPtr = count <= 65535 ? 'U16' : 'I32';
    if (W.format === 'block') spec.block = W.k;
    const ord = width === 1 ? cols : cols.map((c) => c / width);
    out.set(`${name}.row_ptr`, { dtype: spec.rowPtr, shape: [W.O + 1], data: spec.rowPtr === 'U16' ? Uint16Array.from(W.rowPtr) : W.rowPtr });
    out.set(`${name}.col`, {
      dtype: spec.index, shape: [count],
      data: spec.index === 'U8' ? Uint8Array.from(ord) : spec.index === 'U16' ? Uint16Array.from(ord) : Int32Array.from(ord),
    });
  }
  return spec;
}

/** Encodes an export: the files of the directory, by name. */
export function encodeExport(c: ExportContent): Record<string, string | Uint8Array> {
  const tensors = new Map<string, StTensor>(), matrices: Record<string, MatrixSpec> = {};
  let zeros = 0, cells = 0;
  for (const p of paramLayout(c.config)) {
    const qm = c.matrices.get(p.name);
    if (qm) {
      if (qm.matrix.O !== p.shape[0] || qm.matrix.I !== p.shape[1]) {
        throw new QkdError('E_INTERNAL', `export: matrix ${p.name} is ${qm.matrix.O}x${qm.matrix.I}, expected ${p.shape.join('x')}`);
      }
      const spec = matrixTensors(p.name, qm, tensors);
      matrices[p.name] = spec;
      if (isLinear(p.name)) { zeros += spec.rows * spec.cols - spec.nnz; cells += spec.rows * spec.cols; }
      continue;
    }
    const f = c.floats.get(p.name);
    if (!f || f.length !== p.size) throw new QkdError('E_INTERNAL', `export: float tensor ${p.name} is missing or has the wrong size`);
    tensors.set(p.name, { dtype: 'F32', shape: p.shape, data: f });
  }
  const quantization: QuantizationBlock = {
    format: EXPORT_FORMAT, version: EXPORT_VERSION, scheme: 'symmetric-per-channel', ...c.quant,
    sparsity: { trained: c.config.sparsity, measured: cells ? zeros / cells : 0 }, matrices,
  };
  const metadata: Record<string, string> = {
    format: EXPORT_FORMAT, version: String(EXPORT_VERSION), config_crc32: configChecksum(c.config, quantization),
  };
  if (c.tokenizer) metadata.tokenizer_crc32 = crcHex(c.tokenizer);
  // quantization_config.quant_method makes Hugging Face transformers refuse the directory loudly
  // (an unknown quantizer) instead of loading a model whose weights it cannot find
  const { config, generation } = hfConfigFor(c.config, 'F32', {
    quantization, quantization_config: { quant_method: EXPORT_FORMAT, note: 'a qkd-int8 export: load it with qkd (docs/export-format.md)' },
  });
  const files: Record<string, string | Uint8Array> = {
    [EXPORT_FILES.config]: JSON.stringify(config, null, 2) + '\n',
    [EXPORT_FILES.generation]: JSON.stringify(generation, null, 2) + '\n',
    [EXPORT_FILES.model]: encodeSt(tensors, metadata),
  };
  if (c.tokenizer) files[EXPORT_FILES.tokenizer] = c.tokenizer;
  return files;
}
