/**
 * distillationLoss against PyTorch-made fixtures (test/fixtures/distill, autograd in float64), against a
 * plain float64 reference written from the formulas, and against finite differences.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { distillationLoss, type DistillOptions, type TeacherDist, type TopkTeacher } from '../../src/distill/loss.js';
import { createBackend } from '../../src/kernels/registry.js';
import { readSafetensors } from '../../src/io/safetensors.js';
import { QkdError } from '../../src/tensor/errors.js';
import { maxAbsDiff, randoms, readJson } from '../helpers.js';

const DIR = 'test/fixtures/distill';
const file = readSafetensors(`${DIR}/distill.safetensors`);
const manifest = readJson(`${DIR}/distill.json`);
const be = await createBackend('ts');
const { N, V, k: K } = manifest as { N: number; V: number; k: number };

const s = file.getF32('s'), t = file.getF32('t');
const targets = file.getTyped('targets') as Int32Array, targetsAll = file.getTyped('targets_all') as Int32Array;

function fixtureTeacher(c: { teacher: string; tau: number }): TeacherDist {
  if (c.teacher === 'full') return { kind: 'full', logits: t };
  return { kind: 'topk', k: K, ids: file.getTyped('topk.ids') as Int32Array, logits: file.getF32('topk.logits'),
    lse: file.getF32(`topk.lse_tau${c.tau}`), tau: c.tau };
}

const rel = (a: number, b: number) => Math.abs(a - b) / Math.abs(b);

for (const [name, c] of Object.entries<any>(manifest.cases)) {
  test(`matches PyTorch: ${name} (${c.teacher}, ${c.kl}, alpha ${c.alpha}, tau ${c.tau}, lambda ${c.lambda})`, () => {
    const opts: DistillOptions = { alpha: c.alpha, tau: c.tau, lambda: c.lambda, kl: c.kl };
    const d = new Float32Array(N * V), y = c.targets === 'targets_all' ? targetsAll : targets;
    const r = distillationLoss(s, y, fixtureTeacher(c), opts, d);
    assert.ok(rel(r.loss, c.loss) < 1e-6, `loss ${r.loss} vs ${c.loss} (rel ${rel(r.loss, c.loss)})`);
    if (c.ce !== undefined) {
      assert.ok(rel(r.ce, c.ce) < 1e-6, `ce ${r.ce} vs ${c.ce}`);
      assert.ok(rel(r.kl, c.kl_mean) < 1e-6, `kl ${r.kl} vs ${c.kl_mean}`);
      assert.ok(rel(r.entropy, c.entropy) < 1e-6, `entropy ${r.entropy} vs ${c.entropy}`);
    }
    const ref = file.getF32(`${name}.dlogits`), err = maxAbsDiff(d, ref);
    assert.ok(err < 1e-6, `max |dlogits - torch| = ${err}`);
    // scale multiplies the gradient; the value does not depend on whether a gradient is asked for
    const d3 = new Float32Array(N * V).fill(7);
    assert.equal(distillationLoss(s, y, fixtureTeacher(c), opts, null).loss, r.loss);
    distillationLoss(s, y, fixtureTeacher(c), opts, d3, 3);
    assert.ok(maxAbsDiff(d3, d.map((x) => 3 * x)) < 1e-6);
  });
}

test('ignored rows get a zero gradient; all rows ignored gives zeros', () => {
  const d = new Float32Array(N * V);
  distillationLoss(s, targets, { kind: 'full', logits: t }, { alpha: 0.5, tau: 2, lambda: 0.01 }, d);
  for (const i of manifest.ignored_rows) assert.ok(d.subarray(i * V, (i + 1) * V).every((x) => x === 0));
  const r = distillationLoss(s, new Int32Array(N).fill(-1), { kind: 'full', logits: t }, { alpha: 0.5, tau: 2, lambda: 0.01 }, d.fill(1));
  assert.deepEqual(r, { loss: 0, ce: 0, kl: 0, entropy: 0, positions: 0 });
  assert.ok(d.every((x) => x === 0));
});

test('no teacher (alpha 1, lambda 0) equals the backend cross-entropy kernel', () => {
  const d = new Float32Array(N * V), dk = new Float32Array(N * V), losses = new Float32Array(N);
  const r = distillationLoss(s, targets, null, { alpha: 1, tau: 2, lambda: 0 }, d);
  const n = targets.filter((y) => y >= 0).length;
  be.crossEntropy(losses, s, targets, N, V, dk, 1 / n);
  assert.ok(rel(r.loss, losses.reduce((a, b) => a + b, 0) / n) < 1e-6);
  assert.ok(Number.isNaN(r.kl) && r.positions === n);
  assert.ok(maxAbsDiff(d, dk) < 1e-7);
});

// ---- a plain float64 reference from the formulas (log-sum-exp, no tricks)

function lse(x: number[]): number {
  const m = Math.max(...x);
  return m + Math.log(x.reduce((a, v) => a + Math.exp(v - m), 0));
}

function refRowKl(sr: number[], tr: number[], T: TeacherDist, i: number, tau: number, reverse: boolean): number {
  const lq = sr.map((x) => x / tau - lse(sr.map((y) => y / tau)));
  if (T.kind === 'full') {
    const lp = tr.map((x) => x / tau - lse(tr.map((y) => y / tau)));
    return lq.reduce((a, _, v) => a + (reverse ? Math.exp(lq[v]) * (lq[v] - lp[v]) : Math.exp(lp[v]) * (lp[v] - lq[v])), 0);
  }
  const ids = [...T.ids.subarray(i * T.k, (i + 1) * T.k)], lp = ids.map((_, a) => T.logits[i * T.k + a] / tau - T.lse[i]);
  const r = Math.max(0, 1 - lp.reduce((a, x) => a + Math.exp(x), 0));
  const lQ = lse(lq.filter((_, v) => !ids.includes(v)));
  let kl = 0;
  ids.forEach((j, a) => { kl += reverse ? Math.exp(lq[j]) * (lq[j] - lp[a]) : Math.exp(lp[a]) * (lp[a] - lq[j]); });
  return kl + (reverse ? Math.exp(lQ) * (lQ - Math.log(r)) : (r > 0 ? r * (Math.log(r) - lQ) : 0));
}

function refLoss(S: ArrayLike<number>, y: Int32Array, T: TeacherDist, o: DistillOptions, Vr: number): number {
  let n = 0, ce = 0, kl = 0, h = 0;
  for (let i = 0; i < y.length; i++) {
    if (y[i] < 0) continue;
    const sr = Array.from({ length: Vr }, (_, v) => S[i * Vr + v]), tr = T.kind === 'full' ? [...T.logits.subarray(i * Vr, (i + 1) * Vr)] : [];
    const l1 = lse(sr);
    n++; ce += l1 - sr[y[i]];
    h -= sr.reduce((a, x) => a + Math.exp(x - l1) * (x - l1), 0);
    kl += refRowKl(sr, tr, T, i, o.tau, o.kl === 'reverse');
  }
  return (o.alpha * ce + (1 - o.alpha) * o.tau * o.tau * kl - o.lambda * h) / n;
}

/** Top-k entries built directly from full logits (sorted descending). */
function topkOf(tl: Float32Array, Nr: number, Vr: number, k: number, tau: number): TopkTeacher {
  const ids = new Int32Array(Nr * k), lg = new Float32Array(Nr * k), ls = new Float32Array(Nr);
  for (let i = 0; i < Nr; i++) {
    const row = [...tl.subarray(i * Vr, (i + 1) * Vr)];
    const order = row.map((x, v) => [x, v]).sort((a, b) => b[0] - a[0]).slice(0, k);
    order.forEach(([x, v], a) => { ids[i * k + a] = v; lg[i * k + a] = x; });
    ls[i] = lse(row.map((x) => x / tau));
  }
  return { kind: 'topk', k, ids, logits: lg, lse: ls, tau };
}

const MODES: Array<[string, (tl: Float32Array, Nr: number, Vr: number, tau: number) => TeacherDist, 'forward' | 'reverse']> = [
  ['full forward', (tl) => ({ kind: 'full', logits: tl }), 'forward'],
  ['full reverse', (tl) => ({ kind: 'full', logits: tl }), 'reverse'],
  ['top-5 forward', (tl, Nr, Vr, tau) => topkOf(tl, Nr, Vr, 5, tau), 'forward'],
  ['top-5 reverse', (tl, Nr, Vr, tau) => topkOf(tl, Nr, Vr, 5, tau), 'reverse'],
];

for (const [label, mk, kl] of MODES) {
  test(`${label}: float64 reference and finite differences (tau 0.7, 1, 2, 3.1)`, () => {
    const Nr = 4, Vr = 13;
    for (const tau of [0.7, 1, 2, 3.1]) {
      const S = randoms(Nr * Vr, 11, -4, 4), TL = randoms(Nr * Vr, 29, -5, 5), y = Int32Array.from([3, -1, 12, 0]);
      const T = mk(TL, Nr, Vr, tau), o: DistillOptions = { alpha: 0.3, tau, lambda: 0.05, kl };
      const d = new Float32Array(Nr * Vr), r = distillationLoss(S, y, T, o, d);
      assert.ok(rel(r.loss, refLoss(S, y, T, o, Vr)) < 1e-9, `tau ${tau}: ${r.loss} vs ${refLoss(S, y, T, o, Vr)}`);
      const Sd = Float64Array.from(S); // finite differences on the float64 reference: no float32 input rounding
      for (let v = 0; v < Nr * Vr; v++) {
        const h = 1e-5, p = Sd.slice(), m = Sd.slice();
        p[v] += h; m[v] -= h;
        const fd = (refLoss(p, y, T, o, Vr) - refLoss(m, y, T, o, Vr)) / (2 * h);
        assert.ok(Math.abs(fd - d[v]) < 1e-7, `tau ${tau} element ${v}: analytic ${d[v]} vs finite difference ${fd}`);
      }
    }
  });
}

test('top-k with k = V equals the full teacher (forward and reverse)', () => {
  for (const kl of ['forward', 'reverse'] as const) {
    const o = { alpha: 0.4, tau: 2, lambda: 0.02, kl }, T = topkOf(t, N, V, V, 2);
    const d1 = new Float32Array(N * V), d2 = new Float32Array(N * V);
    const a = distillationLoss(s, targets, { kind: 'full', logits: t }, o, d1), b = distillationLoss(s, targets, T, o, d2);
    assert.ok(rel(b.loss, a.loss) < 1e-6, `${kl}: ${b.loss} vs ${a.loss}`);
    assert.ok(maxAbsDiff(d1, d2) < 1e-6);
  }
});

test('top-k: a student with almost no tail mass (Q from the direct sum) stays exact', () => {
  const Nr = 3, Vr = 40, S = randoms(Nr * Vr, 5, -3, 3), TL = randoms(Nr * Vr, 6, -3, 3), y = Int32Array.from([1, 2, 3]);
  const T = topkOf(TL, Nr, Vr, 6, 1.5);
  for (let i = 0; i < Nr; i++) for (let a = 0; a < 6; a++) S[i * Vr + T.ids[i * 6 + a]] += 25; // Q ~ e^-25
  for (const kl of ['forward', 'reverse'] as const) {
    const o = { alpha: 0.5, tau: 1.5, lambda: 0.01, kl }, d = new Float32Array(Nr * Vr);
    const r = distillationLoss(S, y, T, o, d);
    assert.ok(rel(r.loss, refLoss(S, y, T, o, Vr)) < 1e-9, `${kl}: ${r.loss} vs ${refLoss(S, y, T, o, Vr)}`);
    assert.ok(d.every(Number.isFinite));
  }
});

test('errors name the field', () => {
  const full: TeacherDist = { kind: 'full', logits: t }, o = { alpha: 0.5, tau: 2, lambda: 0.01 };
  const bad = (f: () => unknown, code: string, part: string) => assert.throws(f, (e: unknown) =>
    e instanceof QkdError && e.code === code && e.message.includes(part));
  bad(() => distillationLoss(s, targets, full, { ...o, alpha: 1.5 }, null), 'E_CONFIG', 'alpha');
  bad(() => distillationLoss(s, targets, full, { ...o, tau: 0 }, null), 'E_CONFIG', 'tau');
  bad(() => distillationLoss(s, targets, full, { ...o, lambda: -1 }, null), 'E_CONFIG', 'lambda');
  bad(() => distillationLoss(s, targets, null, o, null), 'E_CONFIG', 'no teacher');
  bad(() => distillationLoss(s, targets, { kind: 'full', logits: t.subarray(1) }, o, null), 'E_SHAPE', 'teacher logits');
  bad(() => distillationLoss(s, Int32Array.from(targets, (x, i) => (i === 2 ? V : x)), full, o, null), 'E_INPUT', 'target 50 at row 2');
  bad(() => distillationLoss(s, targets, full, o, s), 'E_SHAPE', 'overlap');
  const T = fixtureTeacher({ teacher: 'topk', tau: 2 }) as TopkTeacher;
  bad(() => distillationLoss(s, targets, T, { ...o, tau: 1 }, null), 'E_CONFIG', 'tau = 2');
  const dup = { ...T, ids: T.ids.slice() }; dup.ids[9] = dup.ids[8];
  bad(() => distillationLoss(s, targets, dup, o, null), 'E_INPUT', 'row 1: id');
  const big = { ...T, ids: T.ids.slice() }; big.ids[0] = V;
  bad(() => distillationLoss(s, targets, big, o, null), 'E_INPUT', 'row 0: id 50');
});
