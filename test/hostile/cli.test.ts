/**
 * The inconsistencies between commands, each now one rule: a tokenizer larger than the model's
 * vocabulary (generate as eval; export validates the tokenizer it copies), duplicate tensor keys,
 * warm-up longer than the run (distill as train), --max-new-tokens beyond the context, a repetition
 * penalty of 0, an over-long prompt (nothing printed), the native backend's thread error, and strict
 * decimal integer flags.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fixture } from '../helpers.js';
import { floatFlag, intFlag, parseIds } from '../../src/cli/common.js';
import { checkGenerateRequest } from '../../src/runtime/generate.js';
import { duplicateFirstKey, tinyModel } from './models.js';
import { qkd, refused, tmp } from './helpers.js';

const work = tmp('cli');
const good = tinyModel(join(work, 'good'));
const small = tinyModel(join(work, 'small-vocab'), { vocab: 1024 });
const text = fixture('brown-text', 'brown-valid.txt');
const T1 = ['--threads', '1'];

test('generate and eval refuse a tokenizer larger than the model vocabulary, with one message; nothing printed', () => {
  for (const cmd of [['generate', '--prompt', 'The jury'], ['eval', '--text', text]]) {
    const r = qkd([...cmd, '--model', small, ...T1]);
    refused(r, 2, /small-vocab\/tokenizer\.json: vocabulary of 2048 exceeds the model's 1024/);
    assert.equal(r.stdout, '');
  }
});

test('export validates the tokenizer it copies (garbage, or larger than the vocabulary)', () => {
  const garbage = join(work, 'garbage-tok');
  cpSync(good, garbage, { recursive: true });
  writeFileSync(join(garbage, 'tokenizer.json'), '{"model": 42, "not": "a tokenizer"');
  refused(qkd(['export', '--model', garbage, '--out', join(work, 'x1')]), 3, /garbage-tok\/tokenizer\.json: tokenizer\.json is not valid JSON/);
  refused(qkd(['export', '--model', small, '--out', join(work, 'x2')]), 2, /vocabulary of 2048 exceeds the model's 1024/);
  assert.ok(!existsSync(join(work, 'x1')) && !existsSync(join(work, 'x2')), 'no output after a refusal');
});

test('a safetensors header naming a tensor twice is an error (float checkpoint and qkd-int8 export)', () => {
  const dup = join(work, 'dup');
  cpSync(good, dup, { recursive: true });
  duplicateFirstKey(join(dup, 'model.safetensors'));
  refused(qkd(['inspect', '--model', dup]), 3, /dup\/model\.safetensors: header names tensor ".+" twice/);
  const ex = join(work, 'dup-export');
  assert.equal(qkd(['export', '--model', good, '--out', ex]).status, 0);
  duplicateFirstKey(join(ex, 'model.safetensors'));
  refused(qkd(['generate', '--model', ex, '--prompt', 'The', ...T1]), 3, /model\.safetensors: header names tensor ".+" twice/);
});

test('generate: --max-new-tokens beyond the context, --repetition-penalty 0, an over-long prompt: errors, nothing printed', () => {
  let r = qkd(['generate', '--model', good, '--prompt', 'The jury', '--max-new-tokens', '600', ...T1]);
  refused(r, 2, /max-new-tokens 600: the prompt's \d+ token\(s\) plus 600 new ones exceed the model's context of 64 positions/);
  assert.equal(r.stdout, '');
  refused(qkd(['generate', '--model', good, '--prompt', 'x', '--repetition-penalty', '0']), 2, /--repetition-penalty: expected a number in \(0, Infinity\]/);
  for (const p of ['-1', 'nan', '0x1', '']) assert.throws(() => floatFlag('--repetition-penalty', 0, Infinity, true)(p), /--repetition-penalty/);
  // the library rule behind it (also what the browser page and the Node API get)
  assert.throws(() => checkGenerateRequest({ maxPos: 64 }, 3, { maxNewTokens: 8, repetitionPenalty: 0 }), /repetition-penalty 0 must be a finite number > 0/);
  r = qkd(['generate', '--model', good, '--prompt', 'the jury said '.repeat(40), ...T1]);
  refused(r, 2, /prompt of \d+ tokens leaves no room for new tokens in 64 positions/);
  assert.equal(r.stdout, '', 'the prompt is not echoed before the error');
});

test('distill refuses more warm-up steps than steps, as train does (before loading anything)', () => {
  refused(qkd(['distill', '--teacher', good, '--steps', '2', '--warmup', '100', '--out', join(work, 'd')]), 2,
    /warmup: 100 warm-up steps exceed the 2 steps/);
  refused(qkd(['train', '--steps', '2', '--warmup', '100', '--out', join(work, 't')]), 2, /warmup: 100 warm-up steps exceed the 2 steps/);
  assert.ok(!existsSync(join(work, 'd')) && !existsSync(join(work, 't')));
});

test('the native backend\'s thread error names the native backend', () => {
  const r = qkd(['generate', '--model', good, '--prompt', 'x', '--backend', 'native', '--threads', '999']);
  refused(r, 2, /native backend: threads=999 is outside 1\.\.64/);
  assert.doesNotMatch(r.stderr, /wasm backend/);
});

test('integer flags are strict decimal: 1,,2 0x10 1e3 +5 and blanks are refused', () => {
  for (const ids of ['1,,2', '0x10']) refused(qkd(['logits', '--model', good, '--ids', ids, '--out', join(work, 'l.f32')]), 2, /--ids/);
  refused(qkd(['train', '--steps', '0x10', '--out', join(work, 't')]), 2, /--steps: expected an integer >= 1 \(decimal digits\), got '0x10'/);
  assert.ok(!existsSync(join(work, 'l.f32')) && !existsSync(join(work, 't')));
  // the same parsers, in process, on the rest of the cases
  for (const ids of ['1,2,', ' ', '+5', '1.0', '1e3', '-1', '1,,', ',1']) assert.throws(() => parseIds('--ids', ids), /--ids/, ids);
  assert.deepEqual(parseIds('--ids', '1, 2,3'), [1, 2, 3]);
  for (const v of ['0x10', '1e2', '12abc', '', ' 5', '5.0', '-0', '9007199254740993']) assert.throws(() => intFlag('--steps', 1)(v), /--steps/, v);
  assert.equal(intFlag('--steps', 1)('0012'), 12);
});
