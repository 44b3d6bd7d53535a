/**
 * ONNX export against the outside oracle: the fixture models exported by qkd and run in
 * onnxruntime-node reproduce the PyTorch reference logits; the int8 export reproduces a float64
 * simulation of its DynamicQuantizeLinear + MatMulInteger arithmetic (onnx-int8-sim.ts) on qkd's
 * forward; the file is standard ONNX (default domain, known ops, initializers of the expected types).
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { exportOnnx, type OnnxExportResult } from '../../src/io/onnx.js';
import { decodeModel, DT } from '../../src/io/onnx-proto.js';
import { QkdError } from '../../src/tensor/errors.js';
import { TsBackend } from '../../src/kernels/ts/backend.js';
import { loadHfModel } from '../../src/io/hf.js';
import { fixture, maxAbsDiff, readF32, readJson } from '../helpers.js';
import { HF_LOGIT_TOL, loadFixtureModel } from '../model/parity-check.js';
import { cleanupTmp, idsTensor, session, tmpDir, top1Agreement } from './onnx-ort.js';
import { ONNX_INT8_SIM_TOL, OnnxInt8SimProducts, readInt8Linears } from './onnx-int8-sim.js';

after(cleanupTmp);

/**
 * Float exports: the Hugging Face parity thresholds of model/parity-check.ts (measured here: 3.6e-7 tiny,
 * 1.5e-5 teacher). int8 exports against the float64 simulation: ONNX_INT8_SIM_TOL (onnx-int8-sim.ts);
 * top-1 against the float reference measured 97.5%, 95.0% and 90.6% (78/80, 76/80, 58/64).
 */
const CASES = [
  { name: 'tiny-gpt2', ids: 'input_ids', int8Top1: 0.95 },
  { name: 'tiny-llama', ids: 'input_ids', int8Top1: 0.925 },
  { name: 'brown-llama-teacher', ids: 'logits_input_ids', int8Top1: 0.875 },
] as const;

/** Every op the exporter may emit: all from the default ONNX domain. */
const STANDARD_OPS = new Set([
  'Gather', 'MatMul', 'Add', 'Mul', 'Div', 'Sqrt', 'ReduceMean', 'ReduceMax', 'ReduceMin', 'Softmax', 'Where',
  'Transpose', 'Reshape', 'Concat', 'Slice', 'Tanh', 'Erf', 'Sigmoid', 'Relu', 'Cast', 'Shape', 'Squeeze',
  'Unsqueeze', 'Range', 'LessOrEqual', 'Less', 'Greater', 'Abs', 'Round', 'Clip', 'LayerNormalization', 'Min',
  'TopK', 'Identity', 'DynamicQuantizeLinear', 'MatMulInteger',
]);

async function runFixture(name: string, ids: string, out: string, int8: boolean) {
  const ref = readJson(fixture(name, 'reference.json'));
  const rows: number[][] = Array.isArray(ref[ids][0]) ? ref[ids] : [ref[ids]];
  const r = exportOnnx(fixture(name), out, { int8 });
  const s = await session(out);
  const res = await s.run({ input_ids: idsTensor(rows) });
  await s.release();
  const logits = res.logits;
  assert.deepEqual(logits.dims, [rows.length, rows[0].length, r.config.vocabSize]);
  assert.equal(logits.type, 'float32');
  return { r, got: logits.data as Float32Array, want: readF32(fixture(name, 'reference-logits.f32')) };
}

for (const c of CASES) {
  test(`onnx: ${c.name} float32 export matches the reference logits in onnxruntime`, async (t) => {
    const { r, got, want } = await runFixture(c.name, c.ids, join(tmpDir(c.name), 'model.onnx'), false);
    const diff = maxAbsDiff(got, want), tol = HF_LOGIT_TOL[c.name];
    t.diagnostic(`${c.name}: max |logit diff| ${diff.toExponential(2)} (tol ${tol}), ${r.bytes} bytes, ${r.nodes} nodes`);
    assert.ok(diff < tol, `${c.name}: max |logit diff| ${diff} >= ${tol}`);
    assert.equal(top1Agreement(got, want, r.config.vocabSize), 1);
  });

  test(`onnx: ${c.name} int8 export equals the float64 simulation of its integer arithmetic`, async (t) => {
    const out = join(tmpDir(c.name), 'model-int8.onnx');
    const { r, got, want } = await runFixture(c.name, c.ids, out, true);
    const weights = readInt8Linears(out);
    // the int8 weights are the max-abs per-row quantization of the fixture's: s = max|W_o| / 127 (as float32),
    // |W - q s| <= s / 2 (ties of the bf16 teacher sit at exactly s / 2, plus the float32 rounding of s)
    const hf = loadHfModel(fixture(c.name));
    assert.equal(weights.size, r.config.nLayer * (r.config.gated ? 7 : 6) + 1); // every linear layer and the head
    for (const w of weights.values()) {
      const W = hf.tensors.get(w.name)!;
      for (let o = 0; o < w.O; o++) {
        let m = 0;
        for (let i = 0; i < w.I; i++) m = Math.max(m, Math.abs(W[o * w.I + i]));
        const s = w.scale[o], s64 = m / 127;
        assert.ok(Math.abs(s - s64) <= 2 ** -24 * s64, `${w.name} scale[${o}] ${s} vs ${s64}`);
        let worst = 0;
        for (let i = 0; i < w.I; i++) worst = Math.max(worst, Math.abs(W[o * w.I + i] - w.q[i * w.O + o] * s) / (0.5 * s + 128 * Math.abs(s - s64)));
        assert.ok(worst <= 1, `${w.name} row ${o}: a weight is off its nearest grid point (${worst} half-steps)`);
      }
    }
    const model = loadFixtureModel(c.name, new TsBackend());
    model.products = new OnnxInt8SimProducts(model, weights);
    const ref = readJson(fixture(c.name, 'reference.json'));
    const rows: number[][] = Array.isArray(ref[c.ids][0]) ? ref[c.ids] : [ref[c.ids]];
    const sim = model.forward(rows.flat(), rows.length, rows[0].length).slice();
    model.dispose();
    const diff = maxAbsDiff(got, sim), top1 = top1Agreement(got, want, r.config.vocabSize), tol = ONNX_INT8_SIM_TOL[c.name];
    t.diagnostic(`${c.name} int8: max |logit diff| to the simulation ${diff.toExponential(2)} (tol ${tol}); ` +
      `to the float reference ${maxAbsDiff(got, want).toFixed(4)}, top-1 agreement ${(100 * top1).toFixed(1)}%, ${r.bytes} bytes`);
    assert.ok(diff < tol, `${c.name} int8: max |logit diff| to the simulation ${diff} >= ${tol}`);
    assert.ok(top1 >= c.int8Top1, `${c.name} int8: top-1 agreement ${top1} < ${c.int8Top1}`);
  });
}

function structure(r: OnnxExportResult) {
  const m = decodeModel(readFileSync(r.out));
  const ops = new Set(m.graph.node.map((n) => n.opType));
  const domains = new Set(m.graph.node.map((n) => n.domain ?? ''));
  const inits = new Map(m.graph.initializer.map((t) => [t.name, t]));
  return { m, ops, domains, inits };
}

test('onnx: the file is standard ONNX with the expected interface and weights', () => {
  const dir = tmpDir('struct');
  const f = structure(exportOnnx(fixture('tiny-gpt2'), join(dir, 'f.onnx')));
  assert.equal(f.m.irVersion, 8);
  assert.deepEqual(f.m.opsetImport.map((o) => [o.domain ?? '', Number(o.version)]), [['', 17]]);
  assert.deepEqual([...f.domains], ['']);
  for (const op of f.ops) assert.ok(STANDARD_OPS.has(op), `unexpected op ${op}`);
  assert.deepEqual(f.m.graph.input.map((v) => v.name), ['input_ids']);
  assert.deepEqual(f.m.graph.output.map((v) => v.name), ['logits']);
  // tied head: the embedding is stored once (the head is a Transpose of it)
  assert.ok(f.inits.has('embed.weight') && !f.inits.has('embed.weight_t') && !f.inits.has('lm_head.weight_t'));
  for (const t of f.inits.values()) if (t.name.endsWith('weight_t')) assert.equal(t.dataType, DT.FLOAT);

  const q = structure(exportOnnx(fixture('tiny-llama'), join(dir, 'q.onnx'), { int8: true, opset: 18 }));
  assert.equal(q.m.irVersion, 8);
  assert.ok(q.ops.has('MatMulInteger') && q.ops.has('DynamicQuantizeLinear'));
  for (const op of q.ops) assert.ok(STANDARD_OPS.has(op), `unexpected op ${op}`);
  const wq = q.inits.get('layers.0.q.weight_q');
  assert.ok(wq && wq.dataType === DT.INT8, 'int8 weights as int8 initializers');
  assert.deepEqual(wq.dims.map(Number), [64, 64]);
  assert.ok(!q.inits.has('layers.0.q.weight_t'), 'no float copy of a quantized matrix');
  assert.equal(q.inits.get('layers.0.q.weight_scale')!.dims.map(Number)[0], 64, 'per-channel scales');
  // one DynamicQuantizeLinear per distinct input: q, k and v share the normed input
  const dql = q.m.graph.node.filter((n) => n.opType === 'DynamicQuantizeLinear').length;
  assert.equal(dql, 2 * 4 + 1);
});

test('onnx: bad inputs are QkdErrors naming the file or option', () => {
  const dir = tmpDir('errors');
  const bad = (fn: () => unknown, code: string, re: RegExp) =>
    assert.throws(fn, (e: unknown) => e instanceof QkdError && e.code === code && re.test(e.message));
  bad(() => exportOnnx(join(dir, 'nope'), join(dir, 'a.onnx')), 'E_MISSING', /nope: model directory not found/);
  bad(() => exportOnnx(dir, join(dir, 'a.onnx')), 'E_MISSING', /config\.json: not found/);
  bad(() => exportOnnx(fixture('tiny-gpt2'), join(dir, 'a.bin')), 'E_CONFIG', /a\.bin: output file must end with \.onnx/);
  bad(() => exportOnnx(fixture('tiny-gpt2'), join(dir, 'no', 'a.onnx')), 'E_MISSING', /output directory .* does not exist/);
  bad(() => exportOnnx(fixture('tiny-gpt2'), join(dir, 'a.onnx'), { opset: 12 }), 'E_CONFIG', /opset 12 is not supported/);
  bad(() => exportOnnx(fixture('tiny-gpt2'), join(dir, 'a.onnx'), { int8: 'yes' as unknown as boolean }), 'E_CONFIG', /int8 must be a boolean/);
});
