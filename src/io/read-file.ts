/**
 * Reading user files safely: only regular files are opened (a FIFO would block open() or read()
 * forever, /dev/zero never ends), the type is checked before the open (stat, which never blocks)
 * and again on the open descriptor (fstat), the open is non-blocking, and a size limit is checked
 * before a byte is read. Every failure is a QkdError naming the file and what it was read as.
 */
import { closeSync, constants, fstatSync, openSync, readSync, statSync, type Stats } from 'node:fs';
import { QkdError } from '../tensor/errors.js';

/** Size limits of the small JSON files qkd reads whole (far above any real file of the kind). */
export const MAX_BYTES = {
  config: 16 * 2 ** 20,
  tokenizer: 512 * 2 ** 20,
  index: 64 * 2 ** 20,
} as const;

// O_NONBLOCK: opening a FIFO that slipped past the stat (replaced in between) must not hang
const OPEN_FLAGS = constants.O_RDONLY | (constants.O_NONBLOCK ?? 0);

function kindOf(st: Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

function notRegular(path: string, what: string, st: Stats): QkdError {
  return new QkdError('E_INPUT', `${path}: ${what} is ${kindOf(st)}, not a regular file`);
}

export interface OpenedFile {
  fd: number;
  size: number;
  close(): void;
}

/** Opens a regular file for reading; `what` names it in errors ("config.json", "text file"). */
export function openRegularFile(path: string, what: string, maxBytes = Infinity): OpenedFile {
  let st: Stats;
  try {
    st = statSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'E_MISSING' : 'E_INPUT';
    throw new QkdError(code, `${path}: cannot read ${what}: ${code === 'E_MISSING' ? 'not found' : (e as Error).message}`, { cause: e });
  }
  if (!st.isFile()) throw notRegular(path, what, st);
  let fd: number;
  try {
    fd = openSync(path, OPEN_FLAGS);
  } catch (e) {
    throw new QkdError('E_INPUT', `${path}: cannot open ${what}: ${(e as Error).message}`, { cause: e });
  }
  try {
    const fst = fstatSync(fd);
    if (!fst.isFile()) throw notRegular(path, what, fst);
    if (fst.size > maxBytes) {
      throw new QkdError('E_INPUT', `${path}: ${what} is ${fst.size} bytes, over the ${maxBytes}-byte limit for this kind of file`);
    }
    return { fd, size: fst.size, close: () => closeSync(fd) };
  } catch (e) {
    closeSync(fd);
    throw e;
  }
}

/** Reads `length` bytes at `offset` (short only at the end of the file). */
export function readAt(fd: number, out: Uint8Array, offset: number): number {
  let got = 0;
  while (got < out.length) {
    const k = readSync(fd, out, got, out.length - got, offset + got);
    if (k === 0) break;
    got += k;
  }
  return got;
}

/** The whole content of a regular file of at most `maxBytes` bytes. */
export function readRegularFile(path: string, what: string, maxBytes = Infinity): Buffer {
  const f = openRegularFile(path, what, maxBytes);
  try {
    const buf = Buffer.alloc(f.size);
    const got = readAt(f.fd, buf, 0);
    return got === f.size ? buf : buf.subarray(0, got);
  } finally {
    f.close();
  }
}

/** A regular file's text as strict UTF-8 (a BOM is dropped). */
export function readRegularText(path: string, what: string, maxBytes = Infinity): string {
  const buf = readRegularFile(path, what, maxBytes);
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(buf);
  } catch (e) {
    throw new QkdError('E_INPUT', `${path}: not valid UTF-8 (${what})`, { cause: e });
  }
}

/** A regular file's JSON content; E_FORMAT naming the file when it does not parse. */
export function readRegularJson(path: string, what: string, maxBytes: number = MAX_BYTES.config): unknown {
  const text = readRegularText(path, what, maxBytes);
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new QkdError('E_FORMAT', `${path}: ${what} is not valid JSON: ${(e as Error).message}`, { cause: e });
  }
}
