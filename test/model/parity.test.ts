/** Architecture parity with Hugging Face: logits and greedy output of the fixture models. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createBackend } from '../../src/kernels/registry.js';
import type { Backend } from '../../src/kernels/backend.js';
import { generate } from '../../src/runtime/generate.js';
import { HF_LOGIT_TOL, HF_MODELS, hfLogitDiff, hfReference, loadFixtureModel } from './parity-check.js';

for (const backendName of ['ts', 'wasm'] as const) {
  for (const name of HF_MODELS) {
    test(`${name} logits and greedy output match Hugging Face (${backendName})`, async (t) => {
      const be: Backend = await createBackend(backendName);
      try {
        const model = loadFixtureModel(name, be);
        const diff = hfLogitDiff(model, name), tol = HF_LOGIT_TOL[name];
        t.diagnostic(`${name} (${backendName}): max |logit diff| ${diff.toExponential(3)} (tol ${tol})`);
        assert.ok(diff < tol, `${name}: max |logit diff| ${diff} >= ${tol}`);
        const { prompt, greedy } = hfReference(name);
        const out = generate(model, prompt, { greedy: true, maxNewTokens: greedy.length - prompt.length });
        assert.deepEqual([...prompt, ...out], greedy);
        model.dispose();
      } finally {
        await be.dispose();
      }
    });
  }
}
