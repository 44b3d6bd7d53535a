/**
 * The tasks are not solvable by surface cues: models that see only length (uniform logits), word
 * identity (a context-free unigram) or the previous token (a random bigram) score at chance within
 * 2 standard errors on every multiple-choice task of the default suite. Plus the construction
 * invariants (balanced agreement classes, one-word edits, length-matched distractors, cloze targets
 * in context), the rolling windows of long chunks, the bootstrap, and a user's own text.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadTokenizer } from '../../src/data/tokenizer-node.js';
import { bootstrapStderr, buildSuite, evaluateTasks, type TaskSuite } from '../../src/eval/tasks/index.js';
import { splitLong } from '../../src/eval/tasks/score.js';
import type { McItem } from '../../src/eval/tasks/types.js';
import { utf8Bytes } from '../../src/eval/tasks/util.js';
import type { KVCache } from '../../src/nn/kv-cache.js';
import type { CausalLM } from '../../src/runtime/generate.js';
import { Rng } from '../../src/tensor/random.js';
import { fixture } from '../helpers.js';

const tok = loadTokenizer(fixture('tokenizer'));
const V = 2048;
const MC = ['next-sentence', 'agr-det-noun', 'agr-subj-verb', 'word-order', 'hypernym'] as const;
const suite = buildSuite({ tasks: [...MC] });

/** A CausalLM whose logits row at each position is `row(id)` of the token there (no real network). */
function fakeLM(row: (id: number) => Float32Array): CausalLM {
  const config = { vocabSize: V, maxPos: 512 } as CausalLM['config'];
  return {
    config, backend: { free() {} } as unknown as CausalLM['backend'],
    newCache: (B: number, maxT = 512): KVCache => ({ B, maxT, length: 0, k: [], v: [] }),
    forward(ids, B, T, opt) {
      const out = new Float32Array(B * T * V); // (B·T, V)
      for (let i = 0; i < B * T; i++) out.set(row(ids[i]), i * V);
      if (opt?.cache) opt.cache.length += T;
      return out;
    },
  };
}

function gaussian(n: number, seed: number, std: number): Float32Array {
  const r = new Rng(seed), a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = r.normal() * std;
  return a;
}

const zeros = new Float32Array(V), unigram = gaussian(V, 7, 2), bigram = gaussian(V * V, 8, 2);
const CUE_MODELS: [string, CausalLM][] = [
  ['length only (uniform logits)', fakeLM(() => zeros)],
  ['word identity (context-free unigram)', fakeLM(() => unigram)],
  ['previous token (random bigram)', fakeLM((id) => bigram.subarray(id * V, (id + 1) * V))],
];

for (const [label, model] of CUE_MODELS) {
  test(`a model that sees only ${label} sits at chance on every multiple-choice task`, () => {
    const r = evaluateTasks(model, suite, { tokenizer: tok, bootstrap: 200 });
    process.stderr.write(`${label}: ${MC.map((n) => `${n} ${r.tasks[n].acc.toFixed(3)}/${r.tasks[n].acc_norm!.toFixed(3)} ± ${r.tasks[n].stderr.toFixed(3)}`).join(', ')}\n`);
    for (const name of MC) {
      const t = r.tasks[name];
      for (const [acc, se] of [[t.acc, t.stderr], [t.acc_norm!, t.stderr_norm!]]) {
        assert.ok(Math.abs(acc - t.chance) <= 2 * se, `${name}: acc ${acc.toFixed(3)} vs chance ${t.chance} (stderr ${se.toFixed(3)})`);
      }
    }
  });
}

const mc = (s: TaskSuite, name: string) => s.tasks.find((t) => t.name === name)!.items as McItem[];

/** A word without the punctuation the detokenizer attaches to it. */
const bare = (w: string) => w.replace(/^["'(\[]+/, '').replace(/[.,;:!?"')\]]+$/, '');

/** The word of each choice where the two choices of a pair differ (one-word edits only). */
function editedWords(it: McItem): [string, string] {
  const a = it.choices[it.gold].split(' '), b = it.choices[1 - it.gold].split(' ');
  assert.equal(a.length, b.length, 'a pair keeps the number of words');
  const diff = a.map((w, i) => i).filter((i) => a[i] !== b[i]);
  assert.equal(diff.length, 1, `exactly one word differs: ${it.choices.join(' | ')}`);
  return [bare(a[diff[0]]).toLowerCase(), bare(b[diff[0]]).toLowerCase()];
}

test('agreement pairs are one-word edits, balanced singular/plural within every class', () => {
  const count = (items: McItem[]) => {
    const c = new Map<string, number>();
    for (const it of items) { const [good] = editedWords(it); c.set(good, (c.get(good) ?? 0) + 1); }
    return c;
  };
  const det = count(mc(suite, 'agr-det-noun'));
  assert.equal(det.get('this'), det.get('these'));
  assert.equal(det.get('that'), det.get('those'));
  const sv = count(mc(suite, 'agr-subj-verb'));
  for (const [sg, pl] of [['is', 'are'], ['was', 'were'], ['has', 'have'], ['does', 'do']]) assert.equal(sv.get(sg) ?? 0, sv.get(pl) ?? 0, `${sg}/${pl}`);
  for (const t of ['agr-det-noun', 'agr-subj-verb', 'word-order']) {
    const items = mc(suite, t), golds = items.filter((it) => it.gold === 0).length;
    assert.ok(Math.abs(golds / items.length - 0.5) < 0.1, `${t}: the original is first in ${golds}/${items.length}`);
  }
});

test('word-order pairs swap two adjacent words: same words, same bytes', () => {
  for (const it of mc(suite, 'word-order')) {
    const [a, b] = it.choices.map((c) => c.split(' ').map(bare));
    assert.deepEqual([...a].sort(), [...b].sort());
    assert.equal(utf8Bytes(it.choices[0]), utf8Bytes(it.choices[1]));
    const diff = a.map((_, i) => i).filter((i) => a[i] !== b[i]);
    assert.equal(diff.length, 2);
    assert.equal(diff[1], diff[0] + 1);
  }
});

test('next-sentence: four distinct choices of nearly the same length; cloze targets occur in their context', () => {
  const ns = mc(suite, 'next-sentence'), ratios: number[] = [];
  for (const it of ns) {
    assert.equal(new Set(it.choices).size, 4);
    const g = utf8Bytes(it.choices[it.gold]);
    for (const c of it.choices) ratios.push(Math.abs(utf8Bytes(c) - g) / g);
  }
  ratios.sort((a, b) => a - b);
  assert.ok(ratios[Math.floor(ratios.length * 0.9)] < 0.05, `90% of distractors within 5% of the answer's bytes`);
  const cloze = buildSuite({ tasks: ['cloze'] }).tasks[0];
  assert.equal(cloze.kind, 'cloze');
  for (const it of cloze.items as { context: string; target: string }[]) {
    assert.match(it.target, /^ [A-Za-z]{3,}$/);
    assert.ok(new RegExp(`\\b${it.target.trim()}\\b`).test(it.context));
  }
});

test('continuations longer than the model become rolling windows that predict every token once', () => {
  const ids = Array.from({ length: 300 }, (_, i) => i + 1), L = 64;
  const parts = splitLong({ context: [0], continuation: ids }, L);
  assert.deepEqual(parts.flatMap((r) => r.continuation), ids);
  for (const r of parts) assert.ok(r.context.length + r.continuation.length - 1 <= L && r.context.length >= 1);
  assert.deepEqual(parts[0].context, [0]);
  assert.deepEqual(parts[1].context, ids.slice(32 - 32, 32));
  const short = { context: [0], continuation: [5, 6] };
  assert.equal(splitLong(short, L)[0], short, 'a request that fits is kept as is (its context may be shared)');
});

test('bootstrap standard error of a proportion is close to sqrt(p(1-p)/n), and deterministic', () => {
  const xs = Array.from({ length: 400 }, (_, i) => (i % 10 < 3 ? 1 : 0));
  const se = bootstrapStderr(xs, null, 2000, new Rng(3));
  assert.ok(Math.abs(se / Math.sqrt(0.3 * 0.7 / 400) - 1) < 0.1, `bootstrap ${se}`);
  assert.equal(se, bootstrapStderr(xs, null, 2000, new Rng(3)));
});

test("a user's own held-out text builds every task, deterministically", () => {
  const dir = mkdtempSync(join(tmpdir(), 'qkd-tasks-'));
  const text = readFileSync(fixture('brown-text', 'brown-valid.txt'), 'utf8').slice(0, 200_000);
  const cut = text.indexOf('\n\n', 100_000);
  writeFileSync(join(dir, 'a.txt'), text.slice(0, cut));
  writeFileSync(join(dir, 'b.txt'), text.slice(cut + 2));
  const s1 = buildSuite({ limit: 40 }, { text: [dir] }), s2 = buildSuite({ limit: 40 }, { text: [join(dir, 'a.txt'), join(dir, 'b.txt')] });
  assert.equal(s1.hash, s2.hash);
  assert.equal(s1.source, 'a.txt,b.txt');
  for (const t of s1.tasks) assert.ok(t.items.length > 0, `${t.name} has items`);
  const flat = text.replace(/\s+/g, ' ');
  for (const it of mc(s1, 'agr-subj-verb')) assert.ok(flat.includes(it.choices[it.gold]), it.choices[it.gold]);
  assert.notEqual(s1.hash, buildSuite({ limit: 40 }).hash);
});
