/**
 * The commands no other test runs end to end, each checked by a value: `qkd generate` with sampling flags
 * (top-k 1 is greedy; a seed fixes the output; every sampled id lies in the top-k/top-p set of the logits
 * it was drawn from) on the float teacher and on a qkd-int8 export; `--backend ts|native` against wasm;
 * `qkd export --format onnx` run in onnxruntime against `qkd logits`; `qkd teacher-cache` resuming a
 * partial cache; `node web/serve.mjs` as a command; the example config against the fixture teacher.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixture, maxAbsDiff, readF32, readJson } from '../helpers.js';
import { loadTokenizer } from '../../src/data/tokenizer-node.js';
import { isExportDir } from '../../src/io/export.js';
import { loadHfModelConfig } from '../../src/io/hf.js';
import { loadModel } from '../../src/io/load-model.js';
import { crc32, recordLayout } from '../../src/io/teacher-cache-format.js';
import type { Backend } from '../../src/kernels/backend.js';
import { createBackend } from '../../src/kernels/registry.js';
import { loadInt8Model } from '../../src/runtime/int8-node.js';
import { generateIds, type CausalLM, type GenerateOptions } from '../../src/runtime/generate.js';
import { makeTrainConfig, readConfigFile, resolveModel } from '../../src/train/config.js';
import { tinyModel } from '../hostile/models.js';
import { idsTensor, session } from '../io/onnx-ort.js';

const CLI = 'dist/src/cli/main.js';
const TEACHER = fixture('brown-llama-teacher');
const tmp = mkdtempSync(join(tmpdir(), 'qkd-commands-'));
const env = { ...process.env, QKD_CACHE_DIR: join(tmp, 'cache') };
const text = join(tmp, 'text.txt'), valid = join(tmp, 'valid.txt');
writeFileSync(text, readFileSync(fixture('brown-text', 'brown-valid.txt'), 'utf8').slice(0, 20_000));
writeFileSync(valid, readFileSync(fixture('brown-text', 'brown-test.txt'), 'utf8').slice(0, 8_000));
const student = join(tmp, 'student'), exported = join(tmp, 'export');
let be: Backend; // wasm, 1 thread: the kernels the commands below run on

function qkd(args: string[], threads = true) {
  const r = spawnSync(process.execPath, [CLI, ...args, ...(threads ? ['--threads', '1'] : [])], { encoding: 'utf8', env, timeout: 120_000 });
  assert.equal(r.status, 0, `qkd ${args.join(' ')}: ${r.stderr}`);
  return r;
}

before(async () => {
  // a small int8, 50% block-sparse student of the fixture teacher, and its qkd-int8 export
  const arch = join(tmp, 'student.yaml');
  writeFileSync(arch, '{ preset: anchor-student, dim: 32, nLayer: 2, nHead: 2, nKVHead: 1, headDim: 16, ffnDim: 64, maxPos: 64 }\n');
  qkd(['distill', '--teacher', TEACHER, '--student-config', arch, '--text', text, '--valid', valid, '--steps', '12', '--batch', '2',
    '--context', '32', '--warmup', '0', '--lr', '0.01', '--eval-context', '32', '--eval-windows', '2', '--checkpoint-every', '0',
    '--bits', '8', '--sparsity', '0.5', '--granularity', 'block4', '--out', student, '--backend', 'wasm']);
  qkd(['export', '--model', student, '--out', exported], false);
  be = await createBackend('wasm', { threads: 1 });
});
after(async () => { await be?.dispose(); rmSync(tmp, { recursive: true, force: true }); });

const PROMPT = 'The jury said that the city';
const gen = (model: string, flags: string[]) =>
  qkd(['generate', '--model', model, '--prompt', PROMPT, '--max-new-tokens', '16', '--backend', 'wasm', ...flags]).stdout;

/** The library's generation with the CLI's options, recording the logits row each token was drawn from. */
function library(dir: string, o: GenerateOptions): { text: string; ids: number[]; rows: Float32Array[]; history: number[] } {
  const tok = loadTokenizer(dir), m: CausalLM & { dispose(): void } = isExportDir(dir) ? loadInt8Model(dir, be).model : loadModel(dir, be).model;
  const V = m.config.vocabSize, rows: Float32Array[] = [], prompt = tok.encode(PROMPT);
  const rec: CausalLM = {
    config: m.config, backend: m.backend, newCache: (B, T) => m.newCache(B, T),
    forward(ids, B, T, opt) { const l = m.forward(ids, B, T, opt); rows.push(l.slice((T - 1) * V, T * V)); return l; },
  };
  const ids: number[] = [];
  try {
    for (const id of generateIds(rec, prompt, { maxNewTokens: 16, stopIds: [tok.eosId!], ...o })) {
      if (id === tok.eosId) break;
      ids.push(id);
    }
  } finally { m.dispose(); }
  return { text: PROMPT + tok.decode(ids) + '\n', ids, rows, history: prompt };
}

/** The ids sampling may draw from a row: repetition penalty on the ids seen, the k best, then the smallest prefix holding p of the mass. */
function allowed(row: Float32Array, seen: number[], o: { topK: number; topP: number; temperature: number; penalty: number }): Set<number> {
  const z = Array.from(row);
  for (const id of new Set(seen)) z[id] = z[id] > 0 ? z[id] / o.penalty : z[id] * o.penalty;
  const order = z.map((_, j) => j).sort((a, b) => z[b] - z[a]).slice(0, o.topK);
  const w = order.map((j) => Math.exp((z[j] - z[order[0]]) / o.temperature)), total = w.reduce((s, x) => s + x, 0);
  let acc = 0, keep = 0;
  while (keep < order.length && acc < o.topP * total) acc += w[keep++];
  return new Set(order.slice(0, keep));
}

function checkSampled(r: ReturnType<typeof library>, o: Parameters<typeof allowed>[2], V: number): void {
  const seen = [...r.history];
  r.ids.forEach((id, n) => {
    assert.ok(id >= 0 && id < V, `token ${n}: id ${id}`);
    assert.ok(allowed(r.rows[n], seen, o).has(id), `token ${n}: id ${id} outside the top-${o.topK} / top-${o.topP} set`);
    seen.push(id);
  });
}

test('generate on the teacher: top-k 1 is greedy; a seed fixes the sample; every sampled id in its top-k/top-p set', () => {
  const greedy = gen(TEACHER, ['--greedy']);
  assert.equal(gen(TEACHER, ['--top-k', '1', '--temperature', '1.7', '--seed', '11']), greedy);
  assert.equal(greedy, library(TEACHER, { greedy: true }).text);
  const flags = ['--temperature', '0.9', '--top-k', '20', '--top-p', '0.9', '--repetition-penalty', '1.3'];
  const a = gen(TEACHER, [...flags, '--seed', '5']), b = gen(TEACHER, [...flags, '--seed', '5']), c = gen(TEACHER, [...flags, '--seed', '6']);
  assert.equal(a, b, 'same seed, same text');
  assert.notEqual(a, c, 'another seed, another text');
  assert.notEqual(a, greedy);
  const lib = library(TEACHER, { temperature: 0.9, topK: 20, topP: 0.9, repetitionPenalty: 1.3, seed: 5 });
  assert.equal(a, lib.text, 'the CLI draws what the library draws with the same options');
  assert.equal(lib.ids.length, 16);
  checkSampled(lib, { topK: 20, topP: 0.9, temperature: 0.9, penalty: 1.3 }, 2048);
});

test('generate on a qkd-int8 export: top-k 1 is greedy, as the int8 runtime decodes; sampled ids in the top-k set', () => {
  const greedy = gen(exported, ['--greedy']);
  assert.equal(gen(exported, ['--top-k', '1', '--temperature', '1.3', '--seed', '2']), greedy);
  assert.equal(greedy, library(exported, { greedy: true }).text);
  const sampled = gen(exported, ['--top-k', '5', '--seed', '4']), lib = library(exported, { topK: 5, seed: 4 });
  assert.equal(sampled, lib.text);
  assert.notEqual(sampled, greedy);
  checkSampled(lib, { topK: 5, topP: 1, temperature: 1, penalty: 1 }, 2048);
});

test('--backend ts and native evaluate as wasm does', (t) => {
  const evalText = join(tmp, 'eval.txt');
  writeFileSync(evalText, readFileSync(valid, 'utf8').slice(0, 250)); // 2 windows of 32 tokens
  const ev = (b: string) => JSON.parse(qkd(['eval', '--model', TEACHER, '--text', evalText, '--context', '32', '--json', '--backend', b]).stdout);
  const w = ev('wasm');
  assert.equal(w.tokens, 2 * 31);
  for (const b of ['ts', 'native']) {
    const r = ev(b);
    assert.equal(r.tokens, w.tokens, b);
    assert.equal(r.top1, w.top1, b);
    t.diagnostic(`${b}: nll ${r.nll} vs wasm ${w.nll}: relative ${Math.abs(r.nll / w.nll - 1)}`);
    // measured relative differences: ts 5.8e-8 (float64 sums), native 4.4e-8 (OpenBLAS products)
    assert.ok(Math.abs(r.nll - w.nll) < 1.5e-7 * w.nll, `${b}: nll ${r.nll} vs wasm ${w.nll}`);
  }
});

test('export --format onnx: onnxruntime loads the file and its logits match qkd logits', async (t) => {
  const onnx = join(tmp, 'student.onnx'), ids = loadTokenizer(TEACHER).encode(readFileSync(valid, 'utf8')).slice(0, 48);
  const r = qkd(['export', '--model', student, '--format', 'onnx', '--out', onnx], false);
  assert.match(r.stderr, /student\.onnx: \d+ bytes, opset \d+/);
  const want = join(tmp, 'student.f32');
  qkd(['logits', '--model', student, '--ids', ids.join(','), '--out', want, '--backend', 'wasm']);
  const s = await session(onnx);
  try {
    const got = (await s.run({ input_ids: idsTensor([ids]) })).logits;
    assert.deepEqual(got.dims, [1, 48, 2048]);
    const d = maxAbsDiff(got.data as Float32Array, readF32(want));
    t.diagnostic(`onnxruntime vs qkd logits: max |diff| ${d}`);
    assert.ok(d < 1e-6, `max |logit diff| ${d}`); // measured 3.6e-7
  } finally { await s.release(); }
});

test('teacher-cache resumes a partial cache (a torn last record): kept records untouched, the result byte-identical', () => {
  const teacher = tinyModel(join(tmp, 'tiny-teacher')), small = join(tmp, 'cache-text.txt');
  writeFileSync(small, readFileSync(text, 'utf8').slice(0, 4000));
  const args = (out: string) => ['teacher-cache', '--teacher', teacher, '--text', small, '--context', '16', '--batch', '4', '--out', out, '--backend', 'wasm'];
  const whole = join(tmp, 'cache-whole'), part = join(tmp, 'cache-part');
  qkd(args(whole));
  const header = readJson(join(whole, 'cache.json')), data = readFileSync(join(whole, 'windows.bin'));
  const R = header.recordBytes, L = recordLayout(header);
  assert.ok(header.complete && header.windows >= 20 && data.length === header.windows * R, `${header.windows} windows`);
  // the partial cache a killed build leaves: header not complete, 9 whole records and half of the 10th;
  // record 1 altered (with a valid CRC), to see that a resumed build keeps what it finds
  mkdirSync(part);
  copyFileSync(join(whole, '.qkd-output.json'), join(part, '.qkd-output.json'));
  writeFileSync(join(part, 'cache.json'), JSON.stringify({ ...header, complete: false, windows: 0 }, null, 1) + '\n');
  const partial = Buffer.from(data.subarray(0, 9.5 * R));
  partial[R + L.logits] ^= 0x01;
  partial.writeUInt32LE(crc32(partial.subarray(R, R + L.crc)), R + L.crc);
  writeFileSync(join(part, 'windows.bin'), partial);
  qkd(args(part));
  const got = readFileSync(join(part, 'windows.bin'));
  assert.equal(got.length, data.length);
  assert.ok(got.subarray(R, 2 * R).equals(partial.subarray(R, 2 * R)), 'record 1 kept as found (not recomputed)');
  got.set(data.subarray(R, 2 * R), R);
  assert.ok(got.equals(data), 'every other byte as an uninterrupted build');
  assert.equal(readFileSync(join(part, 'cache.json'), 'utf8'), readFileSync(join(whole, 'cache.json'), 'utf8'));
});

/** One GET with the path sent as given (no client-side normalisation). */
function get(port: number, path: string): Promise<{ status: number; body: Buffer }> {
  return new Promise((ok, fail) => {
    const req = request({ host: '127.0.0.1', port, path, timeout: 5000 }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c) => parts.push(c)).on('end', () => ok({ status: res.statusCode ?? 0, body: Buffer.concat(parts) }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${path}: timeout`))).on('error', fail).end();
  });
}

test('web/serve.mjs as a command: prints its URL, serves the page and the model, refuses paths outside, stops', async () => {
  writeFileSync(join(tmp, 'secret.txt'), 'top-secret');
  const child = spawn(process.execPath, ['web/serve.mjs', '--port', '0', '--model', exported], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<number | null>((ok) => child.on('exit', (code, signal) => ok(signal ? -1 : code)));
  try {
    const url = await new Promise<string>((ok, fail) => {
      const timer = setTimeout(() => fail(new Error('serve.mjs printed no URL within 10 s')), 10_000);
      let out = '';
      child.stdout.setEncoding('utf8').on('data', (c: string) => {
        out += c;
        const m = /qkd demo: (http:\/\/127\.0\.0\.1:\d+\/web\/\?model=\/model\/)/.exec(out);
        if (m) { clearTimeout(timer); ok(m[1]); }
      });
      child.on('exit', () => { clearTimeout(timer); fail(new Error(`serve.mjs exited: ${out}`)); });
    });
    const port = Number(new URL(url).port);
    const page = await get(port, '/web/');
    assert.equal(page.status, 200);
    assert.ok(page.body.equals(readFileSync('web/index.html')), 'the page is web/index.html');
    for (const f of ['config.json', 'model.safetensors']) {
      const r = await get(port, `/model/${f}`);
      assert.equal(r.status, 200, f);
      assert.ok(r.body.equals(readFileSync(join(exported, f))), `${f} served byte for byte`);
    }
    for (const p of ['/model/..%2fsecret.txt', '/model/%2e%2e/secret.txt', '/package.json', '/web/../README.md']) {
      const r = await get(port, p);
      assert.ok(r.status === 403 || r.status === 404, `${p}: ${r.status}`);
      assert.ok(!r.body.includes('top-secret') && !r.body.includes('"name": "qkd"'), `${p} leaked`);
    }
  } finally {
    child.kill('SIGTERM');
    const code = await Promise.race([exited, new Promise((ok) => setTimeout(() => ok('timeout'), 5000))]);
    if (code === 'timeout') child.kill('SIGKILL');
    assert.notEqual(code, 'timeout', 'serve.mjs stopped on SIGTERM within 5 s');
  }
});

test('examples/teacher-fixture.yaml: the fixture teacher\'s architecture and tokenizer, and its recipe', () => {
  const f = 'examples/teacher-fixture.yaml', c = makeTrainConfig(readConfigFile(f), {}, f);
  const want = loadHfModelConfig(TEACHER), got = resolveModel(c.model, want.vocabSize, f);
  for (const k of ['family', 'dim', 'nLayer', 'nHead', 'nKVHead', 'headDim', 'ffnDim', 'maxPos', 'norm', 'normEps', 'pos', 'ropeTheta', 'act',
    'gated', 'bias', 'tieEmbeddings'] as const) assert.equal(got[k], want[k], k);
  assert.deepEqual(readJson(c.tokenizer!), readJson(fixture('tokenizer', 'tokenizer.json')));
  // fixtures/README.md: 600 steps of 64 x 256 tokens of Brown train
  assert.deepEqual([c.data.kind, c.steps, c.batch, c.context], ['brown', 600, 64, 256]);
});
