/**
 * The config-value fuzz of the float and export readers (bench/config-fuzz.ts), 100 cases in CI
 * (QKD_CONFIG_FUZZ_CASES to change; the benchmark runs 1,000): random large, negative, zero and
 * fractional values in every numeric config.json field; every case loads or fails with a QkdError
 * naming the file, none holds more than its memory budget, and the whole child's peak memory stays
 * bounded (it used to reach gigabytes, or crash in a typed-array constructor).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { MiB } from './helpers.js';

const CASES = Number(process.env.QKD_CONFIG_FUZZ_CASES ?? 100);

test(`config-value fuzz: ${CASES} hostile config.json values, each rejected cleanly or loaded within budget`, () => {
  const r = spawnSync(process.execPath, ['--import', pathToFileURL(resolve('dist/test/hostile/rss-hook.js')).href,
    'dist/bench/config-fuzz.js', '--cases', String(CASES), '--seed', '11', '--json'], { encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.signal, null, `killed (a hang?): ${r.stderr}`);
  const rep = JSON.parse(r.stdout.trim().split('\n').pop()!);
  assert.deepEqual(rep.failures, [], 'every case rejected with a QkdError naming the file, or loaded within budget');
  assert.equal(r.status, 0, r.stderr);
  assert.equal(rep.loaded + rep.rejected, CASES);
  assert.ok(rep.rejected > 0 && rep.loaded > 0, `loaded ${rep.loaded}, rejected ${rep.rejected}`);
  const rss = Number(/qkd-test-maxrss (\d+)/.exec(r.stderr)?.[1] ?? 0);
  assert.ok(rss > 0 && rss < 512 * MiB, `peak memory of the fuzz child ${(rss / MiB).toFixed(0)} MiB`);
  assert.ok(rep.slowestMs < 5000, `slowest case ${rep.slowestMs} ms`);
});
