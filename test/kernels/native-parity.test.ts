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
import { fixture } from '../helpers.js';
import { HF_LOGIT_TOL, hfLogitDiff, hfReference, loadFixtureModel } from '../model/parity-check.js';
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
  test(`${name} logits and greedy output match Hugging Face (native, ${threads} thread(s))`, async (t) => {
    await withNative(threads, (be) => {
      const model = loadFixtureModel(name, be);
      const diff = hfLogitDiff(model, name), tol = HF_LOGIT_TOL[name];
      t.diagnostic(`${name} (native, ${threads}): max |logit diff| ${diff.toExponential(3)} (tol ${tol})`);
      assert.ok(diff < tol, `${name}: max |logit diff| ${diff} >= ${tol}`);
      const { prompt, greedy } = hfReference(name);
      const out = generate(model, prompt, { greedy: true, maxNewTokens: greedy.length - prompt.length });
      assert.deepEqual([...prompt, ...out], greedy);
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
