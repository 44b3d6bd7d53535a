/** Per-row and per-token quantization against PyTorch fixtures, and the exactness invariants. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  dequantizeRows, fakeQuantRows, fakeQuantTokens, qRange, quantizeRows, quantizeTokens,
  roundHalfEven, rowScalesMaxAbs, offGrid, quantizeTensor,
} from '../../src/quant/index.js';
import { QkdError } from '../../src/tensor/errors.js';
import { randoms } from '../helpers.js';
import { attrs, firstBitDiff, tensor } from './fixture.js';

/** Object.is treats -0 and +0 as different; PyTorch's -0 results are compared as 0 (we return +0 by design). */
function sameValues(got: ArrayLike<number>, want: ArrayLike<number>, what: string): void {
  const i = firstBitDiff(Array.from(got, (v) => v + 0), Array.from(want, (v) => v + 0));
  assert.equal(i, -1, `${what}: first difference at ${i}: got ${got[i]}, want ${want[i]}`);
}

test('qRange and its errors', () => {
  assert.deepEqual(qRange(8), { qmin: -128, qmax: 127 });
  assert.deepEqual(qRange(4), { qmin: -8, qmax: 7 });
  assert.deepEqual(qRange(2), { qmin: -2, qmax: 1 });
  for (const b of [1, 9, 0, 3.5, NaN, 16]) {
    assert.throws(() => qRange(b), (e: unknown) => e instanceof QkdError && e.code === 'E_CONFIG' && /bits/.test(e.message));
  }
});

test('roundHalfEven is torch.round', () => {
  const xs = [0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 0.49999997, -0.4, 126.5, -127.5, 3.7, -3.2, 1e9 + 0.5];
  const want = [0, 2, 2, -0, -2, -2, 0, -0, 126, -128, 4, -3, 1e9];
  assert.deepEqual(xs.map(roundHalfEven), want);
});

for (const bits of [8, 4, 2]) {
  test(`per-row fake quant int${bits} matches PyTorch bit for bit (ties, zero row, floor)`, () => {
    const c = `rows_b${bits}`, { rows, cols, ties } = attrs(c);
    assert.ok(ties > 0, 'fixture holds exact .5 ties');
    const w = tensor(c, 'w');
    const scales = new Float32Array(rows);
    rowScalesMaxAbs(scales, w, rows, cols, bits);
    sameValues(scales, tensor(c, 'scales'), 'scales');
    const q = new Int8Array(rows * cols);
    quantizeRows(q, w, scales, rows, cols, bits);
    sameValues(q, tensor(c, 'q'), 'q');
    const y = new Float32Array(rows * cols);
    fakeQuantRows(y, w, scales, rows, cols, bits);
    sameValues(y, tensor(c, 'y'), 'fake quant');
    const deq = new Float32Array(rows * cols);
    dequantizeRows(deq, q, scales, rows, cols);
    assert.equal(firstBitDiff(deq, y), -1, 'dequantize(quantize(w)) is bitwise the fake quant');
    for (let i = cols; i < 2 * cols; i++) assert.ok(Object.is(y[i], 0), 'all-zero row stays +0');
    fakeQuantRows(w, w, scales, rows, cols, bits); // out aliasing w
    assert.equal(firstBitDiff(w, y), -1, 'in place');
  });
}

for (const bits of [8, 4]) {
  test(`per-token fake quant int${bits} (dynamic scales) matches PyTorch`, () => {
    const c = `tokens_b${bits}`, { N, C } = attrs(c);
    const x = tensor(c, 'x');
    const scales = new Float32Array(N), s2 = new Float32Array(N);
    fakeQuantTokens(new Float32Array(N * C), x, N, C, bits, scales);
    sameValues(scales, tensor(c, 'scales'), 'token scales');
    assert.equal(scales[3], 1, 'zero row has scale 1');
    const y = new Float32Array(N * C);
    fakeQuantTokens(y, x, N, C, bits, s2);
    sameValues(y, tensor(c, 'y'), 'token fake quant');
    assert.equal(firstBitDiff(s2, scales), -1);
    const q = new Int8Array(N * C), s3 = new Float32Array(N);
    quantizeTokens(q, s3, x, N, C, bits);
    sameValues(q, tensor(c, 'q'), 'token q');
    const deq = new Float32Array(N * C);
    dequantizeRows(deq, q, s3, N, C);
    assert.equal(firstBitDiff(deq, y), -1, 'runtime int8 twin reproduces the fake quant');
    fakeQuantTokens(x, x, N, C, bits);
    assert.equal(firstBitDiff(x, y), -1, 'out may alias x');
  });
}

test('invariants on a large random matrix: on the grid, in range, quantize->dequantize == fake quant', () => {
  const rows = 96, cols = 200;
  const w = randoms(rows * cols, 7, -3, 3);
  for (let r = 0; r < rows; r += 7) w[r * cols + (r % cols)] *= 40; // outliers in some rows
  for (const bits of [2, 3, 4, 5, 6, 7, 8]) {
    const { qmin, qmax } = qRange(bits);
    const s = new Float32Array(rows), q = new Int8Array(rows * cols);
    const y = new Float32Array(rows * cols), deq = new Float32Array(rows * cols);
    rowScalesMaxAbs(s, w, rows, cols, bits);
    // scaled-down scales make some values clip: the invariants must hold with clipping too
    for (let r = 0; r < rows; r += 3) s[r] = Math.fround(s[r] * 0.5);
    fakeQuantRows(y, w, s, rows, cols, bits);
    quantizeRows(q, w, s, rows, cols, bits);
    dequantizeRows(deq, q, s, rows, cols);
    assert.equal(firstBitDiff(deq, y), -1, `int${bits}: bitwise`);
    for (let r = 0; r < rows; r++) {
      for (let i = r * cols; i < (r + 1) * cols; i++) {
        const k = q[i];
        assert.ok(Number.isInteger(k) && k >= qmin && k <= qmax, `int${bits}: q ${k} in range`);
        assert.ok(Object.is(y[i], Math.fround(k * s[r])), `int${bits}: value is scale * integer`);
        if (k > qmin && k < qmax) assert.ok(Math.abs(w[i] - y[i]) <= s[r] / 2 * (1 + 1e-6), 'error <= s/2 inside');
      }
    }
  }
});

test('the grid check finds every off-grid weight, and none in a quantized tensor', () => {
  const rows = 3, cols = 5, w = new Float32Array(rows * cols).map((_, i) => Math.sin(i + 1));
  const q = quantizeTensor(w, rows, cols, 8), on = new Float32Array(rows * cols);
  dequantizeRows(on, q.values, q.scale, rows, cols);
  assert.deepEqual(offGrid(on, q.scale, rows, cols, 8), { count: 0, first: -1 });
  const off = on.slice();
  off[7] = Math.fround(off[7] + q.scale[1] / 3);   // between two grid points
  off[12] = Math.fround(q.scale[2] * 200);           // beyond the int8 range of row 2
  assert.deepEqual(offGrid(off, q.scale, rows, cols, 8), { count: 2, first: 7 });
  // the float model itself is almost nowhere on its max-abs grid
  assert.ok(offGrid(w, q.scale, rows, cols, 8).count > rows * cols / 2);
});

test('bad scales and short buffers are typed errors', () => {
  const w = new Float32Array(6), q = new Int8Array(6);
  assert.throws(() => fakeQuantRows(new Float32Array(6), w, new Float32Array([1, -1]), 2, 3, 8),
    (e: unknown) => e instanceof QkdError && e.code === 'E_INPUT' && /row 1/.test(e.message));
  assert.throws(() => quantizeRows(q, w, new Float32Array(1), 2, 3, 8), (e: unknown) => e instanceof QkdError && e.code === 'E_SHAPE');
  assert.throws(() => rowScalesMaxAbs(new Float32Array(2), w, 2, 3, 9), (e: unknown) => e instanceof QkdError && e.code === 'E_CONFIG');
});

test('fake quant of 1M weights: every value on its row grid, within half a step (timing is a benchmark matter)', () => {
  const rows = 1024, cols = 1024, w = randoms(rows * cols, 3), s = new Float32Array(rows), y = new Float32Array(rows * cols);
  rowScalesMaxAbs(s, w, rows, cols, 8);
  fakeQuantRows(y, w, s, rows, cols, 8);
  let worst = 0, off = 0;
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const i = r * cols + c, q = y[i] / s[r];
      if (Math.abs(q - Math.round(q)) > 1e-3 || Math.abs(Math.round(q)) > 127) off++;
      worst = Math.max(worst, Math.abs(y[i] - w[i]) / s[r]);
    }
  }
  assert.equal(off, 0);
  assert.ok(worst <= 0.5 + 1e-5, `worst error ${worst} steps`); // round to nearest: at most half a step
});
