/**
 * Trains a vocab-2048 byte-level BPE on the Brown train split and compares it with the fixture
 * tokenizer (Hugging Face tokenizers, same data) on Brown valid.
 * Run from the repo root: node dist/bench/tokenizer-train.js
 * Prints a table, then one JSON line for scripts.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { brownSplitText } from '../src/data/brown.js';
import { trainBpe } from '../src/data/bpe.js';
import { tokenizerFromJson, type TokenizerJson } from '../src/data/tokenizer.js';

const VOCAB = 2048;
const FIX = join(process.cwd(), '..', 'shared', 'fixtures');

function seconds<T>(f: () => T): [T, number] {
  const t0 = performance.now();
  const r = f();
  return [r, (performance.now() - t0) / 1000];
}

function main(): void {
  const [train, loadSec] = seconds(() => brownSplitText('train'));
  const [ours, trainSec] = seconds(() => trainBpe(train, { vocabSize: VOCAB }) as unknown as TokenizerJson);
  const ref = JSON.parse(readFileSync(join(FIX, 'tokenizer', 'tokenizer.json'), 'utf8')) as TokenizerJson;
  const valid = readFileSync(join(FIX, 'brown-text', 'brown-valid.txt'), 'utf8');
  const [nOurs, encSec] = seconds(() => tokenizerFromJson(ours).encode(valid).length);
  const nRef = tokenizerFromJson(ref).encode(valid).length;
  const mergesOurs = ours.model.merges as [string, string][];
  const mergesRef = ref.model.merges as [string, string][];
  let same = 0;
  while (same < Math.min(mergesOurs.length, mergesRef.length) &&
    mergesOurs[same].join(' ') === mergesRef[same].join(' ')) same++;

  const rows: [string, string][] = [
    ['train text (chars)', String(train.length)],
    ['load Brown train (s)', loadSec.toFixed(2)],
    [`train BPE vocab ${VOCAB} (s)`, trainSec.toFixed(2)],
    ['valid chars', String(valid.length)],
    ['valid tokens, ours', String(nOurs)],
    ['valid tokens, fixture', String(nRef)],
    ['tokens/char, ours', (nOurs / valid.length).toFixed(4)],
    ['tokens/char, fixture', (nRef / valid.length).toFixed(4)],
    ['merges identical to fixture (prefix)', `${same}/${mergesRef.length}`],
    ['encode valid (MB/s)', (valid.length / 1e6 / encSec).toFixed(2)],
  ];
  const w = Math.max(...rows.map((r) => r[0].length));
  for (const [k, v] of rows) console.log(`${k.padEnd(w)}  ${v}`);
  console.log(JSON.stringify({
    bench: 'tokenizer-train', vocabSize: VOCAB, trainChars: train.length, seconds: +trainSec.toFixed(3),
    loadSeconds: +loadSec.toFixed(3), validTokensOurs: nOurs, validTokensFixture: nRef,
    tokensPerCharOurs: +(nOurs / valid.length).toFixed(5), tokensPerCharFixture: +(nRef / valid.length).toFixed(5),
    mergesIdenticalPrefix: same, mergesFixture: mergesRef.length,
  }));
}

main();
