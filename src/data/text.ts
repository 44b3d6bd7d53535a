/**
 * User text input: one or more files, or directories of .txt files, read as strict UTF-8.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { QkdError } from '../tensor/errors.js';

export interface TextInput {
  /** file name without directory */
  name: string;
  /** path the text was read from */
  path: string;
  text: string;
}

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
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new QkdError('E_MISSING', `${path}: cannot read text file`, { cause: e });
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch (e) {
    throw new QkdError('E_INPUT', `${path}: text is not valid UTF-8`, { cause: e });
  }
  if (text.trim().length === 0) throw new QkdError('E_INPUT', `${path}: text file is empty`);
  return { name: basename(path), path, text };
}

/**
 * Texts of `paths` in the given order; a directory contributes its .txt files sorted by name.
 * Throws QkdError (naming the path) for a missing path, invalid UTF-8 or empty input.
 */
export function loadTextInputs(paths: readonly string[]): TextInput[] {
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
  return files.map(readTextFile);
}
