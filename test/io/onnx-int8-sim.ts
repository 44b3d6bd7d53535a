/**
 * A float64 simulation of the int8 ONNX export's linear layers, written from the ONNX operator
 * specifications (not from qkd's quantizer), for test/io/onnx.test.ts:
 * - DynamicQuantizeLinear (per tensor, uint8): x_min = min(0, min x), x_max = max(0, max x),
 *   y_scale = (x_max - x_min) / 255 (a float32 output), y_zero_point = round_half_even(clip(-x_min /
 *   y_scale, 0, 255)), y = clip(round_half_even(x / y_scale) + y_zero_point, 0, 255);
 * - MatMulInteger (A uint8 with zero point a, B int8 (I, O) with zero point b): Σ (A - a)(B - b), exact;
 * - the dequantization the graph applies: Cast(acc) · (y_scale · w_scale[o]), then + bias.
 * The weights, scales and zero points are read from the .onnx file itself; the graph is checked to be
 * wired exactly as simulated. The rest of the forward (embedding, norms, RoPE, attention, activations)
 * is qkd's float forward, which the parity tests tie to Hugging Face.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { decodeModel, DT, type TensorProto } from '../../src/io/onnx-proto.js';
import type { LinearProducts } from '../../src/model/products.js';
import type { Transformer } from '../../src/model/transformer.js';

/**
 * Max |logit diff| between onnxruntime's int8 export and this simulation, ~4x the measured: 1.19e-7
 * (tiny-gpt2, tiny-llama) and 3.81e-6 (teacher); the int8 logits differ from the float ones by 0.018,
 * 0.022 and 0.85.
 */
export const ONNX_INT8_SIM_TOL = { 'tiny-gpt2': 5e-7, 'tiny-llama': 5e-7, 'brown-llama-teacher': 1.5e-5 } as const;

/** round half to even */
export function roundHalfEven(v: number): number {
  const f = Math.floor(v), d = v - f;
  if (d < 0.5) return f;
  if (d > 0.5) return f + 1;
  return f % 2 === 0 ? f : f + 1;
}

export function dynamicQuantizeLinear(x: ArrayLike<number>): { q: Uint8Array; scale: number; zeroPoint: number } {
  let lo = 0, hi = 0;
  for (let i = 0; i < x.length; i++) { lo = Math.min(lo, x[i]); hi = Math.max(hi, x[i]); }
  const scale = Math.fround((hi - lo) / 255);
  const zeroPoint = roundHalfEven(Math.min(255, Math.max(0, -lo / scale)));
  const q = new Uint8Array(x.length);
  for (let i = 0; i < x.length; i++) q[i] = Math.min(255, Math.max(0, roundHalfEven(x[i] / scale) + zeroPoint));
  return { q, scale, zeroPoint };
}

export interface Int8Weight { name: string; q: Int8Array; scale: Float32Array; I: number; O: number }

function values(t: TensorProto): Float32Array | Int8Array {
  const b = new Uint8Array(t.rawData); // a copy (rawData may be a view into the whole file)
  if (t.dataType === DT.FLOAT) return new Float32Array(b.buffer, 0, b.length / 4);
  if (t.dataType === DT.INT8) return new Int8Array(b.buffer);
  throw new Error(`${t.name}: dtype ${t.dataType}`);
}

/**
 * The int8 linear layers of an exported .onnx file by weight name (`layers.0.q.weight`), after
 * checking that each is DynamicQuantizeLinear -> MatMulInteger(x_q, w_q, x_zp, w_zp = 0) -> Cast
 * float -> Mul by Mul(x_scale, w_scale): the arithmetic the simulation reproduces.
 */
export function readInt8Linears(onnxPath: string): Map<string, Int8Weight> {
  const g = decodeModel(readFileSync(onnxPath)).graph;
  const inits = new Map(g.initializer.map((t) => [t.name, t]));
  const producer = new Map<string, { op: string; index: number; inputs: string[] }>();
  const consumers = new Map<string, { op: string; inputs: string[]; output: string[]; attribute: { name: string; i?: number }[] }[]>();
  for (const n of g.node) {
    n.output.forEach((o, index) => producer.set(o, { op: n.opType, index, inputs: n.input }));
    for (const i of n.input) consumers.set(i, [...(consumers.get(i) ?? []), { op: n.opType, inputs: n.input, output: n.output, attribute: n.attribute }]);
  }
  const out = new Map<string, Int8Weight>();
  for (const n of g.node.filter((x) => x.opType === 'MatMulInteger')) {
    const [xq, wq, xzp, wzp] = n.input, name = wq.replace(/_q$/, '');
    const dq = producer.get(xq)!, dz = producer.get(xzp)!;
    assert.ok(dq.op === 'DynamicQuantizeLinear' && dq.index === 0 && dz.op === 'DynamicQuantizeLinear' && dz.index === 2 &&
      dq.inputs[0] === dz.inputs[0], `${name}: MatMulInteger inputs come from one DynamicQuantizeLinear`);
    const W = inits.get(wq)!, Z = inits.get(wzp)!, S = inits.get(`${name}_scale`)!;
    assert.ok(W.dataType === DT.INT8 && Z.dataType === DT.INT8 && S.dataType === DT.FLOAT, name);
    assert.ok((values(Z) as Int8Array).every((v) => v === 0), `${name}: weight zero points are 0`);
    const [cast] = consumers.get(n.output[0])!;
    assert.equal(cast.op, 'Cast');
    assert.equal(cast.attribute.find((a) => a.name === 'to')?.i, DT.FLOAT);
    const [mul] = consumers.get(cast.output[0])!, other = mul.inputs.find((i) => i !== cast.output[0])!;
    const sc = producer.get(other)!;
    assert.ok(mul.op === 'Mul' && sc.op === 'Mul', `${name}: dequantized by a product of scales`);
    const xs = producer.get(sc.inputs[0])!;
    assert.ok(xs.op === 'DynamicQuantizeLinear' && xs.index === 1 && sc.inputs[1] === S.name, `${name}: x_scale · w_scale`);
    const [I, O] = W.dims.map(Number);
    out.set(name, { name, q: values(W) as Int8Array, scale: values(S) as Float32Array, I, O });
  }
  return out;
}

/** The linear seam of a Transformer computing every product as the int8 ONNX graph does, in float64. */
export class OnnxInt8SimProducts implements LinearProducts {
  private readonly float: LinearProducts;

  constructor(model: Transformer, private readonly weights: Map<string, Int8Weight>) {
    this.float = model.products; // the embedding gather stays float in the graph
  }

  input(): void { /* no per-token fake quantization: each product quantizes its input per tensor */ }

  linear(out: Float32Array, x: Float32Array, name: string, bias: Float32Array | null, N: number, I: number, O: number): void {
    const w = this.weights.get(name);
    assert.ok(w && w.I === I && w.O === O, `no int8 weight (${I}, ${O}) for ${name}`);
    const { q, scale, zeroPoint } = dynamicQuantizeLinear(x.subarray(0, N * I));
    const acc = new Float64Array(O);
    for (let n = 0; n < N; n++) {
      acc.fill(0);
      for (let i = 0; i < I; i++) {
        const a = q[n * I + i] - zeroPoint;
        if (a === 0) continue;
        for (let o = 0, r = i * O; o < O; o++) acc[o] += a * w.q[r + o];
      }
      for (let o = 0; o < O; o++) out[n * O + o] = acc[o] * (scale * w.scale[o]) + (bias ? bias[o] : 0);
    }
  }

  embed(out: Float32Array, ids: Int32Array, N: number, C: number, wpe?: Float32Array, pos?: Int32Array): void {
    this.float.embed(out, ids, N, C, wpe, pos);
  }

  linearBackward(): void { throw new Error('simulation only'); }
}
