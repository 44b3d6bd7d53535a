/**
 * Runs validate before the first step and never end with nothing saved or a NaN model:
 * - a validation split shorter than one evaluation window fails before training (it used to run
 *   every step, then fail with no model and no checkpoint); --eval-context makes it fit;
 * - a NaN loss (a NaN teacher) stops distillation with a clear error, keeping the last good
 *   checkpoint (it used to report `best valid ppl NaN` and exit 0);
 * - an export refuses non-finite weights, naming the tensor (it used to map NaN to 0);
 * - a run's marker keeps --resume working, and --force starts a run of the same kind over.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fixture } from '../helpers.js';
import { tinyModel } from './models.js';
import { qkd, refused, tmp } from './helpers.js';

const work = tmp('runs');
const text = join(work, 'text.txt');
writeFileSync(text, readFileSync(fixture('brown-text', 'brown-valid.txt'), 'utf8').slice(0, 8000));
const T1 = ['--threads', '1'];
const TINY = '{ dim: 32, nLayer: 1, nHead: 2, nKVHead: 1, headDim: 16, ffnDim: 64, maxPos: 64 }';

function recipe(name: string, lines: string[]): string {
  const p = join(work, `${name}.yaml`);
  writeFileSync(p, [`data: { kind: text, paths: [${text}], validFraction: 0.05 }`, 'batch: 2', 'context: 16', 'warmup: 0',
    'evalEvery: 0', 'checkpointEvery: 2', 'seed: 1', ...lines].join('\n'));
  return p;
}

const steps = (dir: string) => readFileSync(join(dir, 'metrics.jsonl'), 'utf8').split('\n').filter((l) => l.includes('"loss"')).length;

test('a validation split shorter than one evaluation window fails before the first step; --eval-context fits it', () => {
  const cfg = recipe('train', [`model: { preset: teacher-fixture, ${TINY.slice(2).replace('maxPos: 64', 'maxPos: 512')}`, `tokenizer: ${fixture('tokenizer', 'tokenizer.json')}`, 'steps: 4']);
  const out = join(work, 'short-valid');
  const r = qkd(['train', '--config', cfg, '--out', out, ...T1]);
  refused(r, 2, /the validation text has \d+ tokens, fewer than one evaluation window of 256 \(evalContext\).*--eval-context/);
  assert.equal(steps(out), 0, 'no step ran');
  assert.ok(!existsSync(join(out, 'checkpoint')));
  const ok = qkd(['train', '--config', cfg, '--out', out, '--eval-context', '16', ...T1]);
  assert.equal(ok.status, 0, ok.stderr);
  assert.ok(existsSync(join(out, 'model', 'model.safetensors')) && existsSync(join(out, 'checkpoint', 'state.json')));
  // the marker keeps --resume working; --force starts the same kind over; a plain re-run is refused
  assert.equal(JSON.parse(readFileSync(join(out, '.qkd-output.json'), 'utf8')).kind, 'train');
  const resumed = qkd(['train', '--config', cfg, '--out', out, '--eval-context', '16', '--resume', ...T1]);
  assert.equal(resumed.status, 0, resumed.stderr);
  refused(qkd(['train', '--config', cfg, '--out', out, '--eval-context', '16', ...T1]), 2,
    /already holds a run \(qkd train\); pass --resume to continue it or --force to start over/);
  const forced = qkd(['train', '--config', cfg, '--out', out, '--eval-context', '16', '--force', ...T1]);
  assert.equal(forced.status, 0, forced.stderr);
  assert.equal(steps(out), 4, 'a fresh run of 4 steps');
});

test('a NaN loss stops distillation with a clear error and keeps the last good checkpoint', () => {
  const teacher = tinyModel(join(work, 'teacher'));
  const cfg = recipe('distill', [`teacher: ${teacher}`, `student: { preset: anchor-student, ${TINY.slice(2)}`, 'steps: 8',
    'evalContext: 16', 'alpha: 0.5']);
  const out = join(work, 'nan-run');
  const killed = qkd(['distill', '--config', cfg, '--out', out, ...T1], { env: { QKD_TEST_SIGNAL_AT_STEP: '4:SIGTERM' } });
  assert.equal(killed.status, 130, killed.stderr);
  const state = () => JSON.parse(readFileSync(join(out, 'checkpoint', 'state.json'), 'utf8')).step;
  assert.equal(state(), 4);
  tinyModel(teacher, { nan: ['embed.weight'] }); // the teacher goes bad under the run
  const r = qkd(['distill', '--config', cfg, '--out', out, '--resume', ...T1]);
  refused(r, 2, /step 5: the loss is NaN, not finite .*The last good checkpoint \(step 4\) is in .*nan-run\/checkpoint/s);
  assert.equal(state(), 4, 'the checkpoint is the last good one');
  assert.ok(!existsSync(join(out, 'model')), 'no NaN model saved');
  const fresh = qkd(['distill', '--config', cfg, '--out', join(work, 'nan-fresh'), ...T1]);
  refused(fresh, 2, /step 1: the loss is NaN.*No checkpoint had been written yet/s);
  assert.doesNotMatch(fresh.stderr, /best valid ppl NaN/);
});

test('export refuses non-finite weights, naming the tensor; nothing is written', () => {
  const bad = tinyModel(join(work, 'nan-model'), { nan: ['layers.0.q.weight'] });
  const out = join(work, 'nan-export');
  refused(qkd(['export', '--model', bad, '--out', out]), 2, /tensor "layers\.0\.q\.weight" holds a non-finite value \(element 0 = NaN\); refusing to export/);
  refused(qkd(['export', '--model', bad, '--format', 'onnx', '--out', `${out}.onnx`]), 2, /tensor "layers\.0\.q\.weight" holds a non-finite value/);
  assert.ok(!existsSync(out) && !existsSync(`${out}.onnx`));
});
