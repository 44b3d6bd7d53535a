/**
 * Decode speed at batch 1: a prompt, then greedy decoding through the KV cache. Prefill = one forward
 * over the prompt (it gives new token 1); decode = the following new − 1 single-token steps. Medians
 * over timed rounds after untimed warm-up rounds (V8 optimizes wasm functions only after they ran
 * a while). Used by `qkd pipeline` and bench/decode.ts.
 */
import { freeKVCache } from '../nn/kv-cache.js';
import type { CausalLM } from '../runtime/generate.js';

export interface GenerationTiming { prefillMs: number; decodeMs: number; tokens: number[]; stepMs: number[] }

export interface DecodeSpeed {
  prompt: number;
  newTokens: number;
  rounds: number;
  prefillTokPerS: number;
  decodeTokPerS: number;
  msPerToken: number;
  medianStepMs: number;
  /** The greedy tokens of the first timed round. */
  tokens: number[];
}

/** The median (NaN for no values). */
export function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b), m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function argmaxLast(l: Float32Array, V: number): number {
  const off = l.length - V;
  let b = 0;
  for (let j = 1; j < V; j++) if (l[off + j] > l[off + b]) b = j;
  return b;
}

/** One greedy generation of newTokens after the prompt, timed. */
export function generateTimed(m: CausalLM, prompt: number[], newTokens: number): GenerationTiming {
  const V = m.config.vocabSize, cache = m.newCache(1, prompt.length + newTokens);
  const t0 = performance.now();
  const tokens = [argmaxLast(m.forward(prompt, 1, prompt.length, { cache }), V)];
  const t1 = performance.now(), stepMs: number[] = [];
  while (tokens.length < newTokens) {
    const ts = performance.now();
    tokens.push(argmaxLast(m.forward([tokens[tokens.length - 1]], 1, 1, { cache }), V));
    stepMs.push(performance.now() - ts);
  }
  const decodeMs = performance.now() - t1;
  freeKVCache(m.backend, cache);
  return { prefillMs: t1 - t0, decodeMs, tokens, stepMs };
}

/** A fixed prompt of `n` ids spread over the vocabulary (the same for every model of that vocabulary). */
export function benchPrompt(n: number, vocabSize: number): number[] {
  return Array.from({ length: n }, (_, i) => (i * 131 + 7) % vocabSize);
}

export function decodeSpeed(m: CausalLM, o: { prompt: number; newTokens: number; warmup: number; rounds: number }): DecodeSpeed {
  const prompt = benchPrompt(o.prompt, m.config.vocabSize);
  for (let r = 0; r < o.warmup; r++) generateTimed(m, prompt, o.newTokens);
  const runs: GenerationTiming[] = [];
  for (let r = 0; r < o.rounds; r++) runs.push(generateTimed(m, prompt, o.newTokens));
  const prefillMs = median(runs.map((x) => x.prefillMs)), decodeMs = median(runs.map((x) => x.decodeMs)), steps = o.newTokens - 1;
  return {
    prompt: o.prompt, newTokens: o.newTokens, rounds: o.rounds,
    prefillTokPerS: o.prompt / (prefillMs / 1000), decodeTokPerS: steps / (decodeMs / 1000), msPerToken: decodeMs / steps,
    medianStepMs: median(runs.flatMap((x) => x.stepMs)), tokens: runs[0].tokens,
  };
}
