/** Cubic gradual-pruning schedule against the fixture values and its update grid. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isMaskUpdateStep, scheduleFromFractions, sparsityAt } from '../../src/sparse/index.js';
import { QkdError } from '../../src/tensor/errors.js';
import { manifest } from '../quant/fixture.js';

test('anchor schedule (2000 steps, 10%..70%, 0.9, every 25) matches the fixture values', () => {
  const f = manifest.schedule;
  const cfg = scheduleFromFractions(f.totalSteps, f.startFrac, f.endFrac, f.target, f.every);
  assert.deepEqual(cfg, { start: f.start, end: f.end, target: 0.9, initial: 0, every: 25 });
  f.steps.forEach((t: number, i: number) => {
    const got = sparsityAt(t, cfg);
    assert.ok(Math.abs(got - f.values[i]) < 1e-12, `step ${t}: ${got} vs ${f.values[i]}`);
  });
  assert.equal(sparsityAt(199, cfg), 0);
  assert.equal(sparsityAt(200, cfg), 0);
  assert.equal(sparsityAt(1400, cfg), 0.9);
  assert.equal(sparsityAt(224, cfg), sparsityAt(200, cfg), 'held between update points');
  assert.ok(sparsityAt(225, cfg) > 0);
  const updates = Array.from({ length: 2001 }, (_, t) => t).filter((t) => isMaskUpdateStep(t, cfg));
  assert.equal(updates.length, 49); // 200, 225, ..., 1400
  assert.deepEqual([updates[0], updates[1], updates.at(-1)], [200, 225, 1400]);
  // monotone non-decreasing, changes only on update steps
  for (let t = 1; t <= 2000; t++) {
    const a = sparsityAt(t - 1, cfg), b = sparsityAt(t, cfg);
    assert.ok(b >= a);
    if (b !== a) assert.ok(isMaskUpdateStep(t, cfg), `value changes at ${t} only on an update step`);
  }
});

test('start/end off the every-grid and a non-zero initial sparsity', () => {
  const cfg = { start: 10, end: 47, target: 0.8, initial: 0.2, every: 8 };
  const upd = Array.from({ length: 60 }, (_, t) => t).filter((t) => isMaskUpdateStep(t, cfg));
  assert.deepEqual(upd, [10, 16, 24, 32, 40, 47]);
  assert.equal(sparsityAt(9, cfg), 0);
  assert.equal(sparsityAt(10, cfg), 0.2);
  assert.equal(sparsityAt(15, cfg), 0.2);
  const want = 0.8 + (0.2 - 0.8) * (1 - (16 - 10) / 37) ** 3;
  assert.ok(Math.abs(sparsityAt(23, cfg) - want) < 1e-15);
  assert.equal(sparsityAt(47, cfg), 0.8);
  assert.equal(sparsityAt(1e6, cfg), 0.8);
  const inst = { start: 5, end: 5, target: 0.5, every: 3 };
  assert.equal(sparsityAt(4, inst), 0);
  assert.equal(sparsityAt(5, inst), 0.5);
  assert.ok(isMaskUpdateStep(5, inst) && !isMaskUpdateStep(6, inst));
});

test('schedule errors', () => {
  const bad = (f: () => unknown) => assert.throws(f, (e: unknown) => e instanceof QkdError && e.code === 'E_CONFIG');
  bad(() => scheduleFromFractions(2000, 0.1, 0.7, 1, 25));
  bad(() => scheduleFromFractions(2000, 0.1, 0.7, -0.1, 25));
  bad(() => scheduleFromFractions(2000, 0.8, 0.7, 0.9, 25));
  bad(() => scheduleFromFractions(2000, 0.1, 0.7, 0.9, 0));
  bad(() => scheduleFromFractions(0, 0.1, 0.7, 0.9, 25));
  bad(() => sparsityAt(3, { start: 10, end: 5, target: 0.5, every: 1 }));
  bad(() => sparsityAt(3, { start: 0, end: 5, target: 0.5, initial: 0.6, every: 1 }));
});
