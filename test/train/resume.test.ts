/**
 * Kill-and-resume: a run killed with SIGKILL (or stopped by SIGTERM) mid-way and resumed produces
 * exactly the losses and weights of an uninterrupted run with the same seed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixture } from '../helpers.js';

const CLI = 'dist/src/cli/main.js';
const BACKEND = ['--backend', 'wasm', '--threads', '2'];
const tmp = mkdtempSync(join(tmpdir(), 'qkd-resume-'));
const text = join(tmp, 'text.txt');
writeFileSync(text, readFileSync(fixture('brown-text', 'brown-valid.txt'), 'utf8').slice(0, 60000));
const config = join(tmp, 'config.yaml');
writeFileSync(config, [
  'model: { preset: student, dim: 32, nLayer: 2, nHead: 2, nKVHead: 2, maxPos: 64 }',
  `tokenizer: ${fixture('tokenizer', 'tokenizer.json')}`,
  `data: { kind: text, paths: [${text}], validFraction: 0.1 }`,
  'steps: 12', 'batch: 4', 'microBatch: 2', 'context: 32', 'warmup: 3', 'lr: 0.003',
  'evalEvery: 6', 'evalWindows: 2', 'evalContext: 32', 'checkpointEvery: 2', 'seed: 5',
].join('\n'));

function qkd(args: string[], env: Record<string, string> = {}) {
  return spawnSync(process.execPath, [CLI, 'train', '--config', config, ...BACKEND, ...args], {
    encoding: 'utf8', env: { ...process.env, ...env, QKD_CACHE_DIR: join(tmp, 'cache') },
  });
}

function losses(dir: string): [number, number][] {
  return readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l))
    .filter((r) => r.loss !== undefined).map((r) => [r.step, r.loss]);
}

const bytes = (dir: string, f: string) => readFileSync(join(dir, f));

test('uninterrupted reference run', () => {
  const r = qkd(['--out', join(tmp, 'ref')]);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(losses(join(tmp, 'ref')).length, 12);
});

for (const sig of ['SIGKILL', 'SIGTERM']) {
  test(`${sig} after step 5, then --resume: identical losses and weights`, () => {
    const out = join(tmp, sig);
    const killed = qkd(['--out', out], { QKD_TEST_SIGNAL_AT_STEP: `5:${sig}` });
    if (sig === 'SIGKILL') assert.equal(killed.signal, 'SIGKILL');
    else assert.equal(killed.status, 130, killed.stderr);
    const state = JSON.parse(readFileSync(join(out, 'checkpoint', 'state.json'), 'utf8'));
    assert.equal(state.step, sig === 'SIGKILL' ? 4 : 5, 'checkpoint step');
    const resumed = qkd(['--out', out, '--resume']);
    assert.equal(resumed.status, 0, resumed.stderr);
    assert.deepEqual(losses(out), losses(join(tmp, 'ref')));
    assert.ok(bytes(out, 'model/model.safetensors').equals(bytes(join(tmp, 'ref'), 'model/model.safetensors')), 'final weights differ');
    assert.ok(bytes(out, 'checkpoint/state.safetensors').equals(bytes(join(tmp, 'ref'), 'checkpoint/state.safetensors')),
      'optimizer state differs');
  });
}

test('resume refuses a changed config, a fresh run refuses an existing run', () => {
  const out = join(tmp, 'ref');
  const again = qkd(['--out', out]);
  assert.equal(again.status, 2);
  assert.match(again.stderr, /already holds a run/);
  const changed = qkd(['--out', out, '--resume', '--lr', '0.01']);
  assert.equal(changed.status, 2);
  assert.match(changed.stderr, /different config \(train\.lr/);
});
