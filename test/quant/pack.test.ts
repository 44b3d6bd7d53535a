/** int4/int2 packing: documented layout and round trips. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { packInt2, packInt4, unpackInt2, unpackInt4 } from '../../src/quant/index.js';
import { QkdError } from '../../src/tensor/errors.js';

test('int4 layout: low nibble first, two\'s complement', () => {
  const p = packInt4(new Int8Array([1, -1, -8, 7, 3]));
  assert.deepEqual(Array.from(p), [0xf1, 0x78, 0x03]);
  assert.deepEqual(Array.from(unpackInt4(p, 5)), [1, -1, -8, 7, 3]);
});

test('int2 layout: lowest bits first', () => {
  const p = packInt2(new Int8Array([1, -1, -2, 0, 1]));
  assert.deepEqual(Array.from(p), [0b00101101, 0b01]);
  assert.deepEqual(Array.from(unpackInt2(p, 5)), [1, -1, -2, 0, 1]);
});

test('round trips over every value and odd lengths', () => {
  for (const n of [0, 1, 2, 3, 1001]) {
    const q4 = Int8Array.from({ length: n }, (_, i) => ((i * 7) % 16) - 8);
    assert.deepEqual(unpackInt4(packInt4(q4), n), q4);
    assert.equal(packInt4(q4).length, Math.ceil(n / 2));
    const q2 = Int8Array.from({ length: n }, (_, i) => ((i * 3) % 4) - 2);
    assert.deepEqual(unpackInt2(packInt2(q2), n), q2);
    assert.equal(packInt2(q2).length, Math.ceil(n / 4));
  }
  const out = new Int8Array(4);
  assert.equal(unpackInt4(new Uint8Array([0x21, 0x43]), 4, out), out);
  assert.deepEqual(Array.from(out), [1, 2, 3, 4]);
});

test('out-of-range values and short buffers are errors', () => {
  assert.throws(() => packInt4(new Int8Array([8])), (e: unknown) => e instanceof QkdError && e.code === 'E_INPUT');
  assert.throws(() => packInt2(new Int8Array([-3])), QkdError);
  assert.throws(() => unpackInt4(new Uint8Array(1), 3), (e: unknown) => e instanceof QkdError && e.code === 'E_SHAPE');
});
