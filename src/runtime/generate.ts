/**
 * Autoregressive generation with a KV cache: one prefill pass over the prompt, then one position per
 * step. Greedy or sampled (temperature, top-k, top-p, repetition penalty, seeded). Browser-safe.
 */
import type { Backend } from '../kernels/backend.js';
import type { ModelConfig } from '../model/config.js';
import type { ForwardOptions } from '../model/transformer.js';
import { freeKVCache, type KVCache } from '../nn/kv-cache.js';
import { QkdError } from '../tensor/errors.js';

/**
 * What generation and evaluation need from a model: the float Transformer and the int8 runtime
 * (Int8Transformer) both provide it. forward returns logits (B·T, V), a view valid until the next call.
 */
export interface CausalLM {
  readonly config: ModelConfig;
  readonly backend: Backend;
  forward(ids: ArrayLike<number>, B: number, T: number, opt?: ForwardOptions): Float32Array;
  newCache(B: number, maxT?: number): KVCache;
}

export interface GenerateOptions {
  maxNewTokens?: number;
  /** Always take the most likely token (default true when temperature is 0 or unset with greedy). */
  greedy?: boolean;
  temperature?: number;
  topK?: number;
  topP?: number;
  repetitionPenalty?: number;
  seed?: number;
  /** Generation ends after emitting any of these ids. */
  stopIds?: number[];
}

/** Small seeded PRNG (mulberry32): uniform floats in [0, 1). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Picks the next token from one row of logits. */
export function pickToken(logits: Float32Array, history: number[], o: GenerateOptions, rand: () => number): number {
  const V = logits.length, penalty = o.repetitionPenalty ?? 1;
  const z = Float64Array.from(logits);
  if (penalty !== 1) {
    for (const id of new Set(history)) z[id] = z[id] > 0 ? z[id] / penalty : z[id] * penalty;
  }
  const temp = o.temperature ?? 1;
  if (o.greedy || temp === 0) {
    let best = 0;
    for (let j = 1; j < V; j++) if (z[j] > z[best]) best = j;
    return best;
  }
  let order = Array.from({ length: V }, (_, j) => j).sort((x, y) => z[y] - z[x]);
  if (o.topK && o.topK > 0) order = order.slice(0, o.topK);
  const mx = z[order[0]];
  let probs = order.map((j) => Math.exp((z[j] - mx) / temp));
  let sum = probs.reduce((s, p) => s + p, 0);
  if (o.topP !== undefined && o.topP < 1) {
    let acc = 0, keep = 0;
    while (keep < probs.length && acc < o.topP * sum) acc += probs[keep++];
    order = order.slice(0, Math.max(1, keep));
    probs = probs.slice(0, order.length);
    sum = probs.reduce((s, p) => s + p, 0);
  }
  let r = rand() * sum;
  for (let i = 0; i < order.length; i++) { r -= probs[i]; if (r <= 0) return order[i]; }
  return order[order.length - 1];
}

/**
 * The one rule for a generation request (CLI, Node API and browser alike), checked before anything
 * is allocated or printed: a non-empty prompt that, with maxNewTokens new tokens, fits the model's
 * positions (never silently capped), and sampling settings that are defined.
 */
export function checkGenerateRequest(config: Pick<ModelConfig, 'maxPos'>, promptTokens: number, o: GenerateOptions = {}): void {
  const bad = (msg: string): never => { throw new QkdError('E_CONFIG', `generate: ${msg}`); };
  if (promptTokens === 0) throw new QkdError('E_INPUT', 'generate: the prompt is empty (no tokens)');
  const maxPos = config.maxPos, maxNew = o.maxNewTokens ?? 64;
  if (promptTokens >= maxPos) {
    throw new QkdError('E_INPUT', `generate: prompt of ${promptTokens} tokens leaves no room for new tokens in ${maxPos} positions`);
  }
  if (!Number.isSafeInteger(maxNew) || maxNew < 1) bad(`max-new-tokens ${maxNew} is not a positive integer`);
  if (promptTokens + maxNew > maxPos) {
    bad(`max-new-tokens ${maxNew}: the prompt's ${promptTokens} token(s) plus ${maxNew} new ones exceed the model's context of ` +
      `${maxPos} positions (at most ${maxPos - promptTokens} new tokens)`);
  }
  const rp = o.repetitionPenalty;
  if (rp !== undefined && !(rp > 0 && rp < Infinity)) bad(`repetition-penalty ${rp} must be a finite number > 0`);
  const t = o.temperature;
  if (t !== undefined && !(t >= 0 && t < Infinity)) bad(`temperature ${t} must be a finite number >= 0`);
  if (o.topK !== undefined && !(Number.isSafeInteger(o.topK) && o.topK >= 0)) bad(`top-k ${o.topK} must be an integer >= 0`);
  if (o.topP !== undefined && !(o.topP >= 0 && o.topP <= 1)) bad(`top-p ${o.topP} must lie in [0, 1]`);
}

/** Streams generated token ids (the prompt is not repeated). */
export function* generateIds(model: CausalLM, prompt: number[], o: GenerateOptions = {}): Generator<number> {
  checkGenerateRequest(model.config, prompt.length, o);
  const maxNew = o.maxNewTokens ?? 64, V = model.config.vocabSize;
  const total = prompt.length + maxNew;
  const cache = model.newCache(1, total), rand = rng(o.seed ?? 0), stop = new Set(o.stopIds ?? []);
  const history = [...prompt];
  try {
    let logits = model.forward(prompt, 1, prompt.length, { cache });
    let row = logits.subarray((prompt.length - 1) * V, prompt.length * V);
    for (let n = 0; n < maxNew && history.length < total; n++) {
      const id = pickToken(row, history, o, rand);
      history.push(id);
      yield id;
      if (stop.has(id) || history.length >= total) break;
      logits = model.forward([id], 1, 1, { cache });
      row = logits.subarray(0, V);
    }
  } finally {
    freeKVCache(model.backend, cache);
  }
}

export function generate(model: CausalLM, prompt: number[], o: GenerateOptions = {}): number[] {
  return [...generateIds(model, prompt, o)];
}

/** What stream() needs of a tokenizer (QkdTokenizer fits). */
export interface StreamTokenizer {
  encode(text: string): number[];
  decode(ids: readonly number[]): string;
  readonly eosId?: number | undefined;
}

export interface StreamOptions extends GenerateOptions {
  /** Also stop at the tokenizer's end-of-text id (default true). */
  stopAtEos?: boolean;
  /** Ends the stream early (checked before each token). */
  signal?: AbortSignal;
}

/** One streamed token: its id and the text it completes (may be '' while a multi-byte character is split). */
export interface StreamToken { id: number; text: string }

/**
 * Streams the continuation of `prompt` token by token as an async iterator. Concatenating the `text`
 * fields gives the decoded continuation; a token that ends inside a multi-byte character yields ''
 * and its text arrives with the token that completes it. A stop token (stopIds, or the tokenizer's
 * end-of-text when stopAtEos) ends the stream and is not yielded. If the stream ends inside a
 * multi-byte character, a last item { id: -1, text } carries the held-back text (U+FFFD). Same seed,
 * same tokens.
 */
export async function* stream(model: CausalLM, tokenizer: StreamTokenizer, prompt: string | number[],
  o: StreamOptions = {}): AsyncGenerator<StreamToken> {
  const ids = typeof prompt === 'string' ? tokenizer.encode(prompt) : prompt;
  const stop = new Set(o.stopIds ?? []);
  if ((o.stopAtEos ?? true) && tokenizer.eosId !== undefined) stop.add(tokenizer.eosId);
  const out: number[] = [];
  let printed = '';
  for (const id of generateIds(model, ids, { ...o, stopIds: [...stop] })) {
    if (o.signal?.aborted || stop.has(id)) return;
    out.push(id);
    const text = tokenizer.decode(out);
    // hold back a trailing replacement character: the rest of its bytes may come with the next token
    const ready = text.endsWith('\uFFFD') ? printed : text;
    yield { id, text: ready.slice(printed.length) };
    printed = ready;
    await null; // let the consumer's other tasks run between tokens
  }
  const rest = tokenizer.decode(out).slice(printed.length);
  if (rest) yield { id: -1, text: rest };
}
