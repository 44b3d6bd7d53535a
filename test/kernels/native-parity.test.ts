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
import { loadModel } from '../../src/io/load-model.js';
import { generate } from '../../src/runtime/generate.js';
import { fixture, maxAbsDiff, readF32, readJson } from '../helpers.js';
import { assertGradsMatchTorch } from '../torch-grads.js';

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
  await withNative(2, (be) => {
    const { model } = loadModel(fixture('tiny-llama'), be);
    assertGradsMatchTorch(model, 'tiny-llama');
    model.dispose();
  });
});
