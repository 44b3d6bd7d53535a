/**
 * The native backend end to end, as test/model/parity.test.ts and torch-grads.test.ts check the others:
 * Hugging Face logits and greedy output of the tiny fixtures, and the PyTorch loss and parameter
 * gradients of tiny-llama (the training path: transposed and accumulating products). Fails, never
 * skips, when the addon is not built.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createBackend } from '../../src/kernels/registry.js';
import type { Backend } from '../../src/kernels/backend.js';
import { readSafetensors } from '../../src/io/safetensors.js';
import { hfLinks, splitHf } from '../../src/io/hf-names.js';
import { loadModel } from '../../src/model/load.js';
import { generate } from '../../src/runtime/generate.js';
import { fixture, maxAbsDiff, readF32, readJson, worstRel } from '../helpers.js';

async function withNative(threads: number, body: (be: Backend) => void): Promise<void> {
  let be: Backend;
  try {
    be = await createBackend('native', { threads });
  } catch (e) {
    assert.fail(`the native backend is not available: ${String(e)}`);
  }
  try { body(be); } finally { await be.dispose(); }
}

for (const [name, threads] of [['tiny-llama', 1], ['tiny-llama', 2], ['tiny-gpt2', 2]] as const) {
  test(`${name} logits (within 1e-4) and greedy output match Hugging Face (native, ${threads} thread(s))`, async () => {
    await withNative(threads, (be) => {
      const ref = readJson(fixture(name, 'reference.json'));
      const { model } = loadModel(fixture(name), be);
      const rows: number[][] = Array.isArray(ref.input_ids[0]) ? ref.input_ids : [ref.input_ids];
      const B = rows.length, T = rows[0].length;
      const logits = model.forward(rows.flat(), B, T);
      const diff = maxAbsDiff(logits.subarray(0, B * T * model.config.vocabSize), readF32(fixture(name, 'reference-logits.f32')));
      assert.ok(diff < 1e-4, `${name}: max |logit diff| ${diff} >= 1e-4`);
      const prompt: number[] = ref.greedy_prompt_ids, expected: number[] = ref.greedy_output_ids;
      const out = generate(model, prompt, { greedy: true, maxNewTokens: expected.length - prompt.length });
      assert.deepEqual([...prompt, ...out], expected);
      model.dispose();
    });
  });
}

test('tiny-llama: loss and every parameter gradient match PyTorch (native, 2 threads)', async () => {
  const manifest = readJson('test/fixtures/grads/manifest.json'), ref = manifest.models['tiny-llama'];
  await withNative(2, (be) => {
    const { model } = loadModel(fixture('tiny-llama'), be);
    const rows: number[][] = ref.input_ids, B = rows.length, T = rows[0].length;
    const targets = rows.flatMap((r) => r.map((_, t) => (t + 1 < T ? r[t + 1] : -1)));
    model.params.zeroGrad();
    model.forward(rows.flat(), B, T);
    const loss = model.crossEntropy(targets, true);
    assert.ok(Math.abs(loss - ref.loss) < 1e-5, `loss ${loss} vs PyTorch ${ref.loss}`);
    const grads = readSafetensors(`test/fixtures/grads/${ref.file}`);
    let checked = 0;
    for (const link of hfLinks(model.config)) {
      const key = grads.has(link.prefix + link.hf) ? link.prefix + link.hf : link.hf;
      for (const [internal, want] of splitHf(link, grads.getF32(key))) {
        const w = worstRel(model.params.g(internal), want, 2e-6, 1e-3);
        assert.ok(w <= 1, `${internal} (${key}): worst relative error ${w.toFixed(2)}`);
        checked++;
      }
    }
    assert.equal(checked, model.params.entries.length);
    model.dispose();
  });
});
