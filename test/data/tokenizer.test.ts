import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { QkdError } from '../../src/tensor/errors.js';
import { loadTokenizer } from '../../src/data/tokenizer-node.js';
import { tokenizerFromJson } from '../../src/data/tokenizer.js';

const FIX = join(process.cwd(), '..', 'shared', 'fixtures');

function fixturePath(rel: string): string {
  const p = join(FIX, rel);
  assert.ok(existsSync(p), `fixture missing: ${p}`);
  return p;
}
const readJson = (rel: string): any => JSON.parse(readFileSync(fixturePath(rel), 'utf8'));

interface Case { text: string; ids: number[]; decoded: string }

for (const dir of ['tokenizer', 'brown-llama-teacher']) {
  test(`${dir}/tokenizer.json reproduces every case of cases.json`, () => {
    const tok = loadTokenizer(fixturePath(dir));
    const cases: Case[] = readJson('tokenizer/cases.json');
    assert.ok(cases.length >= 5);
    for (const c of cases) {
      assert.deepEqual(tok.encode(c.text), c.ids, `encode ${JSON.stringify(c.text)}`);
      assert.equal(tok.decode(c.ids), c.decoded, `decode ${JSON.stringify(c.text)}`);
    }
    assert.equal(tok.vocabSize, 2048);
    assert.equal(tok.eosId, 0);
    assert.deepEqual(tok.specialIds, [0]);
    assert.equal(tok.idToToken(0), '<|endoftext|>');
    assert.equal(tok.tokenToId('<|endoftext|>'), 0);
    assert.equal(tok.tokenToId('!'), 1);
    assert.equal(tok.json.model.type, 'BPE');
  });
}

test('loading a file path equals loading its directory', () => {
  const a = loadTokenizer(fixturePath('tokenizer/tokenizer.json'));
  const b = loadTokenizer(fixturePath('tokenizer'));
  assert.deepEqual(a.encode('The jury said'), b.encode('The jury said'));
  assert.equal(b.config?.eos_token, '<|endoftext|>');
});

for (const split of ['valid', 'test'] as const) {
  test(`brown-${split}.txt: window count matches reference.json; round trip; throughput`, (t) => {
    const tok = loadTokenizer(fixturePath('brown-llama-teacher'));
    const ref = readJson('brown-llama-teacher/reference.json');
    const text = readFileSync(fixturePath(`brown-text/brown-${split}.txt`), 'utf8');
    const t0 = performance.now();
    const ids = tok.encode(text);
    const sec = (performance.now() - t0) / 1000;
    const windows = Math.floor(ids.length / 256);
    assert.equal(windows * 255, ref[split].tokens, `ids ${ids.length} -> ${windows} windows`);
    if (split === 'valid') assert.deepEqual(ids.slice(0, ref.logits_input_ids.length), ref.logits_input_ids);
    assert.equal(tok.decode(ids), text, `decode(encode(${split})) must round-trip`);
    t.diagnostic(`${split}: ${text.length} chars -> ${ids.length} ids, encode ${(text.length / 1e6 / sec).toFixed(2)} MB/s`);
  });
}

test('missing and corrupt tokenizer files raise QkdError naming the file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'qkd-tok-'));
  try {
    const isQkd = (code: string, needle: string) => (e: unknown) =>
      e instanceof QkdError && e.code === code && e.message.includes(needle);
    assert.throws(() => loadTokenizer(dir), isQkd('E_MISSING', join(dir, 'tokenizer.json')));
    assert.throws(() => loadTokenizer(join(dir, 'nope')), isQkd('E_MISSING', 'nope'));
    const f = join(dir, 'tokenizer.json');
    writeFileSync(f, '{"model": {"type": "BPE", "vocab": {');
    assert.throws(() => loadTokenizer(dir), isQkd('E_FORMAT', f));
    writeFileSync(f, '{"version": "1.0"}');
    assert.throws(() => loadTokenizer(f), isQkd('E_FORMAT', 'model'));
    writeFileSync(f, readFileSync(fixturePath('tokenizer/tokenizer.json')));
    writeFileSync(join(dir, 'tokenizer_config.json'), '[1');
    assert.throws(() => loadTokenizer(dir), isQkd('E_FORMAT', 'tokenizer_config.json'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('tokenizerFromJson: no config, empty input, ids out of range', () => {
  const tok = tokenizerFromJson(readJson('tokenizer/tokenizer.json'));
  assert.deepEqual(tok.encode(''), []);
  assert.equal(tok.decode([]), '');
  assert.equal(tok.eosId, 0);
  // no clean-up of spaces: byte-level BPE must round-trip exactly
  assert.equal(tok.decode(tok.encode("to ' a , b .")), "to ' a , b .");
  assert.throws(() => tok.decode([2048]), (e) => e instanceof QkdError && e.code === 'E_VOCAB');
});

test('tokenizer.ts is browser-safe (imports no node module)', () => {
  const src = readFileSync(join(process.cwd(), 'src', 'data', 'tokenizer.ts'), 'utf8');
  const imports = [...src.matchAll(/from\s+'([^']+)'/g)].map((m) => m[1]);
  assert.ok(imports.length > 0);
  for (const m of imports) assert.ok(!m.startsWith('node:') && m !== 'fs' && m !== 'path', `imports ${m}`);
});
