/** Backward pass of every architecture variant against central finite differences (ts backend). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TsBackend } from '../../src/kernels/ts/backend.js';
import { makeModelConfig, type ModelConfigInput } from '../../src/model/config.js';
import { initParams } from '../../src/model/init.js';
import { Transformer } from '../../src/model/transformer.js';
import { Rng } from '../../src/tensor/random.js';

const base = { vocabSize: 11, dim: 8, nLayer: 2, nHead: 2, nKVHead: 2, headDim: 4, ffnDim: 12, maxPos: 16, normEps: 1e-5 };
const VARIANTS: Record<string, ModelConfigInput> = {
  'llama (rmsnorm, rope, gqa, swiglu, untied)': { ...base, family: 'llama', nKVHead: 1, norm: 'rmsnorm', pos: 'rope',
    act: 'silu', gated: true, bias: false, tieEmbeddings: false },
  'gpt2 (layernorm, learned pos, gelu_tanh, bias, tied)': { ...base, family: 'gpt2', norm: 'layernorm', pos: 'learned',
    act: 'gelu_tanh', gated: false, bias: true, tieEmbeddings: true },
  'student (relu, exact gelu off, tied)': { ...base, family: 'student', norm: 'layernorm', pos: 'learned', act: 'relu',
    gated: false, bias: true, tieEmbeddings: true },
  'gelu exact, rope, mha': { ...base, family: 'llama', norm: 'rmsnorm', pos: 'rope', act: 'gelu', gated: false,
    bias: true, tieEmbeddings: false },
};

for (const [label, cfg] of Object.entries(VARIANTS)) {
  test(`backward matches finite differences: ${label}`, () => {
    const be = new TsBackend();
    const m = new Transformer(be, makeModelConfig(cfg));
    initParams(m.params, 7, 0.3);
    // perturb norm weights and biases too, so their gradients are exercised away from 1 / 0
    const rng = new Rng(3);
    for (let i = m.params.decayCount; i < m.params.size; i++) m.params.data[i] += 0.2 * rng.normal();
    const B = 2, T = 5;
    const ids = Array.from({ length: B * T }, () => rng.int(cfg.vocabSize));
    const tg = Array.from({ length: B * T }, (_, i) => (i % T === 3 ? -1 : rng.int(cfg.vocabSize)));
    const loss = () => { m.forward(ids, B, T); return m.crossEntropy(tg); };
    m.params.zeroGrad();
    m.forward(ids, B, T);
    m.crossEntropy(tg, true);
    const grad = m.params.grad.slice();
    const data = m.params.data, eps = 1e-2;
    let checked = 0;
    for (const e of m.params.entries) {
      for (let k = 0; k < 4; k++) {
        const i = e.offset + rng.int(e.size), old = data[i];
        data[i] = old + eps; const lp = loss();
        data[i] = old - eps; const lm = loss();
        data[i] = old;
        const fd = (lp - lm) / (2 * eps);
        assert.ok(Math.abs(fd - grad[i]) <= 2e-3 + 3e-2 * Math.abs(fd),
          `${e.name}[${i - e.offset}]: backward ${grad[i]} vs finite difference ${fd}`);
        checked++;
      }
    }
    assert.ok(checked >= 4 * m.params.entries.length);
  });
}
