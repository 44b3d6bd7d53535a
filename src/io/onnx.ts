/**
 * ONNX export: a model directory qkd loads (Llama, GPT-2 or qkd-student) -> one standard ONNX file
 * computing logits (batch, seq, vocab) float32 from input_ids (batch, seq) int64, optionally with a
 * key/value cache (past_key_values.{l}.key/value in, present.{l}.key/value out) and optionally with
 * onnxruntime-style dynamic int8 linear layers. Weights are initializers in the file.
 */
import { existsSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { loadHfModel } from './hf.js';
import { writeFileAtomic } from './atomic.js';
import { checkFiniteTensors } from './finite.js';
import { buildTransformerGraph, ONNX_NAMES } from './onnx-model.js';
import { encodeModel, type ModelProto } from './onnx-proto.js';
import type { ModelConfig } from '../model/config.js';
import { QkdError } from '../tensor/errors.js';

export { ONNX_NAMES } from './onnx-model.js';

export interface OnnxExportOptions {
  /**
   * Dynamic int8 like onnxruntime's quantize_dynamic: int8 weights with per-output-channel scales,
   * activations quantized per tensor to uint8 by DynamicQuantizeLinear, MatMulInteger. The embedding
   * gather stays float32; qkd's per-token activation fake quantization is replaced by
   * DynamicQuantizeLinear.
   */
  int8?: boolean;
  /** Default opset 17 (IR version 8); 17..21 are supported. */
  opset?: number;
  /** Add past/present key-value inputs/outputs for incremental decoding (default false). */
  kvCache?: boolean;
}

export interface OnnxExportResult {
  out: string;
  bytes: number;
  config: ModelConfig;
  opset: number;
  irVersion: number;
  nodes: number;
  initializers: number;
  inputs: string[];
  outputs: string[];
  warnings: string[];
}

export const DEFAULT_OPSET = 17;

/** The lowest IR version that carries an opset (onnx/helper.py's table), which onnxruntime 1.30 reads. */
const IR_FOR_OPSET: Record<number, number> = { 17: 8, 18: 8, 19: 9, 20: 9, 21: 10 };

function checkOptions(out: string, opts: OnnxExportOptions): { opset: number; int8: boolean; kvCache: boolean } {
  if (opts === null || typeof opts !== 'object') throw new QkdError('E_CONFIG', `onnx export: options must be an object`);
  const opset = opts.opset ?? DEFAULT_OPSET;
  if (!(opset in IR_FOR_OPSET)) {
    throw new QkdError('E_CONFIG', `onnx export: opset ${String(opset)} is not supported (${Object.keys(IR_FOR_OPSET).join(', ')})`);
  }
  for (const k of ['int8', 'kvCache'] as const) {
    if (opts[k] !== undefined && typeof opts[k] !== 'boolean') {
      throw new QkdError('E_CONFIG', `onnx export: option ${k} must be a boolean, got ${JSON.stringify(opts[k])}`);
    }
  }
  if (typeof out !== 'string' || out.length === 0) throw new QkdError('E_CONFIG', `onnx export: output path must be a non-empty string`);
  if (!out.endsWith('.onnx')) throw new QkdError('E_CONFIG', `${out}: output file must end with .onnx`);
  const parent = dirname(out);
  if (!existsSync(parent) || !statSync(parent).isDirectory()) {
    throw new QkdError('E_MISSING', `${out}: output directory ${parent} does not exist`);
  }
  if (existsSync(out) && statSync(out).isDirectory()) throw new QkdError('E_INPUT', `${out}: is a directory`);
  return { opset, int8: opts.int8 ?? false, kvCache: opts.kvCache ?? false };
}

/** Builds the ONNX model bytes for a loaded model (exposed for tests and tools that hold tensors). */
export function onnxModelBytes(config: ModelConfig, tensors: Map<string, Float32Array>,
  opts: { opset?: number; int8?: boolean; kvCache?: boolean; docString?: string } = {}): { bytes: Uint8Array; model: ModelProto } {
  const opset = opts.opset ?? DEFAULT_OPSET;
  const g = buildTransformerGraph(config, tensors, { opset, int8: opts.int8 ?? false, kvCache: opts.kvCache ?? false });
  const model: ModelProto = {
    irVersion: IR_FOR_OPSET[opset],
    opsetImport: [{ domain: '', version: opset }],
    producerName: 'qkd',
    producerVersion: '0.1.0',
    graph: g.graph(`qkd-${config.family}`, opts.docString),
    metadataProps: [
      { key: 'qkd.family', value: config.family },
      { key: 'qkd.config', value: JSON.stringify(config) },
      { key: 'qkd.int8', value: String(opts.int8 ?? false) },
    ],
  };
  return { bytes: encodeModel(model), model };
}

/**
 * Exports the model in `dir` to the ONNX file `out` (written atomically). Throws QkdError naming the
 * file/field on a bad directory, weights or options.
 */
export function exportOnnx(dir: string, out: string, opts: OnnxExportOptions = {}): OnnxExportResult {
  if (typeof dir !== 'string' || dir.length === 0) throw new QkdError('E_CONFIG', `onnx export: model directory must be a non-empty string`);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new QkdError('E_MISSING', `${dir}: model directory not found`);
  const o = checkOptions(out, opts);
  const hf = loadHfModel(dir);
  checkFiniteTensors(hf.tensors, dir);
  const { bytes, model } = onnxModelBytes(hf.config, hf.tensors, { ...o, docString: `exported by qkd from ${dir}` });
  writeFileAtomic(out, bytes);
  const names = (vs: { name: string }[]) => vs.map((v) => v.name);
  return {
    out, bytes: bytes.length, config: hf.config, opset: o.opset, irVersion: model.irVersion,
    nodes: model.graph.node.length, initializers: model.graph.initializer.length,
    inputs: names(model.graph.input), outputs: names(model.graph.output), warnings: hf.warnings,
  };
}

/** Names of the cache inputs/outputs of layer l (for callers that feed a kvCache export). */
export function kvNames(l: number): { pastKey: string; pastValue: string; presentKey: string; presentValue: string } {
  return {
    pastKey: ONNX_NAMES.pastKey(l), pastValue: ONNX_NAMES.pastValue(l),
    presentKey: ONNX_NAMES.presentKey(l), presentValue: ONNX_NAMES.presentValue(l),
  };
}
