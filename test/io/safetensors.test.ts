import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  bf16ToF32, encodeSafetensors, f16ToF32, f32ToBf16, f32ToF16, parseSafetensors, readSafetensors,
  writeSafetensors, DTYPE_SIZE, type TensorToWrite,
} from '../../src/io/safetensors.js';
import { encodeCheckpoint, readCheckpointDir, INDEX_FILE } from '../../src/io/hf-checkpoint.js';
import { writeDirAtomic } from '../../src/io/atomic.js';
import { QkdError } from '../../src/tensor/errors.js';

function withTmp(fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'qkd-st-'));
  try { fn(dir); } finally { rmSync(dir, { recursive: true, force: true }); }
}

/** Asserts a QkdError (optionally with a code) whose message contains every `parts`. */
function throwsQkd(fn: () => unknown, parts: string[], code?: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof QkdError, `expected QkdError, got ${String(e)}`);
    for (const p of parts) assert.ok(e.message.includes(p), `message ${JSON.stringify(e.message)} lacks ${JSON.stringify(p)}`);
    if (code) assert.equal(e.code, code, e.message);
    return true;
  });
}

const bitsOf = (x: number) => new Uint32Array(new Float32Array([x]).buffer)[0];
const fromBits = (b: number) => new Float32Array(new Uint32Array([b]).buffer)[0];

test('f16: all 65536 bit patterns survive f16 -> f32 -> f16 (subnormals, inf, NaN payloads)', () => {
  const all = new Uint16Array(65536).map((_, i) => i);
  const f = f16ToF32(all);
  assert.equal(f[0x3c00], 1); assert.equal(f[0xc000], -2); assert.equal(f[0x7bff], 65504);
  assert.equal(f[0x0001], 2 ** -24); assert.equal(f[0x03ff], 1023 * 2 ** -24); assert.equal(f[0x7c00], Infinity);
  assert.ok(Number.isNaN(f[0x7e00])); assert.ok(Object.is(f[0x8000], -0));
  assert.deepEqual(f32ToF16(f), all);
});

test('f16: float32 -> f16 rounds to nearest even at every midpoint', () => {
  const f = f16ToF32(new Uint16Array(0x7c00).map((_, i) => i)); // all positive finite halves
  for (let h = 0; h < 0x7bff; h++) {
    const mid = (f[h] + f[h + 1]) / 2; // exact in f32: 12 significant bits
    const mb = bitsOf(mid);
    const got = f32ToF16(new Float32Array([mid, fromBits(mb - 1), fromBits(mb + 1), -mid]));
    assert.equal(got[0], h % 2 === 0 ? h : h + 1, `tie at ${h}`);
    assert.equal(got[1], h); assert.equal(got[2], h + 1);
    assert.equal(got[3], got[0] | 0x8000);
  }
  const edge = f32ToF16(new Float32Array([65519.99, 65520, 1e6, -1e6, 2 ** -25, fromBits(bitsOf(2 ** -25) + 1), 1.5 * 2 ** -24, NaN, Infinity]));
  assert.deepEqual([...edge], [0x7bff, 0x7c00, 0x7c00, 0xfc00, 0, 1, 2, 0x7e00, 0x7c00]);
});

test('bf16: exact round trip of all bf16 values and round-to-nearest-even from f32', () => {
  const all = new Uint16Array(65536).map((_, i) => i);
  assert.deepEqual(f32ToBf16(bf16ToF32(all)), all);
  for (let h = 0; h < 0x7f7f; h += 3) {
    const base = h << 16;
    const got = f32ToBf16(new Float32Array([fromBits(base | 0x8000), fromBits(base | 0x7fff), fromBits(base | 0x8001)]));
    assert.deepEqual([...got], [h % 2 === 0 ? h : h + 1, h, h + 1], `at ${h}`);
  }
  const special = f32ToBf16(new Float32Array([NaN, -Infinity, 3.4028234663852886e38, fromBits(0x7f800001)]));
  assert.deepEqual([...special], [0x7fc0, 0xff80, 0x7f80, 0x7fc0]); // the last NaN's payload was all in dropped bits
});

test('write/read round trip of every writable dtype, scalars, empty tensors and metadata', () => withTmp((dir) => {
  const tensors: Record<string, TensorToWrite> = {
    f32: { dtype: 'F32', shape: [2, 3], data: new Float32Array([1, -2, 3.5, 0, -0, 1e-30]) },
    bf16: { dtype: 'BF16', shape: [3], data: new Float32Array([1, -0.154296875, 3]) },
    f16: { dtype: 'F16', shape: [2], data: new Uint16Array([0x3c00, 0x0001]) },
    i8: { dtype: 'I8', shape: [4], data: new Int8Array([-128, -1, 0, 127]) },
    u8: { dtype: 'U8', shape: [1, 1], data: new Uint8Array([255]) },
    i32: { dtype: 'I32', shape: [], data: new Int32Array([-123456789]) },
    i64: { dtype: 'I64', shape: [2], data: new BigInt64Array([-(2n ** 62n), 42n]) },
    empty: { dtype: 'F32', shape: [0, 5], data: new Float32Array(0) },
    __proto__x: { dtype: 'F32', shape: [1], data: new Float32Array([9]) },
  };
  const p = join(dir, 'x.safetensors');
  writeSafetensors(p, tensors, { format: 'pt', note: 'hi' });
  const f = readSafetensors(p);
  assert.deepEqual(f.metadata, { format: 'pt', note: 'hi' });
  assert.deepEqual([...f.getF32('f32')], [1, -2, 3.5, 0, -0, Math.fround(1e-30)]);
  assert.ok(Object.is(f.getF32('f32')[4], -0));
  assert.deepEqual([...f.getF32('bf16')], [1, -0.154296875, 3]);
  assert.deepEqual([...f.getF32('f16')], [1, 2 ** -24]);
  assert.deepEqual([...f.getTyped('i8')], [-128, -1, 0, 127]);
  assert.deepEqual(f.get('u8').shape, [1, 1]);
  assert.deepEqual([...f.getTyped('i32')], [-123456789]);
  assert.deepEqual(f.get('i32').shape, []);
  assert.deepEqual([...f.getTyped('i64')], [-(2n ** 62n), 42n]);
  assert.equal(f.getF32('empty').length, 0);
  throwsQkd(() => f.getF32('i8'), ['x.safetensors', '"i8"', 'I8'], 'E_SHAPE');
  throwsQkd(() => f.get('nope'), ['x.safetensors', '"nope"'], 'E_MISSING');
  // In-memory parsing agrees, and every tensor sits at a multiple of its item size in the file.
  const bytes = readFileSync(p);
  const m = parseSafetensors(bytes, 'mem');
  const hlen = Number(bytes.readBigUInt64LE(0));
  assert.equal(hlen % 8, 0);
  for (const [name, t] of m.tensors) {
    assert.deepEqual([...t.bytes], [...f.get(name).bytes]);
    assert.equal((t.bytes.byteOffset - bytes.byteOffset) % DTYPE_SIZE[t.dtype], 0, name);
  }
}));

test('writing rejects mismatched data', () => {
  throwsQkd(() => encodeSafetensors({ w: { dtype: 'F32', shape: [2, 2], data: new Float32Array(3) } }, undefined, 'out.safetensors'),
    ['out.safetensors', '"w"', '4 elements'], 'E_SHAPE');
  throwsQkd(() => encodeSafetensors({ w: { dtype: 'I8', shape: [2], data: new Float32Array(2) } }, undefined, 'out.safetensors'),
    ['out.safetensors', '"w"', 'I8'], 'E_SHAPE');
  throwsQkd(() => encodeSafetensors({ w: { dtype: 'F32', shape: [-1], data: new Float32Array(0) } }), ['"w"', 'shape']);
});

/** A file from a header object and a data section of `dataLen` zero bytes. */
function rawFile(header: unknown, dataLen: number, headerText?: string): Uint8Array {
  const h = new TextEncoder().encode(headerText ?? JSON.stringify(header));
  const out = new Uint8Array(8 + h.length + dataLen);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
  out.set(h, 8);
  return out;
}

test('corrupt files: every defect is a QkdError naming the file and the tensor', () => withTmp((dir) => {
  const ok = (begin: number, end: number, shape = [(end - begin) / 4]) => ({ dtype: 'F32', shape, data_offsets: [begin, end] });
  const check = (name: string, bytes: Uint8Array, parts: string[]) => {
    const p = join(dir, name);
    writeFileSync(p, bytes);
    throwsQkd(() => readSafetensors(p), [name, ...parts], 'E_FORMAT');
  };
  const good = rawFile({ a: ok(0, 16), b: ok(16, 32) }, 32);
  assert.equal(parseSafetensors(good).tensors.size, 2);
  check('truncated.safetensors', good.subarray(0, good.length - 5), ['"b"', 'truncated']);
  check('tiny.safetensors', good.subarray(0, 5), ['too short']);
  const big = good.slice();
  new DataView(big.buffer).setBigUint64(0, 1n << 40n, true);
  check('hlen.safetensors', big, ['header length']);
  check('nonjson.safetensors', rawFile(null, 0, '{"a": {"dtype": "F32",'), ['not valid JSON']);
  check('array.safetensors', rawFile([1, 2], 0), ['not a JSON object']);
  check('utf8.safetensors', rawFile(null, 0, '{"xx": 1}').map((v, i) => (i === 10 ? 0xff : v)), ['UTF-8']);
  check('dtype.safetensors', rawFile({ w: { dtype: 'F33', shape: [1], data_offsets: [0, 4] } }, 4), ['"w"', 'F33']);
  check('range.safetensors', rawFile({ w: ok(0, 64) }, 32), ['"w"', 'past the data buffer']);
  check('order.safetensors', rawFile({ w: { dtype: 'F32', shape: [0], data_offsets: [8, 4] } }, 8), ['"w"', 'data_offsets']);
  check('overlap.safetensors', rawFile({ a: ok(0, 16), b: ok(8, 24) }, 24), ['"a"', '"b"', 'overlapping']);
  // the tensors must tile the data buffer: a hole or trailing bytes mean a corrupt header length or offsets
  check('hole.safetensors', rawFile({ a: ok(0, 16), b: ok(20, 36) }, 36), ['"b"', 'bytes 16..20', 'belong to no tensor']);
  check('trailing.safetensors', rawFile({ a: ok(0, 16) }, 18), ['holds 18 bytes', 'cover 16']);
  const shortHeader = rawFile(null, 16, JSON.stringify({ a: ok(0, 16) }) + '  ');
  new DataView(shortHeader.buffer).setBigUint64(0, BigInt(shortHeader.length - 16 - 8 - 2), true); // header cut into its padding
  check('shifted.safetensors', shortHeader, ['holds 18 bytes', 'cover 16']);
  check('size.safetensors', rawFile({ w: ok(0, 16, [3]) }, 16), ['"w"', 'needs 12 bytes']);
  check('hugeshape.safetensors', rawFile({ w: ok(0, 16, [2 ** 40, 2 ** 40, 2 ** 40]) }, 16), ['"w"', 'more than']);
  check('neg.safetensors', rawFile({ w: ok(0, 16, [-4]) }, 16), ['"w"', 'shape']);
  check('float.safetensors', rawFile({ w: ok(0, 16, [4.5]) }, 16), ['"w"', 'shape']);
  check('entry.safetensors', rawFile({ w: 3 }, 0), ['"w"', 'not an object']);
  check('field.safetensors', rawFile({ w: { ...ok(0, 4), extra: 1 } }, 4), ['"w"', 'extra']);
  check('meta.safetensors', rawFile({ __metadata__: { n: 1 } }, 0), ['__metadata__.n']);
  throwsQkd(() => readSafetensors(join(dir, 'missing.safetensors')), ['missing.safetensors'], 'E_MISSING');
}));

test('sharded checkpoints: write two shards, read back, and reject broken indexes', () => withTmp((dir) => {
  const t = new Map<string, TensorToWrite>([
    ['a', { dtype: 'F32', shape: [4], data: new Float32Array([1, 2, 3, 4]) }],
    ['b', { dtype: 'BF16', shape: [2, 2], data: new Float32Array([5, 6, 7, 8]) }],
    ['c', { dtype: 'F32', shape: [3], data: new Float32Array([9, 10, 11]) }],
  ]);
  const files = encodeCheckpoint(t, { maxShardBytes: 24, metadata: { format: 'pt' } });
  assert.deepEqual(Object.keys(files).sort(), ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors', INDEX_FILE]);
  const index = JSON.parse(files[INDEX_FILE] as string);
  assert.deepEqual(index.weight_map, { a: 'model-00001-of-00002.safetensors', b: 'model-00001-of-00002.safetensors', c: 'model-00002-of-00002.safetensors' });
  assert.equal(index.metadata.total_size, 16 + 8 + 12);
  const ck = join(dir, 'ck');
  writeDirAtomic(ck, files);
  const r = readCheckpointDir(ck);
  assert.equal(r.files.length, 2);
  assert.deepEqual(r.warnings, []);
  assert.deepEqual([...r.getF32('a')], [1, 2, 3, 4]);
  assert.deepEqual([...r.getF32('b')], [5, 6, 7, 8]);
  assert.deepEqual([...r.getF32('c')], [9, 10, 11]);

  const withIndex = (wm: unknown, raw?: string) => {
    writeDirAtomic(ck, { ...files, [INDEX_FILE]: raw ?? JSON.stringify({ weight_map: wm }) });
    return () => readCheckpointDir(ck);
  };
  throwsQkd(withIndex({ ...index.weight_map, d: 'model-00003-of-00003.safetensors' }), [INDEX_FILE, 'model-00003-of-00003.safetensors', '"d"'], 'E_MISSING');
  throwsQkd(withIndex({ ...index.weight_map, d: 'model-00002-of-00002.safetensors' }), ['model-00002-of-00002.safetensors', '"d"'], 'E_MISSING');
  throwsQkd(withIndex({ a: '../model-00001-of-00002.safetensors' }), [INDEX_FILE, 'weight_map["a"]'], 'E_FORMAT');
  throwsQkd(withIndex(null, '{"weight_map": '), [INDEX_FILE, 'JSON'], 'E_FORMAT');
  throwsQkd(withIndex(null, '{"metadata": {}}'), [INDEX_FILE, 'weight_map'], 'E_FORMAT');
  const partial = withIndex({ a: 'model-00001-of-00002.safetensors', c: 'model-00002-of-00002.safetensors' })();
  assert.equal(partial.tensors.size, 2);
  assert.match(partial.warnings.join('\n'), /not in weight_map.*:b/);
  assert.equal(Object.keys(encodeCheckpoint(t)).join(), 'model.safetensors');
  throwsQkd(() => readCheckpointDir(join(dir, 'nothing')), ['nothing'], 'E_MISSING');
}));
