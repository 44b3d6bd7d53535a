/**
 * Teacher-logit cache of a recipe's training text (default: Brown@128, the anchor recipe): wall time
 * of a one-process build and of a BullMQ build (`qkd teacher-cache --queue` + N `qkd worker`
 * processes, threads 1 each) with 1 and 2 workers, each checked byte-identical to the one-process
 * cache; bytes of the f16 and int8 formats; the reader's speed (random batches of 16 windows, CRC
 * and decode included). Starts its own redis-server on a free loopback port.
 *
 *   node dist/bench/teacher-cache.js [--config recipes/anchor/int8-sparse90-kd.yaml] [--workers 1,2]
 *     [--shards 16] [--backend native] [--dtypes f16,int8] [--out runs/bench-teacher-cache] [--keep]
 *     [--read-batches 200] [--smoke]
 *
 * --smoke: a small text and context 32 (seconds, for checking the benchmark itself). Caches are
 * deleted at the end unless --keep (Brown@128 f16 is 5.9 GiB; the run needs ~2x that on disk).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readFileSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { TeacherCacheReader } from '../src/io/teacher-cache.js';
import { fixture, jsonLine, log, machineFacts, printTable, round } from './common.js';

const args = process.argv.slice(2);
const flag = (n: string, d: string) => { const i = args.indexOf(n); return i >= 0 ? args[i + 1] : d; };
const smoke = args.includes('--smoke'), keep = args.includes('--keep'), CLI = resolve('dist/src/cli/main.js');
const workerCounts = flag('--workers', '1,2').split(',').map(Number), shards = flag('--shards', '16');
const backend = flag('--backend', 'native'), dtypes = flag('--dtypes', 'f16,int8').split(',');
const outDir = resolve(flag('--out', smoke ? 'runs/bench-teacher-cache-smoke' : 'runs/bench-teacher-cache'));
const readBatches = Number(flag('--read-batches', smoke ? '20' : '200'));
mkdirSync(outDir, { recursive: true });

let build: string[];
if (smoke) {
  const text = join(outDir, 'text.txt');
  writeFileSync(text, readFileSync(fixture('brown-text', 'brown-valid.txt'), 'utf8').slice(0, 30000));
  build = ['--teacher', fixture('brown-llama-teacher'), '--text', text, '--valid-fraction', '0', '--context', '32'];
} else build = ['--config', flag('--config', 'recipes/anchor/int8-sparse90-kd.yaml')];
const common = [...build, '--backend', backend, '--threads', '1'];

function qkd(a: string[]): number {
  const t0 = performance.now(), r = spawnSync(process.execPath, [CLI, ...a], { stdio: ['ignore', 'ignore', 'inherit'] });
  if (r.status !== 0) throw new Error(`qkd ${a.join(' ')} failed (${r.status ?? r.signal})`);
  return (performance.now() - t0) / 1000;
}

function sha256Of(path: string): string {
  const h = createHash('sha256'), buf = new Uint8Array(1 << 22), fd = openSync(path, 'r');
  try { for (let n; (n = readSync(fd, buf, 0, buf.length, null)) > 0;) h.update(buf.subarray(0, n)); } finally { closeSync(fd); }
  return h.digest('hex');
}
const digest = (dir: string) => `${sha256Of(join(dir, 'cache.json'))}:${sha256Of(join(dir, 'windows.bin'))}`;

async function freePort(): Promise<number> {
  return new Promise((res) => { const s = createServer().listen(0, '127.0.0.1', () => { const p = (s.address() as { port: number }).port; s.close(() => res(p)); }); });
}
const answers = (port: number) => new Promise<boolean>((res) => { const c = connect(port, '127.0.0.1', () => { c.end(); res(true); }); c.on('error', () => res(false)); });

async function startRedis(): Promise<{ p: ChildProcess; url: string }> {
  const port = await freePort();
  const p = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  for (let i = 0; !(await answers(port)); i++) {
    if (i === 100) throw new Error('redis-server did not start (apt-get install -y redis-server)');
    await new Promise((r) => setTimeout(r, 50));
  }
  return { p, url: `redis://127.0.0.1:${port}` };
}

/** Wall time of a queued build of `dtype` with n workers (from submit to the merged cache). */
async function queued(url: string, n: number, dtype: string, out: string): Promise<number> {
  const workers = Array.from({ length: n }, () => spawn(process.execPath, [CLI, 'worker', '--queue', url, '--backend', backend, '--threads', '1'],
    { stdio: ['ignore', 'ignore', 'pipe'] }));
  await Promise.all(workers.map((w) => new Promise<void>((res) => {
    w.stderr!.setEncoding('utf8').on('data', (s: string) => { if (/worker \d+ on /.test(s)) res(); });
  })));
  const wall = qkd(['teacher-cache', ...common, '--logit-dtype', dtype, '--queue', url, '--shards', shards, '--out', out]);
  for (const w of workers) w.kill('SIGTERM');
  await Promise.all(workers.map((w) => new Promise((res) => (w.exitCode !== null ? res(0) : w.on('exit', res)))));
  return wall;
}

/** GB/s of record bytes and ms per batch of 16 random windows, reading with every check on. */
function readerSpeed(dir: string): { gbs: number; msPerBatch: number } {
  const r = TeacherCacheReader.open(dir), tau = r.header.taus[0];
  let s = 12345;
  const pick = () => { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; return s % r.windows; };
  r.read(Array.from({ length: 16 }, pick), tau);
  const t0 = performance.now();
  for (let b = 0; b < readBatches; b++) r.read(Array.from({ length: 16 }, pick), tau);
  const sec = (performance.now() - t0) / 1000;
  r.close();
  return { gbs: round((readBatches * 16 * r.header.recordBytes) / sec / 1e9, 2), msPerBatch: round((sec * 1000) / readBatches, 1) };
}

const rows: (string | number)[][] = [], json: Record<string, unknown> = { bench: 'teacher-cache', smoke, backend, shards: Number(shards), machine: machineFacts() };
const redis = await startRedis();
try {
  for (const dtype of dtypes) {
    const one = join(outDir, `one-${dtype}`);
    rmSync(one, { recursive: true, force: true });
    log(`teacher-cache bench: one process, ${dtype}`);
    const loadBefore = machineFacts().loadavg1;
    const t1 = qkd(['teacher-cache', ...common, '--logit-dtype', dtype, '--out', one]);
    const ref = digest(one), h = JSON.parse(readFileSync(join(one, 'cache.json'), 'utf8')), bytes = h.windows * h.recordBytes;
    const speed = readerSpeed(one);
    rows.push([dtype, 'one process', round(t1, 1), '1.00', 'reference', bytes, speed.gbs, speed.msPerBatch, loadBefore as number]);
    json[`${dtype}`] = { windows: h.windows, recordBytes: h.recordBytes, bytes, oneProcessS: round(t1, 1), reader: speed };
    for (const n of dtype === dtypes[0] ? workerCounts : []) {
      const out = join(outDir, `queue-${n}w-${dtype}`);
      rmSync(out, { recursive: true, force: true });
      log(`teacher-cache bench: queue, ${n} worker(s), ${dtype}`);
      const load = machineFacts().loadavg1, t = await queued(redis.url, n, dtype, out), same = digest(out) === ref;
      rows.push([dtype, `queue, ${n} worker${n > 1 ? 's' : ''}`, round(t, 1), (t1 / t).toFixed(2), same ? 'identical' : 'DIFFERENT', bytes, '', '', load as number]);
      (json[`${dtype}`] as Record<string, unknown>)[`queue${n}S`] = round(t, 1);
      (json[`${dtype}`] as Record<string, unknown>)[`queue${n}Identical`] = same;
      rmSync(out, { recursive: true, force: true });
    }
    if (!keep) rmSync(one, { recursive: true, force: true });
  }
} finally {
  redis.p.kill('SIGKILL');
}
printTable(['logits', 'build', 'wall s', 'speedup vs one process', 'bytes vs one process', 'cache bytes', 'reader GB/s', 'ms / 16 windows', 'load avg before'], rows);
jsonLine(json);
