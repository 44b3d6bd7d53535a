import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { brownSplitText } from '../../src/data/brown.js';
import { loadTokenData } from '../../src/data/dataset.js';
import { repeatParagraphs, vocabularyPieces } from '../../src/data/repeat.js';
import { loadTokenizer } from '../../src/data/tokenizer-node.js';
import { makeDistillConfig } from '../../src/distill/config.js';
import { studentConfig, type StageContext } from '../../src/pipeline/stages.js';
import { QkdError } from '../../src/tensor/errors.js';

const TEACHER = '../shared/fixtures/brown-llama-teacher';
const root = mkdtempSync(join(tmpdir(), 'qkd-repeat-'));
after(() => rmSync(root, { recursive: true, force: true }));

const paras = ['First paragraph here.', 'Second one.', '', 'Third, after a blank one.', 'Fourth.'];
const text = paras.join('\n\n');

test('repeatParagraphs: fraction 0 keeps the text, 1 doubles every non-blank paragraph in place', () => {
  assert.deepEqual(repeatParagraphs(text, { fraction: 0, seed: 1 }), { text, paragraphs: 5, repeated: 0, random: 0 });
  const all = repeatParagraphs(text, { fraction: 1, seed: 7 });
  assert.equal(all.repeated, 4);
  assert.equal(all.text, paras.flatMap((p) => (p.trim() ? [p, p] : [p])).join('\n\n'));
});

test('repeatParagraphs: seeded; every output paragraph is an input paragraph, each repeat right after its original', () => {
  const many = Array.from({ length: 400 }, (_, i) => `Paragraph number ${i}.`).join('\n\n');
  const a = repeatParagraphs(many, { fraction: 0.3, seed: 5 }), b = repeatParagraphs(many, { fraction: 0.3, seed: 5 });
  const c = repeatParagraphs(many, { fraction: 0.3, seed: 6 });
  assert.equal(a.text, b.text);
  assert.notEqual(a.text, c.text);
  assert.ok(a.repeated > 80 && a.repeated < 160, `${a.repeated} of 400 repeated at 0.3`);
  const out = a.text.split('\n\n');
  assert.equal(out.length, 400 + a.repeated);
  const dedup = out.filter((p, i) => i === 0 || p !== out[i - 1]);
  assert.equal(dedup.join('\n\n'), many);
});

test('random paragraphs: drawn from the vocabulary pieces, each written twice after a paragraph; the paragraph draws stay as without them', () => {
  const tok = loadTokenizer(TEACHER), pieces = vocabularyPieces(tok);
  assert.ok(pieces.length > 1800 && pieces.length < tok.vocabSize, `${pieces.length} pieces`);
  for (const p of pieces) assert.ok(p.trim() && !/[\r\n\uFFFD]/.test(p), JSON.stringify(p));
  const many = Array.from({ length: 300 }, (_, i) => `Paragraph number ${i}.`).join('\n\n');
  const plain = repeatParagraphs(many, { fraction: 0.3, seed: 9 });
  const r = repeatParagraphs(many, { fraction: 0.3, seed: 9, random: { fraction: 0.25, tokens: 12 } }, pieces);
  assert.equal(r.repeated, plain.repeated);
  assert.ok(r.random > 45 && r.random < 105, `${r.random} of 300 at 0.25`);
  const out = r.text.split('\n\n'), synthetic = out.filter((p) => !p.startsWith('Paragraph number'));
  assert.equal(synthetic.length, 2 * r.random);
  for (let i = 0; i < out.length; i++) {
    if (out[i].startsWith('Paragraph number')) continue;
    const first = i === 0 || out[i - 1] !== out[i];
    if (first) { assert.equal(out[i + 1], out[i]); assert.ok(tok.encode(out[i]).length >= 6, out[i]); }
  }
  // the natural paragraphs, with the synthetic ones taken out, are the paragraph-only output
  assert.equal(out.filter((p) => p.startsWith('Paragraph number')).join('\n\n'), plain.text);
  assert.throws(() => repeatParagraphs(many, { fraction: 0, seed: 1, random: { fraction: 0.5, tokens: 4 } }), /vocabulary pieces/);
});

test('loadTokenData: Brown with data.repeat repeats training paragraphs only; validation is unchanged', () => {
  const tok = loadTokenizer(TEACHER);
  const plain = loadTokenData({ kind: 'brown' }, tok);
  const rep = loadTokenData({ kind: 'brown', repeat: { fraction: 0.3, seed: 1 } }, tok);
  assert.deepEqual(rep.valid, plain.valid);
  assert.deepEqual(rep.train, Int32Array.from(tok.encode(repeatParagraphs(brownSplitText('train'), { fraction: 0.3, seed: 1 }).text)));
  assert.ok(rep.train.length > plain.train.length * 1.2 && rep.train.length < plain.train.length * 1.4, `${rep.train.length} vs ${plain.train.length}`);
  assert.match(rep.source, /30% of training paragraphs repeated \(seed 1\)/);
});

test('loadTokenData: user text, with a validation file and with a validation fraction, keeps validation as without repeats', () => {
  const tok = loadTokenizer(TEACHER);
  const body = Array.from({ length: 60 }, (_, i) => `The ${i}th paragraph says something about item ${i * 7}.`).join('\n\n');
  const f = join(root, 'train.txt'), v = join(root, 'valid.txt');
  writeFileSync(f, body);
  writeFileSync(v, 'A held-out paragraph.\n\nAnother one.');
  const r = { fraction: 1, seed: 1 };
  const sep = loadTokenData({ kind: 'text', paths: [f], valid: [v], validFraction: 0.05, repeat: r }, tok);
  assert.deepEqual(sep.train, Int32Array.from(tok.encode(repeatParagraphs(body, r).text)));
  assert.deepEqual(sep.valid, loadTokenData({ kind: 'text', paths: [f], valid: [v], validFraction: 0.05 }, tok).valid);
  const plain = loadTokenData({ kind: 'text', paths: [f], validFraction: 0.1 }, tok);
  const frac = loadTokenData({ kind: 'text', paths: [f], validFraction: 0.1, repeat: r }, tok);
  assert.deepEqual(frac.valid, plain.valid);
  assert.deepEqual(frac.train, Int32Array.from(tok.encode(repeatParagraphs(tok.decode(Array.from(plain.train)), r).text)));
  assert.ok(frac.train.length > 1.9 * plain.train.length);
});

test('data.repeat is validated: a fraction outside 0..1 or an unknown key names the field', () => {
  const base = { teacher: TEACHER, steps: 10, warmup: 1 };
  const bad = (data: object, needle: string) => assert.throws(() => makeDistillConfig({ ...base, data }, {}, 'r.yaml'),
    (e: unknown) => e instanceof QkdError && e.code === 'E_CONFIG' && e.message.includes(needle), needle);
  bad({ kind: 'brown', repeat: { fraction: 1.5 } }, 'data.repeat.fraction');
  bad({ kind: 'brown', repeat: { fraction: 0.3, every: 2 } }, 'every');
  assert.deepEqual(makeDistillConfig({ ...base, data: { kind: 'brown', repeat: { fraction: 0.3 } } }, {}, 'r.yaml').data,
    { kind: 'brown', repeat: { fraction: 0.3, seed: 1 } });
});

test("the pipeline's student keeps the recipe's data.repeat on the pipeline's own text", () => {
  const recipe = join(root, 'recipe.yaml');
  writeFileSync(recipe, 'student: { preset: teacher }\ninit: { from: teacher }\nsteps: 100\nwarmup: 5\ndata: { kind: brown, repeat: { fraction: 0.25, seed: 3 } }\n');
  const ctx = (text?: string[]) => ({ cfg: { recipe, distill: {}, teacher: TEACHER, text }, out: root }) as unknown as StageContext;
  assert.deepEqual(studentConfig(ctx(), null).data, { kind: 'brown', repeat: { fraction: 0.25, seed: 3 } });
  const d = studentConfig(ctx(['some.txt']), null).data;
  assert.equal(d.kind, 'text');
  assert.deepEqual(d.repeat, { fraction: 0.25, seed: 3 });
});
