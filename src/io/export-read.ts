/**
 * Reader of the "qkd-int8" export (browser-safe): bytes of config.json and model.safetensors in, a
 * validated model out. Everything is checked before use: format magic and version, the config's
 * checksum, dtypes and shapes of every tensor, row pointers (start at 0, monotone, end at the count),
 * column indices (in range, strictly increasing per row, blocks aligned), value ranges of the bit
 * width, positive finite scales, finite float tensors, and CRC-32 of every tensor's bytes. A corrupt,
 * truncated or edited file is a QkdError naming the file and the field, never a crash or garbage.
 */
import type { Int8Kernels, Int8Matrix } from '../kernels/int8.js';
import { isLinear, weightBits, type CompressionSpec } from '../model/compression.js';
import { makeModelConfig, paramLayout, type ModelConfig, type ParamSpec } from '../model/config.js';
import { unpackInt2, unpackInt4 } from '../quant/pack.js';
import { qRange } from '../quant/quantize.js';
import { QkdError } from '../tensor/errors.js';
import { checkDimLimits, checkLoadMemory } from '../model/limits.js';
import { parseHfConfig } from './hf-config.js';
import { crcHex, decodeSt, stArray, type StEntry } from './export-st.js';
import {
  configChecksum, EXPORT_FILES, EXPORT_FORMAT, packingFor, QuantizationSchema, READABLE_VERSIONS,
  type MatrixSpec, type QuantizationBlock,
} from './export-format.js';

export interface ExportFiles {
  /** config.json text or bytes. */
  config: string | Uint8Array;
  /** model.safetensors bytes. */
  model: Uint8Array;
  /** tokenizer.json bytes, checked against the recorded checksum when given. */
  tokenizer?: Uint8Array;
}

export interface LoadedExport {
  config: ModelConfig;
  quantization: QuantizationBlock;
  /** Quantized matrices by parameter name (kernel layouts, values unpacked to int8). */
  matrices: Map<string, Int8Matrix>;
  /** Every other parameter, float32. */
  floats: Map<string, Float32Array>;
  /** Bits of the dynamic per-token activation quantization (0: float activations). */
  actBits: number;
  warnings: string[];
}

type Alloc = Pick<Int8Kernels, 'allocI8' | 'allocI32'>;
const plain: Alloc = { allocI8: (n) => new Int8Array(n), allocI32: (n) => new Int32Array(n) };

const MF = EXPORT_FILES.model, CF = EXPORT_FILES.config;
const fail = (file: string, msg: string): never => { throw new QkdError('E_FORMAT', `${file}: ${msg}`); };

function parseConfig(text: string | Uint8Array): { config: ModelConfig; q: QuantizationBlock; warnings: string[] } {
  let json: unknown;
  try {
    json = JSON.parse(typeof text === 'string' ? text : new TextDecoder('utf-8', { fatal: true }).decode(text));
  } catch (e) {
    return fail(CF, `not valid UTF-8 JSON: ${(e as Error).message}`);
  }
  const qj = (json as Record<string, unknown> | null)?.quantization;
  if (qj === undefined || qj === null || typeof qj !== 'object') {
    fail(CF, 'field "quantization" is missing: not a qkd-int8 export (a float model directory?)');
  }
  const magic = (qj as Record<string, unknown>).format, version = (qj as Record<string, unknown>).version;
  if (magic !== EXPORT_FORMAT) fail(CF, `field "quantization.format" is ${JSON.stringify(magic)}, expected "${EXPORT_FORMAT}"`);
  if (!(READABLE_VERSIONS as readonly unknown[]).includes(version)) {
    throw new QkdError('E_UNSUPPORTED', `${CF}: field "quantization.version" ${JSON.stringify(version)} is not supported (this reader takes ${READABLE_VERSIONS.join(' and ')})`);
  }
  const r = QuantizationSchema.safeParse(qj);
  if (!r.success) fail(CF, `field "quantization": ${r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  for (const [name, m] of Object.entries(r.data!.matrices)) {
    const bad = (field: string, msg: string) => fail(CF, `field "quantization.matrices.${name}${field}": ${msg}`);
    if (r.data!.version === 1 && (m.index === 'U8' || m.rowPtr !== undefined)) bad('', 'U8 columns and row-pointer dtypes need version 2');
    if (r.data!.version >= 2 && (m.format === 'dense') !== (m.rowPtr === undefined)) bad('.rowPtr', 'a row-pointer dtype belongs to the sparse formats');
  }
  let config: ModelConfig, warnings: string[];
  try {
    const parsed = parseHfConfig(json, CF);
    warnings = parsed.warnings;
    config = makeModelConfig(parsed.input, CF);
  } catch (e) {
    if (e instanceof QkdError) throw new QkdError('E_FORMAT', e.message, { cause: e });
    throw e;
  }
  checkDimLimits(config, CF); // before paramLayout or any allocation sized by the config
  return { config, q: r.data!, warnings };
}

/**
 * The values and float tensors the config and its quantization block describe must fit in the weights
 * file (model/limits.ts, rule 2), and the RoPE tables in the memory budget (rule 3): so nothing the
 * reader or the runtime allocates from them can exceed a small multiple of the file's size.
 */
function checkFits(config: ModelConfig, q: QuantizationBlock, layout: Map<string, ParamSpec>, modelBytes: number): void {
  let need = 0, big = { name: '', bytes: 0 };
  for (const p of layout.values()) {
    const m = q.matrices[p.name], bytes = m ? (m.stored * m.bits) / 8 : 4 * p.size;
    need += bytes;
    if (bytes > big.bytes) big = { name: m ? `quantization.matrices.${p.name}.stored` : `${p.name} (float, from the model dimensions)`, bytes };
  }
  if (need > modelBytes) {
    fail(CF, `describes ${need} bytes of weights (the largest: ${big.name}, ${big.bytes} bytes) but ${MF} has ${modelBytes}: ` +
      'a corrupt or mismatched config');
  }
  checkLoadMemory(config, CF, modelBytes);
}

/** Cross-checks the quantization block against the model config and the parameter layout. */
function checkQuantization(config: ModelConfig, q: QuantizationBlock, layout: Map<string, ParamSpec>): void {
  const bad = (field: string, msg: string) => fail(CF, `field "quantization.${field}": ${msg}`);
  const act = q.activations.mode === 'none' ? 0 : q.activations.bits;
  const spec: CompressionSpec = { quant: { bits: q.bits, embedBits: q.embedBits, actBits: act, scheme: 'maxabs' }, sparsity: null };
  const cq = config.quant;
  if (cq) {
    if (cq.bits !== q.bits) bad('bits', `${q.bits} differs from the model config's quant.bits ${cq.bits}`);
    if (cq.embedBits !== q.embedBits) bad('embedBits', `${q.embedBits} differs from quant.embedBits ${cq.embedBits}`);
    if (cq.actBits !== act) bad('activations', `${act} bits differ from quant.actBits ${cq.actBits}`);
  }
  for (const [name, m] of Object.entries(q.matrices)) {
    const p = layout.get(name);
    const want = weightBits(spec, name);
    if (!p || want === 0) bad(`matrices.${name}`, 'not a quantized matrix of this architecture');
    if (m.rows !== p!.shape[0] || m.cols !== p!.shape[1]) bad(`matrices.${name}`, `shape ${m.rows}x${m.cols}, the architecture has ${p!.shape.join('x')}`);
    if (m.bits !== want) bad(`matrices.${name}.bits`, `${m.bits}, expected ${want}`);
    if (m.packing !== packingFor(m.bits)) bad(`matrices.${name}.packing`, `${m.packing} does not match ${m.bits} bits`);
    if ((m.format === 'block') !== (m.block !== undefined)) bad(`matrices.${name}.block`, 'a block width belongs to the block format');
    if ((m.format === 'dense') !== (m.index === undefined)) bad(`matrices.${name}.index`, 'an index dtype belongs to the sparse formats');
    if (m.format === 'block' && m.cols % m.block! !== 0) bad(`matrices.${name}.block`, `${m.block} does not divide ${m.cols}`);
  }
  for (const name of layout.keys()) {
    if (isLinear(name) && !q.matrices[name]) bad('matrices', `linear layer ${name} is missing`);
    if (!isLinear(name) && weightBits(spec, name) > 0 && !q.matrices[name]) bad('matrices', `${name} is missing (embedBits ${q.embedBits})`);
  }
}

class TensorTaker {
  readonly used = new Set<string>();
  constructor(private readonly t: Map<string, StEntry>) {}
  take(name: string, dtypes: string[], shape: number[]): StEntry {
    const e = this.t.get(name);
    if (!e) return fail(MF, `tensor "${name}" is missing`);
    if (!dtypes.includes(e.dtype)) fail(MF, `tensor "${name}": dtype ${e.dtype}, expected ${dtypes.join(' or ')}`);
    if (e.shape.length !== shape.length || e.shape.some((d, i) => d !== shape[i])) {
      fail(MF, `tensor "${name}": shape [${e.shape}], expected [${shape}]`);
    }
    this.used.add(name);
    return e;
  }
}

/** Copies a stored array into kernel memory. */
function i32(alloc: Alloc, src: ArrayLike<number>): Int32Array { const a = alloc.allocI32(src.length); a.set(src); return a; }

function readValues(tk: TensorTaker, name: string, m: MatrixSpec, shape: number[], alloc: Alloc): Int8Array {
  // the stored tensor is taken (its dtype and shape checked against the file) before anything is allocated
  if (m.packing === 'int8') {
    const src = stArray(tk.take(`${name}.values`, ['I8'], shape)) as Int8Array, out = alloc.allocI8(m.stored);
    out.set(src);
    return checkValues(name, m, out);
  }
  const perByte = m.packing === 'int4' ? 2 : 4;
  const packed = stArray(tk.take(`${name}.values`, ['U8'], [Math.ceil(m.stored / perByte)])) as Uint8Array;
  const out = alloc.allocI8(m.stored);
  if (m.packing === 'int4') unpackInt4(packed, m.stored, out); else unpackInt2(packed, m.stored, out);
  return checkValues(name, m, out);
}

function checkValues(name: string, m: MatrixSpec, out: Int8Array): Int8Array {
  const { qmin, qmax } = qRange(m.bits);
  let nnz = 0;
  for (let i = 0; i < out.length; i++) {
    const v = out[i];
    if (v < qmin || v > qmax) fail(MF, `tensor "${name}.values"[${i}] = ${v} is outside the ${m.bits}-bit range ${qmin}..${qmax}`);
    if (v !== 0) nnz++;
  }
  if (nnz !== m.nnz) fail(MF, `tensor "${name}.values": ${nnz} nonzeros, ${CF} records ${m.nnz}`);
  return out;
}

/** Row pointers and columns of a sparse matrix; `width` is 1 (csr) or the block width; from version 2
 *  the stored columns are in units of `width`. */
function readSparseIndex(tk: TensorTaker, name: string, m: MatrixSpec, count: number, width: number, version: number, alloc: Alloc) {
  const rowPtr = i32(alloc, stArray(tk.take(`${name}.row_ptr`, [m.rowPtr ?? 'I32'], [m.rows + 1])));
  const col = i32(alloc, stArray(tk.take(`${name}.col`, [m.index!], [count])));
  if (version >= 2 && width > 1) for (let e = 0; e < count; e++) col[e] *= width;
  if (rowPtr[0] !== 0) fail(MF, `tensor "${name}.row_ptr"[0] = ${rowPtr[0]}, must be 0`);
  if (rowPtr[m.rows] !== count) fail(MF, `tensor "${name}.row_ptr"[${m.rows}] = ${rowPtr[m.rows]}, must equal the ${count} stored entries`);
  for (let o = 0; o < m.rows; o++) {
    const a = rowPtr[o], b = rowPtr[o + 1];
    if (!(b >= a)) fail(MF, `tensor "${name}.row_ptr" decreases at row ${o} (${a} -> ${b})`);
    for (let e = a; e < b; e++) {
      const c = col[e];
      if (c % width !== 0 || c + width > m.cols) fail(MF, `tensor "${name}.col"[${e}] = ${c} is outside 0..${m.cols - width}${width > 1 ? ` or not a multiple of ${width}` : ''}`);
      if (e > a && c <= col[e - 1]) fail(MF, `tensor "${name}.col" is not strictly increasing in row ${o} (entry ${e})`);
    }
  }
  return { rowPtr, col };
}

function readMatrix(tk: TensorTaker, name: string, m: MatrixSpec, version: number, alloc: Alloc): Int8Matrix {
  const scale = stArray(tk.take(`${name}.scale`, ['F32'], [m.rows])) as Float32Array;
  for (let o = 0; o < m.rows; o++) {
    if (!(scale[o] > 0 && scale[o] < Infinity)) fail(MF, `tensor "${name}.scale"[${o}] = ${scale[o]} is not a positive finite scale`);
  }
  const O = m.rows, I = m.cols;
  if (m.format === 'dense') {
    if (m.stored !== O * I) fail(CF, `field "quantization.matrices.${name}.stored" ${m.stored}, dense needs ${O * I}`);
    return { format: 'dense', O, I, values: readValues(tk, name, m, [O, I], alloc), scale };
  }
  const k = m.format === 'block' ? m.block! : 1;
  if (m.stored % k !== 0 || m.stored > O * I) fail(CF, `field "quantization.matrices.${name}.stored" ${m.stored} is not a count of ${k}-blocks within ${O}x${I}`);
  const count = m.stored / k;
  const { rowPtr, col } = readSparseIndex(tk, name, m, count, k, version, alloc);
  const values = readValues(tk, name, m, m.format === 'block' ? [count, k] : [count], alloc);
  return m.format === 'block'
    ? { format: 'block', O, I, k, rowPtr, blockCol: col, values, scale }
    : { format: 'csr', O, I, rowPtr, col, values, scale };
}

function readFloat(tk: TensorTaker, p: ParamSpec): Float32Array {
  const a = stArray(tk.take(p.name, ['F32'], p.shape)) as Float32Array;
  for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i])) fail(MF, `tensor "${p.name}"[${i}] = ${a[i]} is not finite`);
  return a;
}

/** Parses and validates an export held in memory. `alloc` places integer arrays in kernel memory. */
export function parseExport(files: ExportFiles, alloc: Alloc = plain): LoadedExport {
  const { config, q, warnings } = parseConfig(files.config);
  const { tensors, metadata } = decodeSt(MF, files.model);
  if (metadata.format !== EXPORT_FORMAT) fail(MF, `__metadata__.format is ${JSON.stringify(metadata.format)}, expected "${EXPORT_FORMAT}"`);
  if (metadata.version !== String(q.version)) {
    fail(MF, `__metadata__.version ${JSON.stringify(metadata.version)} differs from ${CF}'s quantization.version ${q.version}`);
  }
  if (configChecksum(config, q) !== metadata.config_crc32) {
    fail(CF, `contents do not match the checksum recorded in ${MF} (__metadata__.config_crc32): edited or corrupt`);
  }
  if (files.tokenizer && metadata.tokenizer_crc32 !== undefined && crcHex(files.tokenizer) !== metadata.tokenizer_crc32) {
    fail(EXPORT_FILES.tokenizer, `CRC-32 does not match __metadata__.tokenizer_crc32 in ${MF} (corrupt or replaced)`);
  }
  const layout = new Map(paramLayout(config).map((p) => [p.name, p]));
  checkQuantization(config, q, layout);
  checkFits(config, q, layout, files.model.length);
  const tk = new TensorTaker(tensors), matrices = new Map<string, Int8Matrix>(), floats = new Map<string, Float32Array>();
  for (const p of layout.values()) {
    const m = q.matrices[p.name];
    if (m) matrices.set(p.name, readMatrix(tk, p.name, m, q.version, alloc));
    else floats.set(p.name, readFloat(tk, p));
  }
  const extra = [...tensors.keys()].filter((n) => !tk.used.has(n));
  if (extra.length) fail(MF, `unexpected tensor(s) ${extra.slice(0, 5).map((n) => `"${n}"`).join(', ')}`);
  const actBits = q.activations.mode === 'none' ? 0 : q.activations.bits;
  return { config, quantization: q, matrices, floats, actBits, warnings };
}
