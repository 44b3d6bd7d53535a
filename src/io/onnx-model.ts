/**
 * The qkd transformer (src/model/transformer.ts) as an ONNX graph of standard ops, one node group
 * per step of the engine's forward pass so that onnxruntime reproduces its logits:
 * embedding (+ learned positions) → layers [norm → act-quant → Q,K,V → RoPE → causal GQA softmax
 * attention → act-quant → O → residual → norm → act-quant → (gated) FFN → act-quant → down →
 * residual] → final norm → act-quant → head.
 *
 * Layouts: hidden (B,T,C); per-head (B,heads,T,D); attention groups (B,KV,G,T,D) with G = H/KV,
 * because query head h = kv·G + g shares key/value head kv (the engine's and Hugging Face's order),
 * so grouped-query attention needs no repeated keys/values.
 */
import { rowScalesMaxAbs, quantizeRows } from '../quant/quantize.js';
import { ropeTables } from '../tensor/rope.js';
import type { ModelConfig } from '../model/config.js';
import { QkdError } from '../tensor/errors.js';
import { float, GraphBuilder, int, ints } from './onnx-graph.js';
import { DT } from './onnx-proto.js';

export interface GraphOptions {
  opset: number;
  /** Linear layers as DynamicQuantizeLinear + MatMulInteger with int8 per-channel weights. */
  int8: boolean;
  /** Past/present key-value inputs and outputs for incremental decoding. */
  kvCache: boolean;
}

/** Input/output names (those of Hugging Face Optimum's decoder exports). */
export const ONNX_NAMES = {
  ids: 'input_ids', logits: 'logits',
  pastKey: (l: number) => `past_key_values.${l}.key`, pastValue: (l: number) => `past_key_values.${l}.value`,
  presentKey: (l: number) => `present.${l}.key`, presentValue: (l: number) => `present.${l}.value`,
} as const;

/** (out, in) row-major -> (in, out): MatMul multiplies by the transposed PyTorch weight. */
function transpose<A extends Float32Array | Int8Array>(w: A, rows: number, cols: number, make: (n: number) => A): A {
  const t = make(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) t[c * rows + r] = w[r * cols + c];
  return t;
}

/** Dynamic sequence quantities shared by every layer (int64 values). */
interface Seq { P: string; Tk: string; allowed: string; rope: { cos: string; sin: string } | null }

class TransformerGraph {
  readonly g: GraphBuilder;
  private readonly quantized = new Map<string, string[]>();
  private readonly G: number;

  constructor(readonly c: ModelConfig, readonly W: Map<string, Float32Array>, readonly o: GraphOptions) {
    this.g = new GraphBuilder(o.opset);
    this.G = c.nHead / c.nKVHead;
  }

  private w(name: string): Float32Array {
    const t = this.W.get(name);
    if (!t) throw new QkdError('E_MISSING', `onnx export: tensor "${name}" is missing`);
    return t;
  }

  /** Shape(x)[axis] as an int64 tensor of one element. */
  private dim(x: string, axis: number): string {
    return this.g.op('Shape', [x], { start: int(axis), end: int(axis + 1) });
  }

  private reduce(op: 'ReduceMean' | 'ReduceMax', x: string): string {
    // axes moved from an attribute to an input in opset 18
    if (this.o.opset >= 18) return this.g.op(op, [x, this.g.i64([-1])], { keepdims: int(1) });
    return this.g.op(op, [x], { axes: ints([-1]), keepdims: int(1) });
  }

  private scalar(x: string): string { return this.g.op('Squeeze', [x, this.g.i64([0])]); }

  build(): GraphBuilder {
    const { c, g } = this, N = ONNX_NAMES;
    const ids = g.input(N.ids, DT.INT64, ['batch', 'sequence_length']);
    const past = this.o.kvCache ? this.pastInputs() : null;
    const T = this.dim(ids, 1);
    const P = past ? this.dim(past[0][0], 2) : g.i64([0]);
    const Tk = past ? g.op('Add', [P, T]) : T;
    const seq: Seq = { P, Tk, allowed: this.causal(P, Tk), rope: this.ropeSlices(P, Tk) };
    let x = g.op('Gather', [g.initializer('embed.weight', DT.FLOAT, [c.vocabSize, c.dim], this.w('embed.weight')), ids], { axis: int(0) });
    if (c.pos === 'learned') {
      const pe = g.initializer('pos_embed.weight', DT.FLOAT, [c.maxPos, c.dim], this.w('pos_embed.weight'));
      x = g.op('Add', [x, g.op('Slice', [pe, P, Tk, g.i64([0])])]);
    }
    for (let l = 0; l < c.nLayer; l++) x = this.layer(l, x, seq, past?.[l] ?? null);
    const nf = this.actQuant(this.norm('final_norm', x));
    const logits = this.head(nf, c.tieEmbeddings ? 'embed' : 'lm_head');
    g.output(logits, N.logits, DT.FLOAT, ['batch', 'sequence_length', c.vocabSize]);
    return g;
  }

  private pastInputs(): [string, string][] {
    const { c, g } = this, dims = ['batch', c.nKVHead, 'past_sequence_length', c.headDim];
    return Array.from({ length: c.nLayer }, (_, l) => [
      g.input(ONNX_NAMES.pastKey(l), DT.FLOAT, dims), g.input(ONNX_NAMES.pastValue(l), DT.FLOAT, dims),
    ] as [string, string]);
  }

  /** allowed (T, Tk) bool: key j is visible to query i (absolute position P + i) when j <= P + i. */
  private causal(P: string, Tk: string): string {
    const g = this.g, one = g.i64([1], []);
    const kpos = g.op('Range', [g.i64([0], []), this.scalar(Tk), one]);
    const qpos = g.op('Unsqueeze', [g.op('Range', [this.scalar(P), this.scalar(Tk), one]), g.i64([1])]);
    return g.op('LessOrEqual', [kpos, qpos]);
  }

  /**
   * RoPE rows P..Tk of (maxPos, D) tables built as [cos | cos] and [-sin | sin], so that
   * rope(x) = x·cos + concat(x2, x1)·sin gives (x1 cos - x2 sin, x2 cos + x1 sin) like the engine.
   */
  private ropeSlices(P: string, Tk: string): Seq['rope'] {
    const c = this.c;
    if (c.pos !== 'rope') return null;
    const { cos, sin } = ropeTables(c.maxPos, c.headDim, c.ropeTheta), h = c.headDim / 2;
    const cosF = new Float32Array(c.maxPos * c.headDim), sinF = new Float32Array(c.maxPos * c.headDim);
    for (let p = 0; p < c.maxPos; p++) {
      for (let d = 0; d < h; d++) {
        const o = p * c.headDim;
        cosF[o + d] = cos[p * h + d]; cosF[o + h + d] = cos[p * h + d];
        sinF[o + d] = -sin[p * h + d]; sinF[o + h + d] = sin[p * h + d];
      }
    }
    const dims = [c.maxPos, c.headDim], ax = this.g.i64([0]);
    return {
      cos: this.g.op('Slice', [this.g.initializer('rope.cos', DT.FLOAT, dims, cosF), P, Tk, ax]),
      sin: this.g.op('Slice', [this.g.initializer('rope.sin', DT.FLOAT, dims, sinF), P, Tk, ax]),
    };
  }

  private rope(x: string, rope: NonNullable<Seq['rope']>): string {
    const g = this.g, D = this.c.headDim, ax = g.i64([-1]);
    const x1 = g.op('Slice', [x, g.i64([0]), g.i64([D / 2]), ax]);
    const x2 = g.op('Slice', [x, g.i64([D / 2]), g.i64([D]), ax]);
    const rot = g.op('Concat', [x2, x1], { axis: int(-1) });
    return g.op('Add', [g.op('Mul', [x, rope.cos]), g.op('Mul', [rot, rope.sin])]);
  }

  private norm(name: string, x: string): string {
    const { c, g } = this, C = c.dim;
    const w = g.initializer(`${name}.weight`, DT.FLOAT, [C], this.w(`${name}.weight`));
    if (c.norm === 'layernorm') {
      const b = g.initializer(`${name}.bias`, DT.FLOAT, [C], this.w(`${name}.bias`));
      return g.op('LayerNormalization', [x, w, b], { axis: int(-1), epsilon: float(c.normEps) });
    }
    // RMSNorm: x·rstd is a float32 tensor before the weight multiplies it (as in Hugging Face)
    const ms = this.reduce('ReduceMean', g.op('Mul', [x, x]));
    const rstd = g.op('Div', [g.f32(1), g.op('Sqrt', [g.op('Add', [ms, g.f32(c.normEps)])])]);
    return g.op('Mul', [g.op('Mul', [x, rstd]), w]);
  }

  /**
   * Per-token fake quantization of a linear input (quant/quantize.ts fakeQuantTokens): s = max|x|/qmax
   * per row (1 for an all-zero row), x' = clip(round_half_even(x/s), qmin, qmax)·s. Every step is one
   * float32 operation, so the result equals the engine's bit for bit. The int8 graph quantizes its
   * inputs with DynamicQuantizeLinear instead.
   */
  private actQuant(x: string): string {
    const bits = this.c.quant?.actBits ?? 0;
    if (bits === 0 || this.o.int8) return x;
    const g = this.g, qmax = 2 ** (bits - 1) - 1, qmin = -(2 ** (bits - 1));
    const m = g.op('Div', [this.reduce('ReduceMax', g.op('Abs', [x])), g.f32(qmax)]);
    const s = g.op('Where', [g.op('Greater', [m, g.f32(0)]), m, g.f32(1)]);
    const q = g.op('Round', [g.op('Clip', [g.op('Div', [x, s]), g.f32(qmin), g.f32(qmax)])]);
    return g.op('Mul', [q, s]);
  }

  /** y = x·Wᵀ (+ b) for the linear layer `name` with weight (O, I). */
  private linear(x: string, name: string, O: number, I: number, bias = this.c.bias): string {
    const g = this.g, W = this.w(`${name}.weight`);
    const y = this.o.int8 ? this.linearInt8(x, name, W, O, I)
      : g.op('MatMul', [x, g.initializer(`${name}.weight_t`, DT.FLOAT, [I, O], transpose(W, O, I, (n) => new Float32Array(n)))]);
    if (!bias) return y;
    return g.op('Add', [y, g.initializer(`${name}.bias`, DT.FLOAT, [O], this.w(`${name}.bias`))]);
  }

  /**
   * onnxruntime quantize_dynamic's pattern: x -> DynamicQuantizeLinear (uint8, per tensor, one per
   * distinct input) -> MatMulInteger with int8 weights (I, O), symmetric per output channel (zero
   * points 0) -> Cast float -> · (x_scale · w_scale).
   */
  private linearInt8(x: string, name: string, W: Float32Array, O: number, I: number): string {
    const g = this.g;
    const scales = new Float32Array(O), q = new Int8Array(O * I);
    rowScalesMaxAbs(scales, W, O, I, 8);
    quantizeRows(q, W, scales, O, I, 8);
    const wq = g.initializer(`${name}.weight_q`, DT.INT8, [I, O], transpose(q, O, I, (n) => new Int8Array(n)));
    const wzp = g.initializer(`${name}.weight_zero_point`, DT.INT8, [O], new Int8Array(O));
    const ws = g.initializer(`${name}.weight_scale`, DT.FLOAT, [O], scales);
    let xq = this.quantized.get(x);
    if (!xq) { xq = g.node('DynamicQuantizeLinear', [x], {}, 3); this.quantized.set(x, xq); }
    const acc = g.op('MatMulInteger', [xq[0], wq, xq[2], wzp]);
    return g.op('Mul', [g.op('Cast', [acc], { to: int(DT.FLOAT) }), g.op('Mul', [xq[1], ws])]);
  }

  private head(nf: string, name: string): string {
    const c = this.c, g = this.g;
    if (this.o.int8) return this.linear(nf, name, c.vocabSize, c.dim, false);
    if (name === 'embed') {
      // tied: the file holds the embedding once; onnxruntime folds the transpose at load time
      return g.op('MatMul', [nf, g.op('Transpose', ['embed.weight'], { perm: ints([1, 0]) })]);
    }
    return this.linear(nf, name, c.vocabSize, c.dim, false);
  }

  /** (B,T,heads·D) -> (B,heads,T,D) */
  private splitHeads(x: string, heads: number): string {
    const g = this.g;
    const r = g.op('Reshape', [x, g.i64([0, 0, heads, this.c.headDim])]);
    return g.op('Transpose', [r], { perm: ints([0, 2, 1, 3]) });
  }

  private layer(l: number, x: string, seq: Seq, past: [string, string] | null): string {
    const { c, g } = this, p = `layers.${l}`, C = c.dim, D = c.headDim, H = c.nHead, KV = c.nKVHead;
    const n1 = this.actQuant(this.norm(`${p}.attn_norm`, x));
    let q = this.splitHeads(this.linear(n1, `${p}.q`, H * D, C), H);
    let k = this.splitHeads(this.linear(n1, `${p}.k`, KV * D, C), KV);
    let v = this.splitHeads(this.linear(n1, `${p}.v`, KV * D, C), KV);
    if (seq.rope) { q = this.rope(q, seq.rope); k = this.rope(k, seq.rope); }
    if (past) {
      k = g.op('Concat', [past[0], k], { axis: int(2) });
      v = g.op('Concat', [past[1], v], { axis: int(2) });
      const dims = ['batch', KV, 'total_sequence_length', D];
      g.output(k, ONNX_NAMES.presentKey(l), DT.FLOAT, dims);
      g.output(v, ONNX_NAMES.presentValue(l), DT.FLOAT, dims);
    }
    const y = this.actQuant(this.attention(q, k, v, seq));
    const x2 = g.op('Add', [x, this.linear(y, `${p}.o`, C, H * D)]);
    const n2 = this.actQuant(this.norm(`${p}.mlp_norm`, x2));
    const up = this.linear(n2, `${p}.up`, c.ffnDim, C);
    const h = c.gated ? g.op('Mul', [this.act(this.linear(n2, `${p}.gate`, c.ffnDim, C)), up]) : this.act(up);
    return g.op('Add', [x2, this.linear(this.actQuant(h), `${p}.down`, C, c.ffnDim)]);
  }

  /** q (B,H,T,D), k/v (B,KV,Tk,D) -> (B,T,H·D). */
  private attention(q: string, k: string, v: string, seq: Seq): string {
    const { c, g } = this, D = c.headDim, KV = c.nKVHead;
    const q5 = g.op('Reshape', [q, g.i64([0, KV, this.G, -1, D])]);                 // (B,KV,G,T,D)
    const kT = g.op('Unsqueeze', [g.op('Transpose', [k], { perm: ints([0, 1, 3, 2]) }), g.i64([2])]); // (B,KV,1,D,Tk)
    let s = g.op('Mul', [g.op('MatMul', [q5, kT]), g.f32(1 / Math.sqrt(D))]);          // (B,KV,G,T,Tk)
    s = g.op('Where', [seq.allowed, s, g.f32(-Infinity)]);
    if (c.attnTopK > 0) s = this.topK(s, c.attnTopK);
    const pr = g.op('Softmax', [s], { axis: int(-1) });
    const o5 = g.op('MatMul', [pr, g.op('Unsqueeze', [v, g.i64([2])])]);               // (B,KV,G,T,D)
    const o = g.op('Transpose', [o5], { perm: ints([0, 3, 1, 2, 4]) });                 // (B,T,KV,G,D)
    return g.op('Reshape', [o, g.i64([0, 0, c.nHead * D])]);
  }

  /** Sparse attention: scores below the k-th largest visible one of their row are masked out. */
  private topK(s: string, k: number): string {
    const g = this.g;
    const K = g.op('Min', [g.i64([k]), this.dim(s, 4)]);
    const [vals] = g.node('TopK', [s, K], { axis: int(-1), largest: int(1), sorted: int(1) }, 2);
    const thresh = g.op('ReduceMin', this.o.opset >= 18 ? [vals, g.i64([-1])] : [vals],
      this.o.opset >= 18 ? { keepdims: int(1) } : { axes: ints([-1]), keepdims: int(1) });
    return g.op('Where', [g.op('Less', [s, thresh]), g.f32(-Infinity), s]);
  }

  private act(x: string): string {
    const g = this.g;
    switch (this.c.act) {
      case 'relu': return g.op('Relu', [x]);
      case 'silu': return g.op('Mul', [x, g.op('Sigmoid', [x])]);
      case 'gelu': {
        const e = g.op('Erf', [g.op('Div', [x, g.f32(Math.SQRT2)])]);
        return g.op('Mul', [g.op('Mul', [x, g.f32(0.5)]), g.op('Add', [e, g.f32(1)])]);
      }
      case 'gelu_tanh': {
        const x3 = g.op('Mul', [g.op('Mul', [x, x]), x]);
        const u = g.op('Mul', [g.op('Add', [x, g.op('Mul', [x3, g.f32(0.044715)])]), g.f32(Math.sqrt(2 / Math.PI))]);
        return g.op('Mul', [g.op('Mul', [x, g.f32(0.5)]), g.op('Add', [g.op('Tanh', [u]), g.f32(1)])]);
      }
    }
  }
}

/** Builds the graph of a model whose float32 tensors are given by internal name (paramLayout). */
export function buildTransformerGraph(config: ModelConfig, tensors: Map<string, Float32Array>, opts: GraphOptions): GraphBuilder {
  return new TransformerGraph(config, tensors, opts).build();
}
