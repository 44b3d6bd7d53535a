/**
 * ONNX export: the key/value-cache variant (prefill + one-token steps reproduce the full forward and
 * the reference greedy decoding) and configurations without a PyTorch fixture (students with
 * per-token activation fake quantization, top-k attention, GQA + RoPE + biases), checked against
 * qkd's own forward, which the parity tests tie to the fixtures.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { exportOnnx } from '../../src/io/onnx.js';
import { decodeModel } from '../../src/io/onnx-proto.js';
import { TsBackend } from '../../src/kernels/ts/backend.js';
import { loadModel } from '../../src/io/load-model.js';
import type { ModelConfig, ModelConfigInput } from '../../src/model/config.js';
import { fixture, maxAbsDiff, readF32, readJson } from '../helpers.js';
import { HF_LOGIT_TOL } from '../model/parity-check.js';
import {
  argmax, cleanupTmp, emptyPast, idsTensor, nextPast, ort, session, tmpDir, top1Agreement, writeRandomModel,
} from './onnx-ort.js';

after(cleanupTmp);

test('onnx kv-cache: prefill + single-token steps equal the reference logits; greedy decoding matches', async (t) => {
  for (const name of ['tiny-llama', 'tiny-gpt2'] as const) {
    const ref = readJson(fixture(name, 'reference.json'));
    const r = exportOnnx(fixture(name), join(tmpDir(name), 'kv.onnx'), { kvCache: true });
    const c = r.config, V = c.vocabSize, s = await session(r.out);
    const rows: number[][] = ref.input_ids, B = rows.length, T = rows[0].length, P0 = 24;
    const want = readF32(fixture(name, 'reference-logits.f32'));
    // prefill P0 tokens, then one token per step; collect logits as (B, T, V)
    const got = new Float32Array(B * T * V);
    let out = await s.run({ input_ids: idsTensor(rows.map((r) => r.slice(0, P0))), ...emptyPast(c, B) });
    const put = (o: ort.InferenceSession.OnnxValueMapType, t0: number, n: number) => {
      const d = o.logits.data as Float32Array;
      for (let b = 0; b < B; b++) got.set(d.subarray(b * n * V, (b + 1) * n * V), (b * T + t0) * V);
    };
    put(out, 0, P0);
    for (let i = P0; i < T; i++) {
      out = await s.run({ input_ids: idsTensor(rows.map((r) => [r[i]])), ...nextPast(c, out) });
      put(out, i, 1);
    }
    assert.deepEqual(out[r.outputs[1]].dims, [B, c.nKVHead, T, c.headDim]);
    const diff = maxAbsDiff(got, want);
    t.diagnostic(`${name} kv-cache: max |logit diff| ${diff.toExponential(2)} (tol ${HF_LOGIT_TOL[name]}; measured 3.58e-7 for both)`);
    assert.ok(diff < HF_LOGIT_TOL[name], `${name}: kv-cache logits differ by ${diff}`);
    // greedy decoding through the cache
    const prompt: number[] = ref.greedy_prompt_ids, expected: number[] = ref.greedy_output_ids;
    const seq = [...prompt];
    out = await s.run({ input_ids: idsTensor([prompt]), ...emptyPast(c, 1) });
    while (seq.length < expected.length) {
      const d = out.logits.data as Float32Array, n = out.logits.dims[1];
      seq.push(argmax(d, (n - 1) * V, V));
      out = await s.run({ input_ids: idsTensor([[seq[seq.length - 1]]]), ...nextPast(c, out) });
    }
    assert.deepEqual(seq, expected);
    await s.release();
  }
});

/** qkd's forward (ts backend) vs the ONNX export in onnxruntime on the same ids; full and cached. */
async function compareWithQkd(tag: string, input: ModelConfigInput, opset?: number, B = 2, T = 21) {
  const { dir, config } = writeRandomModel(tag, input);
  const be = new TsBackend();
  const { model } = loadModel(dir, be);
  const rows = Array.from({ length: B }, (_, b) => Array.from({ length: T }, (_, i) => (i * 37 + b * 101 + 5) % config.vocabSize));
  const want = model.forward(rows.flat(), B, T).slice();
  model.dispose();
  const r = exportOnnx(dir, join(dir, '..', 'model.onnx'), { opset });
  const s = await session(r.out);
  const got = (await s.run({ input_ids: idsTensor(rows) })).logits.data as Float32Array;
  await s.release();
  const rk = exportOnnx(dir, join(dir, '..', 'kv.onnx'), { kvCache: true, opset });
  const sk = await session(rk.out);
  const pre = await sk.run({ input_ids: idsTensor(rows.map((x) => x.slice(0, T - 1))), ...emptyPast(config, B) });
  const step = await sk.run({ input_ids: idsTensor(rows.map((x) => [x[T - 1]])), ...nextPast(config, pre) });
  await sk.release();
  const V = config.vocabSize, last = new Float32Array(B * V);
  for (let b = 0; b < B; b++) last.set(want.subarray(((b + 1) * T - 1) * V, (b + 1) * T * V), b * V);
  return { config, got, want, out: r.out, stepDiff: maxAbsDiff(step.logits.data as Float32Array, last) };
}

function student(extra: Partial<ModelConfigInput>): ModelConfigInput {
  return {
    family: 'student', vocabSize: 96, dim: 32, nLayer: 2, nHead: 4, nKVHead: 4, headDim: 8, ffnDim: 128, maxPos: 64,
    norm: 'layernorm', normEps: 1e-5, pos: 'learned', act: 'relu', gated: false, bias: true, tieEmbeddings: true,
    ...extra,
  };
}

const QAT = (actBits: number) => ({ bits: 8, embedBits: 8, actBits, scheme: 'maxabs' as const });

/**
 * opset 21 on one case: reductions take their axes as an input from opset 18 on. Tolerances ~3x the
 * measured max |logit diff| (full pass / cached step): act8 5.96e-7 / 2.38e-7, act4-topk 7.15e-7 /
 * 1.19e-7, llama 4.77e-7 / 3.58e-7, gelu-erf 5.96e-7 / 4.77e-7.
 */
const STUDENTS: { tag: string; input: ModelConfigInput; tol: number; opset?: number }[] = [
  { tag: 'student-act8', input: student({ quant: QAT(8) }), tol: 2e-6 },
  { tag: 'student-act4-topk-opset21', input: student({ quant: QAT(4), attnTopK: 5 }), tol: 2e-6, opset: 21 },
  {
    tag: 'llama-gqa-bias-act8',
    input: student({
      family: 'llama', nKVHead: 2, norm: 'rmsnorm', pos: 'rope', act: 'silu', gated: true, bias: true,
      tieEmbeddings: false, ffnDim: 80, quant: QAT(8),
    }),
    tol: 2e-6,
  },
  { tag: 'gpt2-gelu-erf', input: student({ family: 'gpt2', act: 'gelu', tieEmbeddings: false }), tol: 2e-6 },
];

for (const st of STUDENTS) {
  test(`onnx: ${st.tag} export equals qkd's forward (full and cached)`, async (t) => {
    const { config, got, want, stepDiff, out } = await compareWithQkd(st.tag, st.input, st.opset);
    const diff = maxAbsDiff(got, want), top1 = top1Agreement(got, want, config.vocabSize);
    let exact = 0;
    for (let i = 0; i < got.length; i++) if (got[i] === want[i]) exact++;
    t.diagnostic(`${st.tag}: max |logit diff| ${diff.toExponential(2)} (cached step ${stepDiff.toExponential(2)}), ` +
      `${(100 * exact / got.length).toFixed(1)}% bit-equal, top-1 ${(100 * top1).toFixed(1)}%`);
    assert.ok(diff < st.tol, `${st.tag}: max |logit diff| ${diff} >= ${st.tol}`);
    assert.ok(stepDiff < st.tol, `${st.tag}: cached step differs by ${stepDiff}`);
    assert.equal(top1, 1);
    assertQuantNodes(config, out);
  });
}

/** One fake-quant chain (one Round) per linear input when actBits > 0: 4 per layer and the head's. */
function assertQuantNodes(config: ModelConfig, onnxPath: string): void {
  const rounds = decodeModel(readFileSync(onnxPath)).graph.node.filter((n) => n.opType === 'Round').length;
  assert.equal(rounds, config.quant && config.quant.actBits > 0 ? 4 * config.nLayer + 1 : 0);
}
