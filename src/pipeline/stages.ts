/**
 * The stages of `qkd pipeline`, each a function of its inputs writing one folder of the output:
 * tokenizer -> teacher -> (cache) -> student -> export -> eval -> tasks -> bench -> report. pipeline.ts decides which run.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Backend } from '../kernels/backend.js';
import { trainBpe } from '../data/bpe.js';
import { brownSplitText } from '../data/brown.js';
import { encodeCached, loadTokenData, type DataSpec } from '../data/dataset.js';
import { loadTextInputs } from '../data/text.js';
import { loadTokenizer } from '../data/tokenizer-node.js';
import { makeDistillConfig, type DistillConfig } from '../distill/config.js';
import { distill, totalSteps } from '../distill/distill.js';
import { buildTeacherCache, cacheBytesOnDisk } from '../distill/teacher.js';
import { windowCount } from '../distill/teacher-cache-job.js';
import { evaluate, type EvalResult } from '../eval/perplexity.js';
import { decodeSpeed, type DecodeSpeed } from '../eval/speed.js';
import { buildSuite, evaluateTasks, type TasksResult } from '../eval/tasks/index.js';
import { writeDirAtomic, writeFileAtomic } from '../io/atomic.js';
import { exportStudent } from '../io/export.js';
import { loadHfModelConfig } from '../io/hf.js';
import { recordLayout } from '../io/teacher-cache-format.js';
import { loadModel } from '../io/load-model.js';
import { buildReport } from '../eval/report/build.js';
import { writeReport } from '../eval/report/write.js';
import { loadInt8Model } from '../runtime/int8-node.js';
import type { CausalLM } from '../runtime/generate.js';
import { makeTrainConfig, readConfigFile } from '../train/config.js';
import { freeBytes } from '../train/guard.js';
import { train, type TrainHooks } from '../train/trainer.js';
import type { PipelineConfig } from './config.js';

/** What the stages share: the output folder, the config, and the backend of the training stages. */
export interface StageContext {
  out: string;
  cfg: PipelineConfig;
  be: Backend;
  /** A 1-thread backend for the decode benchmark (batch 1, as on a device). */
  benchBackend: () => Promise<Backend>;
  hooks: (stage: string) => TrainHooks;
  info: (msg: string) => void;
}

export const dataSpec = (cfg: PipelineConfig): DataSpec => cfg.text
  ? { kind: 'text', paths: [...cfg.text], ...(cfg.valid ? { valid: [...cfg.valid] } : {}), validFraction: 0.05 }
  : { kind: 'brown' };

/** The teacher's model directory: given, or the one the teacher stage trains. */
export const teacherDir = (c: StageContext): string => c.cfg.teacher ?? join(c.out, 'teacher', 'model');

export function tokenizerStage(c: StageContext): void {
  const texts = c.cfg.text ? loadTextInputs(c.cfg.text).map((d) => d.text) : [brownSplitText('train')];
  c.info(`training a byte-level BPE tokenizer (vocab ${c.cfg.vocabSize})`);
  writeDirAtomic(join(c.out, 'tokenizer'), { 'tokenizer.json': JSON.stringify(trainBpe(texts, { vocabSize: c.cfg.vocabSize })) });
}

export function teacherTrainConfig(c: StageContext) {
  return makeTrainConfig({ ...c.cfg.train, data: dataSpec(c.cfg), tokenizer: join(c.out, 'tokenizer', 'tokenizer.json') }, {},
    'pipeline config: train');
}

export async function teacherStage(c: StageContext, resume: boolean): Promise<void> {
  const s = await train(teacherTrainConfig(c), c.be, join(c.out, 'teacher'), resume, c.hooks('teacher'));
  if (s.interrupted) throw new Interrupted(s.interrupted);
}

/** The recipe with the pipeline's teacher, data and cache filled in. */
export function studentConfig(c: StageContext, cache: string | null): DistillConfig {
  const recipe = readConfigFile(c.cfg.recipe);
  // the pipeline's text replaces the recipe's, the recipe's augmentation of it (data.repeat) stays
  const repeat = (recipe.data as { repeat?: unknown } | undefined)?.repeat;
  return makeDistillConfig({ ...recipe, ...c.cfg.distill },
    { teacher: teacherDir(c), data: { ...dataSpec(c.cfg), ...(repeat !== undefined ? { repeat } : {}) }, teacherCache: cache },
    `${c.cfg.recipe} (pipeline)`);
}

/** What decides the cache stage in auto mode (all counts of the student's recipe on the pipeline's text). */
export interface CacheFacts {
  alpha: number;
  /** Windows the student reads (steps x batch) and windows its training text has. */
  reads: number;
  windows: number;
  /** Bytes of the full-logit cache, bytes of it already on disk, and bytes free beside it. */
  bytes: number;
  have: number;
  free: number;
}

/**
 * Auto mode: a teacher-logit cache pays when the student reads its windows more than once, and is
 * built only when it fits in 90% of the free disk (a full-logit cache is windows x T x vocabulary x 2
 * bytes: a 50k-vocabulary teacher on 2M tokens needs ~200 GB); otherwise the student runs the live teacher.
 * What a partial or complete cache already holds counts as room, so a resumed run decides as the first did.
 */
export function cacheDecision(f: CacheFacts): { use: boolean; why: string } {
  const gib = (b: number) => `${(b / 2 ** 30).toFixed(2)} GiB`;
  if (f.alpha >= 1) return { use: false, why: 'not needed (alpha 1: the student learns from labels only)' };
  if (f.reads <= f.windows) return { use: false, why: 'not needed (the student sees each window at most once)' };
  if (f.bytes - f.have > 0.9 * f.free) {
    return { use: false, why: `skipped: the full-logit cache would need ${gib(f.bytes)}, the disk has ${gib(f.free)} free; ` +
      'the student runs the live teacher (slower per step)' };
  }
  return { use: true, why: `${gib(f.bytes)} of teacher logits (the student reads each window ${(f.reads / f.windows).toFixed(1)} times)` };
}

/** Whether the pipeline builds and uses a teacher-logit cache (the config's on/off, or cacheDecision). */
export function wantsCache(c: StageContext): { use: boolean; why: string } {
  if (c.cfg.cache !== 'auto') return { use: c.cfg.cache === 'on', why: `${c.cfg.cache} in the pipeline config` };
  const dc = studentConfig(c, null);
  if (dc.alpha >= 1) return cacheDecision({ alpha: dc.alpha, reads: 0, windows: 0, bytes: 0, have: 0, free: 0 });
  const tok = loadTokenizer(teacherDir(c)), windows = windowCount(loadTokenData(dc.data, tok).train.length, dc.context);
  const V = loadHfModelConfig(teacherDir(c)).vocabSize, out = join(c.out, 'cache');
  const bytes = windows * recordLayout({ V, k: V, T: dc.context, taus: [dc.tau], logitDtype: CACHE_DTYPE }).bytes;
  return cacheDecision({ alpha: dc.alpha, reads: totalSteps(dc, windows) * dc.batch, windows, bytes, have: cacheBytesOnDisk(out),
    free: freeBytes(out) });
}

const CACHE_DTYPE = 'f16';

export function cacheStage(c: StageContext): void {
  const dc = studentConfig(c, null), tok = loadTokenizer(teacherDir(c));
  buildTeacherCache({ teacher: teacherDir(c), out: join(c.out, 'cache'), data: dc.data, context: dc.context, k: 'all',
    taus: [dc.tau], logitDtype: CACHE_DTYPE, batch: 8 }, c.be, tok);
}

export async function studentStage(c: StageContext, cache: string | null, resume: boolean): Promise<void> {
  const s = await distill(studentConfig(c, cache), c.be, join(c.out, 'student'), resume, c.hooks('student'));
  if (s.interrupted) throw new Interrupted(s.interrupted);
  if (!s.best) throw new Interrupted('the student never reached its target sparsity: no model was saved');
}

export function exportStage(c: StageContext): { bytes: number; warnings: string[] } {
  const r = exportStudent(join(c.out, 'student', 'model'), join(c.out, 'export'));
  return { bytes: r.bytes, warnings: r.warnings };
}

/** The held-out texts the models are compared on: Brown's valid and test splits, or the validation part of the user's text. */
function evalTexts(c: StageContext): { name: string; ids: (tokDir: string) => Int32Array }[] {
  if (!c.cfg.text) {
    return (['valid', 'test'] as const).map((s) => ({ name: s, ids: (d: string) => encodeCached(loadTokenizer(d), brownSplitText(s)) }));
  }
  return [{ name: 'valid', ids: (d: string) => loadTokenData(dataSpec(c.cfg), loadTokenizer(d)).valid }];
}

export interface EvalFile { context: number; teacher: Record<string, EvalResult>; student: Record<string, EvalResult> }

export function evalStage(c: StageContext): EvalFile {
  const { context, windows } = c.cfg.eval, texts = evalTexts(c);
  const run = (m: CausalLM, dir: string, who: string): Record<string, EvalResult> => Object.fromEntries(texts.map((t) => {
    const ids = t.ids(dir), n = windows > 0 ? Math.min(ids.length, windows * context) : ids.length;
    c.info(`evaluating the ${who} on ${t.name} (${n} tokens)`);
    return [t.name, evaluate(m, ids.subarray(0, n), { context })];
  }));
  const out: EvalFile = { context, ...teacherAndStudent(c, run) };
  writeStageFile(c, 'eval', 'eval.json', out);
  return out;
}

/** `run` on the teacher (float) and on the student export (int8 runtime), each with its model folder;
 *  both models are loaded once and disposed after. */
function teacherAndStudent<T>(c: StageContext, run: (m: CausalLM, dir: string, who: string) => T): { teacher: T; student: T } {
  const tDir = teacherDir(c), sDir = join(c.out, 'export');
  const teacher = loadModel(tDir, c.be).model, student = loadInt8Model(sDir, c.be).model;
  try {
    return { teacher: run(teacher, tDir, 'teacher'), student: run(student, sDir, 'student export') };
  } finally { teacher.dispose(); student.dispose(); }
}

/** tasks/tasks.json: the suite and, per model, each task's accuracy and Perf (the report's `tasks` input). */
export interface TasksFile {
  suite: { hash: string; source: string; items: Record<string, number> };
  teacher: TaskScores; student: TaskScores;
}
interface TaskScores {
  tasks: Record<string, { acc: number; acc_norm?: number; stderr: number; n: number; chance: number }>;
  perf: number;
  lm: TasksResult['lm'];
}

/** Zero-shot language tasks (docs/tasks.md) of teacher and student export, on one suite built from held-out text. */
export function tasksStage(c: StageContext): TasksFile {
  const o = c.cfg.tasks!;
  // all tasks (the default): one that finds no item in a short held-out text is left out with a note;
  // tasks named in the config must all be there
  const suite = buildSuite({ limit: o.limit, seed: o.seed, ...(o.names ? { tasks: [...o.names] } : {}) },
    { text: c.cfg.valid ?? undefined, ...(o.names ? {} : { onEmpty: (why: string) => c.info(`${why}: left out`) }) });
  const run = (m: CausalLM, dir: string, who: string): TaskScores => {
    c.info(`language tasks of the ${who} (${suite.tasks.map((t) => `${t.name} ${t.items.length}`).join(', ')})`);
    const r = evaluateTasks(m, suite, { tokenizer: loadTokenizer(dir) });
    const tasks = Object.fromEntries(Object.entries(r.tasks).map(([n, t]) => [n, {
      acc: t.acc, ...(t.acc_norm === null ? {} : { acc_norm: t.acc_norm }), stderr: t.stderr, n: t.n, chance: t.chance,
    }]));
    return { tasks, perf: r.perf!, lm: r.lm };
  };
  const out: TasksFile = {
    suite: { hash: suite.hash, source: suite.source, items: Object.fromEntries(suite.tasks.map((t) => [t.name, t.items.length])) },
    ...teacherAndStudent(c, run),
  };
  writeStageFile(c, 'tasks', 'tasks.json', out);
  return out;
}

export interface BenchFile { threads: number; prompt: number; newTokens: number; teacher: DecodeSpeed; student: DecodeSpeed }

export async function benchStage(c: StageContext): Promise<BenchFile> {
  const be = await c.benchBackend(), o = c.cfg.bench;
  try {
    const speed = (m: CausalLM & { dispose(): void }, who: string) => {
      c.info(`decode speed of the ${who} (batch 1, 1 thread, ${o.prompt}-token prompt, ${o.newTokens} new tokens)`);
      try { return decodeSpeed(m, o); } finally { m.dispose(); }
    };
    const out: BenchFile = { threads: 1, prompt: o.prompt, newTokens: o.newTokens,
      teacher: speed(loadModel(teacherDir(c), be).model, 'teacher'), student: speed(loadInt8Model(join(c.out, 'export'), be).model, 'student export') };
    writeStageFile(c, 'bench', 'bench.json', out);
    return out;
  } finally { await be.dispose(); }
}

/** The evidence: report.json / report.md / report.html (src/eval/report, docs/report.md) from the stages' outputs. */
export function reportStage(c: StageContext): string {
  const out = join(c.out, 'report');
  writeReport(out, buildReport(c.out, c.be, { windows: c.cfg.report.windows }), { force: true });
  return join(out, 'report.html');
}

function writeStageFile(c: StageContext, dir: string, name: string, value: unknown): void {
  mkdirSync(join(c.out, dir), { recursive: true });
  writeFileAtomic(join(c.out, dir, name), JSON.stringify(value, null, 2) + '\n');
}

/** A training stage stopped by a signal (its checkpoint is saved) or without a result. */
export class Interrupted extends Error {}

export const exists = (c: StageContext, ...p: string[]): boolean => existsSync(join(c.out, ...p));
