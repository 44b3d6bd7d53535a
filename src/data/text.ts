/**
 * User text input: one or more files, or directories of .txt files, read as strict UTF-8. Only
 * regular files are read (a FIFO or /dev/zero fails at once, io/read-file.ts); large files are
 * streamed in blocks and handed on in bounded pieces (chunks.ts), so memory follows the token count.
 */
import { createHash } from 'node:crypto';
import { readdirSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { openRegularFile, readAt, readRegularText } from '../io/read-file.js';
import { QkdError } from '../tensor/errors.js';
import { CHUNK_CHARS, IdBuffer, pieceEnd } from './chunks.js';

export interface TextInput {
  /** file name without directory */
  name: string;
  /** path the text was read from */
  path: string;
  text: string;
}

const BLOCK = 1 << 20;

/** Regular .txt files directly inside `dir`, sorted by name (no recursion). */
function txtFilesIn(dir: string): string[] {
  const files = readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isFile() && e.name.toLowerCase().endsWith('.txt'))
    .map((e) => e.name)
    .sort();
  if (files.length === 0) throw new QkdError('E_INPUT', `${dir}: directory holds no .txt files`);
  return files.map((n) => join(dir, n));
}

/** Reads `path` as UTF-8 (a BOM is dropped); rejects invalid UTF-8 and blank files. */
export function readTextFile(path: string): TextInput {
  const text = readRegularText(path, 'text file');
  if (text.trim().length === 0) throw new QkdError('E_INPUT', `${path}: text file is empty`);
  return { name: basename(path), path, text };
}

/** The files `paths` name, in the given order; a directory contributes its .txt files sorted by name. */
export function listTextFiles(paths: readonly string[]): string[] {
  if (paths.length === 0) throw new QkdError('E_INPUT', 'no text input given (expected files or a directory)');
  const files: string[] = [];
  for (const p of paths) {
    let isDir: boolean;
    try {
      isDir = statSync(p).isDirectory();
    } catch (e) {
      throw new QkdError('E_MISSING', `${p}: text input does not exist`, { cause: e });
    }
    if (isDir) files.push(...txtFilesIn(p));
    else files.push(p);
  }
  return files;
}

/**
 * Texts of `paths` in the given order, each read whole; a directory contributes its .txt files sorted
 * by name. Throws QkdError (naming the path) for a missing path, invalid UTF-8 or empty input.
 */
export function loadTextInputs(paths: readonly string[]): TextInput[] {
  return listTextFiles(paths).map(readTextFile);
}

/**
 * A text file streamed in blocks as pieces of at most CHUNK_CHARS characters, cut where a
 * byte-level BPE would split anyway (chunks.ts). `onBytes` sees the raw bytes (after a BOM), for hashing.
 */
export function* textFilePieces(path: string, onBytes?: (b: Uint8Array) => void): Generator<string> {
  const f = openRegularFile(path, 'text file');
  const dec = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }); // the BOM is skipped below
  const block = new Uint8Array(BLOCK);
  let pos = 0, pending = '', blank = true;
  try {
    for (let last = false; !last;) {
      const n = readAt(f.fd, block, pos);
      last = n < block.length || pos + n >= f.size;
      const bytes = block.subarray(pos === 0 && n >= 3 && block[0] === 0xef && block[1] === 0xbb && block[2] === 0xbf ? 3 : 0, n);
      pos += n;
      onBytes?.(bytes);
      try {
        pending += dec.decode(bytes, { stream: !last });
      } catch (e) {
        throw new QkdError('E_INPUT', `${path}: not valid UTF-8 text (near byte ${pos})`, { cause: e });
      }
      while (pending.length > 2 * CHUNK_CHARS || (last && pending.length > 0)) {
        const end = pieceEnd(pending, 0, CHUNK_CHARS);
        const piece = pending.slice(0, end);
        pending = pending.slice(end);
        if (blank && piece.trim().length > 0) blank = false;
        yield piece;
      }
    }
  } finally {
    f.close();
  }
  if (blank) throw new QkdError('E_INPUT', `${path}: text file is empty`);
}

/** Pieces of every file, in order (for BPE training, which only needs its words counted). */
export function* textPiecesOf(paths: readonly string[]): Generator<string> {
  for (const file of listTextFiles(paths)) yield* textFilePieces(file);
}

/** SHA-256 (hex) of a text file's bytes after any BOM: the hash of the text it decodes to. */
export function hashTextFile(path: string): string {
  const h = createHash('sha256');
  for (const piece of textFileBlocks(path)) h.update(piece);
  return h.digest('hex');
}

function* textFileBlocks(path: string): Generator<Uint8Array> {
  const f = openRegularFile(path, 'text file');
  const block = new Uint8Array(BLOCK);
  try {
    for (let pos = 0; ;) {
      const n = readAt(f.fd, block, pos);
      if (n === 0) break;
      const skip = pos === 0 && n >= 3 && block[0] === 0xef && block[1] === 0xbb && block[2] === 0xbf ? 3 : 0;
      yield block.subarray(skip, n);
      pos += n;
      if (pos >= f.size) break;
    }
  } finally {
    f.close();
  }
}

/** Token ids of a text file, read and tokenized piece by piece: memory follows the token count. */
export function encodeTextFile(tok: { encode(text: string): number[] }, path: string): Int32Array {
  const ids = new IdBuffer();
  for (const piece of textFilePieces(path)) ids.push(tok.encode(piece));
  return ids.take();
}
