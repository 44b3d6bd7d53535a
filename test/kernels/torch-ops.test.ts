/**
 * Forward and backward of every kernel against PyTorch-made fixtures (test/fixtures/grads/ops.safetensors),
 * on both backends.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createBackend } from '../../src/kernels/registry.js';
import type { Activation, Backend } from '../../src/kernels/backend.js';
import { ropeTables } from '../../src/tensor/rope.js';
import { readSafetensors } from '../../src/io/safetensors.js';
import { attentionBackward, attentionForward } from '../../src/nn/attention.js';
import { clipFactor } from '../../src/train/optim.js';
import { readJson, worstRel } from '../helpers.js';

const DIR = 'test/fixtures/grads';
const file = readSafetensors(`${DIR}/ops.safetensors`);
const manifest = readJson(`${DIR}/manifest.json`);

/** Copies a fixture tensor into backend memory. */
function load(be: Backend, key: string): Float32Array {
  const src = file.getF32(key), dst = be.alloc(src.length);
  dst.set(src);
  return dst;
}

function close(be: Backend, got: Float32Array, key: string, atol = 1e-5, rtol = 1e-4): void {
  const w = worstRel(got, file.getF32(key), atol, rtol);
  assert.ok(w <= 1, `${be.name}: ${key}: worst |diff| / (atol + rtol|ref|) = ${w.toFixed(2)} > 1`);
}

for (const name of ['ts', 'wasm'] as const) {
  test(`kernels match PyTorch (${name} backend)`, async (t) => {
    const be = await createBackend(name);
    try {
      await t.test('layernorm', () => {
        const x = load(be, 'layernorm.x'), w = load(be, 'layernorm.weight'), b = load(be, 'layernorm.bias');
        const dy = load(be, 'layernorm.dy'), N = 10, C = 24;
        const y = be.alloc(N * C), mean = be.alloc(N), rstd = be.alloc(N);
        be.layerNormForward(y, mean, rstd, x, w, b, N, C, 1e-5);
        close(be, y, 'layernorm.y');
        const dx = be.alloc(N * C), dw = be.alloc(C), db = be.alloc(C);
        be.layerNormBackward(dx, dw, db, dy, x, w, mean, rstd, N, C);
        close(be, dx, 'layernorm.dx'); close(be, dw, 'layernorm.dweight'); close(be, db, 'layernorm.dbias');
      });
      await t.test('rmsnorm', () => {
        const x = load(be, 'rmsnorm.x'), w = load(be, 'rmsnorm.weight'), dy = load(be, 'rmsnorm.dy'), N = 10, C = 24;
        const y = be.alloc(N * C), rstd = be.alloc(N);
        be.rmsNormForward(y, rstd, x, w, N, C, 1e-6);
        close(be, y, 'rmsnorm.y');
        const dx = be.alloc(N * C), dw = be.alloc(C);
        be.rmsNormBackward(dx, dw, dy, x, w, rstd, N, C);
        close(be, dx, 'rmsnorm.dx'); close(be, dw, 'rmsnorm.dweight');
      });
      const acts: [string, Activation][] = [['gelu_exact', 'gelu'], ['gelu_tanh', 'gelu_tanh'], ['silu', 'silu'], ['relu', 'relu']];
      for (const [op, kind] of acts) {
        await t.test(op, () => {
          const x = load(be, `${op}.x`), dy = load(be, `${op}.dy`), n = x.length;
          const y = be.alloc(n), dx = be.alloc(n);
          be.activationForward(kind, y, x, n);
          close(be, y, `${op}.y`, 1e-6, 1e-5);
          be.activationBackward(kind, dx, dy, x, n);
          close(be, dx, `${op}.dx`, 1e-6, 1e-5);
        });
      }
      await t.test('swiglu', () => {
        const g = load(be, 'swiglu.g'), u = load(be, 'swiglu.u'), dy = load(be, 'swiglu.dy'), n = g.length;
        const y = be.alloc(n), dg = be.alloc(n), du = be.alloc(n);
        be.gluForward('silu', y, g, u, n);
        close(be, y, 'swiglu.y', 1e-6, 1e-5);
        be.gluBackward('silu', dg, du, dy, g, u, n);
        close(be, dg, 'swiglu.dg', 1e-6, 1e-5); close(be, du, 'swiglu.du', 1e-6, 1e-5);
      });
      await t.test('softmax and log-softmax', () => {
        const rows = 6, V = 40;
        const x = load(be, 'softmax.x'), dy = load(be, 'softmax.dy'), y = be.alloc(rows * V), dx = be.alloc(rows * V);
        be.softmaxForward(y, x, rows, rows, V, 1, null);
        close(be, y, 'softmax.y', 1e-7, 1e-5);
        be.softmaxBackward(dx, dy, y, rows, V, 1);
        close(be, dx, 'softmax.dx', 1e-7, 1e-5);
        const lx = load(be, 'log_softmax.x'), ldy = load(be, 'log_softmax.dy'), ly = be.alloc(rows * V), ldx = be.alloc(rows * V);
        be.logSoftmaxForward(ly, lx, rows, V);
        close(be, ly, 'log_softmax.y', 1e-6, 1e-6);
        be.logSoftmaxBackward(ldx, ldy, ly, rows, V);
        close(be, ldx, 'log_softmax.dx', 1e-6, 1e-5);
      });
      await t.test('cross-entropy', () => {
        const rows = 6, V = 40, op = manifest.ops.cross_entropy;
        const logits = load(be, 'cross_entropy.logits'), tg = be.allocI32(rows);
        tg.set((op.attrs.targets as number[]).map((v) => (v < 0 ? -1 : v)));
        const losses = be.alloc(rows), dl = be.alloc(rows * V);
        const count = Array.from(tg).filter((v) => v >= 0).length;
        be.crossEntropy(losses, logits, tg, rows, V, dl, 1 / count);
        const mean = Array.from(losses).reduce((s, v) => s + v, 0) / count;
        assert.ok(Math.abs(mean - op.scalars.loss) < 1e-5, `loss ${mean} vs ${op.scalars.loss}`);
        close(be, dl, 'cross_entropy.dlogits', 1e-7, 1e-5);
      });
      await t.test('attention (GQA, RoPE, causal)', () => {
        const { B, T, H, KV, D, rope_theta } = manifest.ops.attention.attrs;
        const q = load(be, 'attention.q'), k = load(be, 'attention.k'), v = load(be, 'attention.v');
        const dy = load(be, 'attention.dy');
        const tab = ropeTables(T, D, rope_theta), cos = be.alloc(tab.cos.length), sin = be.alloc(tab.sin.length);
        cos.set(tab.cos); sin.set(tab.sin);
        be.rope(q, B, H, T, D, 0, cos, sin);
        be.rope(k, B, KV, T, D, 0, cos, sin);
        const shape = { B, H, KV, T, Tk: T, Tmax: T, D, topK: 0 };
        const y = be.alloc(B * H * T * D), att = be.alloc(B * H * T * T), dAtt = be.alloc(B * H * T * T);
        attentionForward(be, y, att, q, k, v, shape);
        close(be, y, 'attention.y', 1e-6, 1e-5);
        const dq = be.alloc(q.length), dk = be.alloc(k.length), dv = be.alloc(v.length);
        attentionBackward(be, dq, dk, dv, dAtt, dy, att, q, k, v, shape);
        be.rope(dq, B, H, T, D, 0, cos, sin, true);
        be.rope(dk, B, KV, T, D, 0, cos, sin, true);
        close(be, dq, 'attention.dq', 1e-6, 1e-5); close(be, dk, 'attention.dk', 1e-6, 1e-5);
        close(be, dv, 'attention.dv', 1e-6, 1e-5);
      });
      await t.test('adamw (3 steps)', () => {
        for (const part of ['w', 'b']) {
          const p = load(be, `param0.${part}`.replace(/^/, 'adamw.')), n = p.length;
          const m = be.alloc(n), v = be.alloc(n);
          for (let step = 1; step <= 3; step++) {
            const g = load(be, `adamw.grad${step}.${part}`);
            be.adamw(p, g, m, v, n, step, 1e-2, 0.9, 0.95, 1e-8, 0.1, 1);
            close(be, p, `adamw.step${step}.param.${part}`, 1e-7, 1e-5);
            close(be, m, `adamw.step${step}.exp_avg.${part}`, 1e-7, 1e-5);
            close(be, v, `adamw.step${step}.exp_avg_sq.${part}`, 1e-9, 1e-5);
          }
        }
      });
      await t.test('gradient clipping', () => {
        for (const op of ['clip_big', 'clip_small']) {
          const parts = ['a', 'b', 'c'].map((p) => file.getF32(`${op}.before.${p}`));
          const all = be.alloc(parts.reduce((s, p) => s + p.length, 0));
          let off = 0;
          for (const p of parts) { all.set(p, off); off += p.length; }
          const { norm, scale } = clipFactor(be, all, 1.0);
          assert.ok(Math.abs(norm - manifest.ops[op].scalars.total_norm) < 1e-5);
          off = 0;
          for (const p of ['a', 'b', 'c']) {
            const n = file.getF32(`${op}.before.${p}`).length, out = be.alloc(n);
            be.scale(out, all.subarray(off, off + n), scale, n);
            close(be, out, `${op}.after.${p}`, 1e-7, 1e-6);
            off += n;
          }
        }
      });
    } finally {
      await be.dispose();
    }
  });
}
