/**
 * Items made from running text: last-word cloze, next-sentence choice, and the chunks scored for
 * bits per byte and word-level perplexity.
 *
 *  - cloze (LAMBADA-style): the context is up to 300 bytes of the document before a sentence plus
 *    that sentence without its final word and full stop; the target is the final word, which must
 *    already occur in the context (so the passage, not the sentence alone, points to it);
 *  - next-sentence: up to 200 bytes of a document, then its true next sentence against three
 *    sentences of three other documents (of other genres when the documents have one), each of
 *    the nearest byte length available, so length and token count do not give the answer away;
 *  - lm: paragraph-aligned chunks of 200..1000 bytes, a random sample of all of them.
 */
import type { Rng } from '../../tensor/random.js';
import { joinParagraphs, render, type Doc, type Sentence } from './corpus.js';
import type { ClozeItem, LmItem, McItem } from './types.js';
import { isBareWord, isItemSentence, shuffled, utf8Bytes } from './util.js';

interface Placed {
  s: Sentence;
  /** paragraph index in the document */
  par: number;
}

const flatten = (d: Doc): Placed[] => d.paragraphs.flatMap((p, par) => p.map((s) => ({ s, par })));

/** Whole sentences before flat[k], at most `maxBytes` (at least one), joined as the training text is. */
function textBefore(flat: readonly Placed[], k: number, maxBytes: number): string | null {
  let text = '', j = k - 1;
  for (; j >= 0; j--) {
    const sep = text === '' ? '' : flat[j].par === flat[j + 1].par ? ' ' : '\n\n';
    const next = flat[j].s.text + sep + text;
    if (text !== '' && utf8Bytes(next) > maxBytes) break;
    text = next;
  }
  return text === '' ? null : text;
}

const separator = (flat: readonly Placed[], k: number) => (flat[k - 1].par === flat[k].par ? ' ' : '\n\n');

const CLOZE_CONTEXT_BYTES = 300, NEXT_CONTEXT_BYTES = 200;

/** The sentence's final word before its full stop: index and word, or null. */
function finalWord(s: Sentence): { k: number; word: string } | null {
  const n = s.toks.length, last = s.toks[n - 1];
  if (s.style === 'brown') {
    const w = s.toks[n - 2];
    return last.w === '.' && w && isBareWord(w) ? { k: n - 2, word: w.w } : null;
  }
  return last.post === '.' && last.pre === '' && /^[A-Za-z]+$/.test(last.w) ? { k: n - 1, word: last.w } : null;
}

function clozeItem(flat: readonly Placed[], k: number): ClozeItem | null {
  const s = flat[k].s, f = finalWord(s);
  if (k === 0 || s.heading || !f || f.k < 5 || f.word.length < 3) return null;
  const prefix = render(s.style, s.toks.slice(0, f.k));
  if (s.text !== `${prefix} ${f.word}.`) return null;
  const before = textBefore(flat, k, CLOZE_CONTEXT_BYTES);
  if (before === null) return null;
  const context = before + separator(flat, k) + prefix;
  if (!new RegExp(`\\b${f.word}\\b`).test(context)) return null;
  return { context, target: ' ' + f.word };
}

export function clozeItems(docs: readonly Doc[], n: number, rng: Rng): ClozeItem[] {
  const all: ClozeItem[] = [];
  for (const d of docs) {
    const flat = flatten(d);
    for (let k = 0; k < flat.length; k++) {
      const it = clozeItem(flat, k);
      if (it) all.push(it);
    }
  }
  return shuffled(all, rng).slice(0, n);
}

interface PoolEntry { text: string; bytes: number; doc: number; group: string }

/** Three sentences of three other documents of other groups, drawn among the 12 nearest in byte length. */
function distractors(pool: readonly PoolEntry[], target: PoolEntry, rng: Rng): string[] | null {
  let lo = 0, hi = pool.length;
  while (lo < hi) { const m = (lo + hi) >> 1; if (pool[m].bytes < target.bytes) lo = m + 1; else hi = m; }
  const near: PoolEntry[] = [];
  for (let a = lo - 1, b = lo; near.length < 12 && (a >= 0 || b < pool.length);) {
    const takeB = b < pool.length && (a < 0 || pool[b].bytes - target.bytes <= target.bytes - pool[a].bytes);
    const e = takeB ? pool[b++] : pool[a--];
    if (e.group !== target.group && e.text !== target.text) near.push(e);
  }
  const out: PoolEntry[] = [];
  for (const e of shuffled(near, rng)) if (out.length < 3 && out.every((o) => o.doc !== e.doc)) out.push(e);
  return out.length === 3 ? out.map((e) => e.text) : null;
}

export function nextSentenceItems(docs: readonly Doc[], n: number, rng: Rng): McItem[] {
  const pool: PoolEntry[] = [], targets: { entry: PoolEntry; context: string; sep: string }[] = [];
  docs.forEach((d, doc) => {
    const flat = flatten(d);
    flat.forEach(({ s }, k) => {
      if (!isItemSentence(s)) return;
      const entry = { text: s.text, bytes: utf8Bytes(s.text), doc, group: d.group };
      pool.push(entry);
      const context = k > 0 ? textBefore(flat, k, NEXT_CONTEXT_BYTES) : null;
      if (context !== null) targets.push({ entry, context, sep: separator(flat, k) });
    });
  });
  pool.sort((a, b) => a.bytes - b.bytes || a.doc - b.doc);
  const items: McItem[] = [];
  for (const t of shuffled(targets, rng)) {
    if (items.length >= n) break;
    const others = distractors(pool, t.entry, rng);
    if (!others) continue;
    // the answer takes each position in turn: a model that breaks ties by position scores chance
    const gold = items.length % 4, choices = [...others];
    choices.splice(gold, 0, t.entry.text);
    items.push({ context: t.context, choices: choices.map((c) => t.sep + c), gold });
  }
  return items;
}

const CHUNK_MIN = 200, CHUNK_MAX = 1000;

/** A document cut into consecutive paragraph-aligned chunks of at most CHUNK_MAX bytes. */
function chunksOf(d: Doc): string[] {
  const out: string[] = [];
  let cur: Sentence[][] = [];
  const flush = () => {
    const text = joinParagraphs(cur);
    if (utf8Bytes(text) >= CHUNK_MIN) out.push(text);
    cur = [];
  };
  for (const p of d.paragraphs) {
    let par: Sentence[] = [];
    cur.push(par);
    for (const s of p) {
      par.push(s);
      if (utf8Bytes(joinParagraphs(cur)) <= CHUNK_MAX) continue;
      par.pop();
      if (cur.some((q) => q.length > 0)) flush();
      par = [s];
      cur.push(par);
    }
  }
  flush();
  return out;
}

export function lmItems(docs: readonly Doc[], n: number, rng: Rng): LmItem[] {
  return shuffled(docs.flatMap(chunksOf), rng).slice(0, n).map((text) => ({ text }));
}
