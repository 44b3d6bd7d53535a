/** Shared check: a model's loss and every parameter gradient against the PyTorch fixtures. */
import assert from 'node:assert/strict';
import { readSafetensors } from '../src/io/safetensors.js';
import { hfLinks, splitHf } from '../src/io/hf-names.js';
import type { Transformer } from '../src/model/transformer.js';
import { readJson, worstRel } from './helpers.js';

/** Runs forward + CE backward on the fixture ids of `name` and compares loss and all gradients. */
export function assertGradsMatchTorch(model: Transformer, name: string): void {
  const ref = readJson('test/fixtures/grads/manifest.json').models[name];
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
}
