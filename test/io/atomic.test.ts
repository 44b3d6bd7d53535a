import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeDirAtomic, writeFileAtomic } from '../../src/io/atomic.js';
import { QkdError } from '../../src/tensor/errors.js';

function withTmp(fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'qkd-atomic-'));
  try { fn(dir); } finally { rmSync(dir, { recursive: true, force: true }); }
}

test('writeFileAtomic writes, overwrites and leaves no temp files', () => withTmp((dir) => {
  const p = join(dir, 'a.bin');
  writeFileAtomic(p, new Uint8Array([1, 2, 3]));
  assert.deepEqual([...readFileSync(p)], [1, 2, 3]);
  writeFileAtomic(p, 'hello');
  assert.equal(readFileSync(p, 'utf8'), 'hello');
  assert.deepEqual(readdirSync(dir), ['a.bin']);
}));

test('writeFileAtomic into a missing directory throws a QkdError naming the path', () => withTmp((dir) => {
  const p = join(dir, 'nope', 'a.bin');
  assert.throws(() => writeFileAtomic(p, 'x'), (e: unknown) => e instanceof QkdError && e.message.includes(p));
  assert.deepEqual(readdirSync(dir), []);
}));

test('writeDirAtomic creates, replaces as a whole, and cleans up', () => withTmp((dir) => {
  const target = join(dir, 'model');
  writeDirAtomic(target, { 'config.json': '{}', 'sub/w.bin': new Uint8Array([7]) });
  assert.deepEqual(readdirSync(target).sort(), ['config.json', 'sub']);
  assert.deepEqual([...readFileSync(join(target, 'sub', 'w.bin'))], [7]);
  writeDirAtomic(target, { 'other.txt': 'new' });
  assert.deepEqual(readdirSync(target), ['other.txt']);
  assert.deepEqual(readdirSync(dir), ['model']); // no .tmp-/.old- siblings left
}));

test('writeDirAtomic replaces a plain file at the target path too', () => withTmp((dir) => {
  const target = join(dir, 'model');
  writeFileSync(target, 'i am a file');
  writeDirAtomic(target, { 'a.txt': 'a' });
  assert.equal(readFileSync(join(target, 'a.txt'), 'utf8'), 'a');
  assert.deepEqual(readdirSync(dir), ['model']);
}));

test('a failing writeDirAtomic leaves the previous directory intact and no temp dirs', () => withTmp((dir) => {
  const target = join(dir, 'model');
  mkdirSync(target);
  writeFileSync(join(target, 'keep.txt'), 'old');
  // 'a' is written as a file, then 'a/b' needs 'a' to be a directory: the write fails midway.
  assert.throws(() => writeDirAtomic(target, { a: 'x', 'a/b': 'y' }), QkdError);
  assert.throws(() => writeDirAtomic(target, { '../escape.txt': 'x' }),
    (e: unknown) => e instanceof QkdError && e.message.includes('../escape.txt'));
  assert.throws(() => writeDirAtomic(target, { '/abs.txt': 'x' }), QkdError);
  assert.equal(readFileSync(join(target, 'keep.txt'), 'utf8'), 'old');
  assert.deepEqual(readdirSync(dir), ['model']);
  assert.equal(existsSync(join(dir, 'escape.txt')), false);
}));
