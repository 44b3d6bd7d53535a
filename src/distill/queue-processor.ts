/**
 * The sandboxed processor of `qkd worker` (BullMQ forks a child process that imports this file):
 * runs one shard or merge job of a queued teacher-cache build (queue.ts).
 *
 * A shard job builds into a private temp folder beside its shard folder and renames it into place
 * when complete, so an attempt that dies, or a stale one still running when BullMQ has already
 * given the job to another worker, never mixes records with the attempt that wins. The child
 * also exits as soon as its worker is gone (its parent pid changes, checked after every batch).
 */
import { existsSync, renameSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import type { SandboxedJob } from 'bullmq';
import { loadTokenizer } from '../data/tokenizer-node.js';
import { createBackend } from '../kernels/registry.js';
import type { Backend, BackendName } from '../kernels/backend.js';
import { canon, readHeaderIfAny, SPEC_KEYS } from '../io/teacher-cache-format.js';
import { mergeShards } from '../io/teacher-cache-merge.js';
import { QkdError } from '../tensor/errors.js';
import { buildTeacherCache } from './teacher.js';
import type { MergeJobData, ShardJobData } from './queue.js';

const parent = process.ppid;
const orphaned = () => process.ppid !== parent;
process.on('disconnect', () => process.exit(1));

export default async function processJob(job: SandboxedJob): Promise<unknown> {
  const { cwd } = job.data as { cwd: string };
  if (existsSync(cwd)) process.chdir(cwd);
  if (job.name === 'shard') return shardJob(job, job.data as ShardJobData);
  if (job.name === 'merge') return mergeJob(job, job.data as MergeJobData);
  throw new QkdError('E_INPUT', `job ${job.id}: unknown job name "${job.name}" (expected shard or merge)`);
}

async function shardJob(job: SandboxedJob, d: ShardJobData): Promise<unknown> {
  const done = readHeaderIfAny(d.dir);
  if (done?.complete && sameSpec(done, d.expect)) return { dir: d.dir, windows: done.windows, seconds: 0, already: true };
  const tmp = join(dirname(d.dir), `.${basename(d.dir)}.part-${process.pid}-${randomBytes(4).toString('hex')}`);
  const be = await backend();
  let last = 0;
  try {
    const r = await buildTeacherCache({ ...d.request, out: tmp, shard: d.shard, expect: d.expect, onProgress: (n, total) => {
      if (orphaned()) process.exit(1); // the worker died: BullMQ gives this job to another one
      const now = Date.now();
      if (n === total || n <= d.request.batch || now - last >= 250) { last = now; void job.updateProgress({ stage: 'windows', done: n, total }); }
    } }, be, loadTokenizer(d.request.teacher));
    if (orphaned()) process.exit(1);
    const other = readHeaderIfAny(d.dir);
    if (other?.complete && sameSpec(other, d.expect)) rmSync(tmp, { recursive: true, force: true }); // another attempt finished first: same bytes
    else {
      rmSync(d.dir, { recursive: true, force: true });
      renameSync(tmp, d.dir);
    }
    return { dir: d.dir, windows: r.windows, seconds: r.seconds, already: false };
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    // a plain Error crosses the process boundary with its message; the shard's folder, not the attempt's, is named
    throw e instanceof QkdError ? new Error(e.message.replaceAll(tmp, d.dir)) : e;
  }
}

let shared: Promise<Backend> | null = null;
/** One backend per child process: BullMQ reuses the child for later jobs, which then skip the kernels' start-up. */
function backend(): Promise<Backend> {
  const name = (process.env.QKD_QUEUE_BACKEND ?? 'wasm') as BackendName;
  const threads = process.env.QKD_QUEUE_THREADS ? Number(process.env.QKD_QUEUE_THREADS) : undefined;
  shared ??= createBackend(name, { threads });
  return shared;
}

async function mergeJob(job: SandboxedJob, d: MergeJobData): Promise<unknown> {
  const done = readHeaderIfAny(d.out);
  if (done?.complete && sameSpec(done, d.expect)) return { windows: done.windows, already: true }; // a retried merge
  try {
    const r = mergeShards(d.out, d.shards, (done, total) => { void job.updateProgress({ stage: 'merged windows', done, total }); });
    const h = readHeaderIfAny(d.out);
    if (!h || !sameSpec(h, d.expect)) throw new QkdError('E_INTERNAL', `${d.out}: the merged cache does not have the queued build's spec`);
    rmSync(`${d.out}.shards`, { recursive: true, force: true });
    return r;
  } catch (e) {
    throw e instanceof QkdError ? new Error(e.message) : e;
  }
}

/** Every identity field of a cache header equal to the spec's. */
function sameSpec(h: object, want: object): boolean {
  const a = h as Record<string, unknown>, b = want as Record<string, unknown>;
  return SPEC_KEYS.every((k) => canon(a[k]) === canon(b[k]));
}
