import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { loadTextInputs } from '../../src/data/text.js';
import { QkdError } from '../../src/tensor/errors.js';

const root = mkdtempSync(join(tmpdir(), 'qkd-text-'));
after(() => rmSync(root, { recursive: true, force: true }));

function write(rel: string, data: string | Uint8Array): string {
  const p = join(root, rel);
  writeFileSync(p, data);
  return p;
}

const rejects = (code: string, needle: string) => (e: unknown) =>
  e instanceof QkdError && e.code === code && e.message.includes(needle);

test('single file and several files keep the given order', () => {
  const a = write('a.txt', 'alpha text\n');
  const b = write('b.md', 'beta — ünïcode 🚀');
  assert.deepEqual(loadTextInputs([b, a]).map((x) => [x.name, x.text]),
    [['b.md', 'beta — ünïcode 🚀'], ['a.txt', 'alpha text\n']]);
  assert.equal(loadTextInputs([a])[0].path, a);
});

test('directory: its .txt files sorted by name, other files and subdirectories ignored', () => {
  const dir = join(root, 'corpus');
  mkdirSync(dir);
  mkdirSync(join(dir, 'sub.txt'));
  write('corpus/b.txt', 'second');
  write('corpus/a.txt', 'first');
  write('corpus/c.TXT', 'third');
  write('corpus/notes.md', 'ignored');
  assert.deepEqual(loadTextInputs([dir]).map((x) => x.name), ['a.txt', 'b.txt', 'c.TXT']);
});

test('a UTF-8 BOM is dropped', () => {
  const p = write('bom.txt', new Uint8Array([0xef, 0xbb, 0xbf, 0x68, 0x69]));
  assert.equal(loadTextInputs([p])[0].text, 'hi');
});

test('non-UTF-8, empty or missing input raises QkdError naming the file', () => {
  const latin1 = write('latin1.txt', new Uint8Array([0x63, 0x61, 0x66, 0xe9, 0x0a])); // "café" in Latin-1
  assert.throws(() => loadTextInputs([latin1]), rejects('E_INPUT', latin1));
  const empty = write('empty.txt', '');
  assert.throws(() => loadTextInputs([empty]), rejects('E_INPUT', empty));
  const blank = write('blank.txt', ' \n\t\n');
  assert.throws(() => loadTextInputs([blank]), rejects('E_INPUT', blank));
  const missing = join(root, 'missing.txt');
  assert.throws(() => loadTextInputs([missing]), rejects('E_MISSING', missing));
  const noTxt = join(root, 'no-txt');
  mkdirSync(noTxt);
  assert.throws(() => loadTextInputs([noTxt]), rejects('E_INPUT', noTxt));
  assert.throws(() => loadTextInputs([]), rejects('E_INPUT', 'no text input'));
});
