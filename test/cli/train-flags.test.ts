/**
 * `qkd tokenizer` and `qkd train` checked by value: the merges of a text whose merge order is worked out
 * by hand, vocabulary size and round trip; `qkd train` on its defaults (Brown, a BPE trained on it, preset
 * teacher-small) with a one-step budget; and its --text/--vocab-size/--preset/--save-dtype flags followed
 * into the saved config, tokenizer and safetensors header, the BF16/F16 weights being the roundings of
 * the F32 weights of the same run.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixture, readJson } from '../helpers.js';
import { loadTokenizer } from '../../src/data/tokenizer-node.js';
import { loadHfModelConfig } from '../../src/io/hf.js';
import { PRESETS } from '../../src/model/presets.js';

const CLI = 'dist/src/cli/main.js';
const tmp = mkdtempSync(join(tmpdir(), 'qkd-train-flags-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
const env = { ...process.env, QKD_CACHE_DIR: join(tmp, 'cache') };
const BE = ['--backend', 'wasm', '--threads', '1'];

function qkd(args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env, timeout: 120_000 });
  assert.equal(r.status, 0, `qkd ${args.join(' ')}: ${r.stderr}`);
  return r;
}

function tokenizerOut(name: string, text: string, vocab: number) {
  const file = join(tmp, `${name}.txt`), out = join(tmp, name);
  writeFileSync(file, text);
  qkd(['tokenizer', '--text', file, '--vocab-size', String(vocab), '--out', out]);
  return { json: readJson(join(out, 'tokenizer.json')), tok: loadTokenizer(out) };
}

test('qkd tokenizer: the merges worked out by hand, in order, and the vocabulary they make', () => {
  // words (with GPT-2's leading-space marker Ġ): Ġxyz x5, Ġxyq x2, Ġww, Ġaxy. Pair counts: (x,y) 8 > (Ġ,x) 7
  // -> xy; then (Ġ,xy) 7 -> Ġxy; then (Ġxy,z) 5 -> Ġxyz; then (Ġxy,q) 2 -> Ġxyq; every other pair occurs once
  const { json, tok } = tokenizerOut('handmade', ' xyz xyz xyz xyz xyz xyq xyq ww axy', 1 + 256 + 4);
  assert.deepEqual(json.model.merges, [['x', 'y'], ['Ġ', 'xy'], ['Ġxy', 'z'], ['Ġxy', 'q']]);
  assert.deepEqual(['xy', 'Ġxy', 'Ġxyz', 'Ġxyq'].map((s) => json.model.vocab[s]), [257, 258, 259, 260]);
  assert.equal(Object.keys(json.model.vocab).length, 261);
  assert.deepEqual(json.added_tokens.map((a: { id: number; content: string }) => [a.id, a.content]), [[0, '<|endoftext|>']]);
  assert.equal(tok.vocabSize, 261);
  assert.deepEqual(tok.encode(' xyz xyq xy'), [259, 260, 258]);
  assert.equal(tok.decode([259, 260, 258]), ' xyz xyq xy');
});

test('qkd tokenizer --text --vocab-size on Brown text: the vocabulary asked for, frequent words whole, exact round trip', () => {
  const text = readFileSync(fixture('brown-text', 'brown-valid.txt'), 'utf8').slice(0, 60_000);
  const { json, tok } = tokenizerOut('brown', text, 400);
  assert.equal(tok.vocabSize, 400);
  assert.equal(json.model.merges.length, 400 - 257);
  for (const w of [' the', ' of', ' and']) assert.equal(tok.encode(w).length, 1, `${JSON.stringify(w)} is one token`);
  const sentence = 'The jury said Friday: “naïve” café owners — 東京 🚀 — paid $1,000.\n';
  const ids = tok.encode(sentence);
  assert.ok(ids.every((i) => Number.isInteger(i) && i >= 0 && i < 400));
  assert.equal(tok.decode(ids), sentence);
});

test('qkd train on its defaults (Brown, BPE 2048, teacher-small): the fixture tokenizer, the preset, a near-uniform start', () => {
  const out = join(tmp, 'defaults');
  const r = qkd(['train', '--steps', '1', '--batch', '1', '--context', '16', '--warmup', '0', '--eval-windows', '1', '--out', out, ...BE]);
  assert.match(r.stderr, /Brown corpus/);
  const c = readJson(join(out, 'config.json')).train;
  assert.deepEqual([c.model, c.tokenizer, c.vocabSize, c.data, c.evalContext], [{ preset: 'teacher-small' }, null, 2048, { kind: 'brown' }, 256]);
  // the BPE trained on Brown train at 2048 is the fixture's (Hugging Face tokenizers on the same text)
  assert.deepEqual(readJson(join(out, 'tokenizer.json')), readJson(fixture('tokenizer', 'tokenizer.json')));
  const m = loadHfModelConfig(join(out, 'model'));
  for (const [k, v] of Object.entries(PRESETS['teacher-small'])) assert.equal((m as Record<string, unknown>)[k], v, `model ${k}`);
  assert.equal(m.vocabSize, 2048);
  const lines = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  // a fresh model predicts nearly uniformly: loss near ln 2048 = 7.6246 (measured 7.6139)
  assert.ok(Math.abs(lines[0].loss - Math.log(2048)) < 0.05, `step-1 loss ${lines[0].loss}`);
  assert.equal(lines.find((l) => l.valid_tokens !== undefined).valid_tokens, 255, 'one validation window of 256 tokens');
});

/** Each tensor of a safetensors file: its dtype and raw bytes (read here, not through src/io). */
function tensors(path: string): Map<string, { dtype: string; shape: number[]; bytes: Uint8Array }> {
  const b = readFileSync(path), n = Number(b.readBigUInt64LE(0));
  const h = JSON.parse(b.subarray(8, 8 + n).toString('utf8'));
  const out = new Map();
  for (const [name, e] of Object.entries<any>(h)) {
    if (name !== '__metadata__') out.set(name, { dtype: e.dtype, shape: e.shape, bytes: b.subarray(8 + n + e.data_offsets[0], 8 + n + e.data_offsets[1]) });
  }
  return out;
}
const u16 = (b: Uint8Array) => new Uint16Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
const f32 = (b: Uint8Array) => new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));

/** bfloat16 of a float32, rounded to nearest even. */
function bf16(x: number): number {
  const u = new Uint32Array(Float32Array.of(x).buffer)[0];
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}
function fromF16(h: number): number {
  const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, f = h & 0x3ff;
  return s * (e === 0 ? f * 2 ** -24 : (1 + f / 1024) * 2 ** (e - 15));
}

test('qkd train --text --vocab-size --preset --save-dtype: the config, tokenizer, architecture and weight dtype saved', () => {
  const text = join(tmp, 'text.txt');
  writeFileSync(text, readFileSync(fixture('brown-text', 'brown-test.txt'), 'utf8').slice(0, 30_000));
  const run = (dtype: string) => {
    const out = join(tmp, `flags-${dtype}`);
    qkd(['train', '--text', text, '--vocab-size', '300', '--preset', 'anchor-student', '--save-dtype', dtype, '--steps', '3',
      '--batch', '2', '--context', '16', '--warmup', '0', '--eval-every', '0', '--eval-context', '16', '--out', out, ...BE]);
    return out;
  };
  const dirs = { F32: run('F32'), BF16: run('BF16'), F16: run('F16') };
  for (const [dtype, out] of Object.entries(dirs)) {
    const c = readJson(join(out, 'config.json')).train;
    assert.deepEqual([c.data.kind, c.data.paths, c.vocabSize, c.model.preset, c.saveDtype], ['text', [text], 300, 'anchor-student', dtype]);
    assert.equal(loadTokenizer(out).vocabSize, 300);
    const m = loadHfModelConfig(join(out, 'model'));
    for (const [k, v] of Object.entries(PRESETS['anchor-student'])) assert.equal((m as Record<string, unknown>)[k], v, `${dtype}: model ${k}`);
    assert.equal(m.vocabSize, 300);
  }
  const ref = tensors(join(dirs.F32, 'model', 'model.safetensors'));
  assert.ok(ref.size >= 2 + 4 * 9, `${ref.size} tensors`);
  let f16Worst = 0;
  for (const dtype of ['BF16', 'F16'] as const) {
    const got = tensors(join(dirs[dtype], 'model', 'model.safetensors'));
    assert.deepEqual([...got.keys()].sort(), [...ref.keys()].sort());
    for (const [name, t] of got) {
      assert.equal(t.dtype, dtype, name);
      assert.deepEqual(t.shape, ref.get(name)!.shape, name);
      const x = f32(ref.get(name)!.bytes), h = u16(t.bytes);
      for (let i = 0; i < x.length; i++) {
        if (dtype === 'BF16') { assert.equal(h[i], bf16(x[i]), `${name}[${i}]: bf16 of ${x[i]}`); continue; }
        // float16: the nearest of the representable neighbours
        const d = Math.abs(fromF16(h[i]) - x[i]);
        for (const nb of [h[i] - 1, h[i] + 1]) if ((nb & 0x7fff) <= 0x7bff && nb >= 0) assert.ok(d <= Math.abs(fromF16(nb) - x[i]), `${name}[${i}]: f16 of ${x[i]}`);
        f16Worst = Math.max(f16Worst, d / Math.max(Math.abs(x[i]), 2 ** -14));
      }
    }
  }
  assert.ok(f16Worst <= 2 ** -11, `f16 relative error ${f16Worst}`); // half an f16 ulp
});
