/**
 * The learning-rate schedule and the batch samplers against hand-computed values: linear warm-up to
 * the peak, cosine to lr·minLrRatio at the last step; targets are the inputs shifted by one token,
 * taken from the stream; an epoch of the window sampler visits every window exactly once.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BatchSampler, WindowSampler } from '../../src/data/dataset.js';
import { lrAt } from '../../src/train/schedule.js';

test('lrAt: warm-up 1/4, 2/4, 3/4, 4/4 of the peak, then cosine to the floor', () => {
  const o = { lr: 0.01, warmup: 4, steps: 14, minLrRatio: 0.1 };
  const close = (a: number, b: number) => assert.ok(Math.abs(a - b) < 1e-15, `${a} vs ${b}`);
  [0.0025, 0.005, 0.0075, 0.01].forEach((v, s) => close(lrAt(s, o), v));
  // after warm-up: p = (s - 4) / 10; lr = 0.001 + 0.5 (1 + cos(pi p)) 0.009
  close(lrAt(4, o), 0.01);
  close(lrAt(9, o), 0.001 + 0.5 * 0.009);            // p = 0.5: halfway between peak and floor
  close(lrAt(6, o), 0.001 + 0.5 * (1 + Math.cos(Math.PI * 0.2)) * 0.009);
  close(lrAt(14, o), 0.001);                           // the last step reaches the floor
  close(lrAt(40, o), 0.001);                           // and stays there
  close(lrAt(0, { ...o, warmup: 0 }), 0.01);
});

const stream = Int32Array.from({ length: 1001 }, (_, i) => (i * 7919) % 997);

test('BatchSampler: targets are the inputs shifted by one, from one contiguous window of the stream', () => {
  const s = new BatchSampler(stream, 3, 16, 5);
  for (let k = 0; k < 20; k++) {
    const { x, y } = s.next();
    for (let b = 0; b < 3; b++) {
      const xb = x.subarray(b * 16, b * 16 + 16), yb = y.subarray(b * 16, b * 16 + 16);
      const o = stream.indexOf(xb[0]);
      // the window exists in the stream: find its start (values repeat every 997, the stream is 1001 long)
      const starts = [o, o + 997].filter((st) => st >= 0 && st + 17 <= stream.length && stream[st + 1] === xb[1]);
      assert.ok(starts.length > 0, 'window found in the stream');
      const st = starts[0];
      assert.deepEqual(Array.from(xb), Array.from(stream.subarray(st, st + 16)));
      assert.deepEqual(Array.from(yb), Array.from(stream.subarray(st + 1, st + 17)));
    }
  }
});

test('WindowSampler: windows at multiples of T, targets shifted by one, each window once per epoch', () => {
  const T = 10, s = new WindowSampler(stream, 4, T, 3);
  assert.equal(s.windows, 100);
  const seen = new Map<number, number>();
  for (let k = 0; k < 25; k++) {
    const { x, y, ids } = s.next();
    ids.forEach((w, b) => {
      seen.set(w, (seen.get(w) ?? 0) + 1);
      assert.deepEqual(Array.from(x.subarray(b * T, b * T + T)), Array.from(stream.subarray(w * T, w * T + T)));
      assert.deepEqual(Array.from(y.subarray(b * T, b * T + T)), Array.from(stream.subarray(w * T + 1, w * T + T + 1)));
    });
  }
  assert.equal(seen.size, 100, 'every window of the epoch');
  assert.ok([...seen.values()].every((n) => n === 1), 'each exactly once');
  assert.equal(s.epoch, 0);
  s.next();
  assert.equal(s.epoch, 1, 'the 101st window starts the next epoch');
});
