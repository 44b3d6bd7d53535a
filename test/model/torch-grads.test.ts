/** Whole-model gradients of the cross-entropy against PyTorch (test/fixtures/grads), both backends. */
import { test } from 'node:test';
import { createBackend } from '../../src/kernels/registry.js';
import { loadModel } from '../../src/io/load-model.js';
import { fixture } from '../helpers.js';
import { assertGradsMatchTorch } from '../torch-grads.js';

for (const backend of ['ts', 'wasm'] as const) {
  for (const name of ['tiny-gpt2', 'tiny-llama']) {
    test(`${name}: loss and every parameter gradient match PyTorch (${backend})`, async () => {
      const be = await createBackend(backend);
      try {
        const { model } = loadModel(fixture(name), be);
        assertGradsMatchTorch(model, name);
        model.dispose();
      } finally {
        await be.dispose();
      }
    });
  }
}
