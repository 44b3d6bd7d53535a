/** Tiny float models for the hostile tests (random weights, the fixture tokenizer), made in milliseconds. */
import { readFileSync, writeFileSync } from 'node:fs';
import { configChecksum, QuantizationSchema } from '../../src/io/export-format.js';
import { parseHfConfig } from '../../src/io/hf-config.js';
import { saveHfModel } from '../../src/io/hf.js';
import { TsBackend } from '../../src/kernels/ts/backend.js';
import { makeModelConfig } from '../../src/model/config.js';
import { initParams } from '../../src/model/init.js';
import { Transformer } from '../../src/model/transformer.js';
import { fixture } from '../helpers.js';

export interface TinySpec {
  vocab?: number;
  maxPos?: number;
  /** Parameters set to NaN (every element). */
  nan?: string[];
  seed?: number;
}

/** A Llama-family model folder (config.json, model.safetensors, tokenizer.json of vocab 2048). */
export function tinyModel(dir: string, s: TinySpec = {}): string {
  const config = makeModelConfig({
    family: 'llama', vocabSize: s.vocab ?? 2048, dim: 32, nLayer: 1, nHead: 2, nKVHead: 1, headDim: 16, ffnDim: 64,
    maxPos: s.maxPos ?? 64, norm: 'rmsnorm', normEps: 1e-5, pos: 'rope', act: 'silu', gated: true, bias: false, tieEmbeddings: true,
  });
  const m = new Transformer(new TsBackend(), config);
  initParams(m.params, s.seed ?? 1, 0.2);
  for (const n of s.nan ?? []) m.params.get(n).fill(NaN);
  saveHfModel(dir, config, m.params.toMap(), { files: { 'tokenizer.json': readFileSync(fixture('tokenizer', 'tokenizer.json')) } });
  return dir;
}

/** Rewrites a safetensors file so that its header names its first tensor twice (the same entry repeated). */
export function duplicateFirstKey(file: string): void {
  const b = readFileSync(file), n = Number(b.readBigUInt64LE(0));
  const header = b.subarray(8, 8 + n).toString('utf8').trimEnd();
  const h = JSON.parse(header) as Record<string, unknown>;
  const name = Object.keys(h).find((k) => k !== '__metadata__')!;
  let json = `{${JSON.stringify(name)}:${JSON.stringify(h[name])},${header.slice(1)}`;
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const hb = Buffer.from(json, 'utf8'), len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(hb.length));
  writeFileSync(file, Buffer.concat([len, hb, b.subarray(8 + n)]));
}

/**
 * An export's model.safetensors with __metadata__.config_crc32 recomputed for an edited `config`, as an
 * attacker would (the checksum guards against accidents, not against intent). Unchanged when the config
 * does not parse (the reader rejects it before it looks at the checksum).
 */
export function rechecksum(model: Uint8Array, config: Record<string, unknown>): Uint8Array {
  let crc: string;
  try {
    const c = makeModelConfig(parseHfConfig(config, 'config.json').input, 'config.json');
    crc = configChecksum(c, QuantizationSchema.parse(config.quantization));
  } catch {
    return model;
  }
  const n = new DataView(model.buffer, model.byteOffset).getUint32(0, true);
  const header = new TextDecoder().decode(model.subarray(8, 8 + n));
  const out = model.slice();
  out.set(new TextEncoder().encode(header.replace(/("config_crc32":")[0-9a-f]{8}"/, `$1${crc}"`)), 8); // same length
  return out;
}
