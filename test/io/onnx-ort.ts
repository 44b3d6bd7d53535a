/** Helpers for the ONNX export tests: onnxruntime-node sessions, feeds, comparisons, made-up models. */
import * as ort from 'onnxruntime-node';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TsBackend } from '../../src/kernels/ts/backend.js';
import { makeModelConfig, type ModelConfig, type ModelConfigInput } from '../../src/model/config.js';
import { initParams } from '../../src/model/init.js';
import { Transformer } from '../../src/model/transformer.js';
import { saveHfModel } from '../../src/io/hf.js';
import { kvNames } from '../../src/io/onnx.js';

export { ort };

const made: string[] = [];

/** A fresh temporary directory, removed by cleanupTmp (exports of the teacher are ~27 MB). */
export function tmpDir(tag: string): string {
  const d = mkdtempSync(join(tmpdir(), `qkd-onnx-${tag}-`));
  made.push(d);
  return d;
}

export function cleanupTmp(): void {
  for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true });
}

export async function session(path: string, threads = 1): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(path, { intraOpNumThreads: threads, interOpNumThreads: 1 });
}

export function idsTensor(rows: number[][]): ort.Tensor {
  return new ort.Tensor('int64', BigInt64Array.from(rows.flat().map(BigInt)), [rows.length, rows[0].length]);
}

/** Empty past key/values (B, KV, 0, D) for every layer of a kvCache export. */
export function emptyPast(c: ModelConfig, B: number): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {};
  for (let l = 0; l < c.nLayer; l++) {
    const n = kvNames(l);
    for (const k of [n.pastKey, n.pastValue]) feeds[k] = new ort.Tensor('float32', new Float32Array(0), [B, c.nKVHead, 0, c.headDim]);
  }
  return feeds;
}

/** The present outputs of one run as the past feeds of the next. */
export function nextPast(c: ModelConfig, out: ort.InferenceSession.OnnxValueMapType): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {};
  for (let l = 0; l < c.nLayer; l++) {
    const n = kvNames(l);
    feeds[n.pastKey] = out[n.presentKey] as ort.Tensor;
    feeds[n.pastValue] = out[n.presentValue] as ort.Tensor;
  }
  return feeds;
}

export function argmax(a: ArrayLike<number>, off: number, n: number): number {
  let best = 0;
  for (let j = 1; j < n; j++) if (a[off + j] > a[off + best]) best = j;
  return best;
}

/** Fraction of rows (of width V) whose argmax agrees. */
export function top1Agreement(a: ArrayLike<number>, b: ArrayLike<number>, V: number): number {
  const rows = a.length / V;
  let same = 0;
  for (let r = 0; r < rows; r++) if (argmax(a, r * V, V) === argmax(b, r * V, V)) same++;
  return same / rows;
}

/** A random model of the given config written as a model directory; returns the dir and the config. */
export function writeRandomModel(tag: string, input: ModelConfigInput, seed = 7): { dir: string; config: ModelConfig } {
  const config = makeModelConfig(input, `${tag} config`);
  const model = new Transformer(new TsBackend(), config);
  initParams(model.params, seed, 0.08);
  const tensors = new Map<string, Float32Array>();
  for (const e of model.params.entries) tensors.set(e.name, model.params.get(e.name).slice());
  // norms away from 1 and non-zero biases, so that a mixed-up weight cannot hide
  for (const [name, t] of tensors) {
    if (name.endsWith('norm.weight')) for (let i = 0; i < t.length; i++) t[i] = 1 + 0.3 * Math.sin(i + name.length);
    if (name.endsWith('.bias')) for (let i = 0; i < t.length; i++) t[i] = 0.05 * Math.cos(3 * i + name.length);
  }
  const dir = join(tmpDir(tag), 'model');
  saveHfModel(dir, config, tensors);
  model.dispose();
  return { dir, config };
}
