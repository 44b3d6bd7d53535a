/**
 * `evaluate(..., { positionRanges })` and `qkd eval --by-position`: the per-range perplexities are those
 * of the predictions at each range of window positions, computed here from the model's logits by a
 * plain log-softmax; the ranges tile the window and their token-weighted mean is the overall nll.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fixture } from '../helpers.js';
import { evaluate, positionRangeBounds } from '../../src/eval/perplexity.js';
import { createBackend } from '../../src/kernels/registry.js';
import { loadModel } from '../../src/io/load-model.js';
import { loadTokenizer } from '../../src/data/tokenizer-node.js';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

const TEACHER = fixture('brown-llama-teacher');
const TEXT = fixture('brown-text', 'brown-valid.txt');

test('positionRangeBounds: equal ranges over the predicting positions, bad counts rejected', () => {
  assert.deepEqual(positionRangeBounds(256, 2), [0, 128, 255]);
  assert.deepEqual(positionRangeBounds(9, 4), [0, 2, 4, 6, 8]);
  assert.deepEqual(positionRangeBounds(5, 4), [0, 1, 2, 3, 4]);
  for (const n of [0, 5, 1.5]) assert.throws(() => positionRangeBounds(5, n), /position ranges must be an integer from 1 to 4/);
});

test('evaluate by position equals a plain log-softmax of the logits, range by range', async () => {
  const be = await createBackend('ts', { threads: 1 });
  const { model } = loadModel(TEACHER, be);
  const tok = loadTokenizer(TEACHER);
  const T = 24, W = 5, n = 3;
  const ids = tok.encode(readFileSync(TEXT, 'utf8').slice(0, 4000)).slice(0, T * W + 7); // a tail shorter than a window is dropped
  const tokenNll = new Float32Array(W * T).fill(NaN);
  const r = evaluate(model, ids, { context: T, batch: 2, positionRanges: n, tokenNll });
  assert.throws(() => evaluate(model, ids, { context: T, tokenNll: new Float32Array(W * T - 1) }), /tokenNll: 119 entries for 5 windows of 24/);
  const bounds = positionRangeBounds(T, n), V = model.config.vocabSize;
  const sum = new Array(n).fill(0), hits = new Array(n).fill(0), cnt = new Array(n).fill(0);
  for (let w = 0; w < W; w++) {
    const logits = model.forward(Int32Array.from(ids.slice(w * T, (w + 1) * T)), 1, T);
    for (let p = 0; p < T - 1; p++) {
      const row = logits.subarray(p * V, (p + 1) * V), y = ids[w * T + p + 1];
      let m = -Infinity, best = 0;
      for (let j = 0; j < V; j++) if (row[j] > m) { m = row[j]; best = j; }
      let z = 0;
      for (let j = 0; j < V; j++) z += Math.exp(row[j] - m);
      const k = bounds.findIndex((b, i) => i + 1 < bounds.length && p >= b && p < bounds[i + 1]);
      sum[k] += m + Math.log(z) - row[y];
      assert.ok(Math.abs(tokenNll[w * T + p] - (m + Math.log(z) - row[y])) < 1e-4, `tokenNll at window ${w}, position ${p}`);
      hits[k] += best === y ? 1 : 0;
      cnt[k]++;
    }
  }
  for (let w = 0; w < W; w++) assert.ok(Number.isNaN(tokenNll[w * T + T - 1]), 'a window\'s last entry is left as it was');
  assert.equal(r.byPosition?.length, n);
  let weighted = 0;
  r.byPosition!.forEach((g, k) => {
    assert.equal(g.from, bounds[k]); assert.equal(g.to, bounds[k + 1]);
    assert.equal(g.tokens, cnt[k]);
    assert.ok(Math.abs(g.nll - sum[k] / cnt[k]) < 1e-5, `range ${k}: nll ${g.nll} vs ${sum[k] / cnt[k]}`);
    assert.ok(Math.abs(g.ppl - Math.exp(g.nll)) < 1e-9 * g.ppl);
    assert.equal(g.top1, hits[k] / cnt[k]);
    weighted += g.nll * g.tokens;
  });
  assert.equal(r.tokens, W * (T - 1));
  assert.ok(Math.abs(weighted / r.tokens - r.nll) < 1e-9, 'the ranges\' token-weighted mean is the overall nll');
  assert.equal(evaluate(model, ids, { context: T }).byPosition, undefined, 'no ranges unless asked');
  model.dispose();
  await be.dispose();
});

test('qkd eval --by-position: JSON and text output, too many ranges is a clear error', () => {
  const head = join(mkdtempSync(join(tmpdir(), 'qkd-bypos-')), 'head.txt');
  writeFileSync(head, readFileSync(TEXT, 'utf8').slice(0, 30000));
  const qkd = (...a: string[]) => spawnSync(process.execPath, ['dist/src/cli/main.js', 'eval', '--model', TEACHER, '--text', head, ...a], { encoding: 'utf8' });
  let r = qkd('--context', '32', '--by-position', '2', '--json');
  assert.equal(r.status, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  assert.deepEqual(j.byPosition.map((g: { from: number; to: number }) => [g.from, g.to]), [[0, 16], [16, 31]]);
  assert.equal(j.byPosition[0].tokens + j.byPosition[1].tokens, j.tokens);
  // deeper in the window the teacher sees more context: lower perplexity
  assert.ok(j.byPosition[1].ppl < j.byPosition[0].ppl, JSON.stringify(j.byPosition));
  r = qkd('--context', '32', '--by-position', '2');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /positions 0\.\.15: ppl [\d.]+ {2}top1 [\d.]+ {2}tokens \d+\n {2}positions 16\.\.30: ppl/);
  r = qkd('--context', '32', '--by-position', '40');
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--by-position: 40 ranges for 31 predicting positions \(--context 32\)/);
  r = qkd('--by-position', '0');
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--by-position/);
  rmSync(dirname(head), { recursive: true });
});
