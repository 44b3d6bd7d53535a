/**
 * Sampling checked by value, not only by determinism: top-k 1 is greedy; every sampled id lies in the
 * top-k / top-p set; the empirical distribution follows softmax(z / T) over that set; the repetition
 * penalty follows its formula (divide positive logits, multiply negative ones) on fixed logits.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pickToken, rng } from '../../src/runtime/generate.js';

const logits = Float32Array.from([2.0, -1.0, 0.5, 3.0, 1.0, -0.5, 2.5, 0.0]); // order: 3, 6, 0, 4, 2, 7, 5, 1
const ORDER = [3, 6, 0, 4, 2, 7, 5, 1];

function draws(o: Parameters<typeof pickToken>[2], n: number, history: number[] = []): number[] {
  const r = rng(7);
  return Array.from({ length: n }, () => pickToken(logits, history, o, r));
}

function softmax(z: number[], T: number): number[] {
  const m = Math.max(...z), e = z.map((v) => Math.exp((v - m) / T)), s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

test('sampling: top-k 1 and temperature 0 are greedy', () => {
  assert.deepEqual(new Set(draws({ topK: 1, temperature: 1.5 }, 200)), new Set([3]));
  assert.deepEqual(new Set(draws({ temperature: 0 }, 50)), new Set([3]));
  assert.equal(pickToken(logits, [], { greedy: true }, rng(1)), 3);
});

test('sampling: every id inside the top-k set, with softmax(z/T) frequencies over it', () => {
  const n = 20000, T = 0.8, got = draws({ topK: 3, temperature: T }, n);
  const allowed = ORDER.slice(0, 3);
  assert.ok(got.every((id) => allowed.includes(id)), 'only the 3 most likely ids');
  const p = softmax(allowed.map((j) => logits[j]), T);
  allowed.forEach((id, i) => {
    const f = got.filter((x) => x === id).length / n, se = Math.sqrt((p[i] * (1 - p[i])) / n);
    assert.ok(Math.abs(f - p[i]) < 5 * se, `id ${id}: frequency ${f.toFixed(4)} vs p ${p[i].toFixed(4)}`);
  });
});

test('sampling: top-p keeps the smallest prefix whose mass reaches p', () => {
  const T = 1, p = softmax(ORDER.map((j) => logits[j]), T);
  // cumulative mass of the sorted ids; top-p 0.7 needs the first k ids with mass >= 0.7
  let acc = 0, k = 0;
  while (acc < 0.7) acc += p[k++];
  const got = draws({ topP: 0.7, temperature: T }, 5000), allowed = new Set(ORDER.slice(0, k));
  assert.ok(got.every((id) => allowed.has(id)), `ids outside the top-p set of ${k}: ${[...new Set(got)].filter((x) => !allowed.has(x))}`);
  assert.equal(new Set(got).size, k, 'every id of the set is drawn');
});

test('sampling: the repetition penalty divides positive logits and multiplies negative ones', () => {
  // id 3 (logit 3.0) penalised by 2 -> 1.5, below id 6 (2.5): greedy switches to 6
  assert.equal(pickToken(logits, [3], { greedy: true, repetitionPenalty: 2 }, rng(1)), 6);
  // penalty 1.1: 3.0/1.1 = 2.727 still above 2.5
  assert.equal(pickToken(logits, [3], { greedy: true, repetitionPenalty: 1.1 }, rng(1)), 3);
  // a negative logit seen before gets more negative: with top-k 2 among {5: -0.5, 1: -1.0} after masking the rest
  const neg = Float32Array.from([-5, -1.0, -5, -5, -5, -0.5, -5, -5]);
  assert.equal(pickToken(neg, [5], { greedy: true, repetitionPenalty: 3 }, rng(1)), 1); // -0.5·3 = -1.5 < -1.0
  // sampled frequencies follow the penalised logits
  const n = 20000, r = rng(3), pen = 2, z = Array.from(logits);
  z[3] /= pen; z[1] *= pen;
  const got = Array.from({ length: n }, () => pickToken(logits, [3, 1, 3], { temperature: 1, repetitionPenalty: pen }, r));
  const pz = softmax(z, 1);
  for (const id of [3, 6, 1]) {
    const f = got.filter((x) => x === id).length / n, se = Math.sqrt((pz[id] * (1 - pz[id])) / n);
    assert.ok(Math.abs(f - pz[id]) < 5 * se + 1e-4, `id ${id}: ${f.toFixed(4)} vs ${pz[id].toFixed(4)}`);
  }
});
