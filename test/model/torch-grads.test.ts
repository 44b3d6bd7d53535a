/** Whole-model gradients of the cross-entropy against PyTorch (test/fixtures/grads), both backends. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createBackend } from '../../src/kernels/registry.js';
import { readSafetensors } from '../../src/io/safetensors.js';
import { hfLinks, splitHf } from '../../src/io/hf-names.js';
import { loadModel } from '../../src/model/load.js';
import { fixture, readJson, worstRel } from '../helpers.js';

const manifest = readJson('test/fixtures/grads/manifest.json');

for (const backend of ['ts', 'wasm'] as const) {
  for (const name of ['tiny-gpt2', 'tiny-llama']) {
    test(`${name}: loss and every parameter gradient match PyTorch (${backend})`, async () => {
      const be = await createBackend(backend);
      try {
        const { model } = loadModel(fixture(name), be);
        const ref = manifest.models[name];
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
      } finally {
        await be.dispose();
      }
    });
  }
}
