/**
 * Helpers of the hostile-input suite: the CLI run in a child with a time limit (a hang fails the
 * test instead of stalling CI) and its peak memory measured, temp folders, and snapshots of a folder
 * tree to show that nothing outside a command's output was touched.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { lstatSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

export const CLI = resolve('dist/src/cli/main.js');
const HOOK = pathToFileURL(resolve('dist/test/hostile/rss-hook.js')).href;

export interface Run {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  /** stderr without the memory line the hook appends. */
  stderr: string;
  /** Peak resident memory of the child, bytes (0 when it did not exit normally). */
  maxRss: number;
  ms: number;
}

/**
 * Runs `qkd ARGS` with --threads 1 added where the command takes it, killed after `timeoutS` seconds
 * (a hang is then a failed assertion naming the command), in `cwd` (default: the repository).
 */
export function qkd(args: string[], o: { timeoutS?: number; cwd?: string; env?: Record<string, string>; input?: string } = {}): Run {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, ['--import', HOOK, CLI, ...args], {
    encoding: 'utf8', timeout: (o.timeoutS ?? 30) * 1000, killSignal: 'SIGKILL', maxBuffer: 1 << 26,
    cwd: o.cwd ?? process.cwd(), env: { ...process.env, QKD_CACHE_DIR: join(TMP, 'token-cache'), ...o.env }, input: o.input ?? '',
  });
  const ms = performance.now() - t0;
  assert.ok(r.signal === null, `qkd ${args.join(' ')}: killed by ${r.signal} after ${(ms / 1000).toFixed(1)} s (a hang?)\n${r.stderr}`);
  const m = /\n?qkd-test-maxrss (\d+)\n$/.exec(r.stderr ?? '');
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: m ? r.stderr.slice(0, m.index) : r.stderr,
    maxRss: m ? Number(m[1]) : 0, ms };
}

/** Asserts a clean refusal: the exit status, the message pattern, one `qkd: error:` line, no stack trace. */
export function refused(r: Run, status: number, pattern: RegExp): void {
  assert.equal(r.status, status, `exit ${r.status}, expected ${status}; stderr:\n${r.stderr}`);
  assert.match(r.stderr, pattern);
  assert.match(r.stderr, /qkd: error: /);
  assert.doesNotMatch(r.stderr, /internal error|\n\s+at .+:\d+:\d+/, 'no stack trace');
}

export const TMP = mkdtempSync(join(tmpdir(), 'qkd-hostile-'));
process.on('exit', () => rmSync(TMP, { recursive: true, force: true }));

export function tmp(name: string): string {
  return mkdtempSync(join(TMP, `${name}-`));
}

/** Every path under `dir` with its type and content hash (links: their target; not followed). */
export function snapshot(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string, rel: string) => {
    for (const e of readdirSync(d).sort()) {
      const p = join(d, e), r = rel ? `${rel}/${e}` : e, st = lstatSync(p);
      if (st.isSymbolicLink()) out.set(r, `link ${readlinkSync(p)}`);
      else if (st.isDirectory()) { out.set(r, 'dir'); walk(p, r); }
      else out.set(r, `file ${createHash('sha256').update(readFileSync(p)).digest('hex')}`);
    }
  };
  walk(dir, '');
  return out;
}

/** The snapshot equals `before`, except entries under the `allowed` relative prefixes. */
export function unchangedExcept(dir: string, before: Map<string, string>, allowed: string[] = []): void {
  const after = snapshot(dir);
  const ok = (k: string) => allowed.some((a) => k === a || k.startsWith(a + '/'));
  for (const [k, v] of before) if (!ok(k)) assert.equal(after.get(k), v, `${k} changed or vanished`);
  for (const k of after.keys()) if (!ok(k)) assert.ok(before.has(k), `${k} appeared`);
}

export const MiB = 2 ** 20;
