/**
 * Teacher-cache builds on a BullMQ queue (Redis): `qkd teacher-cache --queue redis://HOST:PORT`
 * enqueues one job per shard and a merge job that waits for them (a BullMQ flow: the merge is the
 * parent, the shards its children); `qkd worker --queue ...` processes them on any number of
 * machines that see the same output storage (docs/scale.md).
 *
 * Job ids are deterministic (a hash of the output folder and the cache spec, then shard-I-of-N or
 * merge), so submitting the same build twice joins the first, and a retried shard job rewrites the
 * same shard folder. A worker runs each job in a sandboxed processor (a child process:
 * queue-processor.ts), so its own event loop keeps renewing the job's lock while the teacher
 * computes; a worker that dies stops renewing, and BullMQ's stalled-job check gives the job to
 * another worker after the lock expires (`lockMs`, checked every `stalledMs`).
 */
import { createHash } from 'node:crypto';
import { createConnection } from 'node:net';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FlowProducer, Queue, QueueEvents, Worker, type Job } from 'bullmq';
import { Redis, type RedisOptions } from 'ioredis';
import { canon, type TeacherCacheSpec } from '../io/teacher-cache-format.js';
import { QkdError } from '../tensor/errors.js';
import { DEFAULT_QUEUE, shardDirs, shardRange, windowRule, type CacheBuildRequest, type ShardSpec } from './teacher-cache-job.js';

export { DEFAULT_QUEUE };

/** What a shard job carries; paths are as the producer was given them, resolved against `cwd`. */
export interface ShardJobData { request: CacheBuildRequest; shard: ShardSpec; dir: string; expect: TeacherCacheSpec; cwd: string }
export interface MergeJobData { out: string; shards: string[]; expect: TeacherCacheSpec; cwd: string }

/** ioredis options of a redis://[user:password@]host[:port][/db] (rediss:// for TLS) URL. */
export function redisOptions(url: string, flag = '--queue'): RedisOptions {
  let u: URL;
  try { u = new URL(url); } catch { throw new QkdError('E_CONFIG', `${flag}: '${url}' is not a URL (expected redis://HOST:PORT)`); }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') throw new QkdError('E_CONFIG', `${flag}: '${url}': expected a redis:// or rediss:// URL`);
  const db = u.pathname.replace(/^\//, '');
  if (db !== '' && !/^\d+$/.test(db)) throw new QkdError('E_CONFIG', `${flag}: '${url}': the path must be a database number`);
  return {
    host: u.hostname || '127.0.0.1', port: u.port ? Number(u.port) : 6379, db: db ? Number(db) : 0,
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}), ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    ...(u.protocol === 'rediss:' ? { tls: {} } : {}),
  };
}

/** Resolves when host:port accepts a TCP connection within `ms`; rejects with the socket's error (no timer outlives it). */
function tcpProbe(host: string, port: number, ms: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = createConnection({ host, port });
    const done = (e?: Error) => { clearTimeout(t); s.destroy(); if (e) reject(e); else resolve(); };
    const t = setTimeout(() => done(new Error(`no answer within ${ms} ms`)), ms);
    s.once('connect', () => done());
    s.once('error', (e) => done(e));
  });
}

/** A connection for BullMQ (which needs maxRetriesPerRequest null), after checking that Redis answers within `timeoutMs`. */
export async function connectRedis(url: string, timeoutMs = 3000): Promise<Redis> {
  const opts = redisOptions(url);
  try { await tcpProbe(opts.host!, opts.port!, timeoutMs); } catch (e) {
    throw new QkdError('E_INPUT', `--queue ${url}: cannot reach Redis at ${opts.host}:${opts.port}: ${(e as Error).message}`);
  }
  const probe = new Redis({ ...opts, lazyConnect: true, connectTimeout: timeoutMs,
    maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => null });
  probe.on('error', () => {}); // reported by connect() below
  try {
    await probe.connect();
    await probe.ping();
  } catch (e) {
    throw new QkdError('E_INPUT', `--queue ${url}: cannot reach Redis at ${opts.host}:${opts.port}: ${(e as Error).message || String(e)}`);
  } finally { probe.disconnect(); }
  const conn = new Redis({ ...opts, maxRetriesPerRequest: null });
  conn.on('error', (e) => process.stderr.write(`qkd: redis ${opts.host}:${opts.port}: ${e.message}\n`));
  return conn;
}

export interface SubmitOptions {
  url: string;
  queueName: string;
  out: string;
  shards: number;
  /** Tries per shard job (a job that throws; a stalled job is retried by the stalled-job check). */
  attempts: number;
  request: CacheBuildRequest;
  /** The whole cache's spec (planTeacherCache of the request, no shard) and its window count. */
  spec: TeacherCacheSpec;
  windows: number;
  wait: boolean;
  onEvent?: (line: string) => void;
}

/** Enqueues the shard jobs and the merge job; with `wait`, resolves when the merge is done (rejects when it fails). */
export async function submitCacheBuild(o: SubmitOptions): Promise<{ base: string; result: unknown }> {
  const conn = await connectRedis(o.url), cwd = process.cwd();
  const base = `tc-${createHash('sha256').update(canon({ out: resolve(o.out), spec: o.spec, shards: o.shards, batch: o.request.batch })).digest('hex').slice(0, 16)}`;
  const eventsConn = conn.duplicate(); // QueueEvents blocks on its connection
  const queue = new Queue(o.queueName, { connection: conn }), events = new QueueEvents(o.queueName, { connection: eventsConn });
  const flows = new FlowProducer({ connection: conn });
  try {
    await events.waitUntilReady();
    const mergeId = `${base}-merge`, old = await queue.getJob(mergeId);
    if (old && ['completed', 'failed'].includes(await old.getState())) await queue.remove(mergeId, { removeChildren: true }); // a new run of a finished build
    const dirs = shardDirs(o.out, o.shards), T = o.spec.T;
    const children = dirs.map((dir, index) => {
      const shard = { index, count: o.shards }, { first, end } = shardRange(o.windows, o.request.batch, shard);
      const expect = { ...o.spec, windowRule: windowRule(T, o.windows, o.request.batch, shard), plannedWindows: end - first };
      const data: ShardJobData = { request: o.request, shard, dir, expect, cwd };
      return { name: 'shard', queueName: o.queueName, data, opts: { jobId: `${base}-shard-${index}-of-${o.shards}`,
        attempts: o.attempts, backoff: { type: 'fixed', delay: 1000 }, failParentOnFailure: true } };
    });
    const data: MergeJobData = { out: o.out, shards: dirs, expect: o.spec, cwd };
    const flow = await flows.add({ name: 'merge', queueName: o.queueName, data, opts: { jobId: mergeId, attempts: o.attempts }, children });
    o.onEvent?.(`queued ${o.shards} shard jobs (${base}-shard-I-of-${o.shards}) and ${mergeId} on ${o.queueName}`);
    if (!o.wait) return { base, result: null };
    events.on('progress', ({ jobId, data: p }) => { if (jobId.startsWith(base)) o.onEvent?.(`${jobId}: ${describeProgress(p)}`); });
    events.on('completed', ({ jobId }) => { if (jobId.startsWith(base) && jobId !== mergeId) o.onEvent?.(`${jobId}: done`); });
    let firstFailure = '';
    events.on('failed', ({ jobId, failedReason }) => {
      if (!jobId.startsWith(base)) return;
      o.onEvent?.(`${jobId}: failed: ${failedReason}`);
      if (jobId !== mergeId) firstFailure ||= `${jobId}: ${failedReason}`;
    });
    try {
      const job = (await queue.getJob(mergeId)) ?? flow.job; // a Job of `queue`: the flow's own has no live queue to wait on
      return { base, result: await job.waitUntilFinished(events) };
    } catch (e) {
      throw new QkdError('E_INPUT', `queued teacher-cache build ${mergeId} failed: ${firstFailure || (e as Error).message}`);
    }
  } finally {
    await Promise.allSettled([flows.close(), queue.close(), events.close()]);
    conn.disconnect();
    eventsConn.disconnect();
  }
}

export function describeProgress(p: unknown): string {
  const q = p as { done?: number; total?: number; stage?: string };
  return typeof q === 'object' && q && typeof q.done === 'number' ? `${q.stage ?? 'windows'} ${q.done}/${q.total}` : JSON.stringify(p);
}

export interface WorkerOptions {
  url: string;
  queueName: string;
  /** Jobs at once in this worker (each in its own child process). */
  concurrency: number;
  /** A job's lock lasts this long unless renewed; a dead worker's job is given out again after it. */
  lockMs: number;
  /** How often this worker looks for stalled jobs (of any worker). */
  stalledMs: number;
  /** Stalls a job may have before it fails. */
  maxStalled: number;
  /** Environment of the sandboxed processor (backend and threads: QKD_QUEUE_BACKEND, QKD_QUEUE_THREADS). */
  env: Record<string, string>;
  onEvent?: (line: string) => void;
}

/** Runs shard and merge jobs until `stop` resolves; then closes (waiting for the jobs in progress). */
export async function runCacheWorker(o: WorkerOptions, stop: Promise<unknown>): Promise<void> {
  const conn = await connectRedis(o.url);
  const processor = fileURLToPath(new URL('./queue-processor.js', import.meta.url));
  const worker = new Worker(o.queueName, processor, {
    connection: conn, concurrency: o.concurrency, lockDuration: o.lockMs, stalledInterval: o.stalledMs,
    maxStalledCount: o.maxStalled, useWorkerThreads: false, workerForkOptions: { env: { ...process.env, ...o.env } },
  });
  const say = (job: Job | undefined, msg: string) => o.onEvent?.(`${job?.id ?? '?'}: ${msg}`);
  worker.on('active', (job) => say(job, `started (attempt ${job.attemptsMade + 1}, pid ${process.pid})`));
  worker.on('progress', (job, p) => say(job, describeProgress(p)));
  worker.on('completed', (job) => say(job, 'done'));
  worker.on('failed', (job, err) => say(job, `failed: ${err.message}`));
  worker.on('error', (err) => o.onEvent?.(`worker error: ${err.message}`));
  await worker.waitUntilReady();
  o.onEvent?.(`worker ${process.pid} on ${o.queueName} (${o.url}), concurrency ${o.concurrency}`);
  await stop;
  await worker.close();
  conn.disconnect();
}
