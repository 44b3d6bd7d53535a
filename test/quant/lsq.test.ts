/** LSQ forward/backward (per-row weights) against PyTorch autograd. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  fakeQuantRows, lsqBackward, lsqGradScale, lsqInitRowScales,
} from '../../src/quant/index.js';
import { QkdError } from '../../src/tensor/errors.js';
import { worstRel } from '../helpers.js';
import { attrs, firstBitDiff, tensor } from './fixture.js';

// The references are float64 autograd on the float32 inputs; ours accumulates in float64 from the
// float32 quotient w/s, so dS differs by ~|w/s|·2^-24 per term: 1e-6 absolute is ample (|dS| ~ 0.1-10).
const DS_ATOL = 1e-6, DS_RTOL = 1e-6;

for (const bits of [8, 4, 2]) {
  test(`LSQ per-row int${bits}: forward, dW, dS, init`, () => {
    const c = `lsq_b${bits}`, { rows, cols, grad_scale: gs, clipped } = attrs(c);
    assert.ok(clipped > 0, 'fixture exercises clipping');
    const w = tensor(c, 'w'), s = tensor(c, 'scales'), dy = tensor(c, 'dy');
    assert.ok(Math.abs(lsqGradScale(cols, bits) - gs) < 1e-15, 'gradient scale 1/sqrt(cols·qmax)');
    const y = new Float32Array(rows * cols);
    fakeQuantRows(y, w, s, rows, cols, bits);
    assert.equal(firstBitDiff(y.map((v) => v + 0), tensor(c, 'y').map((v) => v + 0)), -1, 'forward bitwise');
    const dW = new Float32Array(rows * cols).fill(0.25), dS = new Float32Array(rows).fill(-1);
    lsqBackward(dW, dS, dy, w, s, rows, cols, bits);
    const wantDw = tensor(c, 'dw').map((v) => v + 0.25), wantDs = tensor(c, 'ds').map((v) => v - 1);
    assert.equal(firstBitDiff(dW, wantDw), -1, 'dW (accumulated) exact');
    const r = worstRel(dS, wantDs, DS_ATOL, DS_RTOL);
    assert.ok(r <= 1, `dS worst ratio ${r}`);
    const init = new Float32Array(rows);
    lsqInitRowScales(init, w, rows, cols, bits);
    assert.ok(worstRel(init, tensor(c, 'init'), 0, 1e-6) <= 1, 'init 2 mean|w| / sqrt(qmax)');
  });
}

test('LSQ boundary: w/s exactly qmax passes the gradient and contributes 0 to dS', () => {
  const w = new Float32Array([1.75, 2, -2, -2.25]), s = new Float32Array([0.25]); // w/s = 7, 8, -8, -9 at 4 bits
  const dW = new Float32Array(4), dS = new Float32Array(1), dy = new Float32Array([1, 1, 1, 1]);
  lsqBackward(dW, dS, dy, w, s, 1, 4, 4);
  assert.deepEqual(Array.from(dW), [1, 0, 1, 0]);
  // terms: 0 (inside at qmax), qmax 7 (clipped above), 0 (inside at qmin), qmin -8 (clipped below)
  assert.ok(Math.abs(dS[0] - (7 - 8) / Math.sqrt(4 * 7)) < 1e-7, `${dS[0]}`);
});

test('LSQ errors', () => {
  assert.throws(() => lsqGradScale(0, 8), QkdError);
  assert.throws(() => lsqBackward(new Float32Array(2), new Float32Array(1), new Float32Array(2), new Float32Array(2),
    new Float32Array([0]), 1, 2, 8), (e: unknown) => e instanceof QkdError && e.code === 'E_INPUT');
  const zero = new Float32Array(3);
  lsqInitRowScales(zero, new Float32Array(6), 3, 2, 8);
  assert.ok(zero.every((v) => v > 0), 'an all-zero row still gets a positive scale');
});
