/** Small deterministic helpers shared by the item builders. */
import { createHash } from 'node:crypto';
import { Rng } from '../../tensor/random.js';
import type { Sentence } from './corpus.js';

/** Fisher-Yates shuffle of a copy, driven by the seeded generator. */
export function shuffled<T>(xs: readonly T[], rng: Rng): T[] {
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

/** A generator per (suite seed, task): items of one task do not change when another is added. */
export function taskRng(seed: number, task: string): Rng {
  const h = createHash('sha256').update(`${seed}:${task}`).digest();
  return new Rng(h.readUInt32LE(0));
}

/** sha256 (16 hex digits) of a value's JSON. */
export function hashOf(value: unknown): string {
  return createHash('sha256').update(JSON.stringify(value)).digest('hex').slice(0, 16);
}

/** `replacement` written with the capitalisation of `like` (`This` -> `These`, `IS` -> `ARE`). */
export function matchCase(like: string, replacement: string): string {
  if (like.length > 1 && like === like.toUpperCase() && like !== like.toLowerCase()) return replacement.toUpperCase();
  if (like[0] !== like[0].toLowerCase()) return replacement[0].toUpperCase() + replacement.slice(1);
  return replacement;
}

export const utf8Bytes = (s: string): number => Buffer.byteLength(s, 'utf8');

const WORD = /^[A-Za-z]+$/;

/** A bare alphabetic word with no punctuation attached. */
export function isBareWord(t: { w: string; pre: string; post: string }): boolean {
  return t.pre === '' && t.post === '' && WORD.test(t.w);
}

/** A sentence fit to become an item: not a heading, 5..40 words, 20..250 bytes, a full sentence. */
export function isItemSentence(s: Sentence): boolean {
  if (s.heading) return false;
  const words = s.toks.filter((t) => /[A-Za-z]/.test(t.w)).length;
  const n = utf8Bytes(s.text);
  return words >= 5 && words <= 40 && n >= 20 && n <= 250 && /^["'(]?[A-Z]/.test(s.text) && /[.!?]["')]*$/.test(s.text);
}

/**
 * Takes candidates so that, within every class, each direction (e.g. singular-good and plural-good)
 * appears equally often: a model with a fixed preference for one form scores exactly half of each
 * class. Classes are visited round-robin, one item of each direction at a time, up to `n` items.
 */
export function pickBalanced<T>(groups: Map<string, Map<string, T[]>>, n: number): T[] {
  const out: T[] = [];
  const classes = [...groups.keys()].sort();
  for (let round = 0; out.length < n; round++) {
    let took = false;
    for (const c of classes) {
      const dirs = [...groups.get(c)!.values()];
      if (dirs.length < 2 || dirs.some((d) => d.length <= round)) continue;
      if (out.length + dirs.length > n) return out;
      for (const d of dirs) out.push(d[round]);
      took = true;
    }
    if (!took) break;
  }
  return out;
}
