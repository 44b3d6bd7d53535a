/**
 * `qkd pipeline` end to end at tiny scale: every stage runs and writes its files; a second run skips
 * everything; a changed setting reruns exactly the stages it affects; a run killed (SIGKILL) in the
 * student stage resumes there and ends with a student bit-identical to an uninterrupted run's; a
 * folder that is not a pipeline output is refused.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixture } from '../helpers.js';

const CLI = 'dist/src/cli/main.js';
const tmp = mkdtempSync(join(tmpdir(), 'qkd-pipeline-'));
const train = join(tmp, 'train.txt'), valid = join(tmp, 'valid.txt'), config = join(tmp, 'pipeline.yaml');
writeFileSync(train, readFileSync(fixture('brown-text', 'brown-valid.txt'), 'utf8').slice(0, 120_000));
writeFileSync(valid, readFileSync(fixture('brown-text', 'brown-test.txt'), 'utf8').slice(0, 20_000));
const tiny = (bench = 8) => [
  'vocabSize: 300',
  'train: { model: { preset: anchor-student, dim: 32, nLayer: 2, nHead: 2, nKVHead: 1, ffnDim: 64 }, steps: 12, batch: 4, context: 32, warmup: 2, evalEvery: 0, evalContext: 64, checkpointEvery: 5 }',
  'distill: { steps: 12, batch: 4, context: 32, warmup: 2, evalEvery: 0, evalWindows: 2, evalContext: 64, checkpointEvery: 5 }',
  'eval: { context: 64, windows: 3 }',
  'tasks: { names: [cloze, next-sentence, word-order, lm], limit: 8 }',
  'report: { windows: 2 }',
  `bench: { prompt: 4, newTokens: ${bench}, warmup: 0, rounds: 1 }`,
].join('\n') + '\n';
writeFileSync(config, tiny());

function pipeline(out: string, extra: string[] = [], env: Record<string, string> = {}) {
  return spawnSync(process.execPath, [CLI, 'pipeline', '--config', config, '--text', train, '--valid', valid, '--out', out,
    '--backend', 'wasm', '--threads', '1', ...extra], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 240_000 });
}
const ranStages = (stdout: string) => /ran ([a-z, ]+?)(?:, skipped| in )/.exec(stdout)?.[1] ?? '';

const first = join(tmp, 'first');

test('pipeline: every stage runs, writes its folder, and the summary compares teacher and student', () => {
  const r = pipeline(first);
  assert.equal(r.status, 0, r.stderr);
  for (const f of ['pipeline.json', 'tokenizer/tokenizer.json', 'teacher/model/model.safetensors', 'student/model/model.safetensors',
    'export/model.safetensors', 'eval/eval.json', 'tasks/tasks.json', 'bench/bench.json', 'report/report.json', 'report/report.html']) {
    assert.ok(existsSync(join(first, f)), f);
  }
  assert.equal(ranStages(r.stdout), 'tokenizer, teacher, cache, student, export, eval, tasks, bench, report');
  // the language tasks: the configured ones, 8 items each, Perf = the mean accuracy of the multiple-choice ones
  const tasks = JSON.parse(readFileSync(join(first, 'tasks', 'tasks.json'), 'utf8'));
  assert.deepEqual(tasks.suite.items, { 'cloze': 8, 'next-sentence': 8, 'word-order': 8, 'lm': 8 });
  for (const who of ['teacher', 'student']) {
    const t = tasks[who];
    assert.deepEqual(Object.keys(t.tasks).sort(), ['cloze', 'next-sentence', 'word-order']);
    for (const x of Object.values(t.tasks) as { acc: number; n: number }[]) assert.ok(x.n === 8 && x.acc >= 0 && x.acc <= 1 && Number.isInteger(x.acc * 8));
    assert.ok(Math.abs(t.perf - (t.tasks['next-sentence'].acc + t.tasks['word-order'].acc) / 2) < 1e-12, `${who} perf ${t.perf}`);
    assert.ok(t.lm.bits_per_byte > 0 && t.lm.n === 8, `${who} lm`);
  }
  const report = JSON.parse(readFileSync(join(first, 'report', 'report.json'), 'utf8'));
  const claim = report.claims.find((c: { id: string }) => c.id === 'tasks-few-points');
  assert.match(claim.detail, /word-order: [\d.]+% vs [\d.]+%/);
  assert.match(r.stdout, new RegExp(`language tasks Perf \\(mean acc\\)\\s+${tasks.teacher.perf.toFixed(4)}\\s+${tasks.student.perf.toFixed(4)}`));
  assert.match(r.stdout, /report: .*report\.html/);
  const ev = JSON.parse(readFileSync(join(first, 'eval', 'eval.json'), 'utf8'));
  assert.equal(ev.teacher.valid.tokens, 3 * 63);
  assert.ok(ev.student.valid.ppl > 1 && ev.student.valid.ppl < 300, `student ppl ${ev.student.valid.ppl} (vocab 300)`);
  const bench = JSON.parse(readFileSync(join(first, 'bench', 'bench.json'), 'utf8'));
  assert.equal(bench.student.tokens.length, 8);
  assert.ok(bench.teacher.decodeTokPerS > 0 && bench.student.decodeTokPerS > 0);
  assert.match(r.stdout, /valid ppl\s+[\d.]+\s+[\d.]+/);
  assert.match(r.stdout, /decode tok\/s/);
});

test('pipeline: a second run skips every stage; a changed bench setting reruns only the bench', () => {
  let r = pipeline(first);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(ranStages(r.stdout), 'nothing');
  writeFileSync(config, tiny(6));
  try {
    r = pipeline(first);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(ranStages(r.stdout), 'bench, report');
  } finally { writeFileSync(config, tiny()); }
});

test('pipeline: killed in the student stage, it resumes there; the student is bit-identical to an uninterrupted run', () => {
  const teacher = join(first, 'teacher', 'model');
  const whole = join(tmp, 'whole'), killed = join(tmp, 'killed');
  let r = pipeline(whole, ['--teacher', teacher, '--tasks', 'none']);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(ranStages(r.stdout), 'teacher, cache, student, export, eval, bench, report');
  r = pipeline(killed, ['--teacher', teacher, '--tasks', 'none'], { QKD_TEST_SIGNAL_AT_STEP: '7:SIGKILL' });
  assert.equal(r.signal, 'SIGKILL', `killed at student step 7 (status ${r.status}): ${r.stderr.slice(-400)}`);
  assert.ok(existsSync(join(killed, 'student', 'checkpoint', 'state.json')), 'a checkpoint existed before the kill');
  assert.ok(!existsSync(join(killed, 'export')), 'nothing after the student stage ran');
  r = pipeline(killed, ['--teacher', teacher, '--tasks', 'none']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /stage \d\/\d student: resuming/);
  assert.match(r.stderr, /resumed at step 5 of 12/);
  for (const f of ['student/model/model.safetensors', 'export/model.safetensors']) {
    assert.ok(readFileSync(join(killed, f)).equals(readFileSync(join(whole, f))), `${f} bit-identical`);
  }
});

test('pipeline: refuses a non-empty folder that is not a pipeline output, and bad config values', () => {
  const other = join(tmp, 'other');
  mkdirSync(other);
  writeFileSync(join(other, 'notes.txt'), 'mine');
  let r = pipeline(other);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /not a pipeline output/);
  assert.equal(readFileSync(join(other, 'notes.txt'), 'utf8'), 'mine');
  r = spawnSync(process.execPath, [CLI, 'pipeline', '--out', join(tmp, 'x'), '--cache', 'sometimes'], { encoding: 'utf8' });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /cache/);
});
