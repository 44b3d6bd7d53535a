/**
 * The task suite against outside references: the same items for the same text (hashes and token
 * ids committed in test/fixtures/tasks/requests.json), per-item log-likelihoods of the fixture
 * teacher equal to PyTorch's (reference.json, made by make_reference.py beside it) to 1e-4, and
 * items drawn from the held-out split only.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { brownSplitText } from '../../src/data/brown.js';
import { loadTokenizer } from '../../src/data/tokenizer-node.js';
import { buildSuite, encodeSuite, scoreRequests, type LlRequest } from '../../src/eval/tasks/index.js';
import { createBackend } from '../../src/kernels/registry.js';
import { loadModel } from '../../src/io/load-model.js';
import { fixture, readJson } from '../helpers.js';
import { REFERENCE_ITEMS, REQUESTS_PATH, requestsJson } from './tasks-fixture.js';

const TEACHER = fixture('brown-llama-teacher');
const committed = readFileSync(REQUESTS_PATH, 'utf8');
const req = JSON.parse(committed) as { suite: string; requests: { task: string; item: number; context: number[]; continuation: number[] }[] };
const ref = readJson<{ suite: string; ll: number[]; greedy: boolean[] }>('test/fixtures/tasks/reference.json');
const TOL = 1e-4;

test('the suite is deterministic: same text -> same items, ids and hashes as committed', () => {
  // requests.json was written by another process, earlier: equal hashes and ids mean the same items
  const a = buildSuite({ limit: REFERENCE_ITEMS });
  assert.equal(a.hash, req.suite, 'suite hash differs from requests.json: regenerate the fixture (see make_reference.py)');
  assert.equal(ref.suite, req.suite, 'reference.json was made for another requests.json');
  assert.equal(requestsJson(a), committed, 'token ids of the requests differ from the committed ones');
  for (const t of a.tasks) {
    // hypernym items come in Latin squares of four
    assert.equal(t.items.length, t.name === 'hypernym' ? 48 : REFERENCE_ITEMS, `${t.name}: number of items`);
  }
  const other = buildSuite({ limit: REFERENCE_ITEMS, seed: 1, tasks: ['word-order'] });
  assert.notEqual(other.tasks[0].hash, a.tasks.find((t) => t.name === 'word-order')!.hash, 'another seed draws other items');
});

test('per-item log-likelihoods of the teacher match PyTorch to 1e-4 (every task, 50 items each, hypernym 48)', async () => {
  const be = await createBackend('wasm', { threads: 1 });
  try {
    const { model } = loadModel(TEACHER, be);
    // requests of one item share their context array, as encodeSuite makes them: the KV-cache path runs too
    const shared = new Map<string, number[]>();
    const reqs: LlRequest[] = req.requests.map((r) => {
      const key = `${r.task}:${r.item}`;
      if (!shared.has(key)) shared.set(key, r.context);
      return { context: shared.get(key)!, continuation: r.continuation };
    });
    const got = scoreRequests(model, reqs, { maxLen: 512 });
    const worst = new Map<string, number>();
    got.forEach((g, i) => {
      const task = req.requests[i].task, d = Math.abs(g.ll - ref.ll[i]);
      worst.set(task, Math.max(worst.get(task) ?? 0, d));
      assert.equal(g.greedy, ref.greedy[i], `request ${i} (${task}): greedy ${g.greedy} vs PyTorch ${ref.greedy[i]}`);
    });
    const report = [...worst].map(([t, d]) => `${t} ${d.toExponential(2)}`).join(', ');
    process.stderr.write(`tasks vs PyTorch, max |ll diff| per task: ${report}\n`);
    assert.equal(worst.size, 7);
    for (const [t, d] of worst) assert.ok(d <= TOL, `${t}: max |ll - PyTorch| ${d} > ${TOL}`);
    model.dispose();
  } finally { await be.dispose(); }
});

test('the shared-context (KV cache) path and the batched path give the same scores', async () => {
  const be = await createBackend('wasm', { threads: 1 });
  try {
    const { model } = loadModel(TEACHER, be);
    const ns = req.requests.filter((r) => r.task === 'next-sentence').slice(0, 12);
    const context = ns[0].context;
    const sharedReqs = ns.slice(0, 4).map((r) => ({ context, continuation: r.continuation }));
    const a = scoreRequests(model, sharedReqs);
    const b = scoreRequests(model, sharedReqs.map((r) => ({ context: [...r.context], continuation: r.continuation })));
    a.forEach((x, i) => {
      assert.ok(Math.abs(x.ll - b[i].ll) < 1e-4, `choice ${i}: ${x.ll} vs ${b[i].ll}`);
      assert.equal(x.greedy, b[i].greedy);
    });
    model.dispose();
  } finally { await be.dispose(); }
});

test('items come from the held-out test split, never from the training text', () => {
  const suite = buildSuite();
  const testText = brownSplitText('test'), trainText = brownSplitText('train');
  let checked = 0, inTest = 0;
  for (const t of suite.tasks) {
    if (t.kind !== 'mc' || t.name === 'hypernym') continue; // hypernym items come from WordNet, not from text
    for (const it of t.items) {
      const good = it.choices[it.gold].trim();
      checked++;
      if (testText.includes(good)) inTest++;
      assert.ok(!trainText.includes(good), `${t.name}: "${good}" occurs in the training split`);
    }
  }
  // a sentence rendered alone may pair its quote marks differently from its whole paragraph
  assert.ok(inTest / checked > 0.95, `${inTest}/${checked} right answers found verbatim in the test split`);
  for (const t of suite.tasks) {
    if (t.kind === 'cloze') for (const it of t.items) assert.ok(!trainText.includes(it.context.slice(-120) + it.target));
  }
});
