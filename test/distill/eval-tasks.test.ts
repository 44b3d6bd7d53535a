/**
 * `qkd distill --eval-tasks`: every evaluation logs the task scores of the student as it evaluates
 * (metrics.jsonl), with the suite's hash, and an unknown task name is a clear error.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixture } from '../helpers.js';

const CLI = 'dist/src/cli/main.js';
const tmp = mkdtempSync(join(tmpdir(), 'qkd-eval-tasks-'));
const base = ['distill', '--teacher', fixture('brown-llama-teacher'), '--steps', '4', '--batch', '2', '--context', '32', '--warmup', '1',
  '--eval-every', '2', '--eval-windows', '1', '--bits', '8', '--sparsity', '0.5', '--backend', 'wasm', '--threads', '1'];

test('distill --eval-tasks logs acc, stderr and perf at every evaluation', () => {
  const out = join(tmp, 'run');
  const r = spawnSync(process.execPath, [CLI, ...base, '--eval-tasks', 'agr-det-noun,word-order', '--out', out], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const evals = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((m) => 'valid_ppl' in m);
  assert.deepEqual(evals.map((m) => m.step), [2, 4]);
  for (const m of evals) {
    for (const t of ['agr-det-noun', 'word-order']) {
      const s = m[`tasks_${t}`];
      assert.ok(s && s.acc >= 0 && s.acc <= 1 && s.stderr > 0 && s.n > 0, `${t}: ${JSON.stringify(s)}`);
    }
    assert.ok(m.tasks_perf >= 0 && m.tasks_perf <= 1);
    assert.equal(m.tasks_hash, evals[0].tasks_hash, 'the same items at every evaluation');
  }
});

test('distill --eval-tasks with an unknown task fails before training', () => {
  const r = spawnSync(process.execPath, [CLI, ...base, '--eval-tasks', 'trivia', '--out', join(tmp, 'bad')], { encoding: 'utf8' });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /unknown task 'trivia'/);
});
