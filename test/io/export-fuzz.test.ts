/**
 * Fuzzing the qkd-int8 reader: random byte flips, truncations, appended bytes and structured header /
 * config edits of real exports (a block-sparse W8A8 and a CSR W8A32 student). Every case must either be
 * rejected with a QkdError or load and give exactly the original logits: no other exception, no hang,
 * no silent garbage. QKD_FUZZ_CASES sets the number of cases (default 300; the long run uses thousands).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportStudent } from '../../src/io/export.js';
import { parseExport, type ExportFiles } from '../../src/io/export-read.js';
import { TsBackend } from '../../src/kernels/ts/backend.js';
import { Int8Transformer } from '../../src/runtime/int8-model.js';
import { rng } from '../../src/runtime/generate.js';
import { QkdError } from '../../src/tensor/errors.js';
import { makeStudent } from '../runtime/students.js';

const CASES = Number(process.env.QKD_FUZZ_CASES ?? 300);
const tmp = mkdtempSync(join(tmpdir(), 'qkd-fuzz-'));
const be = new TsBackend();
const IDS = [5, 300, 17, 2000, 42, 7, 1024, 99];

interface Base { files: ExportFiles & { config: Uint8Array; tokenizer: Uint8Array }; logits: Float32Array }

function logitsOf(files: ExportFiles): Float32Array {
  return new Int8Transformer(be, parseExport(files)).forward(IDS, 1, IDS.length).slice();
}

function base(name: string, spec: Parameters<typeof makeStudent>[1]): Base {
  const out = exportStudent(makeStudent(join(tmp, name), spec), join(tmp, `${name}-x`)).out;
  const read = (f: string) => new Uint8Array(readFileSync(join(out, f)));
  const files = { config: read('config.json'), model: read('model.safetensors'), tokenizer: read('tokenizer.json') };
  return { files, logits: logitsOf(files) };
}

type Rand = () => number;
const int = (r: Rand, n: number) => Math.floor(r() * n);

function flip(bytes: Uint8Array, r: Rand, headerBias: boolean): Uint8Array {
  const b = bytes.slice(), hdr = 8 + new DataView(b.buffer).getUint32(0, true);
  const k = 1 + int(r, 4);
  for (let i = 0; i < k; i++) {
    const at = headerBias && r() < 0.5 ? int(r, Math.min(hdr, b.length)) : int(r, b.length);
    b[at] ^= 1 << int(r, 8);
  }
  return b;
}

/** A structured edit of the safetensors header JSON (the length prefix is kept consistent). */
function headerEdit(model: Uint8Array, r: Rand): Uint8Array {
  const n = new DataView(model.buffer, model.byteOffset).getUint32(0, true);
  const h = JSON.parse(new TextDecoder().decode(model.subarray(8, 8 + n)));
  const names = Object.keys(h).filter((k) => k !== '__metadata__'), name = names[int(r, names.length)], e = h[name];
  const metaKeys = Object.keys(h.__metadata__);
  const edits: (() => void)[] = [
    () => { e.dtype = ['F32', 'I32', 'U16', 'I8', 'U8', 'F16', 'BOOL'][int(r, 7)]; },
    () => { e.shape = e.shape.map((d: number) => d + int(r, 3) - 1); },
    () => { e.shape = [...e.shape, 1]; },
    () => { e.data_offsets = e.data_offsets.map((o: number) => o + (int(r, 3) - 1) * (1 + int(r, 8))); },
    () => { delete h[name]; },
    () => { h[`${name}x`] = e; delete h[name]; },
    () => { h.__metadata__[metaKeys[int(r, metaKeys.length)]] = String(int(r, 1e6)); },
    () => { delete h.__metadata__[metaKeys[int(r, metaKeys.length)]]; },
    () => { const o = h[names[int(r, names.length)]]; [e.data_offsets, o.data_offsets] = [o.data_offsets, e.data_offsets]; },
    () => { e.shape = [2 ** 40, 2 ** 40]; },
  ];
  edits[int(r, edits.length)]();
  let json = JSON.stringify(h);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const hb = new TextEncoder().encode(json), out = new Uint8Array(8 + hb.length + model.length - 8 - n);
  new DataView(out.buffer).setUint32(0, hb.length, true);
  out.set(hb, 8);
  out.set(model.subarray(8 + n), 8 + hb.length);
  return out;
}

/** A structured edit of config.json: one leaf value changed or removed. */
function configEdit(config: Uint8Array, r: Rand): Uint8Array {
  const c = JSON.parse(new TextDecoder().decode(config));
  const leaves: [Record<string, unknown>, string][] = [];
  const walk = (o: Record<string, unknown>) => {
    for (const [k, v] of Object.entries(o)) {
      if (v && typeof v === 'object' && !Array.isArray(v)) walk(v as Record<string, unknown>);
      else leaves.push([o, k]);
    }
  };
  walk(c);
  const [o, k] = leaves[int(r, leaves.length)], v = o[k];
  const choice = int(r, 4);
  if (choice === 0) delete o[k];
  else if (typeof v === 'number') o[k] = choice === 1 ? v + 1 : choice === 2 ? -v : v * 1000;
  else if (typeof v === 'boolean') o[k] = !v;
  else if (typeof v === 'string') o[k] = choice === 1 ? `${v}x` : '';
  else o[k] = choice === 1 ? 0 : 'x';
  return new TextEncoder().encode(JSON.stringify(c));
}

function mutate(b: Base, r: Rand): { files: ExportFiles; kind: string } {
  const f = b.files, kind = ['flip-model', 'flip-header', 'truncate', 'append', 'header-edit', 'flip-config', 'config-edit', 'flip-tokenizer'][int(r, 8)];
  switch (kind) {
    case 'flip-model': return { kind, files: { ...f, model: flip(f.model, r, false) } };
    case 'flip-header': return { kind, files: { ...f, model: flip(f.model, r, true) } };
    case 'truncate': return { kind, files: { ...f, model: f.model.subarray(0, int(r, f.model.length)) } };
    case 'append': return { kind, files: { ...f, model: Uint8Array.from([...f.model, ...Array.from({ length: 1 + int(r, 16) }, () => int(r, 256))]) } };
    case 'header-edit': return { kind, files: { ...f, model: headerEdit(f.model, r) } };
    case 'flip-config': return { kind, files: { ...f, config: flip(f.config, r, false) } };
    case 'config-edit': return { kind, files: { ...f, config: configEdit(f.config, r) } };
    default: return { kind, files: { ...f, tokenizer: flip(f.tokenizer, r, false) } };
  }
}

test(`reader fuzz: ${CASES} mutated exports are rejected with QkdError or load with unchanged logits`, { timeout: 600_000 }, () => {
  const bases = [base('blk', {}), base('csr', { arch: 'student', actBits: 0, sparsity: { target: 0.9, granularity: 'unstructured' } })];
  const r = rng(Number(process.env.QKD_FUZZ_SEED ?? 12345)), stats: Record<string, { rejected: number; loaded: number }> = {};
  let slowest = 0;
  for (let i = 0; i < CASES; i++) {
    const b = bases[i % bases.length], { files, kind } = mutate(b, r), t0 = performance.now();
    const s = (stats[kind] ??= { rejected: 0, loaded: 0 });
    let logits: Float32Array | null = null;
    try {
      logits = logitsOf(files);
    } catch (e) {
      if (!(e instanceof QkdError)) assert.fail(`case ${i} (${kind}): ${(e as Error)?.stack ?? e}`);
      assert.match(e.message, /config\.json|model\.safetensors|tokenizer\.json/, `case ${i} (${kind}): message names no file: ${e.message}`);
      s.rejected++;
    }
    if (logits) {
      assert.deepEqual(logits, b.logits, `case ${i} (${kind}) loaded but its logits differ: silent garbage`);
      s.loaded++;
    }
    slowest = Math.max(slowest, performance.now() - t0);
  }
  console.log(JSON.stringify({ bench: 'export-fuzz', cases: CASES, slowestMs: Math.round(slowest), stats }));
  assert.ok(slowest < 5000, `slowest case took ${slowest} ms`);
});
