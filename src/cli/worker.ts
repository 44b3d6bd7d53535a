/**
 * `qkd worker` (runs queued teacher-cache jobs) and the submitting side of `qkd teacher-cache
 * --queue`. BullMQ is loaded only by these two commands.
 */
import { existsSync, readdirSync } from 'node:fs';
import type { Command } from 'commander';
import type { QkdTokenizer } from '../data/tokenizer.js';
import { DEFAULT_QUEUE, planTeacherCache, type CacheBuildRequest } from '../distill/teacher-cache-job.js';
import { canon, readHeaderIfAny, SPEC_KEYS } from '../io/teacher-cache-format.js';
import { QkdError } from '../tensor/errors.js';
import { addBackendOptions, backendName, intFlag } from './common.js';

const say = (label: string) => (line: string) => process.stderr.write(`${label}: ${line}\n`);

/** `qkd teacher-cache --queue URL ...`: checks the build here (inputs, --out), enqueues it, and by default waits for the merge. */
export async function submitFromFlags(o: Record<string, any>, request: CacheBuildRequest, tok: QkdTokenizer): Promise<void> {
  const { spec, windows } = planTeacherCache(request, tok);
  if (existsSync(o.out) && readdirSync(o.out).length > 0) {
    const h = readHeaderIfAny(o.out);
    if (h?.complete && SPEC_KEYS.every((k) => canon(h[k]) === canon(spec[k]))) {
      process.stderr.write(`teacher-cache: ${o.out} is already complete (${h.windows} windows)\n`);
      return;
    }
    throw new QkdError('E_INPUT', `${o.out}: exists${h ? ' and holds another or an unfinished cache' : ''}; a queued build writes a new folder (remove it, or choose another --out)`);
  }
  const shards = Math.min(o.shards, Math.ceil(windows / request.batch));
  const { submitCacheBuild } = await import('../distill/queue.js');
  const r = await submitCacheBuild({ url: o.queue, queueName: o.queueName, out: o.out, shards, attempts: o.attempts,
    request, spec, windows, wait: o.wait, onEvent: say('teacher-cache') });
  const m = r.result as { bytes?: number; seconds?: number } | null;
  if (o.wait) process.stderr.write(`teacher-cache: ${windows} windows in ${shards} shards, ${((m?.bytes ?? 0) / 2 ** 30).toFixed(2)} GiB -> ${o.out}${
    m?.seconds ? ` (merge ${m.seconds.toFixed(1)} s)` : ''}\n`);
}

export function registerWorker(program: Command): void {
  addBackendOptions(program.command('worker')
    .description('run queued teacher-cache jobs (`qkd teacher-cache --queue`) until SIGINT/SIGTERM; start one per machine or core')
    .requiredOption('--queue <url>', 'the BullMQ queue\'s Redis, redis://HOST:PORT')
    .option('--queue-name <name>', 'BullMQ queue name', DEFAULT_QUEUE)
    .option('--concurrency <n>', 'jobs at once (each in its own child process)', intFlag('--concurrency', 1), 1)
    .option('--lock-ms <ms>', 'job lock duration: a dead worker\'s job is given out again this long after its last renewal', intFlag('--lock-ms', 100), 30000)
    .option('--stalled-ms <ms>', 'interval of the stalled-job check', intFlag('--stalled-ms', 100), 30000)
    .option('--max-stalled <n>', 'stalls a job may have before it fails', intFlag('--max-stalled', 0), 2))
    .action(async (o) => {
      const { runCacheWorker } = await import('../distill/queue.js');
      let release = () => {};
      const stop = new Promise<void>((r) => { release = r; });
      const onSignal = (sig: string) => { process.stderr.write(`worker: ${sig}: finishing the jobs in progress\n`); release(); };
      process.once('SIGINT', () => onSignal('SIGINT'));
      process.once('SIGTERM', () => onSignal('SIGTERM'));
      const env: Record<string, string> = { QKD_QUEUE_BACKEND: backendName(o), ...(o.threads ? { QKD_QUEUE_THREADS: String(o.threads) } : {}) };
      await runCacheWorker({ url: o.queue, queueName: o.queueName, concurrency: o.concurrency, lockMs: o.lockMs,
        stalledMs: o.stalledMs, maxStalled: o.maxStalled, env, onEvent: say('worker') }, stop);
    });
}
