/**
 * Mutation checks kept as tests: the fixture models with one deliberately wrong config field (exact
 * GELU for gpt2's tanh form, a wrong norm eps, a wrong RoPE theta, a wrong Llama activation) must
 * FAIL the Hugging Face parity comparisons that the real tests make (model/parity.test.ts on the ts
 * and wasm backends, kernels/native-parity.test.ts, io/onnx.test.ts in onnxruntime), with the same
 * thresholds (parity-check.ts).
 * Each case states the error measured for the mutant, against the tolerance it must exceed.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createBackend } from '../../src/kernels/registry.js';
import { onnxModelBytes } from '../../src/io/onnx.js';
import { loadHfModel } from '../../src/io/hf.js';
import { makeModelConfig, type ModelConfig } from '../../src/model/config.js';
import { fixture, maxAbsDiff } from '../helpers.js';
import { cleanupTmp, idsTensor, session, tmpDir, top1Agreement } from '../io/onnx-ort.js';
import { ONNX_INT8_SIM_TOL, OnnxInt8SimProducts, readInt8Linears } from '../io/onnx-int8-sim.js';
import { TsBackend } from '../../src/kernels/ts/backend.js';
import { HF_LOGIT_TOL, hfLogitDiff, hfReference, loadFixtureModel, type HfModel } from './parity-check.js';

after(cleanupTmp);

interface Mutation {
  label: string;
  model: HfModel;
  edit: (c: ModelConfig) => Partial<ModelConfig>;
  /** the field and value the edit must produce (so a silently ignored edit cannot pass) */
  check: [keyof ModelConfig, unknown];
  /** also exported to ONNX and run in onnxruntime (the tiny models: the teacher's export takes seconds) */
  onnx: boolean;
}

/** Measured max |logit diff| of each mutant (ts backend) in its comment; every one is > 40x its tolerance. */
const MUTATIONS: Mutation[] = [
  // 6.14e-5 vs tol 1.5e-6 (the old tolerance, 1e-4, let it pass)
  { label: 'tiny-gpt2 with exact (erf) GELU instead of gelu_new', model: 'tiny-gpt2', edit: () => ({ act: 'gelu' }), check: ['act', 'gelu'], onnx: true },
  // 2.00e-3
  { label: 'tiny-gpt2 with layer_norm_epsilon 1e-6 instead of 1e-5', model: 'tiny-gpt2', edit: () => ({ normEps: 1e-6 }), check: ['normEps', 1e-6], onnx: true },
  // 5.97e-3
  { label: 'tiny-llama with rms_norm_eps 1e-5 instead of 1e-6', model: 'tiny-llama', edit: () => ({ normEps: 1e-5 }), check: ['normEps', 1e-5], onnx: true },
  // 1.96e-2
  { label: 'tiny-llama with RoPE theta 500000 instead of 10000', model: 'tiny-llama', edit: () => ({ ropeTheta: 500000 }), check: ['ropeTheta', 500000], onnx: true },
  // 3.63e-4: a theta off by 5% is caught too
  { label: 'tiny-llama with RoPE theta 10500 instead of 10000', model: 'tiny-llama', edit: () => ({ ropeTheta: 10500 }), check: ['ropeTheta', 10500], onnx: false },
  // 4.50e-2
  { label: 'tiny-llama with a gelu_tanh MLP instead of SiLU', model: 'tiny-llama', edit: () => ({ act: 'gelu_tanh' }), check: ['act', 'gelu_tanh'], onnx: true },
  // 2.90e-2 vs tol 4e-5
  { label: 'teacher with rms_norm_eps 1e-6 instead of 1e-5', model: 'brown-llama-teacher', edit: () => ({ normEps: 1e-6 }), check: ['normEps', 1e-6], onnx: false },
  // 2.24
  { label: 'teacher with an exact GELU MLP instead of SiLU', model: 'brown-llama-teacher', edit: () => ({ act: 'gelu' }), check: ['act', 'gelu'], onnx: false },
  // 4.52
  { label: 'teacher with RoPE theta 500000 instead of 10000', model: 'brown-llama-teacher', edit: () => ({ ropeTheta: 500000 }), check: ['ropeTheta', 500000], onnx: false },
];

for (const m of MUTATIONS) {
  test(`mutation caught: ${m.label}`, async (t) => {
    const tol = HF_LOGIT_TOL[m.model], seen: string[] = [];
    // the backends of model/parity.test.ts and kernels/native-parity.test.ts; the teacher on one only
    // (each pass takes about a second)
    for (const backendName of m.model === 'brown-llama-teacher' ? ['wasm'] as const : ['ts', 'wasm', 'native'] as const) {
      const be = await createBackend(backendName);
      try {
        const model = loadFixtureModel(m.model, be, m.edit);
        assert.equal(model.config[m.check[0]], m.check[1]);
        const diff = hfLogitDiff(model, m.model);
        model.dispose();
        seen.push(`${backendName} ${diff.toExponential(2)}`);
        assert.ok(diff > tol, `${m.label}: the ${backendName} parity comparison passes (${diff} <= ${tol})`);
      } finally {
        await be.dispose();
      }
    }
    if (m.onnx) {
      const hf = loadHfModel(fixture(m.model));
      const config = makeModelConfig({ ...hf.config, ...m.edit(hf.config) });
      const out = join(tmpDir('mutant'), 'model.onnx');
      writeFileSync(out, onnxModelBytes(config, hf.tensors).bytes);
      const s = await session(out), r = hfReference(m.model);
      const got = (await s.run({ input_ids: idsTensor(r.rows) })).logits.data as Float32Array;
      await s.release();
      const diff = maxAbsDiff(got, r.want);
      seen.push(`onnx ${diff.toExponential(2)}`);
      assert.ok(diff > tol, `${m.label}: the ONNX parity comparison passes (${diff} <= ${tol})`);
    }
    t.diagnostic(`${m.label}: max |logit diff| ${seen.join(', ')} (tol ${tol})`);
  });
}

test('mutation caught: the int8 ONNX export of tiny-gpt2 with exact GELU fails the simulation comparison', async (t) => {
  // io/onnx.test.ts compares the int8 export with the float64 simulation on the fixture's config; the
  // check it replaced (top-1 agreement with the float reference >= 90%) passes this mutant (98.8%)
  const hf = loadHfModel(fixture('tiny-gpt2')), r = hfReference('tiny-gpt2');
  const out = join(tmpDir('mutant-int8'), 'model.onnx');
  writeFileSync(out, onnxModelBytes(makeModelConfig({ ...hf.config, act: 'gelu' }), hf.tensors, { int8: true }).bytes);
  const s = await session(out);
  const got = (await s.run({ input_ids: idsTensor(r.rows) })).logits.data as Float32Array;
  await s.release();
  const model = loadFixtureModel('tiny-gpt2', new TsBackend());
  model.products = new OnnxInt8SimProducts(model, readInt8Linears(out));
  const sim = model.forward(r.rows.flat(), r.B, r.T).slice();
  model.dispose();
  const diff = maxAbsDiff(got, sim), top1 = top1Agreement(got, r.want, 2048);
  t.diagnostic(`int8 exact-GELU mutant: max |logit diff| to the simulation ${diff.toExponential(2)}, top-1 vs the float reference ${(100 * top1).toFixed(1)}%`);
  assert.ok(diff > ONNX_INT8_SIM_TOL['tiny-gpt2'], `the int8 simulation comparison passes the mutant (${diff})`); // measured 1.6e-2
  assert.ok(top1 >= 0.9, `the old check would have caught it too (top-1 ${top1})`);
});

test('mutation harness: the unedited fixtures pass the same comparisons', async () => {
  const be = await createBackend('ts');
  try {
    for (const name of ['tiny-gpt2', 'tiny-llama'] as const) {
      const model = loadFixtureModel(name, be, () => ({}));
      assert.ok(hfLogitDiff(model, name) < HF_LOGIT_TOL[name], name);
      model.dispose();
    }
  } finally {
    await be.dispose();
  }
});
