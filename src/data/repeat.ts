/**
 * Training-text augmentation for distillation: copying, the skill a pruned student loses on text
 * unlike its training text (issue 12, docs/distillation.md "Session 6" and "Session 7").
 *  - `fraction`: each non-blank paragraph is followed by a verbatim copy of itself with this
 *    probability, so the teacher's targets include copying from earlier in the window;
 *  - `random`: after a paragraph, with probability `random.fraction`, a synthetic paragraph of
 *    `random.tokens` vocabulary pieces drawn uniformly (each piece's text, as the tokenizer decodes
 *    it), then the same synthetic paragraph again: the second copy can only be predicted by copying,
 *    for every token of the vocabulary alike, not only the ones the training text uses often.
 * Seeded and deterministic (two xorshift32 streams, so adding `random` leaves the paragraph draws as
 * they were); applied to training text only, never to validation text.
 */
import { z } from 'zod';

/** A recipe's `data.repeat` (validated; unknown keys rejected). */
export const RepeatSchema = z.object({
  fraction: z.number().min(0).max(1),
  seed: z.number().int().min(0).max(0xffffffff).default(1),
  /** Synthetic paragraphs of `tokens` random vocabulary pieces, each written twice, after a paragraph with probability `fraction`. */
  random: z.object({ fraction: z.number().gt(0).max(1), tokens: z.number().int().min(1).max(4096) }).strict().optional(),
}).strict();

/** `fraction`: probability that a non-blank paragraph is followed by a copy of itself; `seed` of the generators (0 counts as 1). */
export type RepeatSpec = z.output<typeof RepeatSchema>;

export interface Repeated {
  text: string;
  paragraphs: number;
  repeated: number;
  /** Synthetic paragraphs inserted (each written twice). */
  random: number;
}

function xorshift32(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => { s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0; return s / 2 ** 32; };
}

/**
 * The pieces synthetic paragraphs are drawn from: the text of each token id below `vocabSize` that
 * decodes alone to something printable (not empty, no line break, no U+FFFD from a partial UTF-8
 * sequence), special tokens left out.
 */
export function vocabularyPieces(tok: { vocabSize: number; specialIds: readonly number[]; decode(ids: readonly number[]): string }): string[] {
  const special = new Set(tok.specialIds), out: string[] = [];
  for (let id = 0; id < tok.vocabSize; id++) {
    if (special.has(id)) continue;
    const s = tok.decode([id]);
    if (s.trim().length > 0 && !/[\r\n\uFFFD]/.test(s)) out.push(s);
  }
  return out;
}

/** `text` with paragraphs repeated and synthetic paragraphs inserted as `spec` says (`pieces` needed with spec.random). */
export function repeatParagraphs(text: string, spec: RepeatSpec, pieces: readonly string[] = []): Repeated {
  const rand = xorshift32(spec.seed), rand2 = xorshift32((spec.seed ^ 0x9e3779b9) >>> 0);
  const rf = spec.random?.fraction ?? 0, rn = spec.random?.tokens ?? 0;
  if (rf > 0 && pieces.length === 0) throw new Error('repeatParagraphs: random paragraphs need vocabulary pieces');
  const paras = text.split('\n\n'), out: string[] = [];
  let repeated = 0, random = 0;
  for (const p of paras) {
    out.push(p);
    if (p.trim() && rand() < spec.fraction) { out.push(p); repeated++; }
    if (rf > 0 && rand2() < rf) {
      let s = '';
      for (let i = 0; i < rn; i++) s += pieces[Math.floor(rand2() * pieces.length)];
      s = s.trim();
      out.push(s, s);
      random++;
    }
  }
  return { text: out.join('\n\n'), paragraphs: paras.length, repeated, random };
}
