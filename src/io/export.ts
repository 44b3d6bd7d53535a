/**
 * `qkd export` (default format "qkd-int8", docs/export-format.md): a distilled student (or a float
 * model, post-training quantized) -> a compact directory of int8 / packed int4 weights, per-row scales
 * and sparse structure; and `loadExport`, which reads one back from disk (Node). The format itself,
 * its encoder and its validating reader are browser-safe (export-format.ts, export-read.ts).
 */
import { existsSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { checkTokenizerFits } from '../data/tokenizer.js';
import { loadTokenizer } from '../data/tokenizer-node.js';
import type { Int8Kernels } from '../kernels/int8.js';
import { chooseFormat, denseToBlock, denseToCsr, sparsityStats, type Int8Format, type Int8Matrix } from '../sparse/storage.js';
import { paramLayout, type ModelConfig } from '../model/config.js';
import { exportBlock, isLinear, scaleKey, SCALES_FILE, specOf, weightBits } from '../model/compression.js';
import { offGrid, quantizeTensor } from '../quant/quantize.js';
import { QkdError } from '../tensor/errors.js';
import { checkFiniteTensors } from './finite.js';
import { checkOutDir, writeOutputDir } from './outdir.js';
import { MAX_BYTES, readRegularFile, readRegularJson } from './read-file.js';
import { loadHfModel } from './hf.js';
import { readSavedScales } from './quant-scales.js';
import { encodeExport, EXPORT_FILES, type ExportContent, type QuantMatrix } from './export-format.js';
import { parseExport, type LoadedExport } from './export-read.js';

export { EXPORT_FORMAT, EXPORT_VERSION, EXPORT_FILES } from './export-format.js';
export type { LoadedExport } from './export-read.js';

export interface ExportOptions {
  /** Storage format of every linear layer: 'auto' (default) applies chooseFormat per matrix. */
  format?: 'auto' | Int8Format;
  /** Block width for the block format (default: the student's trained block, else 16). */
  block?: number;
  /** Replace an earlier export in the output folder (never a folder qkd did not write as an export). */
  force?: boolean;
}

export interface ExportResult {
  out: string;
  config: ModelConfig;
  /** Bytes per file, and in all. */
  files: Record<string, number>;
  bytes: number;
  params: number;
  /** 8 · bytes on disk / parameters. */
  bitsPerParam: number;
  formats: Record<string, Int8Format>;
  warnings: string[];
}

/**
 * A run directory (`qkd train` / `qkd distill`, holding model/), a pipeline output (holding export/)
 * or a model directory -> the model directory; a run without a model yet is a clear error.
 */
export function resolveModelDir(dir: string): string {
  if (existsSync(join(dir, 'model.safetensors')) || existsSync(join(dir, 'model.safetensors.index.json'))) return dir;
  for (const inner of ['model', 'export']) if (existsSync(join(dir, inner, 'config.json'))) return join(dir, inner);
  const cfg = join(dir, 'config.json');
  if (existsSync(cfg)) {
    const j = readRegularJson(cfg, 'config.json');
    const run = !!j && typeof j === 'object' && ('train' in j || 'distill' in j);
    if (run) throw new QkdError('E_MISSING', `${dir}: a qkd run directory without a model yet (model/ is written at the first evaluation; expected ${join(dir, 'model')})`);
  }
  return dir;
}

/** True when `dir` holds a qkd-int8 export (config.json with a quantization block of our format). */
export function isExportDir(dir: string): boolean {
  const p = join(dir, EXPORT_FILES.config);
  if (!existsSync(p)) return false;
  try {
    const q = (readRegularJson(p, 'config.json') as { quantization?: { format?: unknown } }).quantization;
    return q?.format === 'qkd-int8';
  } catch {
    return false;
  }
}

/** The codes of w (rows, cols) on the grid of `scale`; a weight off that grid means the model is not a trained student. */
function quantizeOnGrid(name: string, w: Float32Array, scale: Float32Array, rows: number, cols: number, bits: number, dir: string): Int8Array {
  const { first } = offGrid(w, scale, rows, cols, bits);
  if (first >= 0) {
    const r = Math.floor(first / cols);
    throw new QkdError('E_INPUT', `${dir}: the model is not a quantized student: ${name}[${r}, ${first % cols}] = ${w[first]} is not on the ${bits}-bit grid of its row scale ${scale[r]}`);
  }
  return quantizeTensor(w, rows, cols, bits, scale).values;
}

function pickFormat(q: Int8Array, O: number, I: number, k: number, opt: ExportOptions['format']): Int8Format {
  if (opt && opt !== 'auto') return opt;
  return chooseFormat(sparsityStats(q, O, I, k));
}

function toMatrix(fmt: Int8Format, q: Int8Array, scale: Float32Array, O: number, I: number, k: number): Int8Matrix {
  if (fmt === 'block') {
    if (!(k >= 1 && I % k === 0)) throw new QkdError('E_CONFIG', `export: block width ${k} does not divide the input dim ${I}`);
    return denseToBlock(q, scale, O, I, k);
  }
  return fmt === 'csr' ? denseToCsr(q, scale, O, I) : { format: 'dense', O, I, values: q, scale };
}

/** The tokenizer.json the export copies, validated (it loads, and fits the model's vocabulary) first. */
function readTokenizer(dir: string, vocab: number): Uint8Array | undefined {
  const path = join(dir, EXPORT_FILES.tokenizer);
  if (!existsSync(path)) return undefined;
  checkTokenizerFits(loadTokenizer(path), vocab, path);
  return new Uint8Array(readRegularFile(path, 'tokenizer.json', MAX_BYTES.tokenizer));
}

/** The model's quantized matrices and float tensors, as the export stores them. */
function buildContent(dir: string, opts: ExportOptions, warnings: string[]): ExportContent {
  const hf = loadHfModel(dir);
  checkFiniteTensors(hf.tensors, dir);
  warnings.push(...hf.warnings);
  const c = hf.config, cq = c.quant, ptq = cq === null, spec = specOf(c);
  if (ptq) warnings.push(`${dir}: a float model (no "quant" in its config): exporting with max-abs int8 post-training quantization, which changes its outputs`);
  const bits = cq?.bits ?? 8, embedBits = ptq ? 8 : cq.embedBits, actBits = cq?.actBits ?? 0;
  const saved = ptq ? undefined : readSavedScales(dir);
  if (saved) checkFiniteTensors(saved, join(dir, SCALES_FILE));
  if (!ptq && cq.scheme === 'lsq' && !saved) {
    throw new QkdError('E_MISSING', `${dir}: ${SCALES_FILE} is missing: a student trained with learned (LSQ) scales needs it`);
  }
  const k = opts.block ?? exportBlock(spec);
  if (ptq) spec.quant = { bits, embedBits, actBits, scheme: 'maxabs' };
  const matrices = new Map<string, QuantMatrix>(), floats = new Map<string, Float32Array>();
  for (const p of paramLayout(c)) {
    const w = hf.tensors.get(p.name)!;
    const b = weightBits(spec, p.name);
    if (b === 0) { floats.set(p.name, w); continue; }
    const [O, I] = p.shape;
    const scale = saved?.get(scaleKey(p.name));
    if (scale && scale.length !== O) throw new QkdError('E_SHAPE', `${dir}/${SCALES_FILE}: ${scaleKey(p.name)} has ${scale.length} scales, ${p.name} has ${O} rows`);
    const t = quantizeTensor(w, O, I, b, scale);
    const q = ptq ? t.values : quantizeOnGrid(p.name, w, t.scale, O, I, b, dir);
    const fmt = isLinear(p.name) ? pickFormat(q, O, I, k, opts.format) : 'dense';
    matrices.set(p.name, { matrix: toMatrix(fmt, q, t.scale, O, I, k), bits: b });
  }
  const tokenizer = readTokenizer(dir, c.vocabSize);
  if (!tokenizer) warnings.push(`${dir}: no tokenizer.json; the export will have none (pass --tokenizer to eval/generate)`);
  return {
    config: c, matrices, floats, tokenizer,
    quant: {
      bits, embedBits, source: ptq ? 'ptq' : 'qat', scales: ptq ? 'ptq-maxabs' : cq.scheme,
      activations: actBits > 0 ? { mode: 'dynamic-per-token', bits: actBits } : { mode: 'none' },
    },
  };
}

/**
 * Writes the export of the model in `modelDir` (or a run directory's model/) to `outDir`, atomically,
 * under the output-folder rule of io/outdir.ts (checked before any work): a new or empty folder, or
 * with `force` an earlier export; never the model's own folder.
 */
export function exportStudent(modelDir: string, outDir: string, opts: ExportOptions = {}): ExportResult {
  const dir = resolveModelDir(modelDir), warnings: string[] = [];
  const req = { kind: 'export' as const, force: opts.force === true, inputs: [modelDir, dir] };
  checkOutDir(outDir, req);
  const content = buildContent(dir, opts, warnings);
  const files = encodeExport(content);
  writeOutputDir(outDir, req, files);
  const sizes: Record<string, number> = {};
  for (const [n, d] of Object.entries(files)) sizes[n] = typeof d === 'string' ? Buffer.byteLength(d) : d.length;
  const bytes = Object.values(sizes).reduce((a, b) => a + b, 0);
  const params = paramLayout(content.config).reduce((s, p) => s + p.size, 0);
  const formats: Record<string, Int8Format> = {};
  for (const [n, m] of content.matrices) formats[n] = m.matrix.format;
  return { out: outDir, config: content.config, files: sizes, bytes, params, bitsPerParam: (8 * bytes) / params, formats, warnings };
}

function readBytes(path: string, required: boolean, maxBytes = Infinity): Uint8Array | undefined {
  if (!existsSync(path)) {
    if (required) throw new QkdError('E_MISSING', `${path}: not found (not a qkd-int8 export directory?)`);
    return undefined;
  }
  return new Uint8Array(readRegularFile(path, basename(path), maxBytes));
}

/** Reads and validates an export directory. `alloc` places integer arrays in kernel memory. */
export function loadExport(dir: string, alloc?: Pick<Int8Kernels, 'allocI8' | 'allocI32'>): LoadedExport {
  const config = readBytes(join(dir, EXPORT_FILES.config), true, MAX_BYTES.config)!;
  const model = readBytes(join(dir, EXPORT_FILES.model), true)!;
  const tokenizer = readBytes(join(dir, EXPORT_FILES.tokenizer), false, MAX_BYTES.tokenizer);
  try {
    return parseExport({ config, model, tokenizer }, alloc);
  } catch (e) {
    if (e instanceof QkdError) throw new QkdError(e.code, `${dir}/${e.message}`, { cause: e });
    throw e;
  }
}
