/** Shard arithmetic and spec checks of distributed teacher-cache builds (distill/teacher-cache-job.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkSameSpec, parseShard, shardDirs, shardRange, windowRule } from '../../src/distill/teacher-cache-job.js';
import type { TeacherCacheSpec } from '../../src/io/teacher-cache-format.js';
import { QkdError } from '../../src/tensor/errors.js';

test('shards are whole batches that tile the windows in order, as evenly as batches allow', () => {
  for (const [W, batch, N] of [[12051, 16, 16], [116, 4, 3], [10, 4, 5], [7, 1, 7], [5, 16, 2]]) {
    let next = 0;
    const sizes: number[] = [];
    for (let i = 0; i < N; i++) {
      const { first, end } = shardRange(W, batch, { index: i, count: N });
      assert.equal(first, next, `W ${W} batch ${batch} N ${N} shard ${i}`);
      assert.ok(end >= first && (first % batch === 0 || first === W));
      sizes.push(end - first);
      next = end;
    }
    assert.equal(next, W);
    const whole = sizes.slice(0, -1).map((s) => s / batch); // every shard but the last holds whole batches
    assert.ok(whole.every(Number.isInteger));
    assert.ok(Math.max(...whole) - Math.min(...whole) <= 1, `${whole}`);
  }
  assert.deepEqual(windowRule(128, 100, 16, null), { kind: 'non-overlapping', stride: 128 });
  assert.deepEqual(windowRule(128, 100, 16, { index: 1, count: 2 }),
    { kind: 'non-overlapping', stride: 128, shard: { index: 1, count: 2, batch: 16, first: 48, end: 100 } });
  assert.deepEqual(shardDirs('out/c', 12).slice(9, 11), ['out/c.shards/shard-09-of-12', 'out/c.shards/shard-10-of-12']);
});

test('--shard I/N is checked; a worker computing another spec names the field', () => {
  assert.deepEqual(parseShard(' 3/8'), { index: 3, count: 8 });
  for (const bad of ['8/8', '-1/4', '1/0', '1', 'a/b', '1/2/3']) {
    assert.throws(() => parseShard(bad), (e: unknown) => e instanceof QkdError && e.code === 'E_CONFIG' && e.message.includes('--shard'));
  }
  const spec: TeacherCacheSpec = { teacher: { path: 't', configSha256: 'c', weightsSha256: 'w' }, tokenizerSha256: 'k',
    data: { sha256: 'd', tokens: 1000 }, V: 10, k: 10, taus: [2], T: 8, logitDtype: 'f16',
    windowRule: { kind: 'non-overlapping', stride: 8 }, plannedWindows: 124 };
  checkSameSpec({ ...spec, teacher: { weightsSha256: 'w', path: 't', configSha256: 'c' } }, spec, 'x');
  assert.throws(() => checkSameSpec({ ...spec, teacher: { ...spec.teacher, weightsSha256: 'other' } }, spec, 'out/shard-1/cache.json'),
    (e: unknown) => e instanceof QkdError && e.code === 'E_CONFIG' && /out\/shard-1\/cache\.json: field "teacher" is .*other.* here, the queued build expects/.test(e.message));
});
