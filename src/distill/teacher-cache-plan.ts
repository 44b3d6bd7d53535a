/**
 * `qkd teacher-cache --plan DIR`: everything another program needs to write a cache qkd accepts,
 * without running the teacher here: plan.json (the cache header to write, its window range) and
 * tokens.i32 (the training token stream, int32 little-endian). tools/teacher_cache_writer.py
 * (PyTorch / Hugging Face, on a GPU) reads it; docs/teacher-cache.md describes both files.
 */
import { writeDirAtomic } from '../io/atomic.js';
import { newHeader } from '../io/teacher-cache.js';
import type { TeacherCacheHeader } from '../io/teacher-cache-format.js';
import type { QkdTokenizer } from '../data/tokenizer.js';
import { planTeacherCache, type CacheBuildRequest, type ShardSpec } from './teacher-cache-job.js';

export const PLAN_FORMAT = 'qkd-teacher-cache-plan';
export const PLAN_FILE = 'plan.json';
export const PLAN_TOKENS = 'tokens.i32';

export interface CachePlanFile {
  format: typeof PLAN_FORMAT;
  version: 1;
  /** The cache.json to write: complete false and windows 0 until the last record is written. */
  header: TeacherCacheHeader;
  /** Windows of the whole stream; this cache holds windows first..end-1 (record i is window first + i). */
  windows: number;
  first: number;
  end: number;
  /** Windows per teacher forward of a qkd build (shards are whole batches of it). */
  batch: number;
  tokens: typeof PLAN_TOKENS;
}

/** Writes the plan of `r` (or of one shard of it) into `dir` atomically; returns it. */
export function writeCachePlan(dir: string, r: CacheBuildRequest, tok: QkdTokenizer, shard: ShardSpec | null): CachePlanFile {
  const p = planTeacherCache(r, tok, shard);
  const plan: CachePlanFile = { format: PLAN_FORMAT, version: 1, header: newHeader(p.spec, dir), windows: p.windows,
    first: p.first, end: p.end, batch: r.batch, tokens: PLAN_TOKENS };
  const tokens = new Uint8Array(Int32Array.from(p.train).buffer); // little-endian on every platform qkd runs on
  writeDirAtomic(dir, { [PLAN_FILE]: JSON.stringify(plan, null, 1) + '\n', [PLAN_TOKENS]: tokens });
  return plan;
}
