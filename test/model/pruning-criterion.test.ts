/**
 * The activation pruning criterion (sparsity.criterion: activation, model/student.ts): the masks rank
 * |w_ij| times the RMS of input column j over the recorded training forwards, checked against that
 * score computed here from the inputs the test feeds; magnitude ranking when nothing was recorded;
 * the statistics start over after each mask update and live in the checkpoint buffers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TsBackend } from '../../src/kernels/ts/backend.js';
import { makeModelConfig } from '../../src/model/config.js';
import { initParams } from '../../src/model/init.js';
import { StudentModel } from '../../src/model/student.js';
import { Transformer } from '../../src/model/transformer.js';
import { Pruner } from '../../src/sparse/pruning.js';
import { keepCount } from '../../src/sparse/mask.js';

const config = makeModelConfig({ family: 'llama', dim: 16, nLayer: 1, nHead: 2, nKVHead: 1, headDim: 8, ffnDim: 32, maxPos: 16,
  norm: 'rmsnorm', normEps: 1e-5, pos: 'rope', ropeTheta: 10000, act: 'silu', gated: true, bias: false, tieEmbeddings: true, vocabSize: 64 });
const sparsity = { target: 0.75, granularity: 'unstructured' as const, block: 4, n: 2, m: 4, scope: 'per-matrix' as const };

function student(criterion: 'magnitude' | 'activation'): StudentModel {
  const model = new Transformer(new TsBackend(), config);
  initParams(model.params, 7, 0.2);
  return new StudentModel(model, { quant: null, sparsity }, criterion);
}

/** The kept positions of a mask. */
const kept = (m: Float32Array) => [...m.keys()].filter((i) => m[i] === 1);

/** The positions of the k largest values of a score (ties: lower index first). */
function topK(score: Float32Array, k: number): number[] {
  return [...score.keys()].sort((a, b) => score[b] - score[a] || a - b).slice(0, k).sort((a, b) => a - b);
}

test('activation criterion: masks keep the largest |w| · input RMS, from the recorded forwards only', () => {
  const s = student('activation'), name = 'layers.0.up.weight';
  const [O, I] = s.model.params.entry(name).shape;
  const w0 = s.model.params.get(name).slice();
  // record two forwards, and the inputs of `up` as the products see them
  const seen: Float32Array[] = [];
  const products = s.model.products as unknown as { linear: (...a: unknown[]) => void };
  const linear = products.linear.bind(products);
  products.linear = (out, x, n, bias, N, II, OO) => {
    if (n === name) seen.push((x as Float32Array).slice(0, (N as number) * (II as number)));
    linear(out, x, n, bias, N, II, OO);
  };
  s.refresh();
  s.recording = true;
  s.model.forward(Int32Array.from({ length: 12 }, (_, i) => (i * 5) % 64), 2, 6);
  s.model.forward(Int32Array.from({ length: 12 }, (_, i) => (i * 11 + 3) % 64), 2, 6);
  s.recording = false;
  s.model.forward(Int32Array.from({ length: 12 }, (_, i) => i), 2, 6); // not recorded
  assert.equal(seen.length, 3);
  const sq = new Float64Array(I);
  for (const x of seen.slice(0, 2)) for (let i = 0; i < x.length; i++) sq[i % I] += x[i] * x[i];
  const score = Float32Array.from(w0, (v, i) => Math.abs(v) * Math.sqrt(sq[i % I] / 24));
  s.updateMasks(0.75);
  const mask = s.pruning!.masks.get(name)!, k = keepCount(O * I, 0.75);
  assert.deepEqual(kept(mask), topK(score, k));
  // and it differs from the magnitude mask: the criterion changes what is kept
  assert.notDeepEqual(kept(mask), topK(Float32Array.from(w0, Math.abs), k));
  // the weights are masked, the statistics start over (and are checkpoint buffers)
  const w = s.model.params.get(name);
  for (let i = 0; i < w.length; i++) assert.equal(w[i], mask[i] ? w0[i] : 0);
  const st = s.stateBuffers();
  assert.ok(st[`inputsq:${name}`].every((v) => v === 0) && st['inputsq:count'][0] === 0);
});

test('activation criterion with nothing recorded, and the magnitude criterion, rank |w|', () => {
  for (const crit of ['activation', 'magnitude'] as const) {
    const s = student(crit), name = 'layers.0.q.weight', w0 = s.model.params.get(name).slice();
    s.updateMasks(0.75);
    assert.deepEqual(kept(s.pruning!.masks.get(name)!), topK(Float32Array.from(w0, Math.abs), keepCount(w0.length, 0.75)), crit);
    assert.equal(Object.keys(s.stateBuffers()).some((k) => k.startsWith('inputsq:')), crit === 'activation');
  }
});

test('Pruner.update ranks by a given score and masks the weights', () => {
  const p = new Pruner([{ name: 'a', rows: 2, cols: 4 }], { granularity: { kind: 'unstructured' }, scope: 'per-matrix' });
  const w = Float32Array.from([8, 7, 6, 5, 4, 3, 2, 1]), score = Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8]);
  p.update(0.5, () => w, () => score);
  assert.deepEqual([...w], [0, 0, 0, 0, 4, 3, 2, 1]);
});
