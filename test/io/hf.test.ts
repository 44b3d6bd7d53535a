import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { loadHfModel, saveHfModel } from '../../src/io/hf.js';
import { readSafetensors, writeSafetensors, type TensorToWrite } from '../../src/io/safetensors.js';
import { makeModelConfig, paramLayout, studentConfig } from '../../src/model/config.js';
import { QkdError } from '../../src/tensor/errors.js';

const FIX = resolve(process.cwd(), '..', 'shared', 'fixtures');
if (!existsSync(join(FIX, 'tiny-llama', 'model.safetensors'))) {
  throw new Error(`fixtures not found at ${FIX} (expected ../shared/fixtures relative to the repo root)`);
}
const TMP = mkdtempSync(join(tmpdir(), 'qkd-hf-'));
process.on('exit', () => rmSync(TMP, { recursive: true, force: true }));
let tmpCount = 0;
const tmpDir = () => join(TMP, `d${tmpCount++}`);

function throwsQkd(fn: () => unknown, parts: string[], code?: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof QkdError, `expected QkdError, got ${String(e)}`);
    for (const p of parts) assert.ok(e.message.includes(p), `message ${JSON.stringify(e.message)} lacks ${JSON.stringify(p)}`);
    if (code) assert.equal(e.code, code, e.message);
    return true;
  });
}

/** A copy of a fixture directory with an edited config.json and optionally replaced weights. */
function variant(name: string, edit: (cfg: Record<string, unknown>) => void,
  weights?: (orig: Map<string, Float32Array>) => Map<string, Float32Array>): string {
  const dir = tmpDir();
  mkdirSync(dir);
  const cfg = JSON.parse(readFileSync(join(FIX, name, 'config.json'), 'utf8'));
  edit(cfg);
  writeFileSync(join(dir, 'config.json'), JSON.stringify(cfg));
  const src = join(FIX, name, 'model.safetensors');
  if (!weights) { copyFileSync(src, join(dir, 'model.safetensors')); return dir; }
  const f = readSafetensors(src);
  const orig = new Map([...f.tensors.keys()].map((k) => [k, f.getF32(k)]));
  // Shapes follow the data arrays, so the edit may rename or reuse tensors.
  const shapes = new Map([...orig].map(([k, v]) => [v, f.get(k).shape]));
  const out: Record<string, TensorToWrite> = {};
  for (const [k, v] of weights(orig)) out[k] = { dtype: 'F32', shape: shapes.get(v) ?? [v.length], data: v };
  writeSafetensors(join(dir, 'model.safetensors'), out, { format: 'pt' });
  return dir;
}

function checkShapes(m: ReturnType<typeof loadHfModel>): void {
  const layout = paramLayout(m.config);
  assert.equal(m.tensors.size, layout.length);
  for (const p of layout) assert.equal(m.tensors.get(p.name)?.length, p.size, p.name);
}

/** Every tensor of the original file has identical dtype, shape and bytes in the re-saved file. */
function sameFileTensors(origPath: string, savedPath: string): void {
  const a = readSafetensors(origPath), b = readSafetensors(savedPath);
  assert.deepEqual([...a.tensors.keys()].sort(), [...b.tensors.keys()].sort());
  for (const [k, t] of a.tensors) {
    const u = b.get(k);
    assert.equal(u.dtype, t.dtype, k);
    assert.deepEqual(u.shape, t.shape, k);
    assert.ok(Buffer.from(u.bytes).equals(Buffer.from(t.bytes)), `bytes of ${k}`);
  }
}

// Expected values decoded from the fixture files with python3's struct module.
test('tiny-gpt2: config, shapes, Conv1D split/transpose, out-of-vocab bos/eos', () => {
  const m = loadHfModel(join(FIX, 'tiny-gpt2'));
  const c = m.config;
  assert.deepEqual([c.family, c.vocabSize, c.dim, c.nLayer, c.nHead, c.nKVHead, c.headDim, c.ffnDim, c.maxPos],
    ['gpt2', 2048, 64, 2, 4, 4, 16, 256, 128]);
  assert.deepEqual([c.norm, c.normEps, c.pos, c.act, c.gated, c.bias, c.tieEmbeddings], ['layernorm', 1e-5, 'learned', 'gelu_tanh', false, true, true]);
  assert.equal(c.bosTokenId, null); assert.equal(c.eosTokenId, null);
  assert.equal(m.warnings.length, 2);
  assert.match(m.warnings.join('\n'), /bos_token_id 50256 is outside the vocabulary of 2048/);
  assert.equal(m.dtype, 'F32');
  checkShapes(m);
  const T = (n: string) => m.tensors.get(n)!;
  assert.equal(T('embed.weight')[5 * 64 + 7], 0.011801564134657383);
  assert.equal(T('layers.0.k.weight')[6 * 64 + 3], -0.04636932164430618); // c_attn.weight[3][70]
  assert.equal(T('layers.1.v.bias')[2], -0.013786112889647484); // c_attn.bias[130]
  assert.equal(T('layers.1.up.weight')[200 * 64 + 10], 0.010867377743124962); // c_fc.weight[10][200]
  assert.equal(T('layers.0.down.weight')[5 * 256 + 100], 0.009484535083174706); // mlp.c_proj.weight[100][5]
  assert.equal(T('layers.0.o.weight')[2 * 64 + 1], 0.011349248699843884); // attn.c_proj.weight[1][2]
  assert.equal(T('final_norm.bias')[0], -0.042435530573129654);
  assert.equal(T('final_norm.weight')[3], 1.0471757650375366);
  assert.equal(T('pos_embed.weight')[127 * 64 + 63], -0.013628283515572548);
});

test('tiny-llama: config (GQA, untied head, rope_parameters) and values', () => {
  const m = loadHfModel(join(FIX, 'tiny-llama'));
  const c = m.config;
  assert.deepEqual([c.family, c.vocabSize, c.dim, c.nLayer, c.nHead, c.nKVHead, c.headDim, c.ffnDim, c.maxPos],
    ['llama', 2048, 64, 2, 4, 2, 16, 160, 128]);
  assert.deepEqual([c.norm, c.normEps, c.pos, c.ropeTheta, c.act, c.gated, c.bias, c.tieEmbeddings, c.bosTokenId, c.eosTokenId],
    ['rmsnorm', 1e-6, 'rope', 10000, 'silu', true, false, false, 1, 2]);
  assert.deepEqual(m.warnings, []);
  checkShapes(m);
  const T = (n: string) => m.tensors.get(n)!;
  assert.equal(T('lm_head.weight')[2047 * 64 + 63], -0.028245732188224792);
  assert.equal(T('layers.1.k.weight')[31 * 64 + 0], -0.01982717216014862);
  assert.equal(T('final_norm.weight')[10], 1.0110142230987549);
  assert.equal(T('layers.0.down.weight')[63 * 160 + 159], -0.014044402167201042);
  assert.equal(T('embed.weight')[100 * 64 + 1], -0.02102603018283844);
  assert.equal(m.hfConfig.model_type, 'llama');
});

test('brown-llama-teacher: bf16 weights decoded exactly', () => {
  const m = loadHfModel(join(FIX, 'brown-llama-teacher'));
  const c = m.config;
  assert.deepEqual([c.dim, c.nLayer, c.nHead, c.nKVHead, c.headDim, c.ffnDim, c.maxPos, c.normEps, c.tieEmbeddings, c.bosTokenId],
    [256, 6, 8, 4, 32, 688, 512, 1e-5, true, 0]);
  assert.equal(m.dtype, 'BF16');
  assert.deepEqual(m.warnings, []);
  checkShapes(m);
  assert.equal(paramLayout(c).reduce((s, p) => s + p.size, 0), 4877568);
  const T = (n: string) => m.tensors.get(n)!;
  assert.deepEqual([...T('embed.weight').subarray(0, 4)], [-0.154296875, 0.091796875, 0.0223388671875, 0.05126953125]);
  assert.equal(T('layers.5.down.weight')[255 * 688 + 687], -0.032958984375);
  assert.equal(T('layers.3.v.weight')[127 * 256 + 255], -0.00069427490234375);
  assert.equal(T('final_norm.weight')[0], 1.4296875);
  assert.equal(T('layers.2.attn_norm.weight')[17], 0.9140625);
  let sum = 0;
  for (const v of T('embed.weight')) sum += v;
  assert.ok(Math.abs(sum - 516.8965711630881) < 1e-9, String(sum));
});

test('save -> load round trips are exact and reproduce the original files byte for byte', () => {
  for (const [name, dtype] of [['tiny-gpt2', 'F32'], ['tiny-llama', 'F32'], ['brown-llama-teacher', 'BF16']] as const) {
    const m = loadHfModel(join(FIX, name));
    const dir = tmpDir();
    const r = saveHfModel(dir, m.config, m.tensors, { dtype, files: { 'tokenizer.json': '{"x":1}' }, extraConfig: { qkd_note: 'rt' } });
    assert.ok(r.files['model.safetensors'] > 0);
    assert.deepEqual(readdirSync(dir).sort(), ['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json']);
    sameFileTensors(join(FIX, name, 'model.safetensors'), join(dir, 'model.safetensors'));
    const back = loadHfModel(dir);
    assert.deepEqual(back.config, { ...m.config });
    assert.equal(back.hfConfig.qkd_note, 'rt');
    for (const [k, v] of m.tensors) assert.ok(Buffer.from(back.tensors.get(k)!.buffer).equals(Buffer.from(v.buffer)), `${name} ${k}`);
  }
  const saved = JSON.parse(readFileSync(join(TMP, 'd' + (tmpCount - 1), 'config.json'), 'utf8'));
  assert.equal(saved.rope_theta, 10000);
  assert.deepEqual(saved.rope_parameters, { rope_type: 'default', rope_theta: 10000 });
  assert.equal(saved.dtype, 'bfloat16');
});

test('F16 export rounds within half precision; sharded export loads back', () => {
  const m = loadHfModel(join(FIX, 'tiny-llama'));
  const dir = tmpDir();
  saveHfModel(dir, m.config, m.tensors, { dtype: 'F16' });
  const h = loadHfModel(dir);
  assert.equal(h.dtype, 'F16');
  for (const [k, v] of m.tensors) {
    const w = h.tensors.get(k)!;
    for (let i = 0; i < v.length; i++) assert.ok(Math.abs(w[i] - v[i]) <= Math.abs(v[i]) * 2 ** -11 + 2 ** -25, k);
  }
  const sh = tmpDir();
  const r = saveHfModel(sh, m.config, m.tensors, { maxShardBytes: 600_000 });
  assert.ok(r.files['model.safetensors.index.json'] > 0);
  assert.equal(Object.keys(r.files).filter((f) => f.endsWith('.safetensors')).length, 3);
  const s = loadHfModel(sh);
  for (const [k, v] of m.tensors) assert.deepEqual(s.tensors.get(k), v, k);
});

test('student family saves as qkd-student and loads back', () => {
  const c = studentConfig({ vocabSize: 64, dim: 16, nLayer: 2, nHead: 2, maxPos: 32 });
  const t = new Map(paramLayout(c).map((p, j) => [p.name, Float32Array.from({ length: p.size }, (_, i) => Math.sin(i * 7 + j))]));
  const dir = tmpDir();
  saveHfModel(dir, c, t, { extraConfig: { qkd_note: { bits: 8 } } });
  const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  assert.equal(cfg.model_type, 'qkd-student');
  assert.equal(cfg.dim, 16);
  const m = loadHfModel(dir);
  assert.deepEqual(m.config, { ...c });
  assert.deepEqual(m.hfConfig.qkd_note, { bits: 8 });
  for (const [k, v] of t) assert.deepEqual(m.tensors.get(k), v);
  throwsQkd(() => saveHfModel(tmpDir(), c, t, { extraConfig: { dim: 3 } }), ['"dim"'], 'E_CONFIG');
  throwsQkd(() => saveHfModel(tmpDir(), c, t, { files: { 'config.json': '{}' } }), ['config.json'], 'E_INPUT');
  const missing = new Map(t); missing.delete('layers.1.up.bias');
  throwsQkd(() => saveHfModel(tmpDir(), c, missing), ['"layers.1.up.bias"'], 'E_MISSING');
  const wrong = new Map(t); wrong.set('embed.weight', new Float32Array(3));
  throwsQkd(() => saveHfModel(tmpDir(), c, wrong), ['"embed.weight"'], 'E_SHAPE');
  const extra = new Map(t); extra.set('bogus', new Float32Array(1));
  throwsQkd(() => saveHfModel(tmpDir(), c, extra), ['"bogus"'], 'E_INPUT');
  const rms = makeModelConfig({ ...c, family: 'gpt2', norm: 'rmsnorm' });
  throwsQkd(() => saveHfModel(tmpDir(), rms, new Map([...t].filter(([k]) => !k.endsWith('norm.bias')))), ['gpt2', 'layernorm'], 'E_UNSUPPORTED');
});

test('config.json defects name config.json and the field', () => {
  const cfgErr = (name: string, edit: (c: Record<string, unknown>) => void, parts: string[], code: string) =>
    throwsQkd(() => loadHfModel(variant(name, edit)), ['config.json', ...parts], code);
  cfgErr('tiny-llama', (c) => { c.model_type = 'bert'; }, ['model_type', 'bert'], 'E_UNSUPPORTED');
  cfgErr('tiny-llama', (c) => { delete c.model_type; }, ['model_type'], 'E_MISSING');
  cfgErr('tiny-llama', (c) => { delete c.hidden_size; }, ['hidden_size'], 'E_MISSING');
  cfgErr('tiny-llama', (c) => { c.num_hidden_layers = '2'; }, ['num_hidden_layers'], 'E_CONFIG');
  cfgErr('tiny-llama', (c) => { c.num_key_value_heads = 3; }, ['num_key_value_heads'], 'E_CONFIG');
  cfgErr('tiny-llama', (c) => { c.rope_parameters = { rope_type: 'yarn', rope_theta: 1e4, factor: 4 }; }, ['rope_parameters', 'yarn'], 'E_UNSUPPORTED');
  cfgErr('tiny-llama', (c) => { c.rope_scaling = { type: 'linear', factor: 2 }; }, ['rope_scaling', 'linear'], 'E_UNSUPPORTED');
  cfgErr('tiny-llama', (c) => { c.rope_theta = 500000; }, ['rope_theta', 'rope_parameters.rope_theta'], 'E_CONFIG');
  cfgErr('tiny-llama', (c) => { c.hidden_act = 'quick_gelu'; }, ['hidden_act', 'quick_gelu'], 'E_UNSUPPORTED');
  cfgErr('tiny-llama', (c) => { c.eos_token_id = 'x'; }, ['eos_token_id'], 'E_CONFIG');
  cfgErr('tiny-gpt2', (c) => { delete c.n_embd; }, ['n_embd'], 'E_MISSING');
  cfgErr('tiny-gpt2', (c) => { c.activation_function = 'tanh'; }, ['activation_function'], 'E_UNSUPPORTED');
  cfgErr('tiny-gpt2', (c) => { c.scale_attn_by_inverse_layer_idx = true; }, ['scale_attn_by_inverse_layer_idx'], 'E_UNSUPPORTED');
  const bad = tmpDir(); mkdirSync(bad); writeFileSync(join(bad, 'config.json'), '{"model_type": ');
  throwsQkd(() => loadHfModel(bad), ['config.json', 'JSON'], 'E_FORMAT');
  throwsQkd(() => loadHfModel(join(TMP, 'absent')), ['config.json'], 'E_MISSING');
});

test('config spellings: top-level rope_theta, eos lists, gpt2 without prefix, n_inner', () => {
  const old = loadHfModel(variant('tiny-llama', (c) => { delete c.rope_parameters; c.rope_theta = 500000; c.eos_token_id = [5000, 2, 1]; }));
  assert.equal(old.config.ropeTheta, 500000);
  assert.equal(old.config.eosTokenId, 2);
  assert.match(old.warnings.join('\n'), /eos_token_id is a list/);
  const genDir = variant('tiny-llama', (c) => { delete c.eos_token_id; c.bos_token_id = null; });
  writeFileSync(join(genDir, 'generation_config.json'), JSON.stringify({ bos_token_id: 1, eos_token_id: [2] }));
  const gen = loadHfModel(genDir);
  assert.deepEqual([gen.config.bosTokenId, gen.config.eosTokenId], [1, 2]);
  const bare = loadHfModel(variant('tiny-gpt2', () => {}, (o) => new Map([...o].map(([k, v]) => [k.replace(/^transformer\./, ''), v]))));
  const ref = loadHfModel(join(FIX, 'tiny-gpt2'));
  for (const [k, v] of ref.tensors) assert.deepEqual(bare.tensors.get(k), v, k);
  const inner = () => loadHfModel(variant('tiny-gpt2', (c) => { c.n_inner = 128; }));
  throwsQkd(inner, ['model.safetensors', 'transformer.h.0.mlp.c_fc.weight', '[64, 256]', '[64, 128]'], 'E_SHAPE');
});

test('weights defects: wrong shape, missing tensor, extra tensors, tied lm_head, biases', () => {
  throwsQkd(() => loadHfModel(variant('tiny-llama', (c) => { c.intermediate_size = 128; })),
    ['model.safetensors', 'model.layers.0.mlp.gate_proj.weight', '[160, 64]', '[128, 64]'], 'E_SHAPE');
  throwsQkd(() => loadHfModel(variant('tiny-llama', () => {}, (o) => { o.delete('model.norm.weight'); return o; })),
    ['model.safetensors', 'model.norm.weight'], 'E_MISSING');
  throwsQkd(() => loadHfModel(variant('tiny-llama', (c) => { c.tie_word_embeddings = true; c.vocab_size = 4096; })),
    ['model.safetensors', 'model.embed_tokens.weight'], 'E_SHAPE');
  const extra = loadHfModel(variant('tiny-llama', () => {}, (o) => o.set('model.layers.0.self_attn.rotary_emb.inv_freq', new Float32Array(8)).set('extra.w', new Float32Array(2))));
  assert.equal(extra.warnings.length, 1);
  assert.match(extra.warnings[0], /1 unused tensor\(s\): extra\.w/);
  // A tied llama whose file also stores lm_head (equal to the embedding) loads silently.
  const tied = loadHfModel(variant('tiny-llama', (c) => { c.tie_word_embeddings = true; },
    (o) => o.set('lm_head.weight', o.get('model.embed_tokens.weight')!)));
  assert.deepEqual(tied.warnings, []);
  assert.equal(tied.tensors.has('lm_head.weight'), false);
  // attention_bias with all-zero biases: dropped; with real values: kept, MLP biases zero-filled.
  const addBias = (val: number) => (o: Map<string, Float32Array>) => {
    for (let l = 0; l < 2; l++) for (const x of ['q', 'k', 'v', 'o']) {
      const rows = x === 'k' || x === 'v' ? 32 : 64;
      o.set(`model.layers.${l}.self_attn.${x}_proj.bias`, new Float32Array(rows).fill(val));
    }
    return o;
  };
  const zero = loadHfModel(variant('tiny-llama', (c) => { c.attention_bias = true; }, addBias(0)));
  assert.equal(zero.config.bias, false);
  assert.match(zero.warnings.join('\n'), /every bias is zero/);
  checkShapes(zero);
  const real = loadHfModel(variant('tiny-llama', (c) => { c.attention_bias = true; }, addBias(0.5)));
  assert.equal(real.config.bias, true);
  checkShapes(real);
  assert.equal(real.tensors.get('layers.1.k.bias')![31], 0.5);
  assert.ok(real.tensors.get('layers.0.gate.bias')!.every((v) => v === 0));
  assert.match(real.warnings.join('\n'), /zero biases were added for the MLP/);
  throwsQkd(() => loadHfModel(variant('tiny-llama', (c) => { c.attention_bias = true; })),
    ['model.safetensors', 'model.layers.0.self_attn.q_proj.bias'], 'E_MISSING');
});
