/**
 * `qkd pipeline`: text (or a teacher) in; a tiny student, its export, its evaluation, its speed and
 * its report out, as one resumable workflow. Each stage writes its own folder of OUT and records in
 * OUT/pipeline.json the hash of its inputs (its config and the hashes of the stages it reads). A
 * second run skips the stages whose hash is unchanged and done; a killed run resumes the stage it
 * reached (training stages from their last checkpoint, bit-identically); a changed config reruns
 * exactly the stages whose inputs changed, and those after them.
 *
 *   OUT/pipeline.json  {version, stages: {name: {hash, done, seconds}}, teacher, texts}
 *   OUT/tokenizer/     tokenizer.json          (no --teacher)
 *   OUT/teacher/       a `qkd train` run       (no --teacher)
 *   OUT/cache/         the teacher-logit cache (when it pays)
 *   OUT/student/       a `qkd distill` run
 *   OUT/export/        the qkd-int8 export
 *   OUT/eval/eval.json, OUT/tasks/tasks.json, OUT/bench/bench.json, OUT/report/
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { canonicalJson } from '../io/export-format.js';
import { writeFileAtomic } from '../io/atomic.js';
import { readRegularJson } from '../io/read-file.js';
import { QkdError } from '../tensor/errors.js';
import type { PipelineConfig } from './config.js';
import {
  benchStage, cacheStage, reportStage, evalStage, exportStage, exists, Interrupted, studentConfig, studentStage, tasksStage, teacherDir, teacherStage,
  teacherTrainConfig, tokenizerStage, wantsCache, type BenchFile, type EvalFile, type StageContext, type TasksFile,
} from './stages.js';

export const STATE_FILE = 'pipeline.json';
const VERSION = 1;

interface StageState { hash: string; done: boolean; seconds: number }
interface State { version: number; stages: Record<string, StageState>; teacher: string }

export interface PipelineResult {
  out: string; ran: string[]; skipped: string[]; eval: EvalFile; tasks: TasksFile | null; bench: BenchFile; exportBytes: number;
  teacherDir: string; report: string;
}

const sha = (v: unknown) => createHash('sha256').update(canonicalJson(v)).digest('hex').slice(0, 16);

/** The state of OUT: new (empty or absent), or a previous pipeline's; anything else is refused. */
function openState(out: string): State {
  const p = join(out, STATE_FILE);
  if (existsSync(p)) {
    const s = readRegularJson(p, STATE_FILE) as State;
    if (s?.version !== VERSION || typeof s.stages !== 'object') throw new QkdError('E_FORMAT', `${p}: field version: expected ${VERSION}`);
    return s;
  }
  if (existsSync(out)) {
    if (!statSync(out).isDirectory()) throw new QkdError('E_CONFIG', `--out ${out}: exists and is not a folder`);
    if (readdirSync(out).length > 0) {
      throw new QkdError('E_CONFIG', `--out ${out}: a non-empty folder that holds no ${STATE_FILE}: not a pipeline output; choose another --out`);
    }
  }
  return { version: VERSION, stages: {}, teacher: '' };
}

interface Stage {
  name: string;
  /** The stages whose outputs this one reads (their hashes enter its hash). */
  deps: string[];
  inputs: unknown;
  dirs: string[];
  /** Whether the stage's output is still there (default: all its dirs exist). */
  present?: () => boolean;
  run: (resume: boolean) => Promise<unknown> | unknown;
}

/** Identifies a given teacher's files without reading all of them: its config and the weights' sizes and times. */
function teacherIdentity(dir: string): unknown {
  const files = existsSync(dir) ? readdirSync(dir).filter((f) => /\.(json|safetensors)$/.test(f)).sort() : [];
  return files.map((f) => {
    const st = statSync(join(dir, f));
    return f.endsWith('.json') ? [f, readFileSync(join(dir, f), 'utf8')] : [f, st.size, st.mtimeMs];
  });
}

/** The stages this config runs, in order, each with the inputs that decide its hash. */
function plan(c: StageContext): Stage[] {
  const cfg = c.cfg, stages: Stage[] = [];
  if (!cfg.teacher) {
    stages.push({ name: 'tokenizer', deps: [], inputs: { text: cfg.text, vocabSize: cfg.vocabSize }, dirs: ['tokenizer'],
      run: () => tokenizerStage(c) });
    stages.push({ name: 'teacher', deps: ['tokenizer'], inputs: { train: () => teacherTrainConfig(c) }, dirs: ['teacher'],
      run: (r) => teacherStage(c, r) });
  } else stages.push({ name: 'teacher', deps: [], inputs: { given: cfg.teacher, files: () => teacherIdentity(cfg.teacher!) }, dirs: [], run: () => {} });
  // decided once per run, when first asked (after the teacher exists): each decision tokenizes the training text
  let decided: ReturnType<typeof wantsCache> | undefined;
  const cacheChoice = () => (decided ??= wantsCache(c)), useCache = () => cacheChoice().use;
  stages.push({ name: 'cache', deps: ['teacher'], inputs: { on: useCache, student: () => studentConfig(c, null) }, dirs: ['cache'],
    present: () => !useCache() || exists(c, 'cache', 'cache.json'),
    run: () => { c.info(`cache: ${cacheChoice().why}`); if (useCache()) cacheStage(c); } });
  stages.push({ name: 'student', deps: ['teacher', 'cache'], inputs: { recipe: () => studentConfig(c, null) }, dirs: ['student'],
    run: (r) => studentStage(c, useCache() ? join(c.out, 'cache') : null, r) });
  stages.push({ name: 'export', deps: ['student'], inputs: {}, dirs: ['export'], run: () => exportStage(c) });
  stages.push({ name: 'eval', deps: ['teacher', 'export'], inputs: { eval: cfg.eval, text: cfg.text, valid: cfg.valid }, dirs: ['eval'],
    run: () => evalStage(c) });
  if (cfg.tasks) {
    stages.push({ name: 'tasks', deps: ['teacher', 'export'], inputs: { tasks: cfg.tasks, valid: cfg.valid }, dirs: ['tasks'],
      run: () => tasksStage(c) });
  }
  stages.push({ name: 'bench', deps: ['teacher', 'export'], inputs: { bench: cfg.bench }, dirs: ['bench'], run: () => benchStage(c) });
  stages.push({ name: 'report', deps: ['teacher', 'student', 'export', 'eval', ...(cfg.tasks ? ['tasks'] : []), 'bench'], inputs: { report: cfg.report }, dirs: ['report'],
    run: () => reportStage(c) });
  return stages;
}

/** Evaluates lazy inputs (functions) so a stage's hash is computed only when the stages before it are done. */
function resolveInputs(v: unknown): unknown {
  if (typeof v === 'function') return resolveInputs(v());
  if (Array.isArray(v)) return v.map(resolveInputs);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, resolveInputs(x)]));
  return v;
}

export async function runPipeline(c: StageContext): Promise<PipelineResult> {
  const state = openState(c.out), ran: string[] = [], skipped: string[] = [];
  mkdirSync(c.out, { recursive: true });
  const save = () => writeFileAtomic(join(c.out, STATE_FILE), JSON.stringify(state, null, 2) + '\n');
  state.teacher = teacherDir(c);
  save();
  const stages = plan(c);
  const hashes: Record<string, string> = {};
  for (const [i, st] of stages.entries()) {
    const hash = hashes[st.name] = sha({ stage: st.name, inputs: resolveInputs(st.inputs), deps: st.deps.map((d) => hashes[d]) });
    const prev = state.stages[st.name];
    if (prev?.hash === hash && prev.done && (st.present ? st.present() : st.dirs.every((d) => exists(c, d)))) {
      skipped.push(st.name);
      c.info(`stage ${i + 1}/${stages.length} ${st.name}: done (inputs unchanged), skipped`);
      continue;
    }
    const resume = prev?.hash === hash && !prev.done && st.dirs.some((d) => exists(c, d, 'config.json'));
    if (!resume) for (const d of st.dirs) rmSync(join(c.out, d), { recursive: true, force: true });
    state.stages[st.name] = { hash, done: false, seconds: prev?.hash === hash ? prev.seconds : 0 };
    save();
    c.info(`stage ${i + 1}/${stages.length} ${st.name}${resume ? ': resuming' : ''}`);
    const t0 = performance.now();
    await st.run(resume);
    state.stages[st.name] = { hash, done: true, seconds: state.stages[st.name].seconds + (performance.now() - t0) / 1000 };
    save();
    ran.push(st.name);
  }
  const read = <T>(p: string) => readRegularJson(join(c.out, p), p) as T;
  const exportBytes = readdirSync(join(c.out, 'export')).reduce((s, f) => s + statSync(join(c.out, 'export', f)).size, 0);
  return { out: c.out, ran, skipped, eval: read<EvalFile>('eval/eval.json'), tasks: c.cfg.tasks ? read<TasksFile>('tasks/tasks.json') : null, bench: read<BenchFile>('bench/bench.json'), exportBytes,
    teacherDir: teacherDir(c), report: join(c.out, 'report', 'report.html') };
}

export { Interrupted };
