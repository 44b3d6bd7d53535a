/**
 * The teacher-logit cache (`qkd teacher-cache` writes it, distillation reads it): per training
 * window of T positions, the teacher's top-k ids and raw logits, and log Σ_v exp(t_v/τ) over the
 * full vocabulary for each τ in `taus` (the top-k set does not depend on τ, so one cache serves
 * several temperatures). With these, the distillation loss (src/distill/loss.ts) rebuilds p_j = exp(t_j/τ − lse) and the
 * tail bucket r = 1 − Σ_K p_j exactly.
 *
 * On disk, a directory:
 *   cache.json   header (TeacherCacheHeader): magic 'qkd-teacher-cache', version 1 (2 for int8 logits), identity of the
 *                teacher / tokenizer / data, V, k, taus, T, dtypes, the window rule, recordBytes,
 *                and `complete` + `windows` once finalized.
 *   windows.bin  `windows` fixed-size records, record i at byte i·recordBytes (little-endian;
 *                each section aligned to its item size, the record padded to 8 bytes):
 *                  start   f64              token offset of the window in the training stream
 *                  lse     f32 (nTau, T)    lse[a,p] = log Σ_v exp(t_pv / taus[a]); int8: relative to
 *                                           the position's max, and absent when k = V
 *                  tmax    f32 (T)          only with f16: the largest of the position's k logits
 *                  range   f16 (T)          only with int8: the position's code range (teacher-cache-int8.ts)
 *                  logits  f32|f16|u8 (T,k) f32: raw teacher logits of the ids, descending per position;
 *                                           f16: logit − tmax (≤ 0, so the top logits keep ~11 bits);
 *                                           int8: square-law codes of tmax − logit (teacher-cache-int8.ts)
 *                  ids     u16|i32 (T, k)   u16 when V <= 65536; absent when k = V (a "full" cache:
 *                                           the logits are the whole rows in vocabulary order)
 *                  tokens  u16|i32 (T+1)    the window: inputs tokens[0..T), targets tokens[1..T]
 *                  crc     u32              CRC-32 of the record's bytes before it
 * Writing appends records; cache.json is written atomically (temp + rename), first with
 * complete = false, and rewritten with complete = true and the window count by finalize(). An
 * interrupted run is resumed by opening the writer again with the same spec: it keeps the leading
 * records whose CRC checks and truncates the rest. One writer per directory at a time.
 *
 * logitDtype: f16 is the default (DEFAULT_LOGIT_DTYPE): measured on the fixture teacher's real
 * logits (test/distill/measure-f16.ts, k 32..128, τ 1 and 2) it moves the top-k KL by 2e-7..9e-5
 * relative and the gradient by 0.7e-4..4e-4 of its largest element, 30-100x less than what the
 * top-k truncation itself changes; storing raw logits in f16 (no shift) was 10-30x worse.
 * f32 keeps the raw logits exactly for ~1.5x the bytes. int8 (format version 2, so that readers of
 * version 1 reject it by its version) takes half the bytes of f16 or less; measured in
 * docs/scale.md (test/distill/measure-int8.ts).
 *
 * k = V (`qkd teacher-cache --k all`) stores every logit and the reader hands distillation the same
 * full teacher a live forward gives (up to the f16 rounding above): the top-k + tail-bucket KL at τ = 2
 * differs from the full KL by 40-60% on the fixture teacher, and training from top-64 ended 10.7%
 * worse than live (docs/distillation.md). The price is size: T·V·2 bytes per window (6.3 GB for
 * Brown train at T = 128, V = 2048) against T·k·4 for top-k.
 */
import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import { createHash } from 'node:crypto';
import * as zlib from 'node:zlib';
import { join } from 'node:path';
import { crc32 as crc32Table } from './crc32.js';

import { QkdError } from '../tensor/errors.js';


export const CACHE_MAGIC = 'qkd-teacher-cache';
export const CACHE_VERSION = 1;
/** Caches with int8 logits: a layout version-1 readers must not read. */
export const CACHE_VERSION_INT8 = 2;
export type LogitDtype = 'f16' | 'f32' | 'int8';
export const LOGIT_DTYPES: readonly LogitDtype[] = ['f16', 'int8', 'f32'];
/** The format version of a cache with these logits. */
export const versionFor = (d: LogitDtype): 1 | 2 => (d === 'int8' ? CACHE_VERSION_INT8 : CACHE_VERSION);
export const HEADER_FILE = 'cache.json';
export const DATA_FILE = 'windows.bin';
export const DEFAULT_LOGIT_DTYPE = 'f16';

/** What identifies a cache; a resumed writer must be given the same spec. */
export interface TeacherCacheSpec {
  teacher: { path: string; configSha256: string; weightsSha256: string };
  tokenizerSha256: string;
  /** The training token stream the windows index into. */
  data: { sha256: string; tokens: number };
  V: number;
  k: number;
  taus: number[];
  /** Positions per window (the context length). */
  T: number;
  logitDtype: LogitDtype;
  /** How window starts were chosen, e.g. {kind: 'sampler', seed, batch}; every record stores its start too. */
  windowRule: { kind: string; [key: string]: unknown };
  /** Windows the run intends to write (finalize checks it), or null when open-ended. */
  plannedWindows: number | null;
}

export interface TeacherCacheHeader extends TeacherCacheSpec {
  magic: typeof CACHE_MAGIC;
  version: 1 | 2;
  idDtype: 'u16' | 'i32';
  recordBytes: number;
  complete: boolean;
  /** Number of records; meaningful once complete. */
  windows: number;
}

export const SPEC_KEYS = ['teacher', 'tokenizerSha256', 'data', 'V', 'k', 'taus', 'T', 'logitDtype', 'windowRule', 'plannedWindows'] as const;

// ---- record layout and CRC

/** Byte offsets in a record; nLse = lse entries (nTau·T, or 0 for a full int8 cache); lb = bytes per logit. */
export interface Layout {
  lse: number; tmax: number; range: number; logits: number; ids: number; tokens: number; crc: number; bytes: number;
  nTau: number; nLse: number; lb: 1 | 2 | 4; ib: 2 | 4;
}

const align = (x: number, a: number) => Math.ceil(x / a) * a;

export function recordLayout(h: Pick<TeacherCacheSpec, 'V' | 'k' | 'T' | 'taus' | 'logitDtype'>): Layout {
  const nTau = h.taus.length, lb = h.logitDtype === 'f16' ? 2 : h.logitDtype === 'int8' ? 1 : 4, ib = h.V <= 65536 ? 2 : 4;
  const nLse = lb === 1 && h.k === h.V ? 0 : nTau * h.T;
  // f16: tmax f32 (T); int8: range f16 (T), at the same offset; f32: neither
  const lse = 8, tmax = lse + 4 * nLse, logits = tmax + (lb === 2 ? 4 * h.T : lb === 1 ? 2 * h.T : 0);
  const ids = align(logits + lb * h.T * h.k, ib), nIds = h.k === h.V ? 0 : h.T * h.k;
  const tokens = align(ids + ib * nIds, ib), crc = align(tokens + ib * (h.T + 1), 4);
  return { lse, tmax, range: tmax, logits, ids, tokens, crc, bytes: align(crc + 4, 8), nTau, nLse, lb, ib };
}

/** zlib's CRC-32 where Node has it (20.15+; ~5x faster than the table loop on a 8 MiB batch). */
const zlibCrc32 = (zlib as { crc32?: (data: Uint8Array) => number }).crc32;

/** CRC-32 (IEEE 802.3, as zlib) of bytes. */
export function crc32(bytes: Uint8Array): number {
  return zlibCrc32 ? zlibCrc32(bytes) >>> 0 : crc32Table(bytes);
}

/** The table-lookup CRC-32 (io/crc32.ts): the reference, and the fallback where zlib lacks crc32. */
export { crc32Table };

/** sha256 (hex) of a file, read in 1 MiB chunks. */
export function sha256File(path: string): string {
  const h = createHash('sha256'), buf = new Uint8Array(1 << 20);
  const fd = openFile(path, 'r');
  try {
    for (let pos = 0, n; (n = readSync(fd, buf, 0, buf.length, pos)) > 0; pos += n) h.update(buf.subarray(0, n));
  } finally { closeSync(fd); }
  return h.digest('hex');
}

export function openFile(path: string, flags: string): number {
  try {
    return openSync(path, flags);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'E_MISSING' : 'E_INPUT';
    throw new QkdError(code, `${path}: cannot open: ${(e as Error).message}`, { cause: e });
  }
}

// ---- header validation

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
export const isInt = (v: unknown, min: number): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= min;
const isStr = (v: unknown): v is string => typeof v === 'string' && v.length > 0;

/** Checks a parsed header field by field; `where` (the file) appears in every error. */
export function validateHeader(json: unknown, where: string): TeacherCacheHeader {
  const bad = (field: string, msg: string) => new QkdError('E_FORMAT', `${where}: field "${field}" ${msg}`);
  if (!isObj(json)) throw new QkdError('E_FORMAT', `${where}: not a JSON object`);
  if (json.magic !== CACHE_MAGIC) throw bad('magic', `is ${JSON.stringify(json.magic)}, expected "${CACHE_MAGIC}" (not a qkd teacher cache)`);
  if (json.version !== CACHE_VERSION && json.version !== CACHE_VERSION_INT8) {
    throw new QkdError('E_UNSUPPORTED', `${where}: field "version" is ${JSON.stringify(json.version)}; this qkd reads versions ${CACHE_VERSION} and ${CACHE_VERSION_INT8}`);
  }
  const t = json.teacher;
  if (!isObj(t) || !isStr(t.path) || !isStr(t.configSha256) || !isStr(t.weightsSha256)) throw bad('teacher', 'is not {path, configSha256, weightsSha256} (strings)');
  if (!isStr(json.tokenizerSha256)) throw bad('tokenizerSha256', 'is not a non-empty string');
  const d = json.data;
  if (!isObj(d) || !isStr(d.sha256) || !isInt(d.tokens, 0)) throw bad('data', 'is not {sha256: string, tokens: integer}');
  if (!isInt(json.V, 1)) throw bad('V', `is ${JSON.stringify(json.V)}, not a positive integer`);
  if (!isInt(json.k, 1) || json.k > json.V) throw bad('k', `is ${JSON.stringify(json.k)}, not in 1..V = ${json.V}`);
  if (!isInt(json.T, 1)) throw bad('T', `is ${JSON.stringify(json.T)}, not a positive integer`);
  const taus = json.taus;
  if (!Array.isArray(taus) || taus.length === 0 || !taus.every((x) => typeof x === 'number' && x > 0 && Number.isFinite(x))
    || new Set(taus).size !== taus.length) throw bad('taus', `is ${JSON.stringify(taus)}, not a non-empty list of distinct positive numbers`);
  if (!LOGIT_DTYPES.includes(json.logitDtype as LogitDtype)) throw bad('logitDtype', `is ${JSON.stringify(json.logitDtype)}, not one of ${LOGIT_DTYPES.map((d) => `"${d}"`).join(', ')}`);
  const version = versionFor(json.logitDtype as LogitDtype);
  if (json.version !== version) throw bad('version', `is ${json.version}, but a cache of ${json.logitDtype} logits is version ${version}`);
  const idDtype = json.V <= 65536 ? 'u16' : 'i32';
  if (json.idDtype !== idDtype) throw bad('idDtype', `is ${JSON.stringify(json.idDtype)}, expected "${idDtype}" for V = ${json.V}`);
  if (!isObj(json.windowRule) || !isStr(json.windowRule.kind)) throw bad('windowRule', 'is not an object with a "kind" string');
  if (json.plannedWindows !== null && !isInt(json.plannedWindows, 0)) throw bad('plannedWindows', 'is neither null nor an integer >= 0');
  if (typeof json.complete !== 'boolean') throw bad('complete', 'is not a boolean');
  if (!isInt(json.windows, 0)) throw bad('windows', 'is not an integer >= 0');
  const h = json as unknown as TeacherCacheHeader, L = recordLayout(h);
  if (h.recordBytes !== L.bytes) throw bad('recordBytes', `is ${JSON.stringify(h.recordBytes)}, the layout of V, k, T, taus and logitDtype gives ${L.bytes}`);
  return h;
}

/** The header of `dir`, or null when it has none (a new or never-started cache). */
export function readHeaderIfAny(dir: string): TeacherCacheHeader | null {
  try { return readHeader(dir); } catch (e) {
    if (e instanceof QkdError && e.code === 'E_MISSING') return null;
    throw e;
  }
}

export function readHeader(dir: string): TeacherCacheHeader {
  const path = join(dir, HEADER_FILE);
  let text: string;
  try { text = readFileSync(path, 'utf8'); } catch (e) {
    const missing = (e as NodeJS.ErrnoException).code === 'ENOENT';
    throw new QkdError(missing ? 'E_MISSING' : 'E_INPUT', `${path}: cannot read the teacher-cache header: ${(e as Error).message}`, { cause: e });
  }
  let json: unknown;
  try { json = JSON.parse(text); } catch (e) { throw new QkdError('E_FORMAT', `${path}: not valid JSON: ${(e as Error).message}`); }
  return validateHeader(json, path);
}

/** JSON with object keys sorted, so that key order never makes two specs differ. */
export function canon(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canon).join(',')}]`;
  if (isObj(v)) return `{${Object.keys(v).sort().map((key) => `${JSON.stringify(key)}:${canon(v[key])}`).join(',')}}`;
  return JSON.stringify(v) ?? 'undefined';
}

/**
 * Throws when the cache was made for something else than the caller expects: a different V or
 * tokenizer is E_VOCAB (student and teacher must share a tokenizer), any other field E_CONFIG.
 */
export function checkCacheMatches(h: TeacherCacheHeader, expected: Partial<TeacherCacheSpec>, where: string): void {
  for (const key of SPEC_KEYS) {
    if (!(key in expected)) continue;
    const want = canon(expected[key]), got = canon(h[key]);
    if (want === got) continue;
    const code = key === 'V' || key === 'tokenizerSha256' ? 'E_VOCAB' : 'E_CONFIG';
    throw new QkdError(code, `${where}: teacher cache field "${key}" is ${got}, expected ${want}`);
  }
}

// ---- the distributions a cache stores and hands back

/** A live teacher: its full logits (N,V). */
export interface FullTeacher { kind: 'full'; logits: Float32Array }

/** A cached teacher: per row its top-k ids and raw logits (N,k) and lse (N) = log Σ_v exp(t_v/tau)
 *  over the whole vocabulary at this `tau` (must equal the loss's τ). Ids in a row are distinct. */
export interface TopkTeacher {
  kind: 'topk';
  k: number;
  ids: Uint16Array | Int32Array;
  logits: Float32Array;
  lse: Float32Array;
  tau: number;
}

export type TeacherDist = FullTeacher | TopkTeacher;

/** Top-k of N rows: ids/logits (N,k) sorted by descending logit (ties: lower id first), and
 *  lse (nTau, N) with lse[a·N + i] = log Σ_v exp(t_iv / taus[a]) over the full row.
 *  k = V is the whole distribution: logits are the rows in vocabulary order and ids is empty. */
export interface TopkEntries {
  N: number;
  V: number;
  k: number;
  taus: number[];
  ids: Uint16Array | Int32Array;
  logits: Float32Array;
  lse: Float32Array;
}
