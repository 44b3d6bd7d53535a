/**
 * The Hugging Face logit-parity check shared by the parity tests (model/parity.test.ts, the native
 * backend's, the CLI's, ONNX) and by the mutation tests (model/mutations.test.ts), which run the same
 * comparison on deliberately wrong configs and require it to fail: one place holds the thresholds.
 */
import { loadHfModel } from '../../src/io/hf.js';
import type { Backend } from '../../src/kernels/backend.js';
import { makeModelConfig, type ModelConfig } from '../../src/model/config.js';
import { Transformer } from '../../src/model/transformer.js';
import { fixture, maxAbsDiff, readF32, readJson } from '../helpers.js';

export const HF_MODELS = ['tiny-gpt2', 'tiny-llama', 'brown-llama-teacher'] as const;
export type HfModel = typeof HF_MODELS[number];

/**
 * Max |logit - Hugging Face logit| allowed for qkd's float forward (any backend, in process or through
 * the CLI), about 3x the worst measured (2026-12, 2-core machine, ts / wasm / native backends, 1 and
 * 2 threads): tiny-gpt2 5.07e-7 (ts), tiny-llama 4.77e-7 (ts), teacher 1.53e-5 (wasm).
 */
export const HF_LOGIT_TOL: Record<HfModel, number> = {
  'tiny-gpt2': 1.5e-6,
  'tiny-llama': 1.5e-6,
  'brown-llama-teacher': 4e-5,
};

/** The fixture's reference input rows, logits and greedy case. */
export function hfReference(name: HfModel) {
  const ref = readJson(fixture(name, 'reference.json'));
  const key = name === 'brown-llama-teacher' ? 'logits_input_ids' : 'input_ids';
  const rows: number[][] = Array.isArray(ref[key][0]) ? ref[key] : [ref[key]];
  return {
    rows, B: rows.length, T: rows[0].length, want: readF32(fixture(name, 'reference-logits.f32')),
    prompt: ref.greedy_prompt_ids as number[], greedy: ref.greedy_output_ids as number[],
  };
}

/**
 * The fixture model on `be`, its config optionally edited after loading (the mutation tests' wrong
 * GELU, eps, RoPE theta or activation); the weights are the fixture's.
 */
export function loadFixtureModel(name: HfModel, be: Backend, edit?: (c: ModelConfig) => Partial<ModelConfig>): Transformer {
  const hf = loadHfModel(fixture(name));
  const config = edit ? makeModelConfig({ ...hf.config, ...edit(hf.config) }, `${name} (edited)`) : hf.config;
  const model = new Transformer(be, config);
  model.params.load(hf.tensors, fixture(name));
  return model;
}

/** Max |logit diff| of the model's forward on the fixture's input against the Hugging Face logits. */
export function hfLogitDiff(model: Transformer, name: HfModel): number {
  const r = hfReference(name);
  const logits = model.forward(r.rows.flat(), r.B, r.T);
  return maxAbsDiff(logits.subarray(0, r.B * r.T * model.config.vocabSize), r.want);
}
