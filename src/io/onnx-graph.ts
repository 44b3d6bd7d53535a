/**
 * A small ONNX graph builder: fresh value names, deduplicated constants, initializers stored as
 * little-endian raw_data, and op nodes with typed attributes. Knows nothing about transformers.
 */
import { QkdError } from '../tensor/errors.js';
import {
  AT, DT, valueInfo, type AttributeProto, type DataType, type Dim, type GraphProto, type NodeProto,
  type TensorProto, type ValueInfoProto,
} from './onnx-proto.js';

/** An attribute value with its ONNX type made explicit (a JS number alone cannot tell int from float). */
export type Attr =
  | { kind: 'int'; v: number } | { kind: 'float'; v: number } | { kind: 'ints'; v: number[] }
  | { kind: 'floats'; v: number[] } | { kind: 'string'; v: string } | { kind: 'tensor'; v: TensorProto };

export const int = (v: number): Attr => ({ kind: 'int', v });
export const float = (v: number): Attr => ({ kind: 'float', v });
export const ints = (v: number[]): Attr => ({ kind: 'ints', v });

function toAttribute(name: string, a: Attr): AttributeProto {
  switch (a.kind) {
    case 'int': return { name, type: AT.INT, i: a.v };
    case 'float': return { name, type: AT.FLOAT, f: a.v };
    case 'ints': return { name, type: AT.INTS, ints: a.v };
    case 'floats': return { name, type: AT.FLOATS, floats: a.v };
    case 'string': return { name, type: AT.STRING, s: new TextEncoder().encode(a.v) };
    case 'tensor': return { name, type: AT.TENSOR, t: a.v };
  }
}

export type TensorData = Float32Array | Int8Array | Uint8Array | Int32Array | BigInt64Array;

const ELEM: Record<number, { bytes: number; array: string }> = {
  [DT.FLOAT]: { bytes: 4, array: 'Float32Array' }, [DT.UINT8]: { bytes: 1, array: 'Uint8Array' },
  [DT.INT8]: { bytes: 1, array: 'Int8Array' }, [DT.INT32]: { bytes: 4, array: 'Int32Array' },
  [DT.INT64]: { bytes: 8, array: 'BigInt64Array' },
};

/** A TensorProto whose raw_data views `data` (little-endian hosts only, which Node's targets are). */
export function tensorProto(name: string, dataType: DataType, dims: number[], data: TensorData): TensorProto {
  const e = ELEM[dataType];
  const n = dims.reduce((a, b) => a * b, 1);
  if (!e || data.constructor.name !== e.array || data.length !== n) {
    throw new QkdError('E_INTERNAL', `onnx: tensor "${name}": ${data.constructor.name}[${data.length}] does not fit type ${dataType} [${dims.join(', ')}]`);
  }
  return { name, dataType, dims, rawData: new Uint8Array(data.buffer, data.byteOffset, n * e.bytes) };
}

export class GraphBuilder {
  readonly nodes: NodeProto[] = [];
  readonly initializers: TensorProto[] = [];
  readonly inputs: ValueInfoProto[] = [];
  readonly outputs: ValueInfoProto[] = [];
  private readonly names = new Set<string>();
  private readonly consts = new Map<string, string>();
  private counter = 0;

  constructor(readonly opset: number) {}

  /** A value name not used before, derived from `base`. */
  fresh(base: string): string {
    let name = base;
    while (this.names.has(name)) name = `${base}_${++this.counter}`;
    this.names.add(name);
    return name;
  }

  input(name: string, elemType: DataType, dims: Dim[]): string {
    this.inputs.push(valueInfo(this.claim(name), elemType, dims));
    return name;
  }

  /** Declares `value` a graph output under `name` (through an Identity when the names differ). */
  output(value: string, name: string, elemType: DataType, dims: Dim[]): void {
    if (value !== name) this.node('Identity', [value], {}, [this.claim(name)]);
    this.outputs.push(valueInfo(name, elemType, dims));
  }

  private claim(name: string): string {
    if (this.names.has(name)) throw new QkdError('E_INTERNAL', `onnx: value name "${name}" used twice`);
    this.names.add(name);
    return name;
  }

  initializer(name: string, dataType: DataType, dims: number[], data: TensorData): string {
    this.initializers.push(tensorProto(this.claim(name), dataType, dims, data));
    return name;
  }

  /** An int64 constant (1-D unless dims given, e.g. [] for a scalar), shared between uses. */
  i64(values: number[], dims: number[] = [values.length]): string {
    return this.constant(`i64[${dims}]:${values}`, 'const_i64', DT.INT64, dims, BigInt64Array.from(values.map(BigInt)));
  }

  /** A float32 constant (scalar unless dims given), shared between uses. */
  f32(values: number[] | number, dims?: number[]): string {
    const vs = typeof values === 'number' ? [values] : values;
    const d = dims ?? (typeof values === 'number' ? [] : [vs.length]);
    const data = Float32Array.from(vs);
    // the key keeps -0 and Infinity apart from 0 and large numbers
    const key = `f32[${d}]:${Array.from(data, (v) => (Object.is(v, -0) ? '-0' : String(v)))}`;
    return this.constant(key, 'const_f32', DT.FLOAT, d, data);
  }

  private constant(key: string, base: string, dt: DataType, dims: number[], data: TensorData): string {
    const hit = this.consts.get(key);
    if (hit) return hit;
    const name = this.fresh(base);
    this.initializers.push(tensorProto(name, dt, dims, data));
    this.consts.set(key, name);
    return name;
  }

  /** Adds a node; returns its output names (fresh ones derived from the op unless given). */
  node(opType: string, inputs: string[], attrs: Record<string, Attr> = {}, outputs: string[] | number = 1): string[] {
    const outs = typeof outputs === 'number'
      ? Array.from({ length: outputs }, () => this.fresh(opType.toLowerCase()))
      : outputs;
    const attribute = Object.entries(attrs).map(([k, a]) => toAttribute(k, a));
    this.nodes.push({ input: inputs, output: outs, name: this.fresh(`n_${opType}`), opType, attribute });
    return outs;
  }

  /** Adds a single-output node and returns its output. */
  op(opType: string, inputs: string[], attrs: Record<string, Attr> = {}): string {
    return this.node(opType, inputs, attrs)[0];
  }

  graph(name: string, docString?: string): GraphProto {
    return {
      name, node: this.nodes, initializer: this.initializers, input: this.inputs, output: this.outputs,
      ...(docString ? { docString } : {}),
    };
  }
}
