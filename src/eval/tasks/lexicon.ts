/**
 * A unigram part-of-speech lexicon of the whole tagged Brown corpus (word forms and their tag
 * counts only; no sentence of the training split becomes an item). It tags a user's plain text and
 * pairs third-person-singular verbs with their base forms (`takes` <-> `take`) for agreement items.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { brownDir, loadBrown } from '../../data/brown.js';
import { QkdError } from '../../tensor/errors.js';

export interface Lexicon {
  /** lower-cased word -> base tag -> count */
  counts: Map<string, Map<string, number>>;
  /** lower-cased vbz form -> vb form, both attested at least twice with those tags */
  vbzToVb: Map<string, string>;
  vbToVbz: Map<string, string>;
}

/** A word is tagged only when one tag holds this share of its occurrences. */
const MAJORITY = 0.9;
const MIN_COUNT = 2;

function addCount(counts: Lexicon['counts'], word: string, tag: string): void {
  let m = counts.get(word);
  if (!m) { m = new Map(); counts.set(word, m); }
  m.set(tag, (m.get(tag) ?? 0) + 1);
}

function countOf(lex: Pick<Lexicon, 'counts'>, w: string, tag: string): number {
  return lex.counts.get(w)?.get(tag) ?? 0;
}

/** Base forms a third-person-singular form may come from (`goes` -> go, `tries` -> try). */
export function baseCandidates(vbz: string): string[] {
  const out: string[] = [];
  if (vbz.endsWith('ies') && vbz.length > 4) out.push(vbz.slice(0, -3) + 'y');
  if (vbz.endsWith('es') && vbz.length > 3) out.push(vbz.slice(0, -2));
  if (vbz.endsWith('s') && vbz.length > 2) out.push(vbz.slice(0, -1));
  return out;
}

function verbPairs(lex: Pick<Lexicon, 'counts'>): { vbzToVb: Map<string, string>; vbToVbz: Map<string, string> } {
  const vbzToVb = new Map<string, string>(), vbToVbz = new Map<string, string>();
  const words = [...lex.counts.keys()].sort();
  for (const w of words) {
    if (countOf(lex, w, 'vbz') < MIN_COUNT) continue;
    const base = baseCandidates(w).find((b) => countOf(lex, b, 'vb') >= MIN_COUNT);
    if (base === undefined || vbToVbz.has(base)) continue;
    vbzToVb.set(w, base);
    vbToVbz.set(base, w);
  }
  return { vbzToVb, vbToVbz };
}

/** Builds the lexicon from tagged lines (`word/tag word/tag ...`); base tags drop -tl/-hl/-nc. */
export function lexiconFromTagged(texts: Iterable<string>): Lexicon {
  const counts: Lexicon['counts'] = new Map();
  for (const raw of texts) {
    for (const tok of raw.split(/\s+/)) {
      const i = tok.lastIndexOf('/');
      if (i <= 0) continue;
      const tag = tok.slice(i + 1), dash = tag.indexOf('-');
      addCount(counts, tok.slice(0, i).toLowerCase(), dash > 0 ? tag.slice(0, dash) : tag);
    }
  }
  return { counts, ...verbPairs({ counts }) };
}

let cached: Lexicon | undefined;

/** The lexicon of all 500 Brown files (memoized). */
export function brownLexicon(): Lexicon {
  if (cached) return cached;
  const dir = brownDir();
  cached = lexiconFromTagged(loadBrown().files.map((f) => {
    try { return readFileSync(join(dir, f.name), 'utf8'); } catch (e) {
      throw new QkdError('E_MISSING', `${join(dir, f.name)}: cannot read Brown corpus file`, { cause: e });
    }
  }));
  return cached;
}

/** The word's majority tag when it is unambiguous enough, else null. */
export function lexiconTag(lex: Lexicon, word: string): string | null {
  const m = lex.counts.get(word.toLowerCase());
  if (!m) return null;
  let total = 0, best = '', bestN = 0;
  for (const [tag, n] of m) {
    total += n;
    if (n > bestN) { best = tag; bestN = n; }
  }
  return bestN >= MIN_COUNT && bestN >= MAJORITY * total ? best : null;
}
