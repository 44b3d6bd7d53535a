/**
 * Test helper: a tiny pipeline output folder in the layout `qkd pipeline` writes (docs/report.md
 * "Inputs"), made in about a second: teacher = ../shared/fixtures/tiny-llama (named in pipeline.json),
 * student = a random compressed student from test/runtime/students.ts (saved as qkd distill saves one)
 * with a synthetic metrics.jsonl, its qkd-int8 export, and eval/bench/tasks JSON written here.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { exportStudent } from '../../src/io/export.js';
import { fixture } from '../helpers.js';
import { makeStudent } from '../runtime/students.js';

export const DISTILL = {
  alpha: 0.4, tau: 2, lambda: 0.01, kl: 'forward', steps: 60, batch: 4, context: 32, evalContext: 64, evalWindows: 4,
  quant: { bits: 8, embedBits: 8, actBits: 8, scheme: 'maxabs', scaleLrRatio: 1 },
  sparsity: { target: 0.9, granularity: 'block', block: 4, n: 2, m: 4, scope: 'per-matrix', start: 0.1, end: 0.7, every: 25 },
};

export const EVAL = {
  teacher: { valid: { ppl: 2100, nll: Math.log(2100), top1: 0.004, tokens: 5000 }, test: { ppl: 2080, nll: Math.log(2080), top1: 0.31, tokens: 400000 } },
  student: { valid: { ppl: 2500, nll: Math.log(2500), top1: 0.002, tokens: 5000 }, test: { ppl: 2400, nll: Math.log(2400), top1: 0.29, tokens: 400000 } },
};
export const BENCH = { threads: 1, prompt: 16, newTokens: 128, teacher: { decodeTokPerS: 900, prefillTokPerS: 5000 }, student: { decodeTokPerS: 9000, prefillTokPerS: 40000 } };
export const TASKS = {
  teacher: { tasks: { cloze: { acc: 0.52, acc_norm: 0.5, stderr: 0.02, n: 500, chance: 0.25 } }, perf: 0.52 },
  student: { tasks: { cloze: { acc: 0.47, acc_norm: 0.46, stderr: 0.02, n: 500, chance: 0.25 } }, perf: 0.47 },
};

/** Training steps with the shape of qkd distill's metrics.jsonl lines. */
export function metricsLines(steps: number): string {
  const lines: string[] = [];
  for (let s = 1; s <= steps; s++) {
    const ce = 7.6 - 2 * (1 - Math.exp(-s / 20)), kl = 0.8 * Math.exp(-s / 15), entropy = 6 - s / 40;
    const sparsity = s < 6 ? 0 : Math.min(0.9, 0.9 * (1 - (1 - Math.min(1, (s - 6) / 36)) ** 3));
    lines.push(JSON.stringify({ step: s, loss: DISTILL.alpha * ce + (1 - DISTILL.alpha) * 4 * kl - DISTILL.lambda * entropy, ce, kl, entropy,
      lr: 1e-3 * Math.min(1, s / 5), grad_norm: 1, sparsity, tokens_per_s: 1000 }));
    if (s % 20 === 0) lines.push(JSON.stringify({ step: s, valid_ppl: 3000 - 10 * s, valid_nll: Math.log(3000 - 10 * s), valid_top1: 0.01, valid_tokens: 252, best: true }));
  }
  return lines.join('\n') + '\n';
}

/** Builds the folder under `out`; `tasks` adds tasks/tasks.json. */
export function makeTinyPipeline(out: string, o: { tasks?: boolean } = {}): string {
  mkdirSync(join(out, 'text'), { recursive: true });
  // texts: slices of the fixture splits (enough for 8 windows of 64 tokens, fast to tokenize)
  const valid = readFileSync(fixture('brown-text', 'brown-valid.txt'), 'utf8').slice(0, 12000);
  const train = readFileSync(fixture('brown-text', 'brown-test.txt'), 'utf8').slice(0, 12000);
  writeFileSync(join(out, 'text', 'valid.txt'), valid);
  writeFileSync(join(out, 'text', 'train.txt'), train);
  writeFileSync(join(out, 'text', 'test.txt'), valid.slice(6000));
  const student = join(out, 'student');
  makeStudent(join(student, 'model'), { arch: 'llama', actBits: 8, sparsity: { target: 0.9, granularity: 'block', block: 4 }, seed: 3 });
  writeFileSync(join(student, 'config.json'), JSON.stringify({ distill: {
    ...DISTILL, teacher: fixture('tiny-llama'), data: { kind: 'text', paths: [join(out, 'text', 'train.txt')], validFraction: 0.05 },
  } }, null, 2));
  writeFileSync(join(student, 'metrics.jsonl'), metricsLines(DISTILL.steps));
  exportStudent(join(student, 'model'), join(out, 'export'));
  const put = (dir: string, name: string, v: unknown) => { mkdirSync(join(out, dir), { recursive: true }); writeFileSync(join(out, dir, name), JSON.stringify(v, null, 2)); };
  put('eval', 'eval.json', EVAL);
  put('bench', 'bench.json', BENCH);
  if (o.tasks) put('tasks', 'tasks.json', TASKS);
  writeFileSync(join(out, 'pipeline.json'), JSON.stringify({
    version: 1, stages: { student: { hash: 'abc', done: true, seconds: 1 } }, teacher: fixture('tiny-llama'),
    text: { train: join(out, 'text', 'train.txt'), valid: join(out, 'text', 'valid.txt'), test: join(out, 'text', 'test.txt') },
  }, null, 2));
  return out;
}
