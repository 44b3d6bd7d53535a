/** Architecture parity with Hugging Face: logits and greedy decoding of the fixture models. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createBackend } from '../../src/kernels/registry.js';
import type { Backend } from '../../src/kernels/backend.js';
import { loadModel } from '../../src/io/load-model.js';
import { generate } from '../../src/runtime/generate.js';
import { fixture, maxAbsDiff, readF32, readJson } from '../helpers.js';

const CASES = [
  { name: 'tiny-gpt2', ids: 'input_ids', tol: 1e-4 },
  { name: 'tiny-llama', ids: 'input_ids', tol: 1e-4 },
  { name: 'brown-llama-teacher', ids: 'logits_input_ids', tol: 1e-3 },
] as const;

for (const backendName of ['ts', 'wasm'] as const) {
  for (const c of CASES) {
    test(`${c.name} logits and greedy output match Hugging Face (${backendName})`, async () => {
      const be: Backend = await createBackend(backendName);
      try {
        const dir = fixture(c.name);
        const ref = readJson(fixture(c.name, 'reference.json'));
        const { model } = loadModel(dir, be);
        const rows: number[][] = Array.isArray(ref[c.ids][0]) ? ref[c.ids] : [ref[c.ids]];
        const B = rows.length, T = rows[0].length;
        const logits = model.forward(rows.flat(), B, T);
        const want = readF32(fixture(c.name, 'reference-logits.f32'));
        const diff = maxAbsDiff(logits.subarray(0, B * T * model.config.vocabSize), want);
        assert.ok(diff < c.tol, `${c.name}: max |logit diff| ${diff} >= ${c.tol}`);
        const prompt: number[] = ref.greedy_prompt_ids;
        const expected: number[] = ref.greedy_output_ids;
        const out = generate(model, prompt, { greedy: true, maxNewTokens: expected.length - prompt.length });
        assert.deepEqual([...prompt, ...out], expected);
        model.dispose();
      } finally {
        await be.dispose();
      }
    });
  }
}
