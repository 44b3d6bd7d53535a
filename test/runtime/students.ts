/**
 * Test helper: small compressed students made in milliseconds with the library's own QAT state
 * (StudentModel: magnitude masks + fake quantization with max-abs or LSQ scales), saved exactly as
 * `qkd distill` saves them (effective weights, quant_scales.safetensors, tokenizer.json). The weights
 * are random, not trained, which is all the export and runtime tests need.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodeScales } from '../../src/io/quant-scales.js';
import { SCALES_FILE } from '../../src/model/compression.js';
import { StudentModel } from '../../src/model/student.js';
import { saveHfModel } from '../../src/io/hf.js';
import { TsBackend } from '../../src/kernels/ts/backend.js';
import { makeModelConfig, type ModelConfigInput } from '../../src/model/config.js';
import { initParams } from '../../src/model/init.js';
import { Transformer } from '../../src/model/transformer.js';
import { fixture } from '../helpers.js';

export interface StudentSpec {
  arch?: 'llama' | 'student';
  bits?: number;
  embedBits?: number;
  actBits?: number;
  scheme?: 'maxabs' | 'lsq';
  /** null: no pruning. */
  sparsity?: { target: number; granularity: 'unstructured' | 'block' | 'nm'; block?: number } | null;
  /** false: a float model (no quant block). */
  quant?: boolean;
  seed?: number;
  attnTopK?: number;
}

const TINY: Record<'llama' | 'student', Omit<ModelConfigInput, 'vocabSize'>> = {
  llama: { family: 'llama', dim: 32, nLayer: 2, nHead: 4, nKVHead: 2, headDim: 8, ffnDim: 64, maxPos: 64, norm: 'rmsnorm',
    normEps: 1e-5, pos: 'rope', ropeTheta: 10000, act: 'silu', gated: true, bias: false, tieEmbeddings: true },
  student: { family: 'student', dim: 32, nLayer: 2, nHead: 2, nKVHead: 2, headDim: 16, ffnDim: 128, maxPos: 64,
    norm: 'layernorm', normEps: 1e-5, pos: 'learned', act: 'relu', gated: false, bias: true, tieEmbeddings: false },
};

/** Writes a student model directory and returns it. */
export function makeStudent(dir: string, s: StudentSpec = {}): string {
  const config = makeModelConfig({ ...TINY[s.arch ?? 'llama'], vocabSize: 2048, attnTopK: s.attnTopK ?? 0 });
  const model = new Transformer(new TsBackend(), config);
  initParams(model.params, s.seed ?? 1, 0.2);
  // non-trivial norm weights and biases, so a runtime that skipped them would be caught
  for (const e of model.params.entries) {
    const v = model.params.get(e.name);
    if (/norm\.(weight|bias)$|\.bias$/.test(e.name)) for (let i = 0; i < v.length; i++) v[i] += 0.1 * Math.sin(i + e.size);
  }
  const quant = s.quant === false ? null
    : { bits: s.bits ?? 8, embedBits: s.embedBits ?? 8, actBits: s.actBits ?? 8, scheme: s.scheme ?? 'maxabs', scaleLrRatio: 1 };
  const sp = s.sparsity === undefined ? { target: 0.9, granularity: 'block' as const, block: 4 } : s.sparsity;
  const sparsity = sp ? { target: sp.target, granularity: sp.granularity, block: sp.block ?? 4, n: 2, m: 4,
    scope: 'per-matrix' as const, start: 0.1, end: 0.7, every: 25 } : null;
  const comp = new StudentModel(model, { quant, sparsity });
  if (sparsity) comp.updateMasks(sparsity.target);
  const scales = comp.scaleMap();
  const files: Record<string, string | Uint8Array> = { 'tokenizer.json': readFileSync(fixture('tokenizer', 'tokenizer.json')) };
  if (quant?.scheme === 'lsq') {
    files[SCALES_FILE] = encodeScales(scales);
  }
  const saved = comp.savedConfig(s.attnTopK ?? 0);
  saveHfModel(dir, saved, comp.effectiveMap(), { files });
  comp.dispose();
  return dir;
}

export const modelFile = (dir: string) => join(dir, 'model.safetensors');
