/**
 * What `qkd report` reads from a pipeline's output folder (docs/report.md "Inputs"): pipeline.json,
 * the student's distill run (config.json, metrics.jsonl, model/), the export, eval/eval.json,
 * bench/bench.json and the optional tasks/tasks.json. Every JSON file is validated with zod; a
 * malformed one is a QkdError naming the file and the field. eval, bench and tasks may be absent
 * (their report entries are then null and say so); the student run and the export may not.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { z } from 'zod';
import { QkdError } from '../../tensor/errors.js';
import { RepeatSchema } from '../../data/repeat.js';

const Split = z.object({ ppl: z.number(), nll: z.number(), top1: z.number().min(0).max(1), tokens: z.number().int().nonnegative() });
const ModelEval = z.object({ valid: Split.optional(), test: Split.optional() });
export const EvalSchema = z.object({ teacher: ModelEval, student: ModelEval });

const Speed = z.object({ decodeTokPerS: z.number().positive(), prefillTokPerS: z.number().positive().optional() });
export const BenchSchema = z.object({
  threads: z.number().int().positive().optional(), prompt: z.number().int().nonnegative(), newTokens: z.number().int().positive(),
  teacher: Speed, student: Speed,
});

const Task = z.object({
  acc: z.number(), acc_norm: z.number().optional(), stderr: z.number().optional(), n: z.number().int().optional(),
  chance: z.number().optional(),
});
const ModelTasks = z.object({ tasks: z.record(z.string(), Task), perf: z.number() });
export const TasksSchema = z.object({ teacher: ModelTasks, student: ModelTasks });

export const PipelineSchema = z.object({
  version: z.literal(1),
  stages: z.record(z.string(), z.object({ hash: z.string().optional(), done: z.boolean().optional(), seconds: z.number().optional() })).optional(),
  teacher: z.string().min(1).optional(),
  text: z.object({ train: z.string().optional(), valid: z.string().optional(), test: z.string().optional() }).optional(),
});

const DataSpec = z.union([
  z.object({ kind: z.literal('brown'), repeat: RepeatSchema.optional() }),
  z.object({ kind: z.literal('text'), paths: z.array(z.string()).min(1), valid: z.array(z.string()).optional(), validFraction: z.number().optional(),
    repeat: RepeatSchema.optional() }),
]);
/** The part of a resolved DistillConfig the report reads (other keys pass through). */
export const DistillRunSchema = z.object({
  distill: z.object({
    alpha: z.number().min(0).max(1), tau: z.number().positive(), lambda: z.number().min(0),
    kl: z.enum(['forward', 'reverse']).default('forward'),
    teacher: z.string().optional(), data: DataSpec.optional(), steps: z.number().optional(),
    batch: z.number().optional(), context: z.number().int().optional(), evalContext: z.number().int().optional(),
    sparsity: z.object({ target: z.number() }).passthrough().nullable().optional(),
  }).passthrough(),
});

export const TrainPoint = z.object({
  step: z.number(), loss: z.number(), ce: z.number().optional(), kl: z.number().optional(), entropy: z.number().optional(),
  lr: z.number().optional(), grad_norm: z.number().optional(), sparsity: z.number().optional(), tokens_per_s: z.number().optional(),
}).passthrough();
export const EvalPoint = z.object({
  step: z.number(), valid_ppl: z.number(), valid_nll: z.number().optional(), valid_top1: z.number().optional(),
  valid_tokens: z.number().optional(), best: z.boolean().optional(),
}).passthrough();

export type EvalJson = z.infer<typeof EvalSchema>;
export type BenchJson = z.infer<typeof BenchSchema>;
export type TasksJson = z.infer<typeof TasksSchema>;
export type DistillRun = z.infer<typeof DistillRunSchema>['distill'];
export type TrainPointT = z.infer<typeof TrainPoint>;
export type EvalPointT = z.infer<typeof EvalPoint>;
export type DataSpecT = z.infer<typeof DataSpec>;

/** Everything located and parsed; paths are absolute. */
export interface RunInputs {
  run: string;
  teacherDir: string;
  studentRun: string;
  studentModel: string;
  exportDir: string;
  distill: DistillRun;
  train: TrainPointT[];
  evals: EvalPointT[];
  eval: EvalJson | null;
  bench: BenchJson | null;
  tasks: TasksJson | null;
  /** Held-out text for the approximation ratio (pipeline.json text.valid), or null: the run's data spec. */
  validText: string | null;
  /** Training text: pipeline.json text.train, or null: the run's data spec. */
  trainText: string | null;
  notes: string[];
}

function readJsonFile<T>(path: string, schema: z.ZodType<T>, what: string): T {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new QkdError('E_FORMAT', `${path}: ${what} is not valid JSON: ${(e as Error).message}`, { cause: e });
  }
  const r = schema.safeParse(raw);
  if (!r.success) {
    const msg = r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new QkdError('E_FORMAT', `${path}: ${what}: ${msg}`);
  }
  return r.data;
}

const isDir = (p: string) => existsSync(p) && statSync(p).isDirectory();
const isFile = (p: string) => existsSync(p) && statSync(p).isFile();

/** A path from a JSON file: absolute, else relative to the working directory if it exists there, else to the run. */
export function resolveFrom(run: string, p: string): string {
  if (isAbsolute(p)) return p;
  return existsSync(resolve(p)) ? resolve(p) : resolve(run, p);
}

function optionalJson<T>(path: string, schema: z.ZodType<T>, what: string, notes: string[]): T | null {
  if (isFile(path)) return readJsonFile(path, schema, what);
  notes.push(`${path} is missing: ${what} entries are not measured`);
  return null;
}

/** Parses metrics.jsonl into training steps and evaluations (lines of other shapes are skipped). */
export function readMetrics(path: string): { train: TrainPointT[]; evals: EvalPointT[] } {
  const train: TrainPointT[] = [], evals: EvalPointT[] = [];
  if (!isFile(path)) throw new QkdError('E_MISSING', `${path}: not found (the student's distill run has no metrics)`);
  readFileSync(path, 'utf8').split('\n').forEach((line, i) => {
    if (!line.trim()) return;
    let j: unknown;
    try { j = JSON.parse(line); } catch (e) {
      throw new QkdError('E_FORMAT', `${path}:${i + 1}: not valid JSON: ${(e as Error).message}`, { cause: e });
    }
    const ev = EvalPoint.safeParse(j);
    if (ev.success) { evals.push(ev.data); return; }
    const tr = TrainPoint.safeParse(j);
    if (tr.success) train.push(tr.data);
  });
  return { train, evals };
}

function locateTeacher(run: string, pipelineTeacher: string | undefined, distill: DistillRun): string {
  const candidates = [pipelineTeacher && resolveFrom(run, pipelineTeacher), join(run, 'teacher', 'model'),
    distill.teacher && resolveFrom(run, distill.teacher)].filter((p): p is string => !!p);
  for (const c of candidates) {
    const m = isFile(join(c, 'config.json')) ? c : join(c, 'model');
    if (isFile(join(m, 'config.json'))) return m;
  }
  throw new QkdError('E_MISSING', `${run}: no teacher model found (tried ${candidates.join(', ') || 'nothing'}): ` +
    'pipeline.json "teacher", teacher/model/ or the student config\'s "teacher"');
}

/** Locates and reads the run folder's inputs. */
export function readRunInputs(runDir: string): RunInputs {
  const run = resolve(runDir), notes: string[] = [];
  if (!isDir(run)) throw new QkdError('E_MISSING', `${runDir}: no such folder (expected a qkd pipeline output)`);
  const pPath = join(run, 'pipeline.json');
  const pipeline = isFile(pPath) ? readJsonFile(pPath, PipelineSchema, 'pipeline.json') : null;
  if (!pipeline) notes.push(`${pPath} is missing: teacher and texts located from the student's config`);
  const studentRun = join(run, 'student');
  const cPath = join(studentRun, 'config.json');
  if (!isFile(cPath)) throw new QkdError('E_MISSING', `${cPath}: not found (expected the student's qkd distill run in ${studentRun})`);
  const distill = readJsonFile(cPath, DistillRunSchema, 'distill run config').distill;
  const studentModel = join(studentRun, 'model');
  if (!isFile(join(studentModel, 'config.json'))) throw new QkdError('E_MISSING', `${studentModel}/config.json: not found (the student model)`);
  const exportDir = join(run, 'export');
  if (!isFile(join(exportDir, 'model.safetensors'))) {
    throw new QkdError('E_MISSING', `${exportDir}/model.safetensors: not found (the qkd-int8 export of the student)`);
  }
  const { train, evals } = readMetrics(join(studentRun, 'metrics.jsonl'));
  const text = pipeline?.text;
  return {
    run, teacherDir: locateTeacher(run, pipeline?.teacher, distill), studentRun, studentModel, exportDir, distill, train, evals,
    eval: optionalJson(join(run, 'eval', 'eval.json'), EvalSchema, 'eval.json', notes),
    bench: optionalJson(join(run, 'bench', 'bench.json'), BenchSchema, 'bench.json', notes),
    tasks: isFile(join(run, 'tasks', 'tasks.json')) ? readJsonFile(join(run, 'tasks', 'tasks.json'), TasksSchema, 'tasks.json') : null,
    validText: text?.valid ? resolveFrom(run, text.valid) : null,
    trainText: text?.train ? resolveFrom(run, text.train) : null,
    notes,
  };
}
