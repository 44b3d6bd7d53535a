/**
 * `qkd tasks`: the JSON contract on the fixture teacher, a qkd-int8 export (with 64 positions, so
 * contexts are cut and lm chunks roll), a user's own text, and clear errors.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildSuite, scoreRequests } from '../../src/eval/tasks/index.js';
import { createBackend } from '../../src/kernels/registry.js';
import { loadInt8Model } from '../../src/runtime/int8-node.js';
import { exportStudent } from '../../src/io/export.js';
import { fixture } from '../helpers.js';
import { makeStudent } from '../runtime/students.js';

const CLI = 'dist/src/cli/main.js';
const TEACHER = fixture('brown-llama-teacher');
const tmp = mkdtempSync(join(tmpdir(), 'qkd-tasks-cli-'));

function qkd(...args: string[]) {
  return spawnSync(process.execPath, [CLI, ...args, '--threads', '1'], { encoding: 'utf8', maxBuffer: 1 << 26 });
}

function json(r: ReturnType<typeof qkd>) {
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.equal(lines.length, 1, 'stdout holds exactly one JSON object');
  return JSON.parse(lines[0]);
}

test('qkd tasks --json on the teacher: per-task acc, acc_norm, stderr, n, chance; perf; lm; hash', () => {
  const got = json(qkd('tasks', '--model', TEACHER, '--tasks', 'agr-det-noun,word-order,lm', '--limit', '12', '--json'));
  assert.deepEqual(Object.keys(got.tasks).sort(), ['agr-det-noun', 'word-order']);
  for (const t of Object.values(got.tasks) as Record<string, number>[]) {
    for (const k of ['acc', 'acc_norm', 'stderr', 'n', 'chance']) assert.equal(typeof t[k], 'number', k);
    assert.equal(t.n, 12);
    assert.equal(t.chance, 0.5);
  }
  assert.equal(got.perf, (got.tasks['agr-det-noun'].acc + got.tasks['word-order'].acc) / 2);
  assert.equal(got.lm.n, 12);
  assert.ok(got.lm.bits_per_byte > 1 && got.lm.bits_per_byte < 3, `bits/byte ${got.lm.bits_per_byte}`);
  assert.equal(got.hash, buildSuite({ tasks: ['agr-det-noun', 'word-order', 'lm'], limit: 12 }).hash);
});

test('qkd tasks runs a qkd-int8 export (short context: cut contexts, rolling lm windows)', () => {
  const student = makeStudent(join(tmp, 'student'));
  exportStudent(student, join(tmp, 'export'));
  const args = ['--tasks', 'cloze,next-sentence,agr-subj-verb,lm', '--limit', '6', '--json'];
  const q = json(qkd('tasks', '--model', join(tmp, 'export'), ...args));
  assert.equal(q.tasks['next-sentence'].n, 6);
  assert.equal(q.tasks.cloze.n, 6);
  assert.ok(q.lm.tokens > 6 * 64, 'chunks longer than the 64 positions were scored');
  // a random tiny model: near the uniform 11 bits per token
  assert.ok(q.lm.bits_per_byte > 2 && q.lm.bits_per_byte < 6, `bits/byte ${q.lm.bits_per_byte}`);
});

test('int8 runtime: the shared-context (KV cache, fused decode for 1-token steps) path equals the batched path', async () => {
  const be = await createBackend('wasm', { threads: 1 });
  try {
    const { model } = loadInt8Model(join(tmp, 'export'), be);
    const context = Array.from({ length: 20 }, (_, i) => (i * 37 + 5) % 2048);
    const conts = [[7], [8, 9], [10, 11, 12], Array.from({ length: 30 }, (_, i) => (i * 11 + 3) % 2048), [13, 14]];
    const shared = scoreRequests(model, conts.map((continuation) => ({ context, continuation })));
    const apart = scoreRequests(model, conts.map((continuation) => ({ context: [...context], continuation })));
    shared.forEach((x, i) => {
      assert.ok(Math.abs(x.ll - apart[i].ll) < 1e-3 * Math.max(1, Math.abs(x.ll)), `choice ${i}: ${x.ll} vs ${apart[i].ll}`);
      assert.equal(x.greedy, apart[i].greedy);
    });
    model.dispose();
  } finally { await be.dispose(); }
});

test('qkd tasks --text scores a user\'s held-out text; the text output names the suite', () => {
  const path = join(tmp, 'held-out.txt');
  writeFileSync(path, readFileSync(fixture('brown-text', 'brown-valid.txt'), 'utf8').slice(0, 120_000));
  const r = qkd('tasks', '--model', TEACHER, '--text', path, '--tasks', 'word-order', '--limit', '6');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^word-order\s+6\s+0\.5\s+/m);
  assert.match(r.stdout, new RegExp(`suite ${buildSuite({ tasks: ['word-order'], limit: 6 }, { text: [path] }).hash} \\(held-out.txt\\)`));
});

test('qkd tasks: unknown task and missing text are errors with non-zero exits', () => {
  const bad = qkd('tasks', '--model', TEACHER, '--tasks', 'cloze,nope');
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /unknown task 'nope'/);
  const missing = qkd('tasks', '--model', TEACHER, '--text', join(tmp, 'absent.txt'));
  assert.equal(missing.status, 3);
  assert.match(missing.stderr, /absent\.txt/);
});
