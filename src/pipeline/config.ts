/**
 * The pipeline config (`qkd pipeline --config FILE`, flags over it): where the text and the teacher
 * come from, the teacher's training config, the distillation recipe and its overrides, and the
 * evaluation and speed settings. Validated once (zod, unknown keys rejected), then frozen.
 */
import { z } from 'zod';
import { QkdError } from '../tensor/errors.js';
import { TASK_NAMES } from '../eval/tasks/index.js';
import { mergeConfig, zodMessage } from '../train/config.js';

/** The recipe the pipeline distills with unless told otherwise (docs/distillation.md). */
export const DEFAULT_RECIPE = 'recipes/recommended.yaml';

export const PipelineConfigSchema = z.object({
  /** Training text: files or folders of .txt; null = the Brown corpus. */
  text: z.array(z.string().min(1)).min(1).nullable().default(null),
  /** Held-out text for evaluation (with `text`); null = the end of the training text. */
  valid: z.array(z.string().min(1)).min(1).nullable().default(null),
  /** An existing teacher model directory; null = train one (stages tokenizer and teacher). */
  teacher: z.string().min(1).nullable().default(null),
  /** Vocabulary of the tokenizer the pipeline trains (no --teacher). */
  vocabSize: z.number().int().min(260).max(65536).default(2048),
  /** Overrides of the teacher's training config (`qkd train`: preset, steps, ...). */
  train: z.record(z.string(), z.unknown()).default({}),
  /** The distillation recipe file (teacher and data are the pipeline's). */
  recipe: z.string().min(1).default(DEFAULT_RECIPE),
  /** Overrides of the recipe (steps, seed, sparsity, ...). */
  distill: z.record(z.string(), z.unknown()).default({}),
  /** Teacher-logit cache: on, off, or auto (on when the student sees its windows more than once). */
  cache: z.enum(['auto', 'on', 'off']).default('auto'),
  eval: z.object({
    context: z.number().int().min(2).default(256),
    /** Windows per evaluation text (0 = all). */
    windows: z.number().int().min(0).default(0),
  }).strict().default({ context: 256, windows: 0 }),
  /** Zero-shot language tasks of teacher and student (docs/tasks.md); null = skip the stage. */
  tasks: z.object({
    /** The tasks to run; null = all. */
    names: z.array(z.enum(TASK_NAMES)).min(1).nullable().default(null),
    /** At most this many items per task. */
    limit: z.number().int().positive().default(200),
    /** Seed of the suite (which items are drawn). */
    seed: z.number().int().nonnegative().default(0),
  }).strict().nullable().default({ names: null, limit: 200, seed: 0 }),
  report: z.object({
    /** Held-out windows for the approximation ratio and the empirical risks. */
    windows: z.number().int().min(1).default(8),
  }).strict().default({ windows: 8 }),
  bench: z.object({
    prompt: z.number().int().min(1).default(16),
    newTokens: z.number().int().min(2).default(128),
    warmup: z.number().int().min(0).default(3),
    rounds: z.number().int().min(1).default(3),
  }).strict().default({ prompt: 16, newTokens: 128, warmup: 3, rounds: 3 }),
}).strict();

export type PipelineConfig = Readonly<z.output<typeof PipelineConfigSchema>>;

export function makePipelineConfig(file: Record<string, unknown>, flags: Record<string, unknown>, where: string): PipelineConfig {
  const r = PipelineConfigSchema.safeParse(mergeConfig(file, flags, ['train', 'distill', 'eval', 'tasks', 'bench', 'report']));
  if (!r.success) throw new QkdError('E_CONFIG', zodMessage(where, r.error));
  const c = r.data;
  if (c.tasks?.names && c.tasks.names.every((n) => n === 'lm' || n === 'cloze')) {
    throw new QkdError('E_CONFIG', `${where}: tasks.names: name at least one multiple-choice task besides cloze and lm (the report compares Perf, their mean accuracy)`);
  }
  if (c.valid && !c.text) throw new QkdError('E_CONFIG', `${where}: valid: held-out text needs training text (text) too`);
  for (const k of ['teacher', 'data', 'teacherCache']) {
    if (k in c.distill) throw new QkdError('E_CONFIG', `${where}: distill.${k}: set by the pipeline (use the top-level teacher / text)`);
  }
  for (const k of ['data', 'tokenizer', 'vocabSize']) {
    if (k in c.train) throw new QkdError('E_CONFIG', `${where}: train.${k}: set by the pipeline (use the top-level text / vocabSize)`);
  }
  return Object.freeze(c);
}
