/**
 * `qkd teacher-cache merge`: a complete set of shard caches (`qkd teacher-cache --shard I/N`, or a
 * queued build's shard jobs) into one cache, byte-identical to a one-process build with the same
 * flags. Shards are contiguous runs of windows (distill/teacher-cache-job.ts), so the merged
 * windows.bin is the shards' records in shard order, each checked (CRC, start) on the way, and the
 * header is the shards' spec without the shard record. The result appears at once (a temp folder
 * renamed into place) or not at all.
 */
import { closeSync, existsSync, fstatSync, fsyncSync, mkdirSync, readdirSync, readSync, renameSync, rmSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join, resolve } from 'node:path';
import { QkdError } from '../tensor/errors.js';
import { writeFileAtomic } from './atomic.js';
import {
  canon, crc32, DATA_FILE, HEADER_FILE, isInt, openFile, readHeader, readHeaderIfAny, recordLayout, SPEC_KEYS,
  type TeacherCacheHeader, type TeacherCacheSpec,
} from './teacher-cache-format.js';

interface Shard { dir: string; h: TeacherCacheHeader; index: number; count: number; batch: number; first: number; end: number }

/** Fields two shards of one cache must agree on (all of the spec but the shard record and its window count). */
const SHARED_KEYS = SPEC_KEYS.filter((k) => k !== 'windowRule' && k !== 'plannedWindows');

function shardOf(dir: string): Shard {
  const where = `shard ${dir} (${join(dir, HEADER_FILE)})`;
  let h: TeacherCacheHeader;
  try { h = readHeader(dir); } catch (e) {
    throw e instanceof QkdError ? new QkdError(e.code, `shard ${dir}: ${e.message}`, { cause: e }) : e;
  }
  if (!h.complete) throw new QkdError('E_INPUT', `${where}: field "complete" is false: the shard did not finish (run its build again to resume it)`);
  const { shard, ...rule } = h.windowRule as { shard?: Record<string, unknown>; kind: string };
  if (!shard || typeof shard !== 'object') throw new QkdError('E_INPUT', `${where}: field "windowRule.shard" is missing: not a shard (made without --shard I/N)`);
  const { index, count, batch, first, end } = shard;
  if (!isInt(count, 1) || !isInt(index, 0) || index >= count || !isInt(batch, 1) || !isInt(first, 0) || !isInt(end, first)) {
    throw new QkdError('E_FORMAT', `${where}: field "windowRule.shard" is ${canon(shard)}, not {index < count, count, batch, first <= end}`);
  }
  if (rule.kind !== 'non-overlapping') throw new QkdError('E_UNSUPPORTED', `${where}: field "windowRule.kind" is ${JSON.stringify(rule.kind)}; only non-overlapping shards merge`);
  if (h.windows !== end - first) throw new QkdError('E_FORMAT', `${where}: field "windows" is ${h.windows}, the shard record says ${end - first} (${first}..${end})`);
  return { dir, h, index, count, batch, first, end };
}

/** The shards of one cache, complete and each once, in shard order; the error names the shard and the field. */
export function checkShardSet(dirs: string[]): Shard[] {
  if (dirs.length === 0) throw new QkdError('E_CONFIG', 'teacher-cache merge: no shard folders given');
  const shards = dirs.map(shardOf), ref = shards[0];
  for (const s of shards.slice(1)) {
    for (const key of [...SHARED_KEYS, 'recordBytes'] as const) {
      const a = canon(s.h[key]), b = canon(ref.h[key]);
      if (a !== b) {
        const code = key === 'V' || key === 'tokenizerSha256' ? 'E_VOCAB' : 'E_CONFIG';
        throw new QkdError(code, `shard ${s.dir}: field "${key}" is ${a}, but shard ${ref.dir} has ${b} (a shard of another cache)`);
      }
    }
    for (const key of ['count', 'batch'] as const) {
      if (s[key] !== ref[key]) throw new QkdError('E_CONFIG', `shard ${s.dir}: field "windowRule.shard.${key}" is ${s[key]}, but shard ${ref.dir} has ${ref[key]}`);
    }
    const { shard: _a, ...r1 } = s.h.windowRule, { shard: _b, ...r2 } = ref.h.windowRule;
    if (canon(r1) !== canon(r2)) throw new QkdError('E_CONFIG', `shard ${s.dir}: field "windowRule" is ${canon(r1)}, but shard ${ref.dir} has ${canon(r2)}`);
  }
  const byIndex = new Map<number, Shard>();
  for (const s of shards) {
    const twin = byIndex.get(s.index);
    if (twin) throw new QkdError('E_INPUT', `shards ${twin.dir} and ${s.dir} are both shard ${s.index}/${s.count} (given twice?)`);
    byIndex.set(s.index, s);
  }
  const missing = Array.from({ length: ref.count }, (_, i) => i).filter((i) => !byIndex.has(i));
  if (missing.length) throw new QkdError('E_INPUT', `teacher-cache merge: shard${missing.length > 1 ? 's' : ''} ${missing.map((i) => `${i}/${ref.count}`).join(', ')} missing (given: ${[...byIndex.keys()].sort((a, b) => a - b).join(', ')})`);
  const sorted = [...byIndex.values()].sort((a, b) => a.index - b.index);
  sorted.forEach((s, i) => {
    const want = i === 0 ? 0 : sorted[i - 1].end;
    if (s.first !== want) throw new QkdError('E_FORMAT', `shard ${s.dir}: field "windowRule.shard.first" is ${s.first}, expected ${want} (shards must tile the windows)`);
  });
  const T = ref.h.T, total = Math.floor((ref.h.data.tokens - 1) / T), last = sorted[sorted.length - 1];
  if (last.end !== total) throw new QkdError('E_FORMAT', `shard ${last.dir}: field "windowRule.shard.end" is ${last.end}, the text has ${total} windows of ${T}`);
  return sorted;
}

/** The header a one-process build of the same spec writes when it finishes (key order included). */
export function mergedHeader(shards: Shard[]): TeacherCacheHeader {
  const h = shards[0].h, total = shards[shards.length - 1].end;
  const { shard: _s, ...windowRule } = h.windowRule;
  const spec = Object.fromEntries(SPEC_KEYS.map((k) => [k, h[k]])) as unknown as TeacherCacheSpec;
  return { ...spec, windowRule, plannedWindows: total, magic: h.magic, version: h.version, idDtype: h.idDtype,
    recordBytes: h.recordBytes, complete: true, windows: total };
}

export interface MergeResult { windows: number; bytes: number; seconds: number; already: boolean }

/**
 * Merges the shard folders into `out`. An existing `out` is left alone: when it already holds
 * this merge (a retried merge job) the call returns `already`, anything else is an error.
 */
export function mergeShards(out: string, dirs: string[], onProgress?: (done: number, total: number) => void): MergeResult {
  const t0 = performance.now(), shards = checkShardSet(dirs), header = mergedHeader(shards);
  const text = JSON.stringify(header, null, 1) + '\n', R = header.recordBytes;
  if (existsSync(out) && readdirSync(out).length > 0) { // an empty folder is replaced by the rename
    const have = readHeaderIfAny(out);
    if (have && have.complete && canon(have) === canon(header)) return { windows: header.windows, bytes: header.windows * R, seconds: 0, already: true };
    throw new QkdError('E_INPUT', `${out}: exists${have ? ' and holds another cache' : ''}; the merge writes a new folder (remove it, or choose another --out)`);
  }
  const target = resolve(out), tmp = join(dirname(target), `.${basename(target)}.merge-${process.pid}-${randomBytes(4).toString('hex')}`);
  mkdirSync(tmp, { recursive: true });
  try {
    const fd = openFile(join(tmp, DATA_FILE), 'w');
    try {
      let done = 0;
      for (const s of shards) done = copyShard(s, fd, done, header, onProgress);
      fsyncSync(fd);
    } finally { closeSync(fd); }
    writeFileAtomic(join(tmp, HEADER_FILE), text);
    renameSync(tmp, target);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  return { windows: header.windows, bytes: header.windows * R, seconds: (performance.now() - t0) / 1000, already: false };
}

/** Appends shard s's records to fd (window `done` onward), checking each one's CRC and start. */
function copyShard(s: Shard, fd: number, done: number, h: TeacherCacheHeader, onProgress?: (done: number, total: number) => void): number {
  const R = h.recordBytes, L = recordLayout(h), path = join(s.dir, DATA_FILE), n = s.end - s.first;
  const per = Math.max(1, Math.floor((8 << 20) / R)), buf = new Uint8Array(per * R), dv = new DataView(buf.buffer);
  const src = openFile(path, 'r');
  try {
    if (fstatSync(src).size !== n * R) throw new QkdError('E_FORMAT', `shard ${s.dir}: ${path} has ${fstatSync(src).size} bytes, its ${n} windows need ${n * R}`);
    for (let i = 0; i < n; i += per) {
      const m = Math.min(per, n - i), chunk = buf.subarray(0, m * R);
      for (let got = 0; got < chunk.length;) {
        const r = readSync(src, chunk, got, chunk.length - got, i * R + got);
        if (r === 0) throw new QkdError('E_FORMAT', `shard ${s.dir}: ${path}: unexpected end of file at byte ${i * R + got}`);
        got += r;
      }
      for (let j = 0; j < m; j++) {
        const o = j * R, w = s.first + i + j;
        if (dv.getUint32(o + L.crc, true) !== crc32(chunk.subarray(o, o + L.crc))) throw new QkdError('E_FORMAT', `shard ${s.dir}: ${path}: window ${i + j}: CRC mismatch (corrupt record)`);
        const start = dv.getFloat64(o, true);
        if (start !== w * h.T) throw new QkdError('E_FORMAT', `shard ${s.dir}: ${path}: window ${i + j}: field "start" is ${start}, expected ${w * h.T}`);
      }
      for (let off = 0; off < chunk.length;) off += writeSync(fd, chunk, off, chunk.length - off, (done + i) * R + off);
      onProgress?.(done + i + m, h.windows);
    }
  } finally { closeSync(src); }
  return done + n;
}
