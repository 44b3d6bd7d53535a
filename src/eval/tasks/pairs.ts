/**
 * Grammatical minimal pairs made from the held-out sentences and their tags (Zorro/BLiMP style):
 * the original sentence against one edited copy; the model must give the original the higher
 * log-likelihood. Each pair is a two-choice item with an empty context (scored from end-of-text).
 *
 *  - agr-det-noun: a demonstrative directly before its noun changes number (`this book` ->
 *    `these book`, `those men` -> `that men`);
 *  - agr-subj-verb: a verb directly after a subject noun changes number (`the jury is` -> `the jury
 *    are`; is/are, was/were, has/have, does/do, and -s/base forms attested in the tagged corpus);
 *  - word-order: two adjacent inner words swap (`the old house` -> `the house old`).
 *
 * Surface cues are balanced away: in the agreement tasks every class (this/these, is/are, ...)
 * contributes as many singular-original as plural-original items, so a preference for one word form
 * (or for fewer tokens) is right exactly half the time; the swap keeps the same words and bytes.
 */
import type { Rng } from '../../tensor/random.js';
import { render, type Doc, type Sentence, type Token } from './corpus.js';
import type { Lexicon } from './lexicon.js';
import type { McItem } from './types.js';
import { isBareWord, isItemSentence, matchCase, pickBalanced, shuffled } from './util.js';

interface Edit {
  sentence: Sentence;
  /** class (e.g. `be-pres`) and direction (`sg` or `pl`) of the original */
  cls: string;
  dir: string;
  toks: Token[];
}

const DETS: Record<string, { other: string; tag: string; noun: string; cls: string; dir: string }> = {
  this: { other: 'these', tag: 'dt', noun: 'nn', cls: 'this', dir: 'sg' },
  these: { other: 'this', tag: 'dts', noun: 'nns', cls: 'this', dir: 'pl' },
  that: { other: 'those', tag: 'dt', noun: 'nn', cls: 'that', dir: 'sg' },
  those: { other: 'that', tag: 'dts', noun: 'nns', cls: 'that', dir: 'pl' },
};

/** Verb form -> its other number, by the (singular, plural) tags of the Brown tag set. */
const VERBS: Record<string, { other: string; tag: string; cls: string; dir: string }> = {
  is: { other: 'are', tag: 'bez', cls: 'be-pres', dir: 'sg' }, are: { other: 'is', tag: 'ber', cls: 'be-pres', dir: 'pl' },
  was: { other: 'were', tag: 'bedz', cls: 'be-past', dir: 'sg' }, were: { other: 'was', tag: 'bed', cls: 'be-past', dir: 'pl' },
  has: { other: 'have', tag: 'hvz', cls: 'have', dir: 'sg' }, have: { other: 'has', tag: 'hv', cls: 'have', dir: 'pl' },
  does: { other: 'do', tag: 'doz', cls: 'do', dir: 'sg' }, do: { other: 'does', tag: 'do', cls: 'do', dir: 'pl' },
};

/** Tags that may stand inside a noun phrase before its head noun. */
const NP_TAGS = new Set(['at', 'ap', 'abn', 'cd', 'dt', 'dts', 'dti', 'jj', 'jjr', 'jjs', 'jjt', 'nn', 'nns', 'nn$', 'nns$', 'np$', 'od', 'pp$', 'vbg', 'vbn']);

function replaced(toks: readonly Token[], i: number, w: string): Token[] {
  const out = [...toks];
  out[i] = { ...toks[i], w: matchCase(toks[i].w, w) };
  return out;
}

function detEdit(s: Sentence, i: number): Edit | null {
  const t = s.toks[i], n = s.toks[i + 1], d = DETS[t.w.toLowerCase()];
  if (!d || !n || t.tag !== d.tag || n.tag !== d.noun || !isBareWord(t) || !isBareWord(n)) return null;
  const toks = replaced(s.toks, i, d.other);
  // one class per written pair (`This`/`These` apart from `this`/`these`): both directions share its strings
  return { sentence: s, cls: `${d.cls}:${d.dir === 'sg' ? t.w : toks[i].w}`, dir: d.dir, toks };
}

/** The subject noun phrase ending at `end` starts after something that is not a preposition or `and`. */
function plausibleSubject(toks: readonly Token[], end: number): boolean {
  let j = end;
  while (j > 0 && NP_TAGS.has(toks[j - 1].tag ?? '')) j--;
  const before = j > 0 ? toks[j - 1] : null;
  return before === null || (before.tag !== 'in' && before.tag !== 'cc' && before.tag !== null);
}

function verbEdit(s: Sentence, i: number, lex: Lexicon): Edit | null {
  const v = s.toks[i], subj = s.toks[i - 1];
  if (!subj || (subj.tag !== 'nn' && subj.tag !== 'nns') || !isBareWord(v) || !isBareWord(subj)) return null;
  if (v.w !== v.w.toLowerCase() || !plausibleSubject(s.toks, i - 1)) return null;
  const sg = subj.tag === 'nn', known = VERBS[v.w];
  if (known) {
    if (v.tag !== known.tag || (known.dir === 'sg') !== sg) return null;
    return { sentence: s, cls: known.cls, dir: known.dir, toks: replaced(s.toks, i, known.other) };
  }
  const other = sg && v.tag === 'vbz' ? lex.vbzToVb.get(v.w) : !sg && v.tag === 'vb' ? lex.vbToVbz.get(v.w) : undefined;
  if (other === undefined) return null;
  // one class per verb (`takes`/`take`), so each verb is as often right in its -s form as in its base form
  return { sentence: s, cls: sg ? v.w : other, dir: sg ? 'sg' : 'pl', toks: replaced(s.toks, i, other) };
}

/** Adverbs, particles, pronouns and names move or invert grammatically (`said she`, `bump him off`). */
const NO_SWAP_TAGS = new Set(['rb', 'rbr', 'rbt', 'ql', 'cc', 'rp', 'pps', 'ppss', 'ppo', 'ppl', 'ppls', 'np', 'nps']);

function swapEdit(s: Sentence, i: number): Edit | null {
  const a = s.toks[i], b = s.toks[i + 1];
  if (i === 0 || !b || i + 1 >= s.toks.length - 1 || !isBareWord(a) || !isBareWord(b)) return null;
  if (a.w.toLowerCase() === b.w.toLowerCase() || NO_SWAP_TAGS.has(a.tag ?? '') || NO_SWAP_TAGS.has(b.tag ?? '')) return null;
  const toks = [...s.toks];
  toks[i] = b; toks[i + 1] = a;
  return { sentence: s, cls: 'swap', dir: 'one', toks };
}

/** Every candidate edit of one kind, at most one per sentence (a random one of the sentence's sites). */
function candidates(docs: readonly Doc[], rng: Rng, edit: (s: Sentence, i: number) => Edit | null): Edit[] {
  const out: Edit[] = [];
  for (const d of docs) {
    for (const p of d.paragraphs) {
      for (const s of p) {
        if (!isItemSentence(s)) continue;
        const edits: Edit[] = [];
        for (let i = 0; i < s.toks.length; i++) {
          const e = edit(s, i);
          if (e && render(s.style, e.toks) !== s.text) edits.push(e);
        }
        if (edits.length > 0) out.push(edits[rng.int(edits.length)]);
      }
    }
  }
  return out;
}

/** Pairs in the order given; the original is first in every other item, so ties score exactly chance. */
function toItems(edits: readonly Edit[]): McItem[] {
  return edits.map((e, i) => {
    const good = e.sentence.text, bad = render(e.sentence.style, e.toks);
    const gold = i % 2;
    return { context: '', choices: gold === 0 ? [good, bad] : [bad, good], gold };
  });
}

function balancedItems(edits: readonly Edit[], n: number, rng: Rng): McItem[] {
  const groups = new Map<string, Map<string, Edit[]>>();
  for (const e of shuffled(edits, rng)) {
    const g = groups.get(e.cls) ?? new Map<string, Edit[]>();
    groups.set(e.cls, g);
    const list = g.get(e.dir) ?? [];
    g.set(e.dir, list);
    list.push(e);
  }
  for (const g of groups.values()) if (!g.has('sg') || !g.has('pl')) g.clear();
  return toItems(shuffled(pickBalanced(groups, n), rng));
}

export function detNounItems(docs: readonly Doc[], n: number, rng: Rng): McItem[] {
  return balancedItems(candidates(docs, rng, detEdit), n, rng);
}

export function subjVerbItems(docs: readonly Doc[], n: number, rng: Rng, lex: Lexicon): McItem[] {
  return balancedItems(candidates(docs, rng, (s, i) => verbEdit(s, i, lex)), n, rng);
}

export function wordOrderItems(docs: readonly Doc[], n: number, rng: Rng): McItem[] {
  return toItems(shuffled(candidates(docs, rng, swapEdit), rng).slice(0, n));
}
