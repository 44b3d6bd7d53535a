/**
 * Atomic writes (DESIGN.md rule 10): data goes to a temporary sibling first, is fsynced, and only
 * then renamed over the target, so an interrupted run leaves either the old file/directory or the
 * new one, never a half-written model.
 */
import {
  closeSync, fsyncSync, lstatSync, mkdirSync, openSync, renameSync, rmSync, writeSync,
} from 'node:fs';
import { basename, dirname, isAbsolute, join, normalize, resolve, sep } from 'node:path';
import { randomBytes } from 'node:crypto';
import { QkdError } from '../tensor/errors.js';

export type FileData = Uint8Array | string;

/** Wraps a Node fs error into a QkdError that names the path; QkdErrors pass through. */
function ioError(what: string, path: string, e: unknown): QkdError {
  if (e instanceof QkdError) return e;
  const err = e as NodeJS.ErrnoException;
  const code = err?.code === 'ENOENT' ? 'E_MISSING' : 'E_INPUT';
  return new QkdError(code, `${path}: cannot ${what}: ${err?.message ?? String(e)}`, { cause: e });
}

function tempName(target: string, tag: string): string {
  return join(dirname(target), `.${basename(target)}.${tag}-${process.pid}-${randomBytes(4).toString('hex')}`);
}

function writeAll(fd: number, data: FileData): void {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  let off = 0;
  while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
}

/** Writes and fsyncs a new file (fails if it exists: temp names are unique). */
function writeDurable(path: string, data: FileData): void {
  const fd = openSync(path, 'wx', 0o644);
  try {
    writeAll(fd, data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Makes a rename durable; some platforms cannot fsync a directory, which only weakens durability. */
function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // best effort (e.g. Windows, some network file systems)
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** Writes `data` to `path` through a temp file in the same directory + fsync + rename. */
export function writeFileAtomic(path: string, data: FileData): void {
  const tmp = tempName(path, 'tmp');
  try {
    writeDurable(tmp, data);
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw ioError('write', path, e);
  }
  fsyncDir(dirname(resolve(path)));
}

/** A relative file name inside the directory; rejects absolute paths and `..` escapes. */
function checkRelName(dir: string, name: string): string {
  const n = normalize(name);
  if (name === '' || isAbsolute(name) || n === '.' || n === '..' || n.startsWith(`..${sep}`)) {
    throw new QkdError('E_INPUT', `${dir}: invalid file name ${JSON.stringify(name)} in directory write`);
  }
  return n;
}

function exists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Writes a whole directory atomically: every file goes into a temp sibling directory, which is
 * then renamed onto `dir`. An existing `dir` is moved aside first and deleted afterwards, so the
 * target is replaced as a whole (files not listed in `files` do not survive). The only window
 * without `dir` is between two renames; the old copy then still sits beside it as `.<name>.old-*`.
 */
export function writeDirAtomic(dir: string, files: Record<string, FileData>): void {
  const target = resolve(dir);
  const tmp = tempName(target, 'tmp');
  try {
    mkdirSync(dirname(target), { recursive: true });
    mkdirSync(tmp);
    for (const [name, data] of Object.entries(files)) {
      const rel = checkRelName(dir, name);
      const p = join(tmp, rel);
      mkdirSync(dirname(p), { recursive: true });
      writeDurable(p, data);
    }
    fsyncDir(tmp);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw ioError('write directory', dir, e);
  }
  swapIn(target, tmp, dir);
}

function swapIn(target: string, tmp: string, shown: string): void {
  let old: string | undefined;
  try {
    if (exists(target)) {
      old = tempName(target, 'old');
      renameSync(target, old);
    }
    renameSync(tmp, target);
  } catch (e) {
    // Put the previous version back if the new one could not take its place.
    if (old !== undefined && !exists(target)) {
      try { renameSync(old, target); old = undefined; } catch { /* keep the .old copy for the user */ }
    }
    rmSync(tmp, { recursive: true, force: true });
    throw ioError('replace directory', shown, e);
  }
  fsyncDir(dirname(target));
  if (old !== undefined) rmSync(old, { recursive: true, force: true });
}

