/**
 * Training-text augmentation for distillation: some paragraphs repeated verbatim right after
 * themselves, so the teacher's targets include copying from earlier in the window and a pruned
 * student is trained to keep that skill (issue 12, docs/distillation.md "Session 6"). Seeded and
 * deterministic; applied to training text only, never to validation text.
 */
export interface RepeatSpec {
  /** Probability that a non-blank paragraph is followed by a copy of itself. */
  fraction: number;
  /** Seed of the xorshift32 generator that draws the paragraphs (0 counts as 1). */
  seed: number;
}

export interface Repeated {
  text: string;
  paragraphs: number;
  repeated: number;
}

/** `text` with each non-blank paragraph (blank-line separated) repeated with probability `fraction`. */
export function repeatParagraphs(text: string, spec: RepeatSpec): Repeated {
  let s = spec.seed >>> 0 || 1;
  const rand = () => { s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0; return s / 2 ** 32; };
  const paras = text.split('\n\n'), out: string[] = [];
  let repeated = 0;
  for (const p of paras) {
    out.push(p);
    if (p.trim() && rand() < spec.fraction) { out.push(p); repeated++; }
  }
  return { text: out.join('\n\n'), paragraphs: paras.length, repeated };
}
