/**
 * A strict, browser-safe safetensors codec for the compact export (io/safetensors.ts reads files with
 * node:fs, which a browser cannot import, and writes no U16). Same byte format: u64 little-endian
 * header length N, N bytes of JSON {name: {dtype, shape, data_offsets}, __metadata__: {str: str}},
 * then the data buffer. Every tensor's bytes are checked against a CRC-32 recorded in the metadata.
 */
import { QkdError } from '../tensor/errors.js';
import { firstDuplicateKey } from './json-keys.js';

export type StDtype = 'F32' | 'I32' | 'U16' | 'I8' | 'U8';
export const ST_SIZE: Record<StDtype, number> = { F32: 4, I32: 4, U16: 2, I8: 1, U8: 1 };
export type StArray = Float32Array | Int32Array | Uint16Array | Int8Array | Uint8Array;

export interface StTensor { dtype: StDtype; shape: number[]; data: StArray }
/** A parsed tensor: its raw bytes (a view into the file) and where it came from. */
export interface StEntry { dtype: StDtype; shape: number[]; bytes: Uint8Array }

const LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

// ---- CRC-32 (IEEE 802.3, reflected, as zlib computes it)
let crcTable: Uint32Array | undefined;
export function crc32(bytes: Uint8Array): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = crcTable[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
export const crcHex = (bytes: Uint8Array): string => crc32(bytes).toString(16).padStart(8, '0');

const CRC_PREFIX = 'crc32:';

function bytesOf(a: StArray): Uint8Array { return new Uint8Array(a.buffer, a.byteOffset, a.byteLength); }

/** Serialises tensors (largest item size first so every tensor is aligned in the file); the metadata
 *  gains `crc32:<name>` for every tensor. */
export function encodeSt(tensors: Map<string, StTensor>, metadata: Record<string, string>): Uint8Array {
  if (!LE) throw new QkdError('E_UNSUPPORTED', 'export: big-endian hosts are not supported');
  const list = [...tensors].sort((a, b) => ST_SIZE[b[1].dtype] - ST_SIZE[a[1].dtype]);
  const meta: Record<string, string> = { ...metadata };
  const header: Record<string, unknown> = Object.create(null);
  header.__metadata__ = meta;
  let off = 0;
  for (const [name, t] of list) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (n !== t.data.length) throw new QkdError('E_INTERNAL', `export: tensor "${name}" has ${t.data.length} elements, shape [${t.shape}] needs ${n}`);
    const b = bytesOf(t.data);
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [off, off + b.length] };
    meta[CRC_PREFIX + name] = crcHex(b);
    off += b.length;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (new TextEncoder().encode(json).length % 8)) % 8);
  const hb = new TextEncoder().encode(json), out = new Uint8Array(8 + hb.length + off);
  new DataView(out.buffer).setUint32(0, hb.length, true);
  out.set(hb, 8);
  let p = 8 + hb.length;
  for (const [, t] of list) { out.set(bytesOf(t.data), p); p += t.data.byteLength; }
  return out;
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/**
 * Parses and checks a whole file: header bounds, dtypes, shapes against byte ranges, ranges inside
 * the data buffer and not overlapping, every tensor's CRC-32. Nothing is allocated from sizes the file
 * claims before they are checked against the file's length.
 */
export function decodeSt(file: string, bytes: Uint8Array): { tensors: Map<string, StEntry>; metadata: Record<string, string> } {
  const bad = (msg: string): never => { throw new QkdError('E_FORMAT', `${file}: ${msg}`); };
  if (!LE) throw new QkdError('E_UNSUPPORTED', `${file}: big-endian hosts are not supported`);
  if (bytes.length < 8) bad(`file is ${bytes.length} bytes, too short for the header length (truncated?)`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = dv.getUint32(0, true) + dv.getUint32(4, true) * 2 ** 32;
  if (n > bytes.length - 8) bad(`header length ${n} exceeds the file size ${bytes.length} (truncated?)`);
  let json: unknown, text = '';
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + n));
    json = JSON.parse(text);
  } catch (e) {
    bad(`header is not valid UTF-8 JSON (${(e as Error).message})`);
  }
  if (!isObj(json)) return bad('header is not a JSON object');
  const dup = firstDuplicateKey(text);
  if (dup) bad(`header names ${dup.path ? `field "${dup.key}" of "${dup.path}"` : `tensor "${dup.key}"`} twice`);
  const dataStart = 8 + n, dataLen = bytes.length - dataStart;
  const meta = json.__metadata__;
  if (!isObj(meta) || !Object.values(meta).every((v) => typeof v === 'string')) bad('__metadata__ is missing or not a map of strings');
  const metadata = { ...(meta as Record<string, string>) };
  const tensors = new Map<string, StEntry>(), ranges: [number, number, string][] = [];
  for (const [name, v] of Object.entries(json)) {
    if (name === '__metadata__') continue;
    const where = `tensor "${name}"`;
    if (!isObj(v)) bad(`${where}: header entry is not an object`);
    const { dtype, shape, data_offsets: off } = v as Record<string, unknown>;
    if (typeof dtype !== 'string' || !Object.hasOwn(ST_SIZE, dtype)) bad(`${where}: dtype ${JSON.stringify(dtype)} is not one of ${Object.keys(ST_SIZE).join(', ')}`);
    if (!Array.isArray(shape) || !shape.every(isCount)) bad(`${where}: shape ${JSON.stringify(shape)} is not a list of counts`);
    if (!Array.isArray(off) || off.length !== 2 || !off.every(isCount) || off[0] > off[1] || off[1] > dataLen) {
      bad(`${where}: data_offsets ${JSON.stringify(off)} do not lie inside the data buffer of ${dataLen} bytes (truncated?)`);
    }
    const [b0, b1] = off as number[];
    let want: number = ST_SIZE[dtype as StDtype];
    for (const d of shape as number[]) want = Math.min(want * d, dataLen + 1);
    if (want !== b1 - b0) bad(`${where}: shape [${shape}] of ${dtype} needs ${want} bytes, data_offsets give ${b1 - b0}`);
    const tb = bytes.subarray(dataStart + b0, dataStart + b1);
    const crc = metadata[CRC_PREFIX + name];
    if (crc === undefined) bad(`${where}: no checksum "${CRC_PREFIX}${name}" in __metadata__`);
    if (crcHex(tb) !== crc) bad(`${where}: CRC-32 ${crcHex(tb)} does not match the recorded ${crc} (corrupt data)`);
    tensors.set(name, { dtype: dtype as StDtype, shape: [...(shape as number[])], bytes: tb });
    if (b1 > b0) ranges.push([b0, b1, name]);
  }
  // the tensors tile the data buffer exactly: no overlaps, no gaps, nothing after the last one
  ranges.sort((a, b) => a[0] - b[0]);
  let end = 0;
  for (const [b0, b1, name] of ranges) {
    if (b0 !== end) bad(`tensor "${name}" starts at byte ${b0} of the data buffer, expected ${end} (${b0 < end ? 'overlap' : 'gap'})`);
    end = b1;
  }
  if (end !== dataLen) bad(`${dataLen - end} bytes after the last tensor (appended data or a bad header)`);
  for (const k of Object.keys(metadata)) {
    if (k.startsWith(CRC_PREFIX) && !tensors.has(k.slice(CRC_PREFIX.length))) bad(`__metadata__.${k}: no such tensor (missing from the header)`);
  }
  return { tensors, metadata };
}

/** A tensor's elements as a fresh, aligned typed array of its dtype. */
export function stArray(e: StEntry): StArray {
  const buf = e.bytes.slice().buffer;
  switch (e.dtype) {
    case 'F32': return new Float32Array(buf);
    case 'I32': return new Int32Array(buf);
    case 'U16': return new Uint16Array(buf);
    case 'I8': return new Int8Array(buf);
    default: return new Uint8Array(buf);
  }
}
