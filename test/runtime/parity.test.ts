/**
 * Parity of the int8 runtime with the distilled student's fake-quantized float forward (DESIGN rule 3):
 * `qkd distill` makes tiny students with the fixture teacher (int8 weights, 90% sparse: 1x4 blocks
 * with int8 activations, and unstructured with float activations), `qkd export` compacts them, and
 * `qkd logits` / `qkd eval` on the run's model/ and on the export must agree: top-1 identical on every
 * validation position (measured 2560/2560; DESIGN asks for 99.9%), logits and perplexity within the
 * tolerances below.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadTokenizer } from '../../src/data/tokenizer-node.js';
import { loadExport } from '../../src/io/export.js';
import { TsBackend } from '../../src/kernels/ts/backend.js';
import { loadModel } from '../../src/io/load-model.js';
import { Int8Transformer } from '../../src/runtime/int8-model.js';
import { fixture, readF32 } from '../helpers.js';

const CLI = 'dist/src/cli/main.js';
const tmp = mkdtempSync(join(tmpdir(), 'qkd-parity-'));
const text = join(tmp, 'train.txt'), valid = fixture('brown-text', 'brown-valid.txt'), evalText = join(tmp, 'eval.txt');
writeFileSync(text, readFileSync(valid, 'utf8').slice(0, 40000));
writeFileSync(evalText, readFileSync(valid, 'utf8').slice(40000, 48000));
const CTX = 128;

function qkd(args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, QKD_CACHE_DIR: join(tmp, 'cache') } });
  assert.equal(r.status, 0, `qkd ${args.join(' ')}\n${r.stderr}`);
  return r;
}

function distill(name: string, extra: string[]): string {
  const cfg = join(tmp, `${name}.yaml`), out = join(tmp, name);
  writeFileSync(cfg, [
    `teacher: ${fixture('brown-llama-teacher')}`,
    `student: { preset: anchor-student, dim: 32, nLayer: 2, nHead: 2, nKVHead: 1, headDim: 16, ffnDim: 64, maxPos: ${CTX} }`,
    `data: { kind: text, paths: [${text}], validFraction: 0.1 }`,
    'steps: 10', 'batch: 4', 'context: 32', 'warmup: 2', 'lr: 0.003', 'evalEvery: 10', 'evalWindows: 1', 'evalContext: 32',
    'checkpointEvery: 100', 'seed: 5', ...extra,
  ].join('\n'));
  qkd(['distill', '--config', cfg, '--out', out]);
  return out;
}

const argmax = (a: Float32Array, off: number, n: number) => {
  let b = 0;
  for (let j = 1; j < n; j++) if (a[off + j] > a[off + b]) b = j;
  return b;
};

/**
 * Max |logit diff| in process (ts backend) about 3x the measured: W8A8 1.91e-5 (an activation code that
 * rounds the other way in float rounding), W8A32 5.96e-8. Through the CLI (one window) measured 1.79e-7
 * and 2.38e-7: tolerance 1e-6. ppl relative difference measured 1.9e-9 and 1.5e-9: tolerance 1e-8.
 */
const RECIPES: [string, string[], number][] = [
  ['W8A8, 90% sparse in 1x4 blocks', ['quant: { bits: 8, actBits: 8 }', 'sparsity: { target: 0.9, granularity: block, block: 4, start: 0.1, end: 0.6, every: 2 }'], 6e-5],
  ['W8A32, 90% unstructured', ['quant: { bits: 8 }', 'sparsity: { target: 0.9, start: 0.1, end: 0.6, every: 2 }'], 2e-7],
];
const CLI_TOL = 1e-6, PPL_REL_TOL = 1e-8;

for (const [label, extra, tol] of RECIPES) {
  test(`parity ${label}: qkd logits / eval on model/ and on its export`, () => {
    const run = distill(label.replace(/\W+/g, '-'), extra), exp = join(tmp, `${label.replace(/\W+/g, '-')}-export`);
    qkd(['export', '--model', run, '--out', exp]); // a run directory: its model/ is exported
    const ids = loadTokenizer(join(run, 'model')).encode(readFileSync(valid, 'utf8').slice(40000, 48000));
    // the CLI on one window
    const window = ids.slice(0, CTX).join(',');
    qkd(['logits', '--model', join(run, 'model'), '--ids', window, '--out', join(tmp, 'f.f32')]);
    qkd(['logits', '--model', exp, '--ids', window, '--out', join(tmp, 'q.f32')]);
    const fl = readF32(join(tmp, 'f.f32')), ql = readF32(join(tmp, 'q.f32'));
    let cliDiff = 0;
    for (let i = 0; i < fl.length; i++) cliDiff = Math.max(cliDiff, Math.abs(fl[i] - ql[i]));
    // every full window of the validation text in process (ts backend)
    const be = new TsBackend(), f = loadModel(join(run, 'model'), be).model, q = new Int8Transformer(be, loadExport(exp));
    const V = f.config.vocabSize, windows = Math.floor(ids.length / CTX);
    let same = 0, total = 0, maxDiff = 0;
    for (let w = 0; w < windows; w++) {
      const x = ids.slice(w * CTX, (w + 1) * CTX);
      const a = f.forward(x, 1, CTX).slice(), b = q.forward(x, 1, CTX);
      for (let i = 0; i < a.length; i++) maxDiff = Math.max(maxDiff, Math.abs(a[i] - b[i]));
      for (let t = 0; t < CTX; t++, total++) if (argmax(a, t * V, V) === argmax(b, t * V, V)) same++;
    }
    const evF = JSON.parse(qkd(['eval', '--model', join(run, 'model'), '--text', evalText, '--context', '64', '--json']).stdout);
    const evQ = JSON.parse(qkd(['eval', '--model', exp, '--text', evalText, '--context', '64', '--json']).stdout);
    console.log(JSON.stringify({ parity: label, positions: total, top1Agreement: same / total, maxAbsDiff: maxDiff, cliMaxAbsDiff: cliDiff, pplFloat: evF.ppl, pplExport: evQ.ppl }));
    assert.equal(same, total, `top-1 agreement ${same}/${total}`);
    assert.ok(maxDiff < tol, `max |diff| ${maxDiff} >= ${tol}`);
    assert.ok(cliDiff < CLI_TOL, `CLI max |diff| ${cliDiff} >= ${CLI_TOL}`);
    assert.ok(Math.abs(evF.ppl - evQ.ppl) <= PPL_REL_TOL * evF.ppl, `ppl ${evF.ppl} vs ${evQ.ppl}`);
  });
}
