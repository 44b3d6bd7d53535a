/**
 * Hugging Face load check (README: transformers loads what qkd saves). test/fixtures/hf-load holds the
 * logits that transformers computed for models written by qkd's save path (make_hf_load.py, which
 * loaded them with AutoModelForCausalLM.from_pretrained and found no missing, unexpected or
 * mis-shaped tensor). Here the same models are written again, checked byte for byte (sha256) against
 * the files transformers read, and qkd's logits for them are compared with transformers'.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadModel } from '../../src/io/load-model.js';
import { TsBackend } from '../../src/kernels/ts/backend.js';
import { HF_LOAD_MODELS, hashModelDir, writeHfLoadModel } from '../hf-load-models.js';
import { maxAbsDiff, readF32, readJson } from '../helpers.js';

const DIR = 'test/fixtures/hf-load';
const manifest = readJson(`${DIR}/manifest.json`);
const tmp = mkdtempSync(join(tmpdir(), 'qkd-hf-load-'));

/**
 * Largest |qkd logit − transformers logit| allowed, per model (float32 both sides, max |logit| 5.3..6.6,
 * where one float32 step is 4.8e-7).
 */
const TOL: Record<string, number> = {
  'llama': 5e-6, // measured 4.1e-6
  'llama-bias-bf16': 4e-6, // measured 3.0e-6
  'gpt2': 3e-6, // measured 2.4e-6
  'llama-int8-sparse': 2e-6, // measured 1.4e-6
};

test('the fixture covers every model the maker writes', () => {
  assert.deepEqual(Object.keys(manifest.models).sort(), Object.keys(HF_LOAD_MODELS).sort());
  assert.deepEqual(Object.keys(TOL).sort(), Object.keys(HF_LOAD_MODELS).sort());
});

for (const name of Object.keys(HF_LOAD_MODELS)) {
  test(`${name}: qkd's logits for the model it saved equal transformers' (${manifest.transformers})`, () => {
    const ref = manifest.models[name], dir = join(tmp, name);
    writeHfLoadModel(name, dir);
    assert.deepEqual(hashModelDir(dir), ref.sha256,
      `${name}: qkd no longer saves the bytes transformers was run on; if the change is intended, rerun ` +
      'test/fixtures/hf-load/make_hf_load.py (needs transformers) and commit its output');
    const ids: number[][] = manifest.input_ids, B = ids.length, T = ids[0].length;
    const { model } = loadModel(dir, new TsBackend());
    assert.equal(ref.class, model.config.family === 'gpt2' ? 'GPT2LMHeadModel' : 'LlamaForCausalLM');
    assert.deepEqual(ref.logits_shape, [B, T, model.config.vocabSize]);
    const d = maxAbsDiff(model.forward(ids.flat(), B, T), readF32(`${DIR}/${ref.logits_file}`));
    assert.ok(d <= TOL[name], `${name}: max |logit difference| ${d.toExponential(2)} > ${TOL[name]}`);
    model.dispose();
  });
}
