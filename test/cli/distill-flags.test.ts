/**
 * `qkd distill`'s flags, each followed to a value it must change: --alpha/--tau/--lambda/--kl reverse
 * and --attn-top-k to the logged loss terms of step 1 (rebuilt in process, test/cli/distill-replica.ts)
 * and to the formula that combines them at every step; --attn-top-k also to the saved model's logits;
 * --granularity 2:4 to exactly 2 non-zeros in every group of 4 saved weights; --act-bits to the export's
 * spec and its logits; --epochs to the number of steps. A few steps each of a tiny student of the
 * fixture teacher.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixture, maxAbsDiff } from '../helpers.js';
import { makeDistillConfig } from '../../src/distill/config.js';
import { loadTokenizer } from '../../src/data/tokenizer-node.js';
import { loadHfModel } from '../../src/io/hf.js';
import { isExportDir } from '../../src/io/export.js';
import { loadModel } from '../../src/io/load-model.js';
import type { Backend } from '../../src/kernels/backend.js';
import { createBackend } from '../../src/kernels/registry.js';
import { loadInt8Model } from '../../src/runtime/int8-node.js';
import { paramLayout } from '../../src/model/config.js';
import { readConfigFile } from '../../src/train/config.js';
import { firstBatch, initialStudent, lossTerms } from './distill-replica.js';

const CLI = 'dist/src/cli/main.js';
const TEACHER = fixture('brown-llama-teacher');
const tmp = mkdtempSync(join(tmpdir(), 'qkd-distill-flags-'));
const env = { ...process.env, QKD_CACHE_DIR: join(tmp, 'cache') };
let be: Backend; // the runs' kernels (wasm, 1 thread), for the replica and the logits in this process
before(async () => { process.env.QKD_CACHE_DIR = env.QKD_CACHE_DIR; be = await createBackend('wasm', { threads: 1 }); });
after(async () => { await be?.dispose(); rmSync(tmp, { recursive: true, force: true }); });
const train = join(tmp, 'train.txt'), valid = join(tmp, 'valid.txt'), recipe = join(tmp, 'recipe.yaml');
writeFileSync(train, readFileSync(fixture('brown-text', 'brown-valid.txt'), 'utf8').slice(0, 20_000));
writeFileSync(valid, readFileSync(fixture('brown-text', 'brown-test.txt'), 'utf8').slice(0, 8_000));
writeFileSync(recipe, [
  `teacher: ${TEACHER}`,
  'student: { preset: anchor-student, dim: 32, nLayer: 2, nHead: 2, nKVHead: 1, headDim: 16, ffnDim: 64, maxPos: 64 }',
  `data: { kind: text, paths: [${train}], valid: [${valid}] }`,
  'steps: 12', 'batch: 2', 'context: 32', 'warmup: 0', 'lr: 0.01', 'seed: 7',
  'evalEvery: 0', 'evalWindows: 4', 'evalContext: 32', 'checkpointEvery: 0',
].join('\n') + '\n');

function qkd(args: string[]) {
  return spawnSync(process.execPath, [CLI, ...args, '--backend', 'wasm', '--threads', '1'], { encoding: 'utf8', env, timeout: 120_000 });
}

/** Runs `qkd distill` with the recipe and flags into tmp/NAME; returns the folder. */
function distill(name: string, flags: string[]): string {
  const out = join(tmp, name);
  const r = qkd(['distill', '--config', recipe, '--out', out, ...flags]);
  assert.equal(r.status, 0, r.stderr);
  return out;
}

// metrics.jsonl lines (numbers; null for NaN)
type Line = Record<string, any>;
const steps = (dir: string): Line[] => readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n')
  .map((l) => JSON.parse(l)).filter((l) => l.loss !== undefined);
const saved = (dir: string) => JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')).distill;
const modelConfig = (dir: string) => JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));

/** Logits of ids on a model folder or a qkd-int8 export (as `qkd logits` computes them). */
function logits(dir: string, ids: number[]): Float32Array {
  const m = isExportDir(dir) ? loadInt8Model(dir, be).model : loadModel(dir, be).model;
  try { return m.forward(ids, 1, ids.length).slice(); } finally { m.dispose(); }
}

/** A copy of a model folder with its config.json edited. */
function editedCopy(dir: string, name: string, edit: (c: any) => void): string {
  const copy = join(tmp, name);
  cpSync(dir, copy, { recursive: true });
  const c = modelConfig(copy);
  edit(c);
  writeFileSync(join(copy, 'config.json'), JSON.stringify(c));
  return copy;
}

const LOSS_FLAGS = ['--steps', '2', '--alpha', '0.3', '--tau', '1.5', '--lambda', '0.02', '--attn-top-k', '8'];
const ids = loadTokenizer(TEACHER).encode(readFileSync(valid, 'utf8')).slice(0, 40);
let forward = '';

test('distill --alpha --tau --lambda --kl reverse --attn-top-k: the logged loss terms of step 1 and the formula of every step', async (t) => {
  forward = distill('forward', LOSS_FLAGS);
  const reverse = distill('reverse', [...LOSS_FLAGS, '--kl', 'reverse']);
  let formula = 0;
  for (const [dir, kl] of [[forward, 'forward'], [reverse, 'reverse']]) {
    const c = saved(dir);
    assert.deepEqual([c.alpha, c.tau, c.lambda, c.kl, c.attnTopK], [0.3, 1.5, 0.02, kl, 8], `${kl}: saved recipe`);
    assert.equal(modelConfig(join(dir, 'model')).qkd_compression.attnTopK, 8, `${kl}: saved model config`);
    // loss = α·CE + (1−α)·τ²·KL − λ·H at every step
    for (const l of steps(dir)) {
      const want = 0.3 * l.ce + 0.7 * 1.5 ** 2 * l.kl - 0.02 * l.entropy, d = Math.abs(l.loss - want) / Math.abs(want);
      assert.ok(d <= 1e-15, `${kl} step ${l.step}: loss ${l.loss} vs ${want}`); // measured 1.6e-16 (rounding of the sum)
      formula = Math.max(formula, d);
    }
  }
  t.diagnostic(`loss vs its formula: worst relative difference ${formula.toExponential(2)}`);
  // step 1 rebuilt: the same initial student (with top-8 attention) and batch, the teacher's logits, the terms by hand
  const cfg = makeDistillConfig(readConfigFile(recipe), { attnTopK: 8 }, recipe), b = firstBatch(cfg);
  const teacher = loadModel(TEACHER, be).model, student = initialStudent(cfg, be, 2048);
  const plain = initialStudent(makeDistillConfig(readConfigFile(recipe), {}, recipe), be, 2048);
  const tl = teacher.forward(b.x, 2, 32).slice();
  const want = lossTerms(student.forward(b.x, 2, 32).slice(), tl, b.y, 2048, 1.5);
  const dense = lossTerms(plain.forward(b.x, 2, 32).slice(), tl, b.y, 2048, 1.5);
  for (const m of [teacher, student, plain]) m.dispose();
  const f = steps(forward)[0], r = steps(reverse)[0];
  const rel = (a: number, b: number) => Math.abs(a - b) / Math.abs(b);
  const worst = Math.max(rel(f.ce, want.ce), rel(f.entropy, want.entropy), rel(f.kl, want.klForward),
    rel(r.ce, want.ce), rel(r.entropy, want.entropy), rel(r.kl, want.klReverse));
  t.diagnostic(`step 1: worst relative difference to the replica ${worst.toExponential(2)}; KL forward ${want.klForward}, ` +
    `reverse ${want.klReverse}; CE without top-k attention ${dense.ce} vs ${want.ce}`);
  assert.ok(worst <= 5e-14, `step-1 terms vs replica: ${worst}`); // measured 7.5e-15
  // the check tells the alternatives apart: the other KL direction (1.7e-3 away), attention without top-k (CE 8.8e-5 away)
  assert.ok(rel(want.klForward, want.klReverse) > 1e-6 && rel(dense.ce, want.ce) > 1e-6,
    `KL ${want.klForward} vs ${want.klReverse}; CE ${dense.ce} vs ${want.ce}`);
});

test('distill --attn-top-k 8: the saved model attends to its 8 best keys (rows 0-7 as dense attention, later rows not)', (t) => {
  assert.ok(forward, 'uses the --attn-top-k 8 run of the test above');
  const k8 = logits(join(forward, 'model'), ids);
  const all = logits(editedCopy(join(forward, 'model'), 'topk0', (c) => { c.qkd_compression.attnTopK = 0; }), ids);
  const V = 2048, rows = (a: Float32Array, r0: number, r1: number) => a.subarray(r0 * V, r1 * V);
  const early = maxAbsDiff(rows(k8, 0, 8), rows(all, 0, 8)), late = maxAbsDiff(rows(k8, 8, 40), rows(all, 8, 40));
  t.diagnostic(`max |logit diff| top-8 vs dense attention: rows 0-7 ${early}, rows 8-39 ${late}`);
  assert.ok(early <= 2e-7, `rows 0-7 (at most 8 keys): ${early}`); // measured 8.9e-8 (another summation path)
  assert.ok(late > 0.05, `rows 8-39 must differ: ${late}`); // measured 0.23
});

test('distill --granularity 2:4: exactly 2 non-zeros in every group of 4 inputs of every pruned matrix', () => {
  const dir = distill('nm', ['--bits', '0', '--sparsity', '0.5', '--granularity', '2:4']);
  const c = saved(dir);
  assert.deepEqual([c.sparsity.granularity, c.sparsity.n, c.sparsity.m, c.quant], ['nm', 2, 4, null]);
  const hf = loadHfModel(join(dir, 'model'));
  assert.deepEqual([hf.config.sparsity?.granularity, hf.config.sparsity?.n, hf.config.sparsity?.m], ['nm', 2, 4]);
  let groups = 0;
  for (const p of paramLayout(hf.config).filter((q) => /\.(q|k|v|o|gate|up|down)\.weight$/.test(q.name))) {
    const w = hf.tensors.get(p.name)!, [rows, cols] = p.shape;
    for (let r = 0; r < rows; r++) {
      for (let g = 0; g < cols; g += 4) {
        let nz = 0;
        for (let j = g; j < g + 4; j++) if (w[r * cols + j] !== 0) nz++;
        assert.equal(nz, 2, `${p.name} row ${r} columns ${g}..${g + 3}: ${nz} non-zeros`);
        groups++;
      }
    }
  }
  assert.equal(groups, (2 * (2 * 32 * 32 + 2 * 16 * 32 + 3 * 64 * 32)) / 4, 'every pruned matrix checked (2 layers: q, o; k, v; gate, up, down)');
});

test('distill --act-bits 8 --epochs 0.15: the step count of 0.15 epochs, activation bits in the export spec and its logits', (t) => {
  const dir = distill('act-epochs', ['--bits', '8', '--act-bits', '8', '--epochs', '0.15']);
  // windows of the training text: non-overlapping (context + 1)-token windows starting every 32 tokens
  const tokens = loadTokenizer(TEACHER).encode(readFileSync(train, 'utf8')).length;
  const want = Math.round((0.15 * Math.floor((tokens - 1) / 32)) / 2);
  assert.deepEqual(steps(dir).map((l) => l.step), Array.from({ length: want }, (_, i) => i + 1), `${want} steps`);
  assert.equal(saved(dir).epochs, 0.15);
  assert.equal(modelConfig(join(dir, 'model')).qkd_compression.quant.actBits, 8);
  const ex = join(tmp, 'act-export');
  const r = spawnSync(process.execPath, [CLI, 'export', '--model', dir, '--out', ex], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(modelConfig(ex).quantization.activations, { mode: 'dynamic-per-token', bits: 8 });
  // the export computes with int8 activations: its logits follow the model with act-bits 8, not without
  const withAct = logits(join(dir, 'model'), ids), exported = logits(ex, ids);
  const noAct = logits(editedCopy(join(dir, 'model'), 'act0', (c) => { c.qkd_compression.quant.actBits = 0; }), ids);
  const dExport = maxAbsDiff(exported, withAct), dAct = maxAbsDiff(noAct, withAct);
  t.diagnostic(`max |logit diff| to the model with act-bits 8: export ${dExport}, model with act-bits 0 ${dAct}; ${want} steps`);
  assert.ok(dExport < 3e-6, `export vs model: ${dExport}`); // measured 1.2e-6
  assert.ok(dAct > 1e-3, `act-bits 8 vs 0: ${dAct} (export ${dExport})`); // measured 4.9e-3, 4000x the export's difference
});
