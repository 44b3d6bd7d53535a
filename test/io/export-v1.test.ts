/**
 * Committed qkd-int8 version-1 exports (test/fixtures/export-v1, made once by make.ts beside them):
 * the current reader must keep loading them with the same spec fields and compute the same logits
 * bit for bit (ts backend, in process and through `qkd logits`), so a change of the format or of the
 * runtime's numerics cannot slip through unnoticed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadTokenizer } from '../../src/data/tokenizer-node.js';
import { loadExport } from '../../src/io/export.js';
import { TsBackend } from '../../src/kernels/ts/backend.js';
import { generate } from '../../src/runtime/generate.js';
import { Int8Transformer } from '../../src/runtime/int8-model.js';
import { readJson } from '../helpers.js';

const DIR = 'test/fixtures/export-v1';
const tmp = mkdtempSync(join(tmpdir(), 'qkd-export-v1-'));

const LINEAR = ['q', 'k', 'v', 'o', 'gate', 'up', 'down'];
const EXPECTED = {
  'llama-w8a8-block': {
    arch: { family: 'llama', vocabSize: 320, dim: 32, nLayer: 2, nHead: 4, nKVHead: 2, headDim: 8, ffnDim: 64, maxPos: 32,
      norm: 'rmsnorm', pos: 'rope', ropeTheta: 10000, act: 'silu', gated: true, bias: false, tieEmbeddings: true },
    quant: { format: 'qkd-int8', version: 1, scheme: 'symmetric-per-channel', bits: 8, embedBits: 8, source: 'qat', scales: 'maxabs',
      activations: { mode: 'dynamic-per-token', bits: 8 } },
    actBits: 8, measured: 0.9001193576388888, linear: { format: 'block', packing: 'int8', block: 4 }, embed: ['embed.weight'], embedPacking: 'int8',
  },
  'student-w4-lsq-csr': {
    arch: { family: 'student', vocabSize: 320, dim: 32, nLayer: 2, nHead: 2, nKVHead: 2, headDim: 16, ffnDim: 64, maxPos: 32,
      norm: 'layernorm', pos: 'learned', act: 'relu', gated: false, bias: true, tieEmbeddings: false },
    quant: { format: 'qkd-int8', version: 1, scheme: 'symmetric-per-channel', bits: 4, embedBits: 4, source: 'qat', scales: 'lsq',
      activations: { mode: 'none' } },
    actBits: 0, measured: 0.900146484375, linear: { format: 'csr', packing: 'int4' }, embed: ['embed.weight', 'lm_head.weight'], embedPacking: 'int4',
  },
} as const;

for (const [name, want] of Object.entries(EXPECTED)) {
  test(`export v1 ${name}: the committed export loads with its spec and gives its logits bit for bit`, () => {
    const dir = join(DIR, name), exp = readJson(join(DIR, `${name}.expected.json`));
    const ex = loadExport(dir);
    const { matrices: specs, sparsity, ...quant } = ex.quantization;
    assert.deepEqual(quant, want.quant);
    assert.equal(sparsity.measured, want.measured);
    for (const [k, v] of Object.entries(want.arch)) assert.equal(ex.config[k as keyof typeof ex.config], v, k);
    assert.equal(ex.actBits, want.actBits);
    const linears = Object.keys(specs).filter((n) => !(want.embed as readonly string[]).includes(n));
    const layers = LINEAR.filter((p) => p !== 'gate' || want.arch.gated);
    assert.deepEqual(linears.sort(), [0, 1].flatMap((l) => layers.map((p) => `layers.${l}.${p}.weight`)).sort());
    for (const n of linears) {
      assert.deepEqual({ format: specs[n].format, packing: specs[n].packing, bits: specs[n].bits, ...(specs[n].block ? { block: specs[n].block } : {}) },
        { ...want.linear, bits: want.quant.bits }, n);
      assert.equal(ex.matrices.get(n)!.format, want.linear.format, n);
    }
    for (const n of want.embed) assert.deepEqual([specs[n].format, specs[n].packing, specs[n].rows, specs[n].cols], ['dense', want.embedPacking, 320, 32], n);

    const ids: number[] = exp.ids;
    assert.deepEqual(loadTokenizer(dir).encode(exp.text).slice(0, ids.length), ids, 'tokenizer.json encodes as it did');
    const wantLogits = readFileSync(join(DIR, `${name}.logits.f32`));
    assert.equal(wantLogits.length, 4 * exp.logitsShape[0] * exp.logitsShape[1]);
    const model = new Int8Transformer(new TsBackend(), ex);
    const logits = model.forward(ids, 1, ids.length).slice();
    assert.ok(Buffer.from(logits.buffer).equals(wantLogits), 'in-process logits differ from the committed ones');
    assert.deepEqual(generate(model, exp.greedyPrompt, { greedy: true, maxNewTokens: exp.greedy.length }), exp.greedy);

    const out = join(tmp, `${name}.f32`);
    const r = spawnSync(process.execPath, ['dist/src/cli/main.js', 'logits', '--model', dir, '--ids', ids.join(','), '--out', out,
      '--backend', 'ts', '--threads', '1'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.ok(readFileSync(out).equals(wantLogits), 'qkd logits differs from the committed logits');
  });
}
