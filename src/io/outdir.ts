/**
 * The one rule for every command that writes a folder (export, tokenizer, train, distill,
 * teacher-cache): qkd never destroys a user's files.
 *
 * - A missing or empty folder is written. A folder holding only qkd's marker counts as empty.
 * - An existing non-empty folder is written only when it holds a previous output of the same kind,
 *   recognised by the marker file `.qkd-output.json` ({format, version, kind}) that every output
 *   gets: continued (`--resume`, teacher-cache) or replaced (`--force`); never otherwise (except a
 *   run that stopped before its first checkpoint or model: it holds nothing to keep and starts over).
 * - A folder without the marker, or with another kind's marker, is refused even with --force.
 * - `--out` may not be an input, contain an input, lie inside an input folder, or be (or contain)
 *   the current directory; an existing file is never replaced by a folder.
 * - Temp folders (`.NAME.tmp-PID-HEX`, `.NAME.old-PID-HEX`) are removed on failure by the atomic
 *   writers; ones left by a killed process (its PID gone) are removed on the next start.
 */
import { existsSync, lstatSync, mkdirSync, readdirSync, realpathSync, renameSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve, sep } from 'node:path';
import { randomBytes } from 'node:crypto';
import { QkdError } from '../tensor/errors.js';
import { writeDirAtomic, writeFileAtomic, type FileData } from './atomic.js';
import { readRegularJson } from './read-file.js';

export type OutputKind = 'export' | 'tokenizer' | 'train' | 'distill' | 'teacher-cache';

export const MARKER_FILE = '.qkd-output.json';
const MARKER_FORMAT = 'qkd-output', MARKER_VERSION = 1;
const KINDS: OutputKind[] = ['export', 'tokenizer', 'train', 'distill', 'teacher-cache'];
const LABEL: Record<OutputKind, string> = {
  export: 'a qkd export', tokenizer: 'a qkd tokenizer', train: 'a run (qkd train)', distill: 'a run (qkd distill)',
  'teacher-cache': 'a teacher-logit cache (qkd teacher-cache)',
};
/** Kinds an existing output of which is continued rather than replaced (with --resume, or always). */
const RESUMABLE = new Set<OutputKind>(['train', 'distill', 'teacher-cache']);

export interface OutDirRequest {
  kind: OutputKind;
  /** Replace a previous output of the same kind. */
  force?: boolean;
  /** Continue a previous output of the same kind (a run's --resume; a teacher cache always). */
  resume?: boolean;
  /** Paths the command reads (files or folders). */
  inputs?: (string | undefined | null)[];
}

/** 'new': missing or empty; 'existing': a same-kind output to continue; 'replace': one to replace. */
export type OutDirState = 'new' | 'existing' | 'replace';

export function markerJson(kind: OutputKind): string {
  return JSON.stringify({ format: MARKER_FORMAT, version: MARKER_VERSION, kind }) + '\n';
}

/** The kind a folder's marker names, or null (no marker, or not one of ours). */
export function readMarker(dir: string): OutputKind | null {
  const p = join(dir, MARKER_FILE);
  if (!existsSync(p)) return null;
  try {
    const m = readRegularJson(p, MARKER_FILE, 4096) as { format?: unknown; kind?: unknown };
    return m?.format === MARKER_FORMAT && KINDS.includes(m.kind as OutputKind) ? m.kind as OutputKind : null;
  } catch {
    return null;
  }
}

/**
 * An output written before markers existed, recognised only to be continued (--resume, teacher-cache):
 * a run's config.json is {train: ...} or {distill: ...}; a teacher cache's cache.json has its magic.
 */
function legacyKind(dir: string): OutputKind | null {
  const json = (name: string): Record<string, unknown> | null => {
    try { return readRegularJson(join(dir, name), name) as Record<string, unknown>; } catch { return null; }
  };
  const keys = Object.keys(json('config.json') ?? {});
  if (keys.length === 1 && (keys[0] === 'train' || keys[0] === 'distill')) return keys[0];
  return json('cache.json')?.magic === 'qkd-teacher-cache' ? 'teacher-cache' : null;
}

/** The path with every existing prefix resolved through symlinks (the rest appended as given). */
export function realish(p: string): string {
  let head = resolve(p);
  const tail: string[] = [];
  for (;;) {
    try {
      return join(realpathSync(head), ...tail);
    } catch {
      const up = dirname(head);
      if (up === head) return resolve(p);
      tail.unshift(basename(head));
      head = up;
    }
  }
}

/** a is b or lies inside b. */
export function isWithin(a: string, b: string): boolean {
  return a === b || a.startsWith(b.endsWith(sep) ? b : b + sep);
}

function refuse(msg: string): never {
  throw new QkdError('E_CONFIG', msg);
}

function checkInputs(out: string, r: OutDirRequest): void {
  const o = realish(out);
  const cwd = realish(process.cwd());
  if (isWithin(cwd, o)) refuse(`--out ${out}: is (or contains) the current directory; refusing to write there`);
  const inputs = (r.inputs ?? []).filter((i): i is string => !!i).map((i) => [i, realish(i)] as const);
  for (const [input, i] of inputs) if (i === o) refuse(`--out ${out}: is the input ${input}; refusing to write over what the command reads`);
  for (const [input, i] of inputs) {
    if (isWithin(i, o)) refuse(`--out ${out}: contains the input ${input}; refusing to replace what the command reads`);
    if (isWithin(o, i)) refuse(`--out ${out}: lies inside the input ${input}; refusing to write into what the command reads`);
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const TEMP_RE = /^\.(.+)\.(?:tmp|old)-(\d+)-[0-9a-f]{8}$/;

/**
 * Removes temp siblings of `target` (`.NAME.tmp-PID-HEX`, `.NAME.old-PID-HEX`) left by a process
 * that no longer runs; with `inside`, every such temp directly inside `target` too.
 */
export function cleanStaleTemps(target: string, inside = false): string[] {
  const removed: string[] = [];
  const sweep = (dir: string, name: string | null) => {
    let entries: string[];
    try { entries = readdirSync(dir); } catch { return; }
    for (const e of entries) {
      const m = TEMP_RE.exec(e);
      if (!m || (name !== null && m[1] !== name) || pidAlive(Number(m[2]))) continue;
      rmSync(join(dir, e), { recursive: true, force: true });
      removed.push(join(dir, e));
    }
  };
  const abs = resolve(target);
  sweep(dirname(abs), basename(abs));
  if (inside) sweep(abs, null);
  return removed;
}

/** Decides what may be done with `out` for this request; throws a QkdError naming it when nothing. */
export function checkOutDir(out: string, r: OutDirRequest): OutDirState {
  checkInputs(out, r);
  let st;
  try { st = lstatSync(out); } catch { return 'new'; }
  if (st.isSymbolicLink()) {
    try { st = statSync(out); } catch { refuse(`--out ${out}: is a dangling symbolic link; refusing to write there`); }
  }
  if (!st.isDirectory()) refuse(`--out ${out}: exists and is not a folder; refusing to replace it (--out names a folder)`);
  const entries = readdirSync(out).filter((e) => e !== MARKER_FILE && !TEMP_RE.test(e));
  const kind = readMarker(out) ?? (r.resume && RESUMABLE.has(r.kind) ? legacyKind(out) : null);
  if (entries.length === 0 && (kind === null || kind === r.kind)) return 'new';
  if (kind === null) {
    refuse(`--out ${out}: exists, is not empty and holds no ${MARKER_FILE} (qkd did not write it); refusing to write there: ` +
      'choose a new folder, or empty this one yourself');
  }
  if (kind !== r.kind) refuse(`--out ${out}: holds ${LABEL[kind]}, not ${LABEL[r.kind]}; refusing to replace it (even with --force)`);
  if (r.force) return 'replace';
  if (r.resume) return 'existing';
  // a run that stopped before its first checkpoint or model (e.g. refused by its checks) holds nothing to keep
  if ((kind === 'train' || kind === 'distill') && !existsSync(join(out, 'checkpoint')) && !existsSync(join(out, 'model'))) return 'replace';
  refuse(`--out ${out}: already holds ${LABEL[kind]}; ` +
    (RESUMABLE.has(kind) ? 'pass --resume to continue it or --force to start over' : 'pass --force to replace it'));
}

/**
 * For writers that fill a folder step by step (runs, teacher caches): checks `out`, removes a
 * same-kind output that --force replaces (moved aside first, so a failure leaves it whole), creates
 * the folder and its marker. Returns the state checkOutDir found.
 */
export function prepareOutDir(out: string, r: OutDirRequest): OutDirState {
  cleanStaleTemps(out, true);
  const state = checkOutDir(out, r);
  if (state === 'replace') {
    const aside = join(dirname(resolve(out)), `.${basename(resolve(out))}.old-${process.pid}-${randomBytes(4).toString('hex')}`);
    renameSync(out, aside);
    rmSync(aside, { recursive: true, force: true });
  }
  try {
    mkdirSync(out, { recursive: true });
    if (readMarker(out) !== r.kind) writeFileAtomic(join(out, MARKER_FILE), markerJson(r.kind));
  } catch (e) {
    if (e instanceof QkdError) throw e;
    throw new QkdError('E_INPUT', `--out ${out}: cannot create the folder: ${(e as Error).message}`, { cause: e });
  }
  return state;
}

/** For writers of a whole folder at once (export, tokenizer): checks `out`, then writes it atomically with its marker. */
export function writeOutputDir(out: string, r: OutDirRequest, files: Record<string, FileData>): OutDirState {
  cleanStaleTemps(out);
  const state = checkOutDir(out, { ...r, resume: false });
  if (MARKER_FILE in files) throw new QkdError('E_INTERNAL', `${out}: ${MARKER_FILE} is written by writeOutputDir`);
  writeDirAtomic(out, { ...files, [MARKER_FILE]: markerJson(r.kind) });
  return state;
}

/** A command's output FILE (logits, ONNX): never an input, inside an input folder, or a folder itself. */
export function checkOutFile(out: string, inputs: (string | undefined | null)[]): void {
  const o = realish(out);
  for (const input of inputs) {
    if (!input) continue;
    const i = realish(input);
    if (isWithin(o, i)) refuse(`--out ${out}: ${o === i ? 'is' : 'lies inside'} the input ${input}; refusing to write into what the command reads`);
  }
  if (existsSync(out) && statSync(out).isDirectory()) refuse(`--out ${out}: is a folder; --out names a file here`);
}
