/**
 * The task suite: items built deterministically from held-out text (Brown test by default), the
 * same items for the same text and seed, each task with a hash of its items.
 */
import { QkdError } from '../../tensor/errors.js';
import { brownHeldOut, textHeldOut, type HeldOut } from './corpus.js';
import { brownLexicon } from './lexicon.js';
import { detNounItems, subjVerbItems, wordOrderItems } from './pairs.js';
import { clozeItems, lmItems, nextSentenceItems } from './text-items.js';
import { hypernymItems } from './wordnet.js';
import { parseSuiteConfig, type SuiteConfig, type Task, type TaskName, type TaskSuite } from './types.js';
import { hashOf, taskRng } from './util.js';

export interface SuiteSource {
  /** The user's held-out text files or directories; default: the Brown test split. */
  text?: readonly string[];
  /** Called for a task that finds no item (it is left out); without it such a task is an error. */
  onEmpty?: (why: string) => void;
}

const DESCRIPTIONS: Record<TaskName, string> = {
  'cloze': 'last word of a sentence given the passage before it (LAMBADA-style); greedy exact match',
  'next-sentence': 'true next sentence vs three length-matched sentences from other documents',
  'agr-det-noun': 'minimal pairs: demonstrative-noun number agreement (this/these, that/those)',
  'agr-subj-verb': 'minimal pairs: subject-verb number agreement (is/are, was/were, has/have, does/do, -s forms)',
  'word-order': 'minimal pairs: original sentence vs two adjacent inner words swapped',
  'hypernym': 'WordNet: the hypernym of a common noun vs three length-matched hypernyms of other nouns',
  'lm': 'bits per byte and word-level perplexity of paragraph-aligned chunks',
};

function buildTask(name: TaskName, held: HeldOut, n: number, seed: number): Task {
  const rng = taskRng(seed, name), docs = held.docs, description = DESCRIPTIONS[name];
  switch (name) {
    case 'cloze': {
      const items = clozeItems(docs, n, rng);
      return { name, kind: 'cloze', chance: 0, description, items, hash: hashOf(items) };
    }
    case 'lm': {
      const items = lmItems(docs, n, rng);
      return { name, kind: 'lm', description, items, hash: hashOf(items) };
    }
    case 'hypernym': {
      const items = hypernymItems(brownLexicon(), n, rng);
      return { name, kind: 'mc', chance: 0.25, description, items, hash: hashOf(items) };
    }
    case 'next-sentence': {
      const items = nextSentenceItems(docs, n, rng);
      return { name, kind: 'mc', chance: 0.25, description, items, hash: hashOf(items) };
    }
    case 'agr-det-noun': case 'agr-subj-verb': case 'word-order': {
      const items = name === 'agr-det-noun' ? detNounItems(docs, n, rng)
        : name === 'agr-subj-verb' ? subjVerbItems(docs, n, rng, brownLexicon()) : wordOrderItems(docs, n, rng);
      return { name, kind: 'mc', chance: 0.5, description, items, hash: hashOf(items) };
    }
  }
}

/** Builds the selected tasks; a task that finds no item in the text throws E_INPUT, or, with
 *  `source.onEmpty`, is left out and reported (E_INPUT still when none is left). */
export function buildSuite(config: Partial<SuiteConfig> | SuiteConfig = {}, source: SuiteSource = {}): TaskSuite {
  const cfg = parseSuiteConfig(config);
  const held = source.text && source.text.length > 0 ? textHeldOut(source.text, brownLexicon) : brownHeldOut();
  const tasks = cfg.tasks.flatMap((name) => {
    const n = Math.min(cfg.sizes[name], cfg.limit ?? Infinity);
    const t = buildTask(name, held, n, cfg.seed);
    if (t.items.length > 0) return [t];
    const why = `${held.source}: task ${name} found no items in the held-out text (too little text?)`;
    if (!source.onEmpty) throw new QkdError('E_INPUT', why);
    source.onEmpty(why);
    return [];
  });
  if (tasks.length === 0) throw new QkdError('E_INPUT', `${held.source}: none of the tasks ${cfg.tasks.join(', ')} found items in the held-out text`);
  return { source: held.source, tasks, hash: hashOf(tasks.map((t) => [t.name, t.hash])), config: cfg };
}
