/** Items, tasks and the suite's configuration (validated once with zod, then frozen). */
import { z } from 'zod';
import { QkdError } from '../../tensor/errors.js';

export const TASK_NAMES = ['cloze', 'next-sentence', 'agr-det-noun', 'agr-subj-verb', 'word-order', 'hypernym', 'lm'] as const;
export type TaskName = (typeof TASK_NAMES)[number];

/** Multiple choice: the model scores `context + choices[i]` for every i; `gold` is the right one. */
export interface McItem {
  context: string;
  choices: string[];
  gold: number;
}

/** Cloze: `target` (with its leading space) must follow `context`; greedy match and its log-likelihood. */
export interface ClozeItem {
  context: string;
  target: string;
}

/** Language modelling: the whole `text` is scored from an end-of-text start. */
export interface LmItem {
  text: string;
}

interface TaskBase {
  name: TaskName;
  description: string;
  /** sha256 (hex, 16 digits) of the items' canonical JSON. */
  hash: string;
}

export type Task =
  | (TaskBase & { kind: 'mc'; chance: number; items: McItem[] })
  | (TaskBase & { kind: 'cloze'; chance: number; items: ClozeItem[] })
  | (TaskBase & { kind: 'lm'; items: LmItem[] });

export interface TaskSuite {
  /** `brown-test` or the user's file names. */
  source: string;
  tasks: Task[];
  /** sha256 over the task names and their item hashes. */
  hash: string;
  config: SuiteConfig;
}

/** Default number of items per task: sized so the fixture teacher evaluates well inside 2 minutes on 2 cores. */
export const DEFAULT_SIZES: Readonly<Record<TaskName, number>> = {
  'cloze': 400, 'next-sentence': 300, 'agr-det-noun': 400, 'agr-subj-verb': 400, 'word-order': 400, 'hypernym': 400, 'lm': 50,
};

const size = (n: TaskName) => z.number().int().positive().default(DEFAULT_SIZES[n]);

export const SuiteConfig = z.object({
  tasks: z.array(z.enum(TASK_NAMES)).min(1).default([...TASK_NAMES]),
  /** At most this many items per task (after the default sizes). */
  limit: z.number().int().positive().optional(),
  /** Seed of every random choice while building (items depend only on the text and this seed). */
  seed: z.number().int().nonnegative().default(0),
  sizes: z.object({
    'cloze': size('cloze'), 'next-sentence': size('next-sentence'), 'agr-det-noun': size('agr-det-noun'),
    'agr-subj-verb': size('agr-subj-verb'), 'word-order': size('word-order'), 'hypernym': size('hypernym'), 'lm': size('lm'),
  }).strict().default({ ...DEFAULT_SIZES }),
}).strict();
export type SuiteConfig = z.output<typeof SuiteConfig>;

export function parseSuiteConfig(raw: unknown): SuiteConfig {
  const r = SuiteConfig.safeParse(raw ?? {});
  if (!r.success) {
    const i = r.error.issues[0];
    throw new QkdError('E_CONFIG', `tasks config: ${i.path.join('.') || '(root)'}: ${i.message}`);
  }
  return Object.freeze(r.data);
}

/** `"cloze,word-order"` -> task names; unknown names are rejected with the list of known ones. */
export function parseTaskNames(list: string): TaskName[] {
  const names = list.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  if (names.length === 0) throw new QkdError('E_CONFIG', `--tasks: expected comma-separated task names, got '${list}'`);
  for (const n of names) {
    if (!(TASK_NAMES as readonly string[]).includes(n)) {
      throw new QkdError('E_CONFIG', `--tasks: unknown task '${n}' (known: ${TASK_NAMES.join(', ')})`);
    }
  }
  return [...new Set(names)] as TaskName[];
}
