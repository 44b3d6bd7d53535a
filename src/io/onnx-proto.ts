/**
 * The subset of onnx.proto (ONNX IR) that the exporter writes, as a protobufjs reflection
 * descriptor: field numbers and types follow onnx/onnx.proto (proto2) exactly; names are camelCase
 * for TypeScript. Only what a static inference graph needs: no training info, functions, sparse
 * tensors or external data.
 */
import protobuf from 'protobufjs/light.js';

/** TensorProto.DataType values used here. */
export const DT = { FLOAT: 1, UINT8: 2, INT8: 3, INT32: 6, INT64: 7, BOOL: 9 } as const;
export type DataType = typeof DT[keyof typeof DT];

/** AttributeProto.AttributeType values used here. */
export const AT = { FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, FLOATS: 6, INTS: 7 } as const;

export interface TensorProto {
  name: string;
  dataType: DataType;
  dims: number[];
  /** Little-endian element bytes (raw_data). */
  rawData: Uint8Array;
}

export interface AttributeProto {
  name: string;
  type: number;
  f?: number; i?: number; s?: Uint8Array; t?: TensorProto; floats?: number[]; ints?: number[];
}

export interface NodeProto {
  input: string[];
  output: string[];
  name: string;
  opType: string;
  domain?: string;
  attribute: AttributeProto[];
}

/** A dimension is a fixed size or a symbolic name (dim_param). */
export type Dim = number | string;

export interface ValueInfoProto {
  name: string;
  type: { tensorType: { elemType: DataType; shape: { dim: ({ dimValue: number } | { dimParam: string })[] } } };
}

export interface GraphProto {
  name: string;
  node: NodeProto[];
  initializer: TensorProto[];
  input: ValueInfoProto[];
  output: ValueInfoProto[];
  docString?: string;
}

export interface ModelProto {
  irVersion: number;
  opsetImport: { domain: string; version: number }[];
  producerName: string;
  producerVersion: string;
  docString?: string;
  graph: GraphProto;
  metadataProps?: { key: string; value: string }[];
}

const f = (id: number, type: string, rule?: 'repeated') => (rule ? { id, type, rule } : { id, type });

/** protobufjs JSON descriptor of the onnx.proto subset (package `onnx`). */
const ONNX_JSON = {
  nested: {
    onnx: {
      nested: {
        AttributeProto: {
          fields: {
            name: f(1, 'string'), f: f(2, 'float'), i: f(3, 'int64'), s: f(4, 'bytes'), t: f(5, 'TensorProto'),
            floats: f(7, 'float', 'repeated'), ints: f(8, 'int64', 'repeated'), docString: f(13, 'string'),
            type: f(20, 'int32'),
          },
        },
        ValueInfoProto: { fields: { name: f(1, 'string'), type: f(2, 'TypeProto'), docString: f(3, 'string') } },
        NodeProto: {
          fields: {
            input: f(1, 'string', 'repeated'), output: f(2, 'string', 'repeated'), name: f(3, 'string'),
            opType: f(4, 'string'), attribute: f(5, 'AttributeProto', 'repeated'), docString: f(6, 'string'),
            domain: f(7, 'string'),
          },
        },
        StringStringEntryProto: { fields: { key: f(1, 'string'), value: f(2, 'string') } },
        OperatorSetIdProto: { fields: { domain: f(1, 'string'), version: f(2, 'int64') } },
        ModelProto: {
          fields: {
            irVersion: f(1, 'int64'), producerName: f(2, 'string'), producerVersion: f(3, 'string'),
            domain: f(4, 'string'), modelVersion: f(5, 'int64'), docString: f(6, 'string'), graph: f(7, 'GraphProto'),
            opsetImport: f(8, 'OperatorSetIdProto', 'repeated'),
            metadataProps: f(14, 'StringStringEntryProto', 'repeated'),
          },
        },
        GraphProto: {
          fields: {
            node: f(1, 'NodeProto', 'repeated'), name: f(2, 'string'), initializer: f(5, 'TensorProto', 'repeated'),
            docString: f(10, 'string'), input: f(11, 'ValueInfoProto', 'repeated'),
            output: f(12, 'ValueInfoProto', 'repeated'), valueInfo: f(13, 'ValueInfoProto', 'repeated'),
          },
        },
        TensorProto: {
          fields: {
            dims: f(1, 'int64', 'repeated'), dataType: f(2, 'int32'), name: f(8, 'string'), rawData: f(9, 'bytes'),
            docString: f(12, 'string'),
          },
        },
        TensorShapeProto: {
          fields: { dim: f(1, 'Dimension', 'repeated') },
          nested: {
            Dimension: {
              oneofs: { value: { oneof: ['dimValue', 'dimParam'] } },
              fields: { dimValue: f(1, 'int64'), dimParam: f(2, 'string'), denotation: f(3, 'string') },
            },
          },
        },
        TypeProto: {
          oneofs: { value: { oneof: ['tensorType'] } },
          fields: { tensorType: f(1, 'Tensor'), denotation: f(6, 'string') },
          nested: {
            Tensor: { fields: { elemType: f(1, 'int32'), shape: f(2, 'TensorShapeProto') } },
          },
        },
      },
    },
  },
};

let modelType: protobuf.Type | null = null;

/** The reflected onnx.ModelProto type (built once). */
export function onnxModelType(): protobuf.Type {
  if (!modelType) modelType = protobuf.Root.fromJSON(ONNX_JSON).lookupType('onnx.ModelProto');
  return modelType;
}

/** Serializes a model to ONNX protobuf bytes. */
export function encodeModel(model: ModelProto): Uint8Array {
  const T = onnxModelType();
  return T.encode(T.fromObject(model as unknown as Record<string, unknown>)).finish();
}

/** Parses ONNX bytes back into plain objects (int64 as numbers, bytes as Uint8Array); for tests and tools. */
export function decodeModel(bytes: Uint8Array): ModelProto {
  const T = onnxModelType();
  return T.toObject(T.decode(bytes), { longs: Number, defaults: false, arrays: true }) as unknown as ModelProto;
}

/** A ValueInfoProto for a graph input/output tensor. */
export function valueInfo(name: string, elemType: DataType, dims: Dim[]): ValueInfoProto {
  const dim = dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d }));
  return { name, type: { tensorType: { elemType, shape: { dim } } } };
}
