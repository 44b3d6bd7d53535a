import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { brownSplitText, detokenizeParagraph, loadBrown } from '../../src/data/brown.js';

const FIX = join(process.cwd(), '..', 'shared', 'fixtures', 'brown-text');

function fixture(name: string): string {
  const p = join(FIX, name);
  assert.ok(existsSync(p), `fixture missing: ${p}`);
  return readFileSync(p, 'utf8');
}

/** Index of the first differing char, or -1; makes a failure readable instead of a 600 kB dump. */
function firstDiff(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}

function assertSameText(ours: string, ref: string, what: string): void {
  const i = firstDiff(ours, ref);
  if (i < 0) return;
  const ctx = (s: string) => JSON.stringify(s.slice(Math.max(0, i - 80), i + 80));
  assert.fail(`${what}: first difference at char ${i} (lengths ${ours.length} vs ${ref.length})\n` +
    `ours: ${ctx(ours)}\nref:  ${ctx(ref)}`);
}

test('Brown files: 500, sorted, split 400/50/50, genres a..r', () => {
  const { files } = loadBrown();
  assert.equal(files.length, 500);
  const names = files.map((f) => f.name);
  assert.deepEqual(names, [...names].sort());
  const count = (s: string) => files.filter((f) => f.split === s).length;
  assert.deepEqual([count('train'), count('valid'), count('test')], [400, 50, 50]);
  assert.equal(files[0].name, 'ca01');
  assert.equal(files[0].split, 'test');
  assert.equal(files[5].split, 'valid');
  assert.equal(files[0].genre, 'a');
  assert.equal(files[499].genre, 'r');
  assert.ok(files.every((f) => f.text.length > 0 && !f.text.endsWith('\n')));
});

test('Brown valid split equals the fixture byte for byte', () => {
  assertSameText(brownSplitText('valid'), fixture('brown-valid.txt'), 'brown-valid.txt');
});

test('Brown test split equals the fixture byte for byte', () => {
  assertSameText(brownSplitText('test'), fixture('brown-test.txt'), 'brown-test.txt');
});

test('Brown train split is the rest, without tags', () => {
  const t = brownSplitText('train');
  assert.ok(t.length > 4_000_000, `train text only ${t.length} chars`);
  assert.ok(!/\/(nn|vb|at|in)\b/.test(t.slice(0, 100_000)), 'POS tags left in train text');
});

test('detokenizer rules on small cases', () => {
  assert.equal(detokenizeParagraph("\tHe/pps said/vbd ,/, ``/`` no/at ''/'' ./."), 'He said, "no".');
  // unpaired quote stays free-standing
  assert.equal(detokenizeParagraph('``/`` I/ppss think/vb ./.'), '" I think.');
  // quote touching punctuation is not paired
  assert.equal(detokenizeParagraph("up/rp ``/`` ./.\nTake/vb it/ppo ''/'' ,/, he/pps said/vbd ./."),
    'up ". Take it ", he said.');
  assert.equal(detokenizeParagraph('a/at (/( b/nn )/) [/( c/nn ]/)'), 'a (b) [c]');
  assert.equal(detokenizeParagraph('Head/nn-hl line/nn-hl \nBody/nn ./.'), 'Head line Body.');
});
