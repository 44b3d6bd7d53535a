/**
 * The distillation recipe: teacher, student architecture, data, optimizer, loss (α, τ, λ, KL
 * direction), quantization-aware training and gradual pruning. From a JSON/YAML recipe plus flags,
 * validated once (unknown keys rejected), then frozen.
 */
import { z } from 'zod';
import { PRESETS, presetNames } from '../model/presets.js';
import { TASK_NAMES } from '../eval/tasks/index.js';
import { QkdError } from '../tensor/errors.js';
import { mergeConfig, ModelSpecSchema, TEACHER_PRESET, TrainConfigSchema, resolveModel, zodMessage } from '../train/config.js';
import { checkWarmup } from '../train/guard.js';

export const QuantSchema = z.object({
  /** Weight bits of the linear layers (Q, K, V, O, FFN). */
  bits: z.number().int().min(2).max(8).default(8),
  /** Bits of the embedding / tied output projection (0 = keep it float). */
  embedBits: z.union([z.literal(0), z.number().int().min(2).max(8)]).default(8),
  /** Dynamic per-token quantization of every linear layer's input (0 = off). */
  actBits: z.union([z.literal(0), z.number().int().min(2).max(8)]).default(0),
  /** Scales from max |w| per output channel, or learned (LSQ). */
  scheme: z.enum(['maxabs', 'lsq']).default('maxabs'),
  /** Learning rate of LSQ scales (relative to the weights' lr). */
  scaleLrRatio: z.number().positive().default(1),
}).strict();

export const SparsitySchema = z.object({
  /** Fraction of zeros in each pruned matrix (or overall with scope global). */
  target: z.number().min(0).lt(1).default(0.9),
  granularity: z.enum(['unstructured', 'block', 'nm']).default('unstructured'),
  /** Block length along the input dimension (granularity block). */
  block: z.number().int().positive().default(4),
  /** N:M (granularity nm): keep n of every m. */
  n: z.number().int().positive().default(2),
  m: z.number().int().positive().default(4),
  scope: z.enum(['per-matrix', 'global']).default('per-matrix'),
  /**
   * What a weight (or block) is ranked by: `magnitude` |w|, or `activation` |w| times the RMS of its
   * input column over the training batches since the last mask update (the Wanda score, Sun et al.
   * 2023: an input feature that is large everywhere makes its small weights matter).
   */
  criterion: z.enum(['magnitude', 'activation']).default('magnitude'),
  /** Cubic schedule from start to end (fractions of training), masks refreshed every `every` steps. */
  start: z.number().min(0).max(1).default(0.1),
  end: z.number().min(0).max(1).default(0.7),
  every: z.number().int().positive().default(25),
}).strict();

const base = TrainConfigSchema.omit({ model: true, tokenizer: true, vocabSize: true }).shape;

export const DistillConfigSchema = z.object({
  ...base,
  teacher: z.string().min(1),
  /** A teacher-logit cache made by `qkd teacher-cache` (instead of running the teacher live). */
  teacherCache: z.string().nullable().default(null),
  /** The student's architecture: a preset plus overrides, as a training config's `model`. */
  student: ModelSpecSchema.extend({ preset: z.string().default('anchor-student') }).default({ preset: 'anchor-student' }),
  /** Training length in epochs over the data's windows (overrides steps when set). */
  epochs: z.number().positive().nullable().default(null),
  alpha: z.number().min(0).max(1).default(0.5),
  tau: z.number().positive().default(2),
  lambda: z.number().min(0).default(0.01),
  kl: z.enum(['forward', 'reverse']).default('forward'),
  quant: QuantSchema.nullable().default(null),
  sparsity: SparsitySchema.nullable().default(null),
  attnTopK: z.number().int().min(0).default(0),
  /** Language tasks (docs/tasks.md) scored at each evaluation and logged to metrics.jsonl; null = none. */
  evalTasks: z.array(z.enum(TASK_NAMES)).min(1).nullable().default(null),
  /** Items per task at each evaluation. */
  evalTasksLimit: z.number().int().positive().default(200),
  /** Student initialisation: random, or copied from the teacher (same widths; `layers[i]` = the
   *  teacher layer that student layer i starts from, default 0..nLayer-1). */
  init: z.object({
    from: z.enum(['random', 'teacher']).default('random'),
    layers: z.array(z.number().int().min(0)).nullable().default(null),
  }).strict().default({ from: 'random', layers: null }),
  // distillation defaults of the anchor recipe (fixtures/anchor-table.json)
  steps: z.number().int().positive().default(2000),
  lr: z.number().positive().default(2e-3),
  weightDecay: z.number().min(0).default(0),
  evalEvery: z.number().int().min(0).default(500),
  checkpointEvery: z.number().int().min(0).default(100),
}).strict();

export type DistillConfig = Readonly<z.output<typeof DistillConfigSchema> & { microBatch: number }>;

export function makeDistillConfig(file: Record<string, unknown>, flags: Record<string, unknown>, where: string): DistillConfig {
  const r = DistillConfigSchema.safeParse(mergeConfig(file, flags, ['student', 'quant', 'sparsity', 'init']));
  if (!r.success) throw new QkdError('E_CONFIG', zodMessage(where, r.error));
  const c = { ...r.data, microBatch: r.data.microBatch ?? r.data.batch };
  const bad = (f: string, why: string) => { throw new QkdError('E_CONFIG', `${where}: ${f}: ${why}`); };
  const preset = c.student.preset;
  if (!(preset in PRESETS) && preset !== TEACHER_PRESET) {
    bad('student.preset', `unknown preset '${preset}' (known: ${presetNames().join(', ')}, or ${TEACHER_PRESET}: the teacher's architecture)`);
  }
  if (c.batch % c.microBatch !== 0) bad('microBatch', `${c.microBatch} does not divide batch ${c.batch}`);
  if (c.epochs === null) checkWarmup(c.warmup, c.steps, where); // with epochs: checked once the steps are known
  if (c.sparsity && c.sparsity.start > c.sparsity.end) bad('sparsity.start', `${c.sparsity.start} is after sparsity.end ${c.sparsity.end}`);
  if (c.sparsity?.granularity === 'nm' && c.sparsity.n >= c.sparsity.m) bad('sparsity.n', `${c.sparsity.n} must be below m ${c.sparsity.m}`);
  if (preset === TEACHER_PRESET) return Object.freeze(c); // the architecture is checked once the teacher is loaded
  const m = resolveModel(c.student, 256, `${where}: student`);
  if (c.context > m.maxPos) bad('context', `${c.context} is longer than the student's ${m.maxPos} positions`);
  return Object.freeze(c);
}
