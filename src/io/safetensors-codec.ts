/**
 * The safetensors codec (browser-safe: no Node imports; files are read by io/safetensors.ts). Format: u64 little-endian header length N, N bytes of JSON
 * `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__"?: {str: str}}`, then the data
 * buffer; offsets are relative to the buffer. Everything in the header is validated before any
 * tensor byte is touched; every failure is a QkdError naming the file and the tensor.
 */
import { QkdError } from '../tensor/errors.js';
import { firstDuplicateKey } from './json-keys.js';

/** Item sizes of every dtype the format defines; we can carry all of them as raw bytes. */
export const DTYPE_SIZE = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1,
  U64: 8, U32: 4, U16: 2, U8: 1, BOOL: 1, F8_E4M3: 1, F8_E5M2: 1,
} as const;
export type Dtype = keyof typeof DTYPE_SIZE;
export type WriteDtype = 'F32' | 'F16' | 'BF16' | 'I8' | 'U8' | 'U16' | 'I32' | 'I64';
export type AnyTypedArray = Float64Array | Float32Array | Uint16Array | Int16Array | Int8Array | Uint8Array
  | Int32Array | Uint32Array | BigInt64Array | BigUint64Array;

export interface TensorInfo {
  dtype: Dtype;
  shape: number[];
  /** Raw little-endian bytes (may be a view into a larger buffer; getters always copy). */
  bytes: Uint8Array;
  /** The file the tensor came from, for error messages. */
  file: string;
}

/** Largest header we accept (the reference implementation's limit too). */
const MAX_HEADER = 100_000_000;
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

export const fmt = (file: string, msg: string) => new QkdError('E_FORMAT', `${file}: ${msg}`);
const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

// ---- bit-exact dtype conversions ----

let f16Table: Uint32Array | undefined;
/**
 * All 65536 half-precision values as float32 BITS (exact: every f16 is representable in f32). Bits,
 * not floats: copying a signalling NaN through a JS number may quiet it (x86 float->double), which
 * would change NaN payloads depending on the JIT tier.
 */
export function f16ToF32Table(): Uint32Array {
  if (f16Table) return f16Table;
  const bits = new Uint32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = (h & 0x8000) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
    if (exp === 0x1f) bits[h] = sign | 0x7f800000 | (mant << 13); // inf / NaN (payload kept)
    else if (exp !== 0) bits[h] = sign | ((exp + 112) << 23) | (mant << 13);
    else if (mant === 0) bits[h] = sign;
    else {
      // subnormal: mant * 2^-24, renormalised
      let e = 113, m = mant;
      while ((m & 0x400) === 0) { m <<= 1; e--; }
      bits[h] = sign | (e << 23) | ((m & 0x3ff) << 13);
    }
  }
  f16Table = bits;
  return f16Table;
}

/** float32 bits -> float16 bits, round to nearest even, with subnormals, inf and NaN. */
function f32BitsToF16(x: number): number {
  const sign = (x >>> 16) & 0x8000, exp = (x >>> 23) & 0xff, mant = x & 0x7fffff;
  if (exp === 0xff) {
    if (mant === 0) return sign | 0x7c00;
    const m = mant >>> 13;
    return sign | 0x7c00 | (m === 0 ? 0x200 : m); // keep it a NaN even if the payload was low bits
  }
  if (exp > 142) return sign | 0x7c00; // >= 2^16: beyond the largest half (65504) after rounding
  if (exp >= 113) {
    let h = ((exp - 112) << 10) | (mant >>> 13);
    const rem = mant & 0x1fff;
    if (rem > 0x1000 || (rem === 0x1000 && (h & 1))) h++; // a carry may reach inf, which is right
    return sign | h;
  }
  if (exp < 102) return sign; // below 2^-25: rounds to zero
  const m = mant | 0x800000, shift = 126 - exp; // value = m * 2^(exp-150); unit 2^-24
  let h = m >>> shift;
  const rem = m & ((1 << shift) - 1), half = 1 << (shift - 1);
  if (rem > half || (rem === half && (h & 1))) h++;
  return sign | h;
}

/** float32 bits -> bfloat16 bits, round to nearest even; a NaN keeps its top bits (so bf16-valued
 *  data round-trips exactly) and stays a NaN when its payload was only in the dropped bits. */
function f32BitsToBf16(x: number): number {
  if ((x & 0x7fffffff) > 0x7f800000) {
    const h = x >>> 16;
    return (h & 0x7f) === 0 ? h | 0x40 : h;
  }
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

export function f32ToF16(src: Float32Array): Uint16Array {
  const u = new Uint32Array(src.buffer, src.byteOffset, src.length), out = new Uint16Array(src.length);
  for (let i = 0; i < u.length; i++) out[i] = f32BitsToF16(u[i]);
  return out;
}

export function f32ToBf16(src: Float32Array): Uint16Array {
  const u = new Uint32Array(src.buffer, src.byteOffset, src.length), out = new Uint16Array(src.length);
  for (let i = 0; i < u.length; i++) out[i] = f32BitsToBf16(u[i]);
  return out;
}

export function f16ToF32(src: Uint16Array): Float32Array {
  const t = f16ToF32Table(), out = new Uint32Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = t[src[i]];
  return new Float32Array(out.buffer);
}

export function bf16ToF32(src: Uint16Array): Float32Array {
  const out = new Uint32Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = src[i] << 16;
  return new Float32Array(out.buffer);
}

// ---- reading ----

/** Copies bytes into a fresh, aligned ArrayBuffer (file data need not be aligned). */
function aligned(bytes: Uint8Array): ArrayBuffer {
  const out = new Uint8Array(bytes.length);
  out.set(bytes);
  return out.buffer;
}

/** A set of named tensors (one file, or a sharded checkpoint) with typed accessors. */
export class TensorStore {
  constructor(readonly tensors: Map<string, TensorInfo>, protected readonly where: string) {}

  has(name: string): boolean { return this.tensors.has(name); }

  get(name: string): TensorInfo {
    const t = this.tensors.get(name);
    if (!t) throw new QkdError('E_MISSING', `${this.where}: tensor "${name}" not found`);
    return t;
  }

  /** Float tensors (F32/F16/BF16/F64) as a fresh Float32Array. */
  getF32(name: string): Float32Array {
    const t = this.get(name);
    if (!LITTLE_ENDIAN) throw new QkdError('E_UNSUPPORTED', `${t.file}: big-endian hosts are not supported`);
    const buf = aligned(t.bytes);
    switch (t.dtype) {
      case 'F32': return new Float32Array(buf);
      case 'F16': return f16ToF32(new Uint16Array(buf));
      case 'BF16': return bf16ToF32(new Uint16Array(buf));
      case 'F64': return Float32Array.from(new Float64Array(buf));
      default:
        throw new QkdError('E_SHAPE', `${t.file}: tensor "${name}" has dtype ${t.dtype}, expected a float dtype`);
    }
  }

  /** The tensor's elements in their stored type (F16/BF16 as raw Uint16 bits), copied. */
  getTyped(name: string): AnyTypedArray {
    const t = this.get(name);
    if (!LITTLE_ENDIAN) throw new QkdError('E_UNSUPPORTED', `${t.file}: big-endian hosts are not supported`);
    const buf = aligned(t.bytes);
    switch (t.dtype) {
      case 'F64': return new Float64Array(buf);
      case 'F32': return new Float32Array(buf);
      case 'F16': case 'BF16': case 'U16': return new Uint16Array(buf);
      case 'I16': return new Int16Array(buf);
      case 'I8': return new Int8Array(buf);
      case 'I32': return new Int32Array(buf);
      case 'U32': return new Uint32Array(buf);
      case 'I64': return new BigInt64Array(buf);
      case 'U64': return new BigUint64Array(buf);
      default: return new Uint8Array(buf); // U8, BOOL, F8_*
    }
  }
}

export class SafetensorsFile extends TensorStore {
  constructor(readonly path: string, tensors: Map<string, TensorInfo>, readonly metadata: Record<string, string>) {
    super(tensors, path);
  }
}

export interface ByteSource { size: number; read(offset: number, length: number): Uint8Array }

interface Entry { name: string; dtype: Dtype; shape: number[]; begin: number; end: number }

function parseEntry(file: string, name: string, v: unknown, dataLen: number): Entry {
  const bad = (msg: string) => fmt(file, `tensor "${name}": ${msg}`);
  if (!isObj(v)) throw bad('header entry is not an object');
  for (const k of Object.keys(v)) {
    if (k !== 'dtype' && k !== 'shape' && k !== 'data_offsets') throw bad(`unknown header field "${k}"`);
  }
  const { dtype, shape, data_offsets: off } = v;
  if (typeof dtype !== 'string' || !Object.hasOwn(DTYPE_SIZE, dtype)) {
    throw bad(`unknown dtype ${JSON.stringify(dtype)}`);
  }
  if (!Array.isArray(shape) || !shape.every(isCount)) throw bad(`shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
  if (!Array.isArray(off) || off.length !== 2 || !off.every(isCount) || off[0] > off[1]) {
    throw bad(`data_offsets ${JSON.stringify(off)} is not [begin, end] with 0 <= begin <= end`);
  }
  const [begin, end] = off as number[];
  if (end > dataLen) throw bad(`data_offsets [${begin}, ${end}] run past the data buffer of ${dataLen} bytes (truncated file?)`);
  // Element count times item size must equal the byte range; the product is capped by dataLen+1 so
  // huge shapes cannot overflow into an accidental match.
  let bytes: number = DTYPE_SIZE[dtype as Dtype];
  for (const d of shape as number[]) bytes = Math.min(bytes * d, dataLen + 1);
  if (bytes !== end - begin) {
    throw bad(`shape [${shape.join(', ')}] x ${dtype} needs ${bytes > dataLen ? `more than ${dataLen}` : bytes} bytes, data_offsets give ${end - begin}`);
  }
  return { name, dtype: dtype as Dtype, shape: [...(shape as number[])], begin, end };
}

function parseMetadata(file: string, v: unknown): Record<string, string> {
  if (v === undefined || v === null) return {};
  if (!isObj(v)) throw fmt(file, '__metadata__ is not an object');
  for (const [k, s] of Object.entries(v)) {
    if (typeof s !== 'string') throw fmt(file, `__metadata__.${k} is not a string`);
  }
  return { ...(v as Record<string, string>) };
}

function readHeaderJson(file: string, src: ByteSource): { json: Record<string, unknown>; dataStart: number } {
  if (src.size < 8) throw fmt(file, `file is ${src.size} bytes, too short for the 8-byte header length (truncated?)`);
  const lenBytes = src.read(0, 8);
  const lo = lenBytes[0] | (lenBytes[1] << 8) | (lenBytes[2] << 16), hi = lenBytes[3] + 256 * (lenBytes[4] + 256 * (lenBytes[5] + 256 * (lenBytes[6] + 256 * lenBytes[7])));
  const n = hi * 2 ** 24 + lo; // exact up to 2^53, anything larger is rejected below anyway
  if (n > src.size - 8) throw fmt(file, `header length ${n} exceeds the file size ${src.size} (truncated or not safetensors)`);
  if (n > MAX_HEADER) throw fmt(file, `header length ${n} exceeds the ${MAX_HEADER}-byte limit`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(src.read(8, n));
  } catch {
    throw fmt(file, 'header is not valid UTF-8 (not a safetensors file?)');
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw fmt(file, `header is not valid JSON: ${(e as Error).message}`);
  }
  if (!isObj(json)) throw fmt(file, 'header is not a JSON object');
  const dup = firstDuplicateKey(text);
  if (dup) throw fmt(file, `header names ${dup.path ? `field "${dup.key}" of "${dup.path}"` : `tensor "${dup.key}"`} twice`);
  return { json, dataStart: 8 + n };
}

export function parseFrom(file: string, src: ByteSource): SafetensorsFile {
  const { json, dataStart } = readHeaderJson(file, src);
  const dataLen = src.size - dataStart;
  const entries: Entry[] = [];
  let metadata: Record<string, string> = {};
  for (const [name, v] of Object.entries(json)) {
    if (name === '__metadata__') metadata = parseMetadata(file, v);
    else entries.push(parseEntry(file, name, v, dataLen));
  }
  // the tensors must tile the data buffer exactly, as Hugging Face's reader requires: a byte that no
  // tensor covers means a corrupt header length or offsets (e.g. a header shortened into its padding
  // would otherwise shift every tensor)
  const ranges = entries.filter((e) => e.end > e.begin).sort((a, b) => a.begin - b.begin);
  let covered = 0;
  for (let i = 0; i < ranges.length; i++) {
    if (i > 0 && ranges[i].begin < ranges[i - 1].end) {
      throw fmt(file, `tensors "${ranges[i - 1].name}" and "${ranges[i].name}" have overlapping data_offsets`);
    }
    if (ranges[i].begin !== covered) throw fmt(file, `bytes ${covered}..${ranges[i].begin} of the data buffer belong to no tensor (before "${ranges[i].name}")`);
    covered = ranges[i].end;
  }
  if (covered !== dataLen) throw fmt(file, `the data buffer holds ${dataLen} bytes but its tensors cover ${covered} (corrupt header length or offsets?)`);
  const tensors = new Map<string, TensorInfo>();
  for (const e of entries) {
    tensors.set(e.name, { dtype: e.dtype, shape: e.shape, bytes: src.read(dataStart + e.begin, e.end - e.begin), file });
  }
  return new SafetensorsFile(file, tensors, metadata);
}

/** Parses a whole safetensors file already in memory (browser-safe). `name` appears in errors. */
export function parseSafetensors(bytes: Uint8Array, name = '<memory>'): SafetensorsFile {
  return parseFrom(name, { size: bytes.length, read: (o, l) => bytes.subarray(o, o + l) });
}

// ---- writing ----

export interface TensorToWrite {
  dtype: WriteDtype;
  shape: readonly number[];
  /** F32: Float32Array; F16/BF16: Float32Array (rounded to nearest even) or Uint16Array (raw bits);
   *  I8: Int8Array; U8: Uint8Array; U16: Uint16Array; I32: Int32Array; I64: BigInt64Array. */
  data: Float32Array | Uint16Array | Int8Array | Uint8Array | Int32Array | BigInt64Array;
}

/** The stored bytes of one tensor, after checking that the array type fits the dtype. */
function tensorBytes(where: string, name: string, t: TensorToWrite): Uint8Array {
  const d = t.data;
  const ok = (t.dtype === 'F32' && d instanceof Float32Array)
    || ((t.dtype === 'F16' || t.dtype === 'BF16') && (d instanceof Float32Array || d instanceof Uint16Array))
    || (t.dtype === 'I8' && d instanceof Int8Array) || (t.dtype === 'U8' && d instanceof Uint8Array)
    || (t.dtype === 'U16' && d instanceof Uint16Array)
    || (t.dtype === 'I32' && d instanceof Int32Array) || (t.dtype === 'I64' && d instanceof BigInt64Array);
  if (!ok) throw new QkdError('E_SHAPE', `${where}: tensor "${name}": ${d?.constructor?.name} cannot be written as ${t.dtype}`);
  let view: ArrayBufferView = d;
  if (d instanceof Float32Array && t.dtype === 'F16') view = f32ToF16(d);
  else if (d instanceof Float32Array && t.dtype === 'BF16') view = f32ToBf16(d);
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

/** Serialises tensors (header padded with spaces to 8 bytes; data ordered by item size so every
 *  tensor is aligned to its item size in the file). */
export function encodeSafetensors(
  tensors: Record<string, TensorToWrite> | Map<string, TensorToWrite>,
  metadata?: Record<string, string>, where = 'safetensors',
): Uint8Array {
  if (!LITTLE_ENDIAN) throw new QkdError('E_UNSUPPORTED', `${where}: big-endian hosts are not supported`);
  const list = (tensors instanceof Map ? [...tensors] : Object.entries(tensors))
    .map(([name, t], i) => ({ name, t, i }))
    .sort((a, b) => DTYPE_SIZE[b.t.dtype] - DTYPE_SIZE[a.t.dtype] || a.i - b.i);
  // null prototype: a tensor named "__proto__" must stay an ordinary key
  const header: Record<string, unknown> = Object.create(null);
  if (metadata && Object.keys(metadata).length > 0) header.__metadata__ = parseMetadata(where, metadata);
  const blobs: Uint8Array[] = [];
  let off = 0;
  for (const { name, t } of list) {
    if (name === '__metadata__') throw new QkdError('E_INPUT', `${where}: "__metadata__" is reserved, not a tensor name`);
    if (!Array.isArray(t.shape) || !t.shape.every(isCount)) {
      throw new QkdError('E_SHAPE', `${where}: tensor "${name}": shape ${JSON.stringify(t.shape)} is not a list of non-negative integers`);
    }
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (count !== t.data.length) {
      throw new QkdError('E_SHAPE', `${where}: tensor "${name}": shape [${t.shape.join(', ')}] has ${count} elements, data has ${t.data.length}`);
    }
    const b = tensorBytes(where, name, t);
    header[name] = { dtype: t.dtype, shape: [...t.shape], data_offsets: [off, off + b.length] };
    blobs.push(b);
    off += b.length;
  }
  const json = JSON.stringify(header);
  let hb = new TextEncoder().encode(json);
  const pad = (8 - (hb.length % 8)) % 8;
  if (pad) hb = new TextEncoder().encode(json + ' '.repeat(pad));
  const out = new Uint8Array(8 + hb.length + off);
  new DataView(out.buffer).setBigUint64(0, BigInt(hb.length), true);
  out.set(hb, 8);
  let p = 8 + hb.length;
  for (const b of blobs) { out.set(b, p); p += b.length; }
  return out;
}
