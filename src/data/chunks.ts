/**
 * Tokenizing in bounded pieces, so memory follows the token count and not the longest line: the
 * tokenizer library needs ~100-250 bytes per character of one encode() call, so one 50 MB line took
 * gigabytes. Text is cut into pieces of at most CHUNK_CHARS characters where a byte-level BPE
 * (GPT-2's pre-tokenizer regex: GPT-2, Llama 3, qkd's own tokenizers) would split anyway, so the ids
 * equal those of the whole text:
 *   - before a space that starts a word (" word" is one pre-token, the run of spaces before it another);
 *   - after a single line break between two non-blank characters.
 * Text with neither in the second half of a window (a "word" of more than CHUNK_CHARS/2 characters) is
 * cut every WORDLESS_CHARS characters (between code points, before any "<" close to the cut, so a
 * special token stays whole); only there can ids differ from tokenizing the whole string.
 * Browser-safe.
 */

export const CHUNK_CHARS = 1 << 16;

/** Longest piece cut where no word boundary exists (BPE on one huge "word" is slow and memory-hungry). */
export const WORDLESS_CHARS = 1 << 10;

/** JavaScript's \s (what the pre-tokenizer regex uses), by char code; exotic spaces via the regex. */
function isSpaceCode(c: number): boolean {
  if (c === 32 || (c >= 9 && c <= 13)) return true;
  return c >= 0x80 && /\s/.test(String.fromCharCode(c));
}

/** End (exclusive) of the piece of `text` that starts at `start`: at most `max` characters. */
export function pieceEnd(text: string, start: number, max = CHUNK_CHARS): number {
  const limit = start + max;
  if (limit >= text.length) return text.length;
  const floor = start + Math.floor(max / 2);
  for (let j = limit; j > floor; j--) {
    const c = text.charCodeAt(j);
    if (isSpaceCode(c)) {
      // before a space that starts a word
      if (c === 32 && !isSpaceCode(text.charCodeAt(j + 1))) return j;
      continue;
    }
    // before a word that follows one lone line break (or other non-space blank) after a word
    const p = text.charCodeAt(j - 1);
    if (p !== 32 && isSpaceCode(p) && !isSpaceCode(text.charCodeAt(j - 2))) return j;
  }
  let cut = Math.min(limit, start + WORDLESS_CHARS);
  const near = Math.max(start + 1, cut - 64), lt = text.slice(near, cut).lastIndexOf('<');
  if (lt >= 0) cut = near + lt;
  const code = text.charCodeAt(cut - 1);
  if (code >= 0xd800 && code <= 0xdbff) cut--; // keep a surrogate pair together
  return cut;
}

/** Pieces of `text`, each at most `max` characters, cut where pieceEnd says. */
export function* textPieces(text: string, max = CHUNK_CHARS): Generator<string> {
  for (let start = 0; start < text.length;) {
    const end = pieceEnd(text, start, max);
    yield text.slice(start, end);
    start = end;
  }
}

/** A growable Int32Array (amortised doubling); `view()` is the filled part. */
export class IdBuffer {
  private buf = new Int32Array(1024);
  length = 0;

  push(ids: ArrayLike<number>): void {
    if (this.length + ids.length > this.buf.length) {
      let n = this.buf.length;
      while (n < this.length + ids.length) n *= 2;
      const next = new Int32Array(n);
      next.set(this.buf.subarray(0, this.length));
      this.buf = next;
    }
    this.buf.set(ids, this.length);
    this.length += ids.length;
  }

  /** The ids, trimmed to their count (a copy when the buffer has spare room). */
  take(): Int32Array {
    return this.length === this.buf.length ? this.buf : this.buf.slice(0, this.length);
  }
}

/** Ids of `text`, tokenized piece by piece. */
export function encodeChunked(tok: { encode(text: string): number[] }, text: string): Int32Array {
  if (text.length <= CHUNK_CHARS) return Int32Array.from(tok.encode(text));
  const out = new IdBuffer();
  for (const piece of textPieces(text)) out.push(tok.encode(piece));
  return out.take();
}
