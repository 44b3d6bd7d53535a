/**
 * No command destroys a user's files (io/outdir.ts): `export --out` of the run, of the model folder,
 * of `.`, of a file, of a foreign folder; the tokenizer and train outputs; --force replacing only an
 * output of the same kind (recognised by its marker); stale temp folders of a killed run cleaned on
 * the next start. Every refusal is checked to leave the whole work folder byte-identical.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { exportStudent } from '../../src/io/export.js';
import { QkdError } from '../../src/tensor/errors.js';
import { makeStudent } from '../runtime/students.js';
import { fixture } from '../helpers.js';
import { qkd, refused, snapshot, tmp, unchangedExcept } from './helpers.js';

const work = tmp('outdir');
const model = makeStudent(join(work, 'model'));
// a run folder as `qkd distill` leaves it: the student in model/, a checkpoint, metrics
const run = join(work, 'run');
cpSync(model, join(run, 'model'), { recursive: true });
mkdirSync(join(run, 'checkpoint'));
writeFileSync(join(run, 'checkpoint', 'state.json'), '{"step": 7}');
writeFileSync(join(run, 'metrics.jsonl'), '{"step":1}\n');
writeFileSync(join(work, 'notes.txt'), 'my notes\n');
mkdirSync(join(work, 'mine'));
writeFileSync(join(work, 'mine', 'thesis.tex'), 'years of work');
const text = join(work, 'corpus.txt');
writeFileSync(text, readFileSync(fixture('brown-text', 'brown-valid.txt'), 'utf8').slice(0, 20000));

test('export refuses to write over its run, its model folder, ".", a file or a foreign folder (even with --force)', () => {
  const before = snapshot(work);
  const cases: [string[], RegExp, string?][] = [
    [['--model', run, '--out', run], /--out .*run: is the input/],
    [['--model', model, '--out', model], /is the input/],
    [['--model', model, '--out', '.'], /current directory/, work],
    [['--model', model, '--out', join(work, 'notes.txt')], /exists and is not a folder/],
    [['--model', model, '--out', join(work, 'mine'), '--force'], /not empty and holds no \.qkd-output\.json/],
  ];
  for (const [args, pattern, cwd] of cases) {
    refused(qkd(['export', ...args], { cwd }), 2, pattern);
    unchangedExcept(work, before);
  }
  // the same rule in the library call (what the CLI runs), on more cases
  const lib: [string, string, RegExp, boolean?][] = [
    [run, join(run, 'model'), /is the input/], [model, join(model, 'int8'), /lies inside the input/],
    [join(run, 'model'), work, /contains the input/], [model, join(work, 'mine'), /holds no \.qkd-output\.json/],
    [model, join(work, 'mine'), /holds no \.qkd-output\.json/, true],
  ];
  for (const [m, out, pattern, force] of lib) {
    assert.throws(() => exportStudent(m, out, { force }), (e: unknown) => e instanceof QkdError && e.code === 'E_CONFIG' && pattern.test(e.message));
  }
  unchangedExcept(work, before);
});

test('export writes a new folder with its marker; again only with --force; another kind is never replaced', () => {
  const out = join(work, 'exports', 'x');
  let r = qkd(['export', '--model', run, '--out', out]);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(readFileSync(join(out, '.qkd-output.json'), 'utf8')).kind, 'export');
  const before = snapshot(work);
  refused(qkd(['export', '--model', run, '--out', out]), 2, /already holds a qkd export; pass --force to replace it/);
  refused(qkd(['tokenizer', '--text', text, '--vocab-size', '300', '--out', out, '--force']), 2,
    /holds a qkd export, not a qkd tokenizer; refusing to replace it \(even with --force\)/);
  unchangedExcept(work, before);
  r = qkd(['export', '--model', run, '--out', out, '--force']);
  assert.equal(r.status, 0, r.stderr);
  unchangedExcept(work, before, ['exports/x']);
  assert.deepEqual(readdirSync(join(work, 'exports')), ['x'], 'no temp or .old folder left beside the output');
});

test('a killed export\'s stale temp folder is removed on the next start; a live one is kept', () => {
  const out = join(work, 'exports', 'y');
  const stale = join(work, 'exports', '.y.tmp-4194999-deadbeef'), live = join(work, 'exports', `.y.tmp-${process.pid}-cafebabe`);
  mkdirSync(stale, { recursive: true });
  writeFileSync(join(stale, 'model.safetensors'), 'half-written');
  mkdirSync(live);
  const r = qkd(['export', '--model', model, '--out', out]);
  assert.equal(r.status, 0, r.stderr);
  assert.ok(!existsSync(stale), 'stale temp folder removed');
  assert.ok(existsSync(live), 'the temp folder of a running process is not touched');
});

test('tokenizer --out: new folder, refusal, --force, never over its --text input', () => {
  const out = join(work, 'tok');
  let r = qkd(['tokenizer', '--text', text, '--vocab-size', '300', '--out', out]);
  assert.equal(r.status, 0, r.stderr);
  const before = snapshot(work);
  refused(qkd(['tokenizer', '--text', text, '--vocab-size', '300', '--out', out]), 2, /already holds a qkd tokenizer; pass --force/);
  refused(qkd(['tokenizer', '--text', text, '--vocab-size', '300', '--out', work, '--force']), 2, /contains the input/);
  refused(qkd(['tokenizer', '--text', text, '--vocab-size', '300', '--out', text]), 2, /is the input/);
  unchangedExcept(work, before);
  r = qkd(['tokenizer', '--text', text, '--vocab-size', '300', '--out', out, '--force']);
  assert.equal(r.status, 0, r.stderr);
});

test('train/distill/teacher-cache --out: a foreign folder, another run kind and --force with --resume are refused', () => {
  const before = snapshot(work);
  const common = ['--text', text, '--tokenizer', fixture('tokenizer', 'tokenizer.json'), '--steps', '2', '--warmup', '0', '--threads', '1'];
  refused(qkd(['train', ...common, '--out', join(work, 'mine')]), 2, /holds no \.qkd-output\.json/);
  refused(qkd(['train', ...common, '--out', join(work, 'mine'), '--force']), 2, /holds no \.qkd-output\.json/);
  refused(qkd(['train', ...common, '--out', join(work, 'exports', 'x'), '--force']), 2, /holds a qkd export, not a run \(qkd train\)/);
  refused(qkd(['train', ...common, '--out', join(work, 'fresh'), '--force', '--resume']), 2, /--force and --resume/);
  refused(qkd(['distill', '--teacher', model, '--text', text, '--steps', '2', '--warmup', '0', '--out', model, '--threads', '1']), 2, /is the input/);
  refused(qkd(['teacher-cache', '--teacher', model, '--text', text, '--out', join(work, 'mine'), '--threads', '1']), 2,
    /holds no \.qkd-output\.json/);
  unchangedExcept(work, before);
});
