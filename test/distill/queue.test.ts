/**
 * Teacher caches beyond one process, on loopback only: `--shard I/N` + `teacher-cache merge`, and a
 * BullMQ build on a Redis this test starts (redis-server on a free port, killed at the end) with two
 * `qkd worker`s, one of them SIGKILLed in the middle of a shard: both give the bytes of a
 * one-process build. Bad inputs (an unreachable Redis, a shard of another teacher, a missing or
 * repeated shard) fail with the field named and no cache written. Fails (does not skip) without
 * redis-server: `apt-get install -y redis-server`, as .ci/run does.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, openSync, readFileSync, readdirSync, readSync, closeSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixture } from '../helpers.js';

const CLI = 'dist/src/cli/main.js';
const TEACHER = fixture('brown-llama-teacher');
const tmp = mkdtempSync(join(tmpdir(), 'qkd-queue-'));
const text = join(tmp, 'text.txt');
writeFileSync(text, readFileSync(fixture('brown-text', 'brown-valid.txt'), 'utf8').slice(0, 8000));
const env = { ...process.env, QKD_CACHE_DIR: join(tmp, 'tokens') };
const BUILD = ['--teacher', TEACHER, '--text', text, '--valid-fraction', '0', '--context', '32', '--batch', '2', '--threads', '1'];
const FAST = ['--lock-ms', '1000', '--stalled-ms', '500', '--threads', '1'];

function qkd(args: string[]) { return spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env }); }
const same = (a: string, b: string) => ['cache.json', 'windows.bin'].every((f) => readFileSync(join(a, f)).equals(readFileSync(join(b, f))));

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer().listen(0, '127.0.0.1', () => { const p = (s.address() as { port: number }).port; s.close(() => resolve(p)); });
    s.on('error', reject);
  });
}

const answers = (port: number) => new Promise<boolean>((resolve) => {
  const c = connect(port, '127.0.0.1', () => { c.end(); resolve(true); });
  c.on('error', () => resolve(false));
});

let redis: ChildProcess | null = null, url = '';
const procs: ChildProcess[] = [];

/** Starts redis-server on a free loopback port (the queue test's own; killed after the tests). */
async function startRedis(): Promise<void> {
  const v = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  if (v.error || v.status !== 0) throw new Error(`redis-server is missing (${v.error?.message ?? v.stderr}): apt-get install -y redis-server, as .ci/run does`);
  const port = await freePort();
  url = `redis://127.0.0.1:${port}`;
  redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  for (let i = 0; !(await answers(port)); i++) {
    if (i === 100 || redis.exitCode !== null) throw new Error(`redis-server on port ${port} did not start within 5 s`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

after(() => {
  for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  redis?.kill('SIGKILL');
  rmSync(tmp, { recursive: true, force: true });
});

/** A qkd process whose stderr lines are collected; `until(re)` resolves on the first matching line. */
function start(args: string[]) {
  const p = spawn(process.execPath, [CLI, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  procs.push(p);
  const lines: string[] = [], waiters: [RegExp, (l: string) => void][] = [];
  let rest = '';
  p.stderr!.setEncoding('utf8').on('data', (s: string) => {
    const parts = (rest + s).split('\n');
    rest = parts.pop()!;
    for (const l of parts) {
      lines.push(l);
      for (const w of waiters.filter(([re]) => re.test(l))) { waiters.splice(waiters.indexOf(w), 1); w[1](l); }
    }
  });
  const exited = new Promise<number | null>((r) => p.on('exit', (code) => r(code)));
  const until = (re: RegExp, ms = 30000) => new Promise<string>((resolve, reject) => {
    const hit = lines.find((l) => re.test(l));
    if (hit) return resolve(hit);
    const t = setTimeout(() => reject(new Error(`no line matching ${re} within ${ms} ms:\n${lines.join('\n')}`)), ms);
    waiters.push([re, (l) => { clearTimeout(t); resolve(l); }]);
  });
  return { p, lines, exited, until };
}

const ref = join(tmp, 'one-process');

test('one-process build; --shard I/N + merge give the same bytes; a missing, repeated or foreign shard is refused', () => {
  const r = qkd(['teacher-cache', ...BUILD, '--out', ref]);
  assert.equal(r.status, 0, r.stderr);
  const shards = [0, 1].map((i) => join(tmp, `s${i}`));
  shards.forEach((dir, i) => { const s = qkd(['teacher-cache', ...BUILD, '--shard', `${i}/2`, '--out', dir]); assert.equal(s.status, 0, s.stderr); });
  const merged = join(tmp, 'merged');
  const m = qkd(['teacher-cache', 'merge', '--out', merged, shards[1], shards[0]]);
  assert.equal(m.status, 0, m.stderr);
  assert.ok(same(ref, merged), 'merged shards differ from the one-process build');
  // another teacher: a copy with one weight changed
  const other = join(tmp, 'other-teacher');
  cpSync(TEACHER, other, { recursive: true });
  const wf = join(other, 'model.safetensors'), fd = openSync(wf, 'r+'), b = Buffer.alloc(1), end = readFileSync(wf).length - 3;
  readSync(fd, b, 0, 1, end); b[0] ^= 1; writeSync(fd, b, 0, 1, end); closeSync(fd);
  const foreign = join(tmp, 'foreign-1');
  assert.equal(qkd(['teacher-cache', ...BUILD, '--teacher', other, '--shard', '1/2', '--out', foreign]).status, 0);
  const out = join(tmp, 'never');
  const cases: [string[], RegExp][] = [
    [[shards[0], foreign], /shard .*foreign-1: field "teacher" is .*, but shard .*s0 has/],
    [[shards[0]], /shard 1\/2 missing/],
    [[shards[0], shards[1], shards[1]], /both shard 1\/2/],
    [[ref, join(tmp, 'nope')], /"windowRule\.shard" is missing: not a shard/],
  ];
  for (const [dirs, msg] of cases) {
    const e = qkd(['teacher-cache', 'merge', '--out', out, ...dirs]);
    assert.ok(e.status === 2 || e.status === 3, e.stderr);
    assert.match(e.stderr, msg);
    assert.ok(!existsSync(out), 'no cache written');
  }
  assert.ok(!readdirSync(tmp).some((n) => n.includes('.merge-')), 'no temp folder left');
  const bad = qkd(['teacher-cache', ...BUILD, '--shard', '2/2', '--out', out]);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--shard: expected I\/N/);
});

test('BullMQ build with two workers, one SIGKILLed mid-shard: the job is retried elsewhere and the cache is byte-identical', async () => {
  await startRedis();
  const w1 = start(['worker', '--queue', url, ...FAST]), w2 = start(['worker', '--queue', url, ...FAST]);
  await Promise.all([w1.until(/^worker: worker \d+ on /), w2.until(/^worker: worker \d+ on /)]);
  const out = join(tmp, 'queued');
  const prod = start(['teacher-cache', ...BUILD, '--queue', url, '--shards', '4', '--out', out]);
  // the first worker to report progress inside a shard dies there
  const first = await Promise.race([w1, w2].map((w) => w.until(/: windows 2\/\d+$/).then((l) => ({ w, l }))));
  first.w.p.kill('SIGKILL');
  const job = /^worker: (\S+): windows/.exec(first.l)![1], survivor = first.w === w1 ? w2 : w1;
  assert.equal(await prod.exited, 0, prod.lines.join('\n'));
  assert.ok(survivor.lines.some((l) => l.startsWith(`worker: ${job}: started`)), `${job} was not retried by the other worker:\n${survivor.lines.join('\n')}`);
  assert.ok(survivor.lines.some((l) => l === `worker: ${job}: done`));
  assert.ok(same(ref, out), 'the queued cache differs from the one-process build');
  assert.ok(!existsSync(`${out}.shards`), 'shard folders removed after the merge');
  survivor.p.kill('SIGTERM');
  assert.equal(await survivor.exited, 0, survivor.lines.join('\n'));
});

test('an unreachable Redis is a clear error for both commands, and nothing is written', async () => {
  const dead = `redis://127.0.0.1:${await freePort()}`, out = join(tmp, 'unreachable');
  const p = qkd(['teacher-cache', ...BUILD, '--queue', dead, '--out', out]);
  assert.equal(p.status, 2, p.stderr);
  assert.match(p.stderr, /--queue redis:\/\/127\.0\.0\.1:\d+: cannot reach Redis/);
  assert.ok(!existsSync(out) && !existsSync(`${out}.shards`));
  const w = qkd(['worker', '--queue', dead]);
  assert.equal(w.status, 2, w.stderr);
  assert.match(w.stderr, /cannot reach Redis/);
  const bad = qkd(['worker', '--queue', 'http://127.0.0.1:1']);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /expected a redis:\/\//);
});
