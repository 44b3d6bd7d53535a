/**
 * The pipeline's automatic teacher-logit cache: built when the student reads its windows more than
 * once and the full-logit cache fits the disk; otherwise the live teacher, with the reason said. What
 * a partial cache already holds counts as room, so a resumed run decides as the first run did.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cacheDecision } from '../../src/pipeline/stages.js';

const GiB = 2 ** 30;
const base = { alpha: 0.5, reads: 24_000, windows: 7_830, bytes: 7.7 * GiB, have: 0, free: 100 * GiB };

test('pipeline cache: auto builds a cache that pays and fits', () => {
  const d = cacheDecision(base);
  assert.equal(d.use, true);
  assert.match(d.why, /7\.70 GiB of teacher logits \(the student reads each window 3\.1 times\)/);
});

test('pipeline cache: auto skips it when the student reads each window once, or learns from labels only', () => {
  assert.deepEqual(cacheDecision({ ...base, reads: 7_830 }).use, false);
  assert.match(cacheDecision({ ...base, reads: 7_830 }).why, /at most once/);
  assert.match(cacheDecision({ ...base, alpha: 1 }).why, /alpha 1/);
});

test('pipeline cache: auto runs the live teacher when the cache would not fit (a 50k vocabulary)', () => {
  const d = cacheDecision({ ...base, bytes: 196 * GiB });
  assert.equal(d.use, false);
  assert.match(d.why, /would need 196\.00 GiB, the disk has 100\.00 GiB free; the student runs the live teacher/);
  // 90% of the free space is the limit
  assert.equal(cacheDecision({ ...base, bytes: 89 * GiB }).use, true);
  assert.equal(cacheDecision({ ...base, bytes: 91 * GiB }).use, false);
});

test('pipeline cache: a partial cache on disk counts as room, so a resumed run keeps its cache', () => {
  // 60 GiB written, 10 GiB free: 70 GiB of 70 needed fit only because the written part counts
  assert.equal(cacheDecision({ ...base, bytes: 69 * GiB, have: 60 * GiB, free: 10 * GiB }).use, true);
  assert.equal(cacheDecision({ ...base, bytes: 69 * GiB, have: 0, free: 10 * GiB }).use, false);
});
