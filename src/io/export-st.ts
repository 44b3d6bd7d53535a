/**
 * The compact export's safetensors profile (browser-safe), over the one codec of
 * io/safetensors-codec.ts: only the dtypes the export uses (F32, I32, U16, I8, U8), a `__metadata__`
 * that records a CRC-32 of every tensor's bytes (`crc32:<name>`), checked on every read.
 */
import { QkdError } from '../tensor/errors.js';
import { crcHex } from './crc32.js';
import { encodeSafetensors, parseSafetensors } from './safetensors-codec.js';

export { crc32, crcHex } from './crc32.js';

export type StDtype = 'F32' | 'I32' | 'U16' | 'I8' | 'U8';
export const ST_SIZE: Record<StDtype, number> = { F32: 4, I32: 4, U16: 2, I8: 1, U8: 1 };
export type StArray = Float32Array | Int32Array | Uint16Array | Int8Array | Uint8Array;

export interface StTensor { dtype: StDtype; shape: number[]; data: StArray }
/** A parsed tensor: its raw bytes (a view into the file) and where it came from. */
export interface StEntry { dtype: StDtype; shape: number[]; bytes: Uint8Array }

const CRC_PREFIX = 'crc32:';

function bytesOf(a: StArray): Uint8Array { return new Uint8Array(a.buffer, a.byteOffset, a.byteLength); }

/** Serialises tensors (largest item size first so every tensor is aligned in the file); the metadata
 *  gains `crc32:<name>` for every tensor, in file order. */
export function encodeSt(tensors: Map<string, StTensor>, metadata: Record<string, string>): Uint8Array {
  const list = [...tensors].sort((a, b) => ST_SIZE[b[1].dtype] - ST_SIZE[a[1].dtype]);
  const meta: Record<string, string> = { ...metadata };
  for (const [name, t] of list) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (n !== t.data.length) throw new QkdError('E_INTERNAL', `export: tensor "${name}" has ${t.data.length} elements, shape [${t.shape}] needs ${n}`);
    meta[CRC_PREFIX + name] = crcHex(bytesOf(t.data));
  }
  return encodeSafetensors(new Map(list), meta, 'export');
}

/**
 * Parses and checks a whole file: the codec's checks (header bounds, dtypes, shapes against byte
 * ranges, tensors tiling the data buffer), then the profile's dtypes and every tensor's CRC-32.
 */
export function decodeSt(file: string, bytes: Uint8Array): { tensors: Map<string, StEntry>; metadata: Record<string, string> } {
  const bad = (msg: string): never => { throw new QkdError('E_FORMAT', `${file}: ${msg}`); };
  const st = parseSafetensors(bytes, file);
  const metadata = st.metadata, tensors = new Map<string, StEntry>();
  if (Object.keys(metadata).length === 0) bad('__metadata__ is missing or empty');
  for (const [name, t] of st.tensors) {
    const where = `tensor "${name}"`;
    if (!Object.hasOwn(ST_SIZE, t.dtype)) bad(`${where}: dtype ${JSON.stringify(t.dtype)} is not one of ${Object.keys(ST_SIZE).join(', ')}`);
    const crc = metadata[CRC_PREFIX + name];
    if (crc === undefined) bad(`${where}: no checksum "${CRC_PREFIX}${name}" in __metadata__`);
    if (crcHex(t.bytes) !== crc) bad(`${where}: CRC-32 ${crcHex(t.bytes)} does not match the recorded ${crc} (corrupt data)`);
    tensors.set(name, { dtype: t.dtype as StDtype, shape: t.shape, bytes: t.bytes });
  }
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
