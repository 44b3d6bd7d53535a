/**
 * Where the teacher's distribution comes from during distillation: a live teacher (any model qkd
 * loads) run on each batch, or a teacher-logit cache (top-k per position) written once by
 * `qkd teacher-cache` over the windows of the training stream. Also the cache builder.
 */
import { createHash } from 'node:crypto';
import { existsSync, statfsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Backend } from '../kernels/backend.js';
import { WindowSampler, loadTokenData, type DataSpec } from '../data/dataset.js';
import type { QkdTokenizer } from '../data/tokenizer.js';
import { loadModel } from '../io/load-model.js';
import { loadHfModelConfig } from '../io/hf.js';
import type { Transformer } from '../model/transformer.js';
import { QkdError } from '../tensor/errors.js';
import { checkCacheMatches, DATA_FILE, recordLayout, sha256File, type TeacherCacheSpec } from '../io/teacher-cache-format.js';
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
    if (!reader.header.taus.includes(cfg.tau)) {
      throw new QkdError('E_CONFIG', `${where}: field taus ${JSON.stringify(reader.header.taus)} lacks the recipe's tau ${cfg.tau}`);
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

export interface CacheBuildOptions {
  teacher: string;
  out: string;
  data: DataSpec;
  context: number;
  /** Entries per position; 'all' (= V) stores the whole distribution. */
  k: number | 'all';
  taus: number[];
  logitDtype: 'f16' | 'f32';
  /** Windows per teacher forward. */
  batch: number;
  onProgress?: (done: number, total: number) => void;
}

/** Writes (or resumes) the teacher-logit cache of every window of the training stream. */
export function buildTeacherCache(o: CacheBuildOptions, be: Backend, tok: QkdTokenizer,
  onStart?: (windows: number, bytes: number) => void): { windows: number; seconds: number } {
  const train = loadTokenData(o.data, tok).train;
  const sampler = new WindowSampler(train, 1, o.context, 0);
  const teacher = loadModel(o.teacher, be).model, V = teacher.config.vocabSize;
  if (tok.vocabSize > V) throw new QkdError('E_VOCAB', `${o.teacher}: tokenizer has ${tok.vocabSize} tokens, the model ${V}`);
  const k = o.k === 'all' ? V : o.k;
  if (k > V) throw new QkdError('E_CONFIG', `--k ${k}: more than the teacher's vocabulary of ${V} (use --k all for every logit)`);
  checkDiskSpace(o.out, sampler.windows * recordLayout({ V, k, T: o.context, taus: o.taus, logitDtype: o.logitDtype }).bytes);
  const writer = TeacherCacheWriter.open(o.out, {
    ...cacheIdentity(o.teacher, tok, train), V, k, taus: o.taus, T: o.context, logitDtype: o.logitDtype,
    windowRule: { kind: 'non-overlapping', stride: o.context }, plannedWindows: sampler.windows,
  });
  const t0 = performance.now(), T = o.context, total = sampler.windows;
  onStart?.(total, total * writer.header.recordBytes);
  try {
    for (let w0 = writer.windows; w0 < total && !writer.complete; w0 += o.batch) {
      const B = Math.min(o.batch, total - w0), x = new Int32Array(B * T), y = new Int32Array(B * T);
      for (let b = 0; b < B; b++) sampler.window(w0 + b, x, y, b * T);
      const logits = teacher.forward(x, B, T);
      const e = topkFromLogits(logits, B * T, V, k, o.taus);
      for (let b = 0; b < B; b++) {
        const start = (w0 + b) * T;
        writer.append(start, train.subarray(start, start + T + 1), e, b * T);
      }
      o.onProgress?.(w0 + B, total);
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
  let dir = out;
  while (!existsSync(dir) && dirname(dir) !== dir) dir = dirname(dir);
  const data = join(out, DATA_FILE), have = existsSync(data) ? statSync(data).size : 0;
  const st = statfsSync(dir), free = st.bavail * st.bsize, need = bytes - have;
  if (need > free) {
    const gib = (b: number) => `${(b / 2 ** 30).toFixed(2)} GiB`;
    throw new QkdError('E_INPUT', `${out}: the teacher cache needs ${gib(need)} more, ${dir} has ${gib(free)} free (use a smaller --k, or another --out)`);
  }
}
