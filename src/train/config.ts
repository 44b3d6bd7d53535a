/**
 * The training config: from a JSON/YAML file plus flags, validated once (zod, unknown keys rejected,
 * cross-field checks), then frozen. The model part is a preset name plus overrides; the vocabulary
 * comes from the tokenizer when the run starts (resolveModel).
 */
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { makeModelConfig, ModelConfigSchema, type ModelConfig } from '../model/config.js';
import { PRESETS, presetNames, type ModelPreset } from '../model/presets.js';

/** The student preset that copies the teacher's architecture. */
export const TEACHER_PRESET = 'teacher';
import { MAX_BYTES, readRegularText } from '../io/read-file.js';
import { checkWarmup } from './guard.js';
import { QkdError } from '../tensor/errors.js';
import { RepeatSchema } from '../data/repeat.js';

/** A model in a config: a preset name plus overrides of any architecture field (the vocabulary comes from the tokenizer). */
export const ModelSpecSchema = ModelConfigSchema.omit({ vocabSize: true }).partial().extend({
  preset: z.string().default('teacher-small'),
}).strict();
export type ModelSpec = z.output<typeof ModelSpecSchema>;

export const DataSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('brown'), repeat: RepeatSchema.optional() }).strict(),
  z.object({
    kind: z.literal('text'),
    paths: z.array(z.string()).min(1),
    valid: z.array(z.string()).optional(),
    validFraction: z.number().gt(0).lt(1).default(0.05),
    repeat: RepeatSchema.optional(),
  }).strict(),
]);

export const TrainConfigSchema = z.object({
  model: ModelSpecSchema.default({ preset: 'teacher-small' }),
  /** tokenizer.json (file or directory); absent: train a byte-level BPE on the training text. */
  tokenizer: z.string().nullable().default(null),
  /** Vocabulary size when qkd trains the tokenizer. */
  vocabSize: z.number().int().min(260).max(65536).default(2048),
  data: DataSchema.default({ kind: 'brown' }),
  steps: z.number().int().positive().default(600),
  /** Sequences per optimizer step. */
  batch: z.number().int().positive().default(16),
  /** Sequences per forward/backward pass (gradient accumulation when smaller than batch). */
  microBatch: z.number().int().positive().optional(),
  context: z.number().int().min(2).default(128),
  lr: z.number().positive().default(1.5e-3),
  /** Cosine decay ends at lr·minLrRatio. */
  minLrRatio: z.number().min(0).max(1).default(0.1),
  warmup: z.number().int().min(0).default(100),
  weightDecay: z.number().min(0).default(0.1),
  beta1: z.number().min(0).lt(1).default(0.9),
  beta2: z.number().min(0).lt(1).default(0.95),
  eps: z.number().positive().default(1e-8),
  /** Gradient clipping by global norm (0 = off). */
  clip: z.number().min(0).default(1.0),
  seed: z.number().int().min(0).default(1337),
  /** Evaluate on the validation tokens every N steps (0 = only at the end). */
  evalEvery: z.number().int().min(0).default(100),
  /** Validation windows per evaluation (0 = all). */
  evalWindows: z.number().int().min(0).default(0),
  /** Window length of the evaluation protocol. */
  evalContext: z.number().int().min(2).default(256),
  checkpointEvery: z.number().int().min(0).default(50),
  /** Weight storage dtype of the saved model. */
  saveDtype: z.enum(['F32', 'BF16', 'F16']).default('F32'),
}).strict();

export type TrainConfigInput = z.input<typeof TrainConfigSchema>;
export type TrainConfig = Readonly<z.output<typeof TrainConfigSchema> & { microBatch: number }>;

export function zodMessage(where: string, e: z.ZodError): string {
  return `${where}: ` + e.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
}

/** Reads a JSON or YAML config file. */
export function readConfigFile(path: string): Record<string, unknown> {
  const text = readRegularText(path, 'config file', MAX_BYTES.config);
  let v: unknown;
  try { v = /\.ya?ml$/i.test(path) ? parseYaml(text) : JSON.parse(text); } catch (e) {
    throw new QkdError('E_FORMAT', `${path}: not valid ${/\.ya?ml$/i.test(path) ? 'YAML' : 'JSON'}: ${(e as Error).message}`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new QkdError('E_FORMAT', `${path}: expected a mapping at the top level`);
  return v as Record<string, unknown>;
}

/**
 * Flags over a file config: top-level keys replace, the `nested` objects merge field by field, and a
 * flag set to null removes the file's object (e.g. `--bits 0`: no quantization). Shared by every
 * command that reads a config file.
 */
export function mergeConfig(file: Record<string, unknown>, flags: Record<string, unknown>, nested: string[]): Record<string, unknown> {
  const merged: Record<string, unknown> = { ...file, ...flags };
  for (const k of nested) {
    const f = file[k], g = flags[k];
    if (g === null) merged[k] = null;
    else if (f || g) merged[k] = { ...((f as object) ?? {}), ...((g as object) ?? {}) };
  }
  return merged;
}

/** Merges flags over a file config, validates, freezes. */
export function makeTrainConfig(file: Record<string, unknown>, flags: Record<string, unknown>, where: string): TrainConfig {
  const r = TrainConfigSchema.safeParse(mergeConfig(file, flags, ['model']));
  if (!r.success) throw new QkdError('E_CONFIG', zodMessage(where, r.error));
  const c = { ...r.data, microBatch: r.data.microBatch ?? r.data.batch };
  const bad = (f: string, why: string) => { throw new QkdError('E_CONFIG', `${where}: ${f}: ${why}`); };
  if (!(c.model.preset in PRESETS)) bad('model.preset', `unknown preset '${c.model.preset}' (known: ${presetNames().join(', ')})`);
  if (c.batch % c.microBatch !== 0) bad('microBatch', `${c.microBatch} does not divide batch ${c.batch}`);
  checkWarmup(c.warmup, c.steps, where);
  // validate the architecture now (with a placeholder vocabulary) so bad models fail before any work
  const m = resolveModel(c.model, 256, where);
  if (c.context > m.maxPos) bad('context', `${c.context} is longer than the model's ${m.maxPos} positions (model.maxPos)`);
  if (c.evalContext > m.maxPos) bad('evalContext', `${c.evalContext} is longer than the model's ${m.maxPos} positions`);
  return Object.freeze(c);
}

/**
 * The model config of a model spec for a given vocabulary size. `teacher` is the architecture the
 * preset name 'teacher' stands for (a distillation student shaped like its teacher).
 */
export function resolveModel(spec: ModelSpec, vocabSize: number, where: string, teacher?: ModelPreset): ModelConfig {
  const { preset, ...over } = spec;
  const base = preset === TEACHER_PRESET ? teacher : PRESETS[preset];
  if (!base) {
    throw new QkdError('E_CONFIG', preset === TEACHER_PRESET ? `${where}: model.preset: 'teacher' is known only once the teacher is loaded`
      : `${where}: model.preset: unknown preset '${preset}'`);
  }
  const m = { ...base, ...over, vocabSize };
  if (over.dim !== undefined || over.nHead !== undefined) {
    if (m.dim % m.nHead !== 0) {
      throw new QkdError('E_CONFIG', `${where}: model.nHead: ${m.nHead} heads do not divide the width model.dim ${m.dim}`);
    }
    if (over.headDim === undefined) m.headDim = m.dim / m.nHead;
    if (over.nKVHead === undefined && m.nHead % (m.nKVHead ?? m.nHead) !== 0) m.nKVHead = m.nHead;
  }
  return makeModelConfig(m, `${where}: model`);
}
