/** Magnitude masks against PyTorch fixtures, their invariants, and speed. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  applyMask, blockMask, globalMagnitudeMasks, keepCount, magnitudeMask, measuredSparsity, nmMask, unstructuredMask,
} from '../../src/sparse/index.js';
import { QkdError } from '../../src/tensor/errors.js';
import { randoms } from '../helpers.js';
import { attrs, firstBitDiff, tensor } from '../quant/fixture.js';

function countOnes(m: Float32Array): number { let n = 0; for (const v of m) n += v; return n; }

test('unstructured 90% mask equals PyTorch topk; relation to the anchor kthvalue rule', () => {
  for (const c of ['mask_64x160', 'mask_33x91']) {
    const { rows, cols, sparsity, kept, peer_kept: peerKept } = attrs(c);
    const w = tensor(c, 'w'), mask = new Float32Array(rows * cols);
    unstructuredMask(mask, w, rows, cols, sparsity);
    assert.equal(firstBitDiff(mask, tensor(c, 'mask')), -1, `${c}: kept set`);
    assert.equal(countOnes(mask), kept);
    assert.ok(mask.every((v) => v === 0 || v === 1));
    const peer = tensor(c, 'peer_mask');
    assert.equal(countOnes(peer), peerKept);
    // the anchor keeps ceil(0.1 n) without ties; ours round(0.1 n): ours is a subset, the rest its smallest
    let extra = 0, minOurs = Infinity, maxExtra = 0;
    for (let i = 0; i < mask.length; i++) {
      assert.ok(!(mask[i] === 1 && peer[i] === 0), `${c}: kept ${i} that the anchor prunes`);
      if (mask[i] === 1) minOurs = Math.min(minOurs, Math.abs(w[i]));
      if (peer[i] === 1 && mask[i] === 0) { extra++; maxExtra = Math.max(maxExtra, Math.abs(w[i])); }
    }
    assert.equal(extra, peerKept - kept);
    if (extra) assert.ok(maxExtra <= minOurs);
  }
});

test('1x4 block, 2:4 and global masks equal PyTorch', () => {
  let a = attrs('block4');
  const bm = new Float32Array(a.rows * a.cols);
  blockMask(bm, tensor('block4', 'w'), a.rows, a.cols, a.k, a.sparsity);
  assert.equal(firstBitDiff(bm, tensor('block4', 'mask')), -1, 'block');
  a = attrs('nm24');
  const nm = new Float32Array(a.rows * a.cols);
  nmMask(nm, tensor('nm24', 'w'), a.rows, a.cols, a.n, a.m);
  assert.equal(firstBitDiff(nm, tensor('nm24', 'mask')), -1, 'N:M');
  a = attrs('global');
  const targets = a.shapes.map(([rows, cols]: number[], i: number) =>
    ({ rows, cols, w: tensor('global', `w${i}`), mask: new Float32Array(rows * cols), name: `w${i}` }));
  globalMagnitudeMasks(targets, a.sparsity, { kind: 'unstructured' });
  targets.forEach((t: any, i: number) => assert.equal(firstBitDiff(t.mask, tensor('global', `mask${i}`)), -1, `global ${i}`));
  assert.equal(targets.reduce((s: number, t: any) => s + countOnes(t.mask), 0), a.kept);
});

test('invariants: exact counts, whole blocks, N of each M, sparsity within 1/n', () => {
  const rows = 48, cols = 96, n = rows * cols, w = randoms(n, 11);
  const m = new Float32Array(n);
  for (const s of [0, 0.1, 0.5, 0.9, 0.95, 0.999]) {
    unstructuredMask(m, w, rows, cols, s);
    assert.equal(countOnes(m), keepCount(n, s));
    assert.ok(Math.abs(measuredSparsity(m) - s) <= 0.5 / n + 1e-12, `unstructured ${s}`);
    for (const k of [2, 4, 8, 16]) {
      blockMask(m, w, rows, cols, k, s);
      const nb = n / k;
      assert.ok(Math.abs(measuredSparsity(m) - s) <= 0.5 / nb + 1e-12, `block ${k} at ${s}`);
      for (let b = 0; b < nb; b++) {
        const first = m[b * k];
        for (let i = 1; i < k; i++) assert.equal(m[b * k + i], first, `block ${b} is whole`);
      }
    }
  }
  for (const [N, M] of [[1, 4], [2, 4], [4, 8], [1, 2], [3, 3]]) {
    nmMask(m, w, rows, cols, N, M);
    for (let g = 0; g < n; g += M) {
      let kept = 0, minKept = Infinity, maxDropped = 0;
      for (let i = g; i < g + M; i++) {
        if (m[i]) { kept++; minKept = Math.min(minKept, Math.abs(w[i])); } else maxDropped = Math.max(maxDropped, Math.abs(w[i]));
      }
      assert.equal(kept, N, `${N}:${M}`);
      assert.ok(maxDropped <= minKept);
    }
    assert.ok(Math.abs(measuredSparsity(m) - (1 - N / M)) < 1e-12);
  }
});

test('global block masks: one block threshold over matrices, whole blocks, exact total', () => {
  const shapes = [[8, 32], [16, 16], [4, 64]];
  const targets = shapes.map(([rows, cols], i) =>
    ({ rows, cols, w: randoms(rows * cols, 20 + i, -1 - i, 1 + i), mask: new Float32Array(rows * cols) }));
  globalMagnitudeMasks(targets, 0.75, { kind: 'block', k: 4 });
  const blocks = targets.reduce((a, t) => a + t.mask.length / 4, 0);
  assert.equal(targets.reduce((a, t) => a + countOnes(t.mask), 0), 4 * keepCount(blocks, 0.75));
  for (const t of targets) {
    for (let b = 0; b < t.mask.length; b += 4) assert.ok(t.mask.subarray(b, b + 4).every((v) => v === t.mask[b]));
  }
  const s = targets.map((t) => measuredSparsity(t.mask));
  assert.ok(s[0] > s[2], `larger weights are pruned less: ${s}`);
});

test('ties are broken by index (lower index kept), also across matrices', () => {
  const w = new Float32Array([1, -2, 2, 2, 0, -2, 1, 3]), m = new Float32Array(8);
  unstructuredMask(m, w, 2, 4, 0.5); // keep 4: 3, then three of the four |2| by index
  assert.deepEqual(Array.from(m), [0, 1, 1, 1, 0, 0, 0, 1]);
  nmMask(m, new Float32Array([1, 1, 1, 1, -5, 5, 0, 5]), 1, 8, 2, 4);
  assert.deepEqual(Array.from(m), [1, 1, 0, 0, 1, 1, 0, 0]);
  const a = { w: new Float32Array([1, 1]), mask: new Float32Array(2), rows: 1, cols: 2 };
  const b = { w: new Float32Array([1, 1]), mask: new Float32Array(2), rows: 1, cols: 2 };
  globalMagnitudeMasks([a, b], 0.25, { kind: 'unstructured' });
  assert.deepEqual([...a.mask, ...b.mask], [1, 1, 1, 0]);
  magnitudeMask(m, new Float32Array(8), 2, 4, 0.5); // all zero weights: still exactly half kept
  assert.equal(countOnes(m), 4);
});

test('applyMask zeroes pruned entries exactly (+0)', () => {
  const x = new Float32Array([-1, -0, NaN, 4]), mask = new Float32Array([0, 0, 0, 1]);
  applyMask(x, mask);
  assert.ok(Object.is(x[0], 0) && Object.is(x[1], 0) && Object.is(x[2], 0) && x[3] === 4);
});

test('configuration errors', () => {
  const m = new Float32Array(12), w = randoms(12, 2);
  const code = (c: string) => (e: unknown) => e instanceof QkdError && e.code === c;
  for (const s of [1, -0.1, 1.5, NaN]) assert.throws(() => unstructuredMask(m, w, 3, 4, s), code('E_CONFIG'));
  assert.throws(() => blockMask(m, w, 3, 4, 3, 0.5), (e: unknown) => code('E_CONFIG')(e) && /divisible/.test((e as Error).message));
  assert.throws(() => nmMask(m, w, 2, 6, 2, 4), code('E_CONFIG'));
  assert.throws(() => nmMask(m, w, 3, 4, 5, 4), code('E_CONFIG'));
  assert.throws(() => unstructuredMask(new Float32Array(5), w, 3, 4, 0.5), code('E_SHAPE'));
});

test('masks of 1M weights: exact kept counts for every granularity (timing is a benchmark matter, not a test)', () => {
  const rows = 1024, cols = 1024, w = randoms(rows * cols, 5), m = new Float32Array(rows * cols);
  unstructuredMask(m, w, rows, cols, 0.9);
  assert.equal(countOnes(m), keepCount(rows * cols, 0.9));
  blockMask(m, w, rows, cols, 4, 0.9);
  assert.equal(countOnes(m), 4 * keepCount((rows * cols) / 4, 0.9));
  nmMask(m, w, rows, cols, 2, 4);
  assert.equal(countOnes(m), (rows * cols) / 2);
});
