/**
 * Where the teacher's distribution comes from during distillation: a live teacher (any model qkd
 * loads) run on each batch, or a teacher-logit cache (top-k per position) written once by
 * `qkd teacher-cache` over the windows of the training stream. Also the cache builder.
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Backend } from '../kernels/backend.js';
import { WindowSampler, loadTokenData, type DataSpec } from '../data/dataset.js';
import { cacheIdentity, checkSameSpec, planTeacherCache, type CacheBuildRequest, type ShardSpec } from './teacher-cache-job.js';
import type { QkdTokenizer } from '../data/tokenizer.js';
import { loadModel } from '../io/load-model.js';
import { loadHfModelConfig } from '../io/hf.js';
import type { Transformer } from '../model/transformer.js';
import { QkdError } from '../tensor/errors.js';
import { freeBytes } from '../train/guard.js';
import { checkCacheMatches, DATA_FILE, recordLayout, type TeacherCacheSpec } from '../io/teacher-cache-format.js';
import { TeacherCacheReader, TeacherCacheWriter } from '../io/teacher-cache.js';
import { topkFromLogits, type TeacherDist } from './loss.js';

/** TeacherModel of the method: a live model or its cached logits, as the distillation step sees it. */
export interface TeacherModel {
  vocabSize: number;
  describe: string;
  /** The teacher distribution of B windows (inputs x, window indices of the training stream). */
  batch(x: Int32Array, windowIds: number[], B: number, T: number): TeacherDist;
  dispose(): void;
}

export { cacheIdentity };

export function openTeacher(cfg: { teacher: string; teacherCache: string | null; tau: number; context: number; data: DataSpec; alpha: number },
  be: Backend, tok: QkdTokenizer): TeacherModel {
  if (cfg.alpha >= 1) {
    // labels only: the teacher directory supplies the tokenizer and the vocabulary, never logits
    const V = loadHfModelConfig(cfg.teacher).vocabSize;
    return {
      vocabSize: V, describe: `none (alpha = 1: labels only; tokenizer of ${cfg.teacher})`,
      batch: () => { throw new QkdError('E_INTERNAL', 'teacher requested with alpha = 1'); }, dispose: () => {},
    };
  }
  if (cfg.teacherCache) {
    const reader = TeacherCacheReader.open(cfg.teacherCache);
    const train = loadTokenData(cfg.data, tok).train;
    const id = cacheIdentity(cfg.teacher, tok, train);
    const where = join(cfg.teacherCache, 'cache.json');
    checkCacheMatches(reader.header, { tokenizerSha256: id.tokenizerSha256, data: id.data, T: cfg.context }, where);
    if (reader.header.teacher.weightsSha256 !== id.teacher.weightsSha256) {
      throw new QkdError('E_CONFIG', `${where}: field teacher.weightsSha256: the cache was made from other weights than ${cfg.teacher}`);
    }
    if (!reader.servesTau(cfg.tau)) {
      throw new QkdError('E_CONFIG', `${where}: field taus ${JSON.stringify(reader.header.taus)} lacks the recipe's tau ${cfg.tau} (a top-${reader.header.k} cache serves only its taus)`);
    }
    return {
      vocabSize: reader.header.V,
      describe: `teacher-logit cache ${cfg.teacherCache} (${reader.header.k === reader.header.V ? 'all' : `top-${reader.header.k}`} logits, ${reader.windows} windows)`,
      batch: (_x, ids) => reader.read(ids, cfg.tau).teacher,
      dispose: () => reader.close(),
    };
  }
  const teacher: Transformer = loadModel(cfg.teacher, be).model;
  return {
    vocabSize: teacher.config.vocabSize,
    describe: `live ${cfg.teacher} (${teacher.config.family}, ${teacher.params.size} parameters)`,
    batch: (x, _ids, B, T) => ({ kind: 'full', logits: teacher.forward(x, B, T) }),
    dispose: () => teacher.dispose(),
  };
}

export interface CacheBuildOptions extends CacheBuildRequest {
  out: string;
  /** Only this shard's windows (a shard cache, for `qkd teacher-cache merge`). */
  shard?: ShardSpec | null;
  /** The spec a queued build's producer computed: a worker that computes another one stops (the field named). */
  expect?: TeacherCacheSpec;
  /** Called after each batch with windows done and the total of this build (or shard). */
  onProgress?: (done: number, total: number) => void;
}

/** Writes (or resumes) the teacher-logit cache of every window of the training stream, or of one shard of them. */
export async function buildTeacherCache(o: CacheBuildOptions, be: Backend, tok: QkdTokenizer,
  onStart?: (windows: number, bytes: number) => void): Promise<{ windows: number; seconds: number }> {
  const plan = planTeacherCache(o, tok, o.shard ?? null), { spec, first, end, train } = plan, T = o.context;
  if (o.expect) checkSameSpec(spec, o.expect, join(o.out, 'cache.json'));
  checkDiskSpace(o.out, (end - first) * recordLayout(spec).bytes);
  const teacher = loadModel(o.teacher, be).model, V = spec.V;
  const writer = TeacherCacheWriter.open(o.out, spec);
  const t0 = performance.now(), total = end - first, sampler = new WindowSampler(train, 1, T, 0);
  onStart?.(total, total * writer.header.recordBytes);
  try {
    // whole batches from window 0, as a one-process build makes them (teacher-cache-job.ts); a resumed
    // build recomputes the batch it stopped in and appends only the windows it lacks
    for (let w0 = first + Math.floor(writer.windows / o.batch) * o.batch; w0 < end && !writer.complete; w0 += o.batch) {
      const B = Math.min(o.batch, end - w0), x = new Int32Array(B * T), y = new Int32Array(B * T);
      for (let b = 0; b < B; b++) sampler.window(w0 + b, x, y, b * T);
      const e = topkFromLogits(teacher.forward(x, B, T), B * T, V, spec.k, o.taus);
      for (let b = first + writer.windows - w0; b < B; b++) {
        const start = (w0 + b) * T;
        writer.append(start, train.subarray(start, start + T + 1), e, b * T);
      }
      o.onProgress?.(w0 + B - first, total);
      await new Promise((r) => setImmediate(r)); // lets a queue worker's messages and signals through
    }
    if (!writer.complete) writer.finalize();
  } finally {
    writer.close();
    teacher.dispose();
  }
  return { windows: total, seconds: (performance.now() - t0) / 1000 };
}

/** Refuses to start a cache that cannot fit: `bytes` in all, less what a partial cache already holds. */
function checkDiskSpace(out: string, bytes: number): void {
  const need = bytes - cacheBytesOnDisk(out), free = freeBytes(out);
  if (need > free) {
    const gib = (b: number) => `${(b / 2 ** 30).toFixed(2)} GiB`;
    throw new QkdError('E_INPUT', `${out}: the teacher cache needs ${gib(need)} more, its file system has ${gib(free)} free (use a smaller --k, or another --out)`);
  }
}

/** Bytes of logit records a (partial) cache in `out` already holds; 0 when there is none. */
export function cacheBytesOnDisk(out: string): number {
  const data = join(out, DATA_FILE);
  return existsSync(data) ? statSync(data).size : 0;
}
