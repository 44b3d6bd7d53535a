import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { brownSplitText } from '../../src/data/brown.js';
import { byteToUnicode, countWords, trainBpe } from '../../src/data/bpe.js';
import { tokenizerFromJson } from '../../src/data/tokenizer.js';
import { QkdError } from '../../src/tensor/errors.js';

const FIX = join(process.cwd(), '..', 'shared', 'fixtures');
function readFixture(rel: string): string {
  const p = join(FIX, rel);
  assert.ok(existsSync(p), `fixture missing: ${p}`);
  return readFileSync(p, 'utf8');
}

// ~60 kB of real text: enough for a few hundred meaningful merges, trains in milliseconds.
const SMALL = brownSplitText('train').slice(0, 60_000);

const ROUND_TRIP = [
  '', ' ', '\n', '\t\t', 'Hello, world!', '  leading spaces\tand\ttabs\nnew lines\n\n',
  'naïve café – “quotes” — 東京 🚀👍🏽', '12345 67.89 $1,000,000', '<|endoftext|>between<|endoftext|>',
  "it's they're I'M   trailing   ", '\u0000\u0001\u007f\u00ad control bytes', 'x'.repeat(500),
  'Zwölf Boxkämpfer jagen Viktor quer über den großen Sylter Deich. Съешь же ещё этих мягких',
  ' \r\n \u00a0\u2003 unicode spaces \u2028',
];

test('bytes_to_unicode: 256 distinct chars, printable bytes map to themselves', () => {
  const t = byteToUnicode();
  assert.equal(new Set(t).size, 256);
  assert.equal(t[65], 'A');
  assert.equal(t[32], 'Ġ');
  assert.equal(t[10], 'Ċ');
});

test('small corpus: hand-checked merges and tie-breaking', () => {
  const text = 'low low low low low lower lower newest newest newest newest newest newest widest widest widest';
  const j = trainBpe(text, { vocabSize: 1 + 256 + 5 }) as any;
  // (e,s) and (s,t) tie at 9: smaller ids first; (l,o)/(o,w) tie at 7; then five pairs tie at 6
  // and 'e' has the smallest id of their left halves.
  assert.deepEqual(j.model.merges, [['e', 's'], ['es', 't'], ['l', 'o'], ['lo', 'w'], ['e', 'w']]);
  assert.equal(j.model.vocab['<|endoftext|>'], 0);
  assert.equal(j.model.vocab['!'], 1);
  assert.equal(j.model.vocab['est'], 258);
  assert.equal(Object.keys(j.model.vocab).length, 262);
});

test('round trip: decode(encode(t)) === t for unicode, emoji, whitespace, cases.json', () => {
  const tok = tokenizerFromJson(trainBpe(SMALL, { vocabSize: 600 }));
  assert.equal(tok.vocabSize, 600);
  assert.equal(tok.eosId, 0);
  const cases: { text: string }[] = JSON.parse(readFixture('tokenizer/cases.json'));
  for (const t of [...ROUND_TRIP, ...cases.map((c) => c.text)]) {
    assert.equal(tok.decode(tok.encode(t)), t, `round trip of ${JSON.stringify(t)}`);
  }
  assert.deepEqual(tok.encode('<|endoftext|>'), [0]);
  assert.ok(tok.encode(SMALL.slice(0, 2000)).length < 2000 / 2, 'merges should compress seen text'); // ~2.26 chars/token
});

test('determinism: same merges on a rerun and with the texts in another order', () => {
  const parts = SMALL.split('\n\n');
  const a = JSON.stringify(trainBpe(parts, { vocabSize: 500 }));
  const b = JSON.stringify(trainBpe(parts, { vocabSize: 500 }));
  const c = JSON.stringify(trainBpe([...parts].reverse(), { vocabSize: 500 }));
  assert.equal(a, b);
  assert.equal(a, c);
});

test('options: special tokens, minFrequency, progress, errors', () => {
  const j = trainBpe(['ab ab <|pad|> ab'], { vocabSize: 400, specialTokens: ['<|pad|>', '<|eos|>'], minFrequency: 2 }) as any;
  assert.deepEqual(j.added_tokens.map((t: any) => [t.id, t.content]), [[0, '<|pad|>'], [1, '<|eos|>']]);
  // minFrequency stops early: only pairs seen at least twice are merged
  assert.deepEqual(j.model.merges, [['a', 'b'], ['Ġ', 'ab']]);
  assert.equal(countWords(['x <|eos|>y'], ['<|eos|>']).has('<|eos|>'), false);
  const seen: number[][] = [];
  trainBpe(SMALL, { vocabSize: 400, onProgress: (d, t) => seen.push([d, t]) });
  assert.deepEqual(seen.at(-1), [400 - 257, 400 - 257]);
  assert.throws(() => trainBpe('abc', { vocabSize: 100 }), (e) => e instanceof QkdError && e.code === 'E_CONFIG');
});

test('vocab 2048 on Brown train reproduces the fixture tokenizer and its compression', (t) => {
  const t0 = performance.now();
  const ours = trainBpe(brownSplitText('train'), { vocabSize: 2048 }) as any;
  const sec = (performance.now() - t0) / 1000;
  const ref = JSON.parse(readFixture('tokenizer/tokenizer.json'));
  const valid = readFixture('brown-text/brown-valid.txt');
  const nOurs = tokenizerFromJson(ours).encode(valid).length;
  const nRef = tokenizerFromJson(ref).encode(valid).length;
  t.diagnostic(`trained in ${sec.toFixed(2)} s; valid tokens ours ${nOurs}, fixture ${nRef}`);
  assert.ok(Math.abs(nOurs / nRef - 1) < 0.05, `valid token count ${nOurs} vs fixture ${nRef}`);
  // Stronger than asked: same merge list as Hugging Face tokenizers' trainer on the same text.
  assert.deepEqual(ours.model.merges, ref.model.merges);
  assert.deepEqual(JSON.parse(JSON.stringify(ours)), ref);
});
