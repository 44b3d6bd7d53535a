/**
 * Byte-level BPE trainer producing a standard Hugging Face tokenizer.json object (issue 3).
 *
 * Same recipe as the reference tokenizer: GPT-2 regex pre-tokenization, words spelled with one
 * visible character per byte (GPT-2's bytes_to_unicode), vocabulary = special tokens, then the
 * 256 byte characters in code-point order, then one token per merge.
 * Each step merges the most frequent adjacent pair; ties go to the smallest (leftId, rightId).
 * Pair counts are updated incrementally from the words that contain the merged pair, and the
 * choice comes from a max-heap with lazy invalidation (a stale entry is re-pushed with its
 * current count when popped), so a step costs O(affected words + log heap).
 * Browser-safe: no node imports.
 */
import { QkdError } from '../tensor/errors.js';

export interface TrainBpeOptions {
  /** Total vocabulary size, special tokens and the 256 byte tokens included. */
  vocabSize: number;
  /** Default ['<|endoftext|>']; they get ids 0.. and are never split or learned from. */
  specialTokens?: string[];
  /** Stop early when the best pair occurs fewer times than this (default 0: never). */
  minFrequency?: number;
  /** Called every few merges and at the end with (merges done, merges wanted). */
  onProgress?: (done: number, total: number) => void;
}

/** GPT-2's pre-tokenization pattern, as the ByteLevel pre-tokenizer (use_regex: true) applies it. */
export const GPT2_SPLIT = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

/** GPT-2 bytes_to_unicode: printable bytes map to themselves, the other 68 to U+0100... in order. */
export function byteToUnicode(): string[] {
  const table: string[] = new Array(256);
  let n = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    table[b] = String.fromCodePoint(printable ? b : 256 + n++);
  }
  return table;
}

/** Unique pre-tokens of all texts with their counts (special tokens cut out first). */
export function countWords(texts: Iterable<string>, specialTokens: readonly string[]): Map<string, number> {
  const counts = new Map<string, number>();
  const esc = specialTokens.filter((s) => s.length > 0).map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  const cut = esc.length > 0 ? new RegExp(esc.join('|'), 'g') : null;
  for (const text of texts) {
    for (const piece of cut ? text.split(cut) : [text]) {
      for (const m of piece.matchAll(GPT2_SPLIT)) counts.set(m[0], (counts.get(m[0]) ?? 0) + 1);
    }
  }
  return counts;
}

// Pair key = left * PAIR_SHIFT + right: exact in a double, and its numeric order is the
// lexicographic order of (left, right) that tie-breaking needs.
const PAIR_SHIFT = 2 ** 24;
const pairKey = (a: number, b: number): number => a * PAIR_SHIFT + b;

/** Max-heap of (count, key); among equal counts the smaller key comes first. */
class PairHeap {
  private counts: number[] = [];
  private keys: number[] = [];
  get size(): number { return this.keys.length; }
  private above(i: number, j: number): boolean {
    const c = this.counts, k = this.keys;
    return c[i] > c[j] || (c[i] === c[j] && k[i] < k[j]);
  }
  private swap(i: number, j: number): void {
    const c = this.counts, k = this.keys;
    [c[i], c[j]] = [c[j], c[i]];
    [k[i], k[j]] = [k[j], k[i]];
  }
  push(count: number, key: number): void {
    this.counts.push(count);
    this.keys.push(key);
    let i = this.keys.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.above(i, p)) break;
      this.swap(i, p);
      i = p;
    }
  }
  /** Removes the top; returns [count, key]. */
  pop(): [number, number] {
    const top: [number, number] = [this.counts[0], this.keys[0]];
    const lastC = this.counts.pop()!, lastK = this.keys.pop()!;
    const n = this.keys.length;
    if (n > 0) {
      this.counts[0] = lastC;
      this.keys[0] = lastK;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1, r = l + 1;
        let best = i;
        if (l < n && this.above(l, best)) best = l;
        if (r < n && this.above(r, best)) best = r;
        if (best === i) break;
        this.swap(i, best);
        i = best;
      }
    }
    return top;
  }
}

/** Mutable training state: unique words as symbol-id arrays, pair counts and pair -> words index. */
interface State {
  words: Int32Array[];
  lens: Int32Array;
  freq: Float64Array;
  pairCount: Map<number, number>;
  where: Map<number, Set<number>>;
}

function initState(wordCounts: Map<string, number>, byteId: Int32Array): State {
  const enc = new TextEncoder();
  const words: Int32Array[] = [];
  const freq = new Float64Array(wordCounts.size);
  const pairCount = new Map<number, number>();
  const where = new Map<number, Set<number>>();
  for (const [w, c] of wordCounts) {
    const bytes = enc.encode(w);
    const syms = new Int32Array(bytes.length);
    for (let i = 0; i < bytes.length; i++) syms[i] = byteId[bytes[i]];
    const iw = words.length;
    words.push(syms);
    freq[iw] = c;
    for (let i = 0; i + 1 < syms.length; i++) {
      const k = pairKey(syms[i], syms[i + 1]);
      pairCount.set(k, (pairCount.get(k) ?? 0) + c);
      let s = where.get(k);
      if (!s) where.set(k, (s = new Set()));
      s.add(iw);
    }
  }
  return { words, lens: Int32Array.from(words, (w) => w.length), freq, pairCount, where };
}

/**
 * Replaces every non-overlapping (a, b), left to right, by `c` in word `iw` and reports each
 * neighbouring pair that disappears (-1) or appears (+1) through `change`.
 */
function mergeWord(st: State, iw: number, a: number, b: number, c: number,
  change: (key: number, delta: number) => void): void {
  const w = st.words[iw];
  const n = st.lens[iw];
  let out = 0;
  for (let i = 0; i < n; i++) {
    if (i + 1 < n && w[i] === a && w[i + 1] === b) {
      // w[out-1] is already rewritten, so a merge right after a merge sees (c, a), not (b, a)
      if (out > 0) { change(pairKey(w[out - 1], a), -1); change(pairKey(w[out - 1], c), +1); }
      if (i + 2 < n) { change(pairKey(b, w[i + 2]), -1); change(pairKey(c, w[i + 2]), +1); }
      w[out++] = c;
      i++;
    } else {
      w[out++] = w[i];
    }
  }
  st.lens[iw] = out;
}

/** Applies merge (a, b) -> c everywhere; returns the pairs whose count grew. */
function applyMerge(st: State, a: number, b: number, c: number): Set<number> {
  const key = pairKey(a, b);
  const grown = new Set<number>();
  const ws = st.where.get(key) ?? new Set<number>();
  for (const iw of ws) {
    const f = st.freq[iw];
    mergeWord(st, iw, a, b, c, (k, d) => {
      st.pairCount.set(k, (st.pairCount.get(k) ?? 0) + d * f);
      if (d > 0) {
        let s = st.where.get(k);
        if (!s) st.where.set(k, (s = new Set()));
        s.add(iw);
        grown.add(k);
      }
    });
  }
  // Greedy left-to-right merging leaves no (a, b) behind, so the pair is gone entirely.
  st.pairCount.delete(key);
  st.where.delete(key);
  return grown;
}

export interface BpeModel {
  /** token -> id, ids 0..n-1 without gaps */
  vocab: Map<string, number>;
  /** merges in rank order, as token strings */
  merges: [string, string][];
}

/** Learns merges from pre-token counts; exported for tests and for callers that count themselves. */
export function learnMerges(wordCounts: Map<string, number>, opts: TrainBpeOptions): BpeModel {
  const specials = opts.specialTokens ?? ['<|endoftext|>'];
  const b2u = byteToUnicode();
  const idToTok: string[] = [];
  const vocab = new Map<string, number>();
  const add = (t: string): number => {
    const have = vocab.get(t);
    if (have !== undefined) return have;
    vocab.set(t, idToTok.length);
    idToTok.push(t);
    return idToTok.length - 1;
  };
  specials.forEach(add);
  // HF sorts the initial alphabet by code point; byte ids follow that order.
  const alphabet = [...b2u].sort((x, y) => x.codePointAt(0)! - y.codePointAt(0)!);
  alphabet.forEach(add);
  const byteId = Int32Array.from(b2u, (ch) => vocab.get(ch)!);
  if (opts.vocabSize < vocab.size) {
    throw new QkdError('E_CONFIG', `vocabSize ${opts.vocabSize} is below the ${vocab.size} special and byte tokens`);
  }
  const st = initState(wordCounts, byteId);
  const heap = new PairHeap();
  for (const [k, c] of st.pairCount) heap.push(c, k);
  const merges: [string, string][] = [];
  const wanted = opts.vocabSize - vocab.size;
  const minFreq = opts.minFrequency ?? 0;
  while (vocab.size < opts.vocabSize && heap.size > 0) {
    const [count, key] = heap.pop();
    const cur = st.pairCount.get(key) ?? 0;
    if (cur !== count) {
      if (cur > 0) heap.push(cur, key);
      continue;
    }
    if (count < 1 || count < minFreq) break;
    const a = Math.floor(key / PAIR_SHIFT), b = key - a * PAIR_SHIFT;
    const c = add(idToTok[a] + idToTok[b]);
    merges.push([idToTok[a], idToTok[b]]);
    for (const k of applyMerge(st, a, b, c)) heap.push(st.pairCount.get(k)!, k);
    if (opts.onProgress && merges.length % 64 === 0) opts.onProgress(merges.length, wanted);
  }
  opts.onProgress?.(merges.length, wanted);
  return { vocab, merges };
}

/** Hugging Face tokenizer.json object for a byte-level BPE (same layout as the reference). */
export function bpeTokenizerJson(model: BpeModel, specialTokens: readonly string[]): Record<string, unknown> {
  const byteLevel = (addPrefixSpace: boolean, trimOffsets: boolean) =>
    ({ type: 'ByteLevel', add_prefix_space: addPrefixSpace, trim_offsets: trimOffsets, use_regex: true });
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: specialTokens.map((content) => ({
      id: model.vocab.get(content)!, content, single_word: false, lstrip: false, rstrip: false,
      normalized: false, special: true,
    })),
    normalizer: null,
    pre_tokenizer: byteLevel(false, true),
    post_processor: byteLevel(true, false),
    decoder: byteLevel(true, true),
    model: {
      type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null,
      fuse_unk: false, byte_fallback: false, ignore_merges: false,
      vocab: Object.fromEntries(model.vocab),
      merges: model.merges,
    },
  };
}

/** Trains a byte-level BPE and returns a tokenizer.json object loadable by tokenizerFromJson. */
export function trainBpe(texts: Iterable<string> | string, opts: TrainBpeOptions): Record<string, unknown> {
  if (!Number.isInteger(opts.vocabSize) || opts.vocabSize <= 0) {
    throw new QkdError('E_CONFIG', `trainBpe: vocabSize must be a positive integer, got ${opts.vocabSize}`);
  }
  const specials = opts.specialTokens ?? ['<|endoftext|>'];
  const counts = countWords(typeof texts === 'string' ? [texts] : texts, specials);
  return bpeTokenizerJson(learnMerges(counts, { ...opts, specialTokens: specials }), specials);
}
