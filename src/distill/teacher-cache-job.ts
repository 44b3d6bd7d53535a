/**
 * A teacher-cache build as data: what `qkd teacher-cache` resolved from its flags (a request), the
 * cache spec it leads to (without running the teacher), and the deterministic split of the windows
 * into shards, shared by `--shard I/N`, the merge and the queue (docs/scale.md).
 *
 * Shards are whole batches: window w is always computed in the teacher forward of windows
 * ⌊w/batch⌋·batch .. +batch, as a one-process build computes it, so a shard's records are the
 * one-process records byte for byte, whatever the kernels do with the batch's rows.
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { loadTokenData, type DataSpec } from '../data/dataset.js';
import type { QkdTokenizer } from '../data/tokenizer.js';
import { loadHfModelConfig } from '../io/hf.js';
import { canon, sha256File, SPEC_KEYS, type LogitDtype, type TeacherCacheSpec } from '../io/teacher-cache-format.js';
import { QkdError } from '../tensor/errors.js';

/** The BullMQ queue of `qkd teacher-cache --queue` and `qkd worker` unless --queue-name says otherwise. */
export const DEFAULT_QUEUE = 'qkd-teacher-cache';

/** What a teacher-cache build computes; JSON-serializable (a queue job carries it). */
export interface CacheBuildRequest {
  teacher: string;
  data: DataSpec;
  context: number;
  /** Entries per position; 'all' (= V) stores the whole distribution. */
  k: number | 'all';
  taus: number[];
  logitDtype: LogitDtype;
  /** Windows per teacher forward. */
  batch: number;
}

export interface ShardSpec { index: number; count: number }

/** The shard record in a shard cache's windowRule: which windows [first, end) it holds. */
export interface ShardInfo extends ShardSpec { batch: number; first: number; end: number }

/** `I/N` with 0 ≤ I < N (Kubernetes: `--shard $JOB_COMPLETION_INDEX/N`). */
export function parseShard(v: string, flag = '--shard'): ShardSpec {
  const m = /^(\d+)\/(\d+)$/.exec(v.trim());
  const index = m ? Number(m[1]) : NaN, count = m ? Number(m[2]) : NaN;
  if (!(Number.isSafeInteger(index) && Number.isSafeInteger(count) && count >= 1 && index < count)) {
    throw new QkdError('E_CONFIG', `${flag}: expected I/N with 0 <= I < N (e.g. 0/4), got '${v}'`);
  }
  return { index, count };
}

/** Windows [first, end) of shard I of N: batches of `batch` windows from window 0, split as evenly as whole batches go. */
export function shardRange(windows: number, batch: number, s: ShardSpec): { first: number; end: number } {
  const nb = Math.ceil(windows / batch);
  const b0 = Math.floor((s.index * nb) / s.count), b1 = Math.floor(((s.index + 1) * nb) / s.count);
  return { first: Math.min(windows, b0 * batch), end: Math.min(windows, b1 * batch) };
}

/** The window rule of a whole cache (as one process writes it) or of one shard of it. */
export function windowRule(T: number, windows: number, batch: number, shard: ShardSpec | null): TeacherCacheSpec['windowRule'] {
  if (!shard) return { kind: 'non-overlapping', stride: T };
  const info: ShardInfo = { index: shard.index, count: shard.count, batch, ...shardRange(windows, batch, shard) };
  return { kind: 'non-overlapping', stride: T, shard: info };
}

/** Non-overlapping windows of T + 1 tokens at stride T in a stream of `tokens` (WindowSampler's count). */
export const windowCount = (tokens: number, T: number): number => Math.floor((tokens - 1) / T);

function sha(s: string | Uint8Array): string { return createHash('sha256').update(s).digest('hex'); }

/** What a cache for this teacher, tokenizer and token stream must say in its header. */
export function cacheIdentity(teacherDir: string, tok: QkdTokenizer, train: Int32Array): Pick<TeacherCacheSpec, 'teacher' | 'tokenizerSha256' | 'data'> {
  return {
    teacher: { path: teacherDir, configSha256: sha256File(join(teacherDir, 'config.json')), weightsSha256: weightsHash(teacherDir) },
    tokenizerSha256: sha(JSON.stringify(tok.json)),
    data: { sha256: sha(new Uint8Array(train.buffer, train.byteOffset, train.byteLength)), tokens: train.length },
  };
}

function weightsHash(dir: string): string {
  try { return sha256File(join(dir, 'model.safetensors')); } catch { return sha256File(join(dir, 'model.safetensors.index.json')); }
}

export interface CachePlan {
  /** The spec of the cache (or of the shard) to write. */
  spec: TeacherCacheSpec;
  /** Windows of the whole cache, and the ones this build writes. */
  windows: number;
  first: number;
  end: number;
  train: Int32Array;
}

/** The spec a build of `r` (one shard of it, or all) writes; reads the token stream and hashes the teacher, runs nothing. */
export function planTeacherCache(r: CacheBuildRequest, tok: QkdTokenizer, shard: ShardSpec | null = null): CachePlan {
  const train = loadTokenData(r.data, tok).train, T = r.context;
  const V = loadHfModelConfig(r.teacher).vocabSize;
  if (tok.vocabSize > V) throw new QkdError('E_VOCAB', `${r.teacher}: tokenizer has ${tok.vocabSize} tokens, the model ${V}`);
  const k = r.k === 'all' ? V : r.k;
  if (k > V) throw new QkdError('E_CONFIG', `--k ${k}: more than the teacher's vocabulary of ${V} (use --k all for every logit)`);
  const windows = windowCount(train.length, T);
  if (windows < 1) throw new QkdError('E_INPUT', `training text has ${train.length} tokens, fewer than one window of ${T + 1}`);
  const { first, end } = shard ? shardRange(windows, r.batch, shard) : { first: 0, end: windows };
  const spec: TeacherCacheSpec = {
    ...cacheIdentity(r.teacher, tok, train), V, k, taus: r.taus, T, logitDtype: r.logitDtype,
    windowRule: windowRule(T, windows, r.batch, shard), plannedWindows: end - first,
  };
  return { spec, windows, first, end, train };
}

/**
 * Throws E_CONFIG naming the first field where `got` (what this machine computes) differs from
 * `want` (what the producer of a queued build computed): another teacher file, tokenizer or text
 * behind the same path on a worker's machine.
 */
export function checkSameSpec(got: TeacherCacheSpec, want: TeacherCacheSpec, where: string): void {
  for (const key of SPEC_KEYS) {
    const a = canon(got[key]), b = canon(want[key]);
    if (a !== b) throw new QkdError('E_CONFIG', `${where}: field "${key}" is ${a} here, the queued build expects ${b}`);
  }
}

/** The shard folders of a queued build of `out` with N shards (on the storage all workers see). */
export function shardDirs(out: string, count: number): string[] {
  const w = String(count - 1).length;
  return Array.from({ length: count }, (_, i) => join(`${out}.shards`, `shard-${String(i).padStart(w, '0')}-of-${count}`));
}
