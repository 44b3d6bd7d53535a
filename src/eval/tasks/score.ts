/**
 * Log-likelihood of continuations given contexts (lm-evaluation-harness's `loglikelihood`): one
 * forward per batch of right-padded sequences (causal, so padding never reaches a scored position),
 * longest first so sequences of similar length share a batch.
 */
import type { CausalLM } from '../../runtime/generate.js';
import { QkdError } from '../../tensor/errors.js';
import { freeKVCache, type KVCache } from '../../nn/kv-cache.js';

export interface LlRequest {
  /** Token ids before the continuation (at least one: a start token or real context). */
  context: readonly number[];
  continuation: readonly number[];
}

export interface LlScore {
  /** Sum of log p(continuation token | everything before it), natural log. */
  ll: number;
  /** Every continuation token is the argmax of its row (greedy decoding would produce it). */
  greedy: boolean;
}

export interface ScoreOptions {
  /** Longest input the model sees (default and cap: the model's positions); contexts are cut on the left. */
  maxLen?: number;
  /** Tokens per forward pass (B·T), default 2048. */
  batchTokens?: number;
  onProgress?: (done: number, total: number) => void;
}

/** Sequence lengths are rounded up to this, so the model reuses its activation buffers across batches. */
const LEN_STEP = 8;
/** Contexts shorter than this go through the batched path even when shared. */
const MIN_SHARED_CONTEXT = 16;

/** The ids fed to the model: context + continuation minus the last token, cut on the left to maxLen. */
function inputOf(r: LlRequest, maxLen: number): number[] {
  const c = r.continuation.length;
  if (c === 0 || c > maxLen) {
    throw new QkdError('E_INPUT', `loglikelihood: continuation of ${c} tokens (needs 1..${maxLen})`);
  }
  if (r.context.length === 0) throw new QkdError('E_INPUT', 'loglikelihood: empty context (needs a start token)');
  const full = [...r.context, ...r.continuation.slice(0, c - 1)];
  return full.length > maxLen ? full.slice(full.length - maxLen) : full;
}

/** log p(target) from one row of logits (float64 log-sum-exp), and whether target is the row's argmax. */
function tokenScore(logits: Float32Array, off: number, V: number, target: number): { lp: number; top: boolean } {
  let mx = -Infinity, arg = 0;
  for (let j = 0; j < V; j++) if (logits[off + j] > mx) { mx = logits[off + j]; arg = j; }
  let s = 0;
  for (let j = 0; j < V; j++) s += Math.exp(logits[off + j] - mx);
  return { lp: logits[off + target] - mx - Math.log(s), top: arg === target };
}

/** Scores of c continuation tokens whose predicting rows are rows first..first+c-1 of `logits`. */
function scoreRows(logits: Float32Array, first: number, V: number, cont: readonly number[], into: LlScore = { ll: 0, greedy: true }): LlScore {
  for (let k = 0; k < cont.length; k++) {
    const t = tokenScore(logits, (first + k) * V, V, cont[k]);
    into.ll += t.lp;
    if (!t.top) into.greedy = false;
  }
  return into;
}

/**
 * Requests sharing one context (the choices of an item): the context runs once into a KV cache,
 * then every continuation runs after it (the cache is rewound to the context before each).
 */
function scoreShared(model: CausalLM, cache: KVCache, ctx: readonly number[], conts: readonly (readonly number[])[]): LlScore[] {
  const V = model.config.vocabSize, P = ctx.length;
  cache.length = 0;
  const last = model.forward(ctx, 1, P, { cache }).slice((P - 1) * V, P * V); // (V) predicts each first token
  return conts.map((cont) => {
    const score = scoreRows(last, 0, V, cont.slice(0, 1));
    if (cont.length > 1) {
      cache.length = P;
      scoreRows(model.forward(cont.slice(0, -1), 1, cont.length - 1, { cache }), 0, V, cont.slice(1), score);
    }
    return score;
  });
}

/** Groups of requests with the same context array, long enough to be worth a cache. */
function sharedGroups(reqs: readonly LlRequest[], maxLen: number): Map<readonly number[], number[]> {
  const groups = new Map<readonly number[], number[]>();
  reqs.forEach((r, i) => {
    const g = groups.get(r.context) ?? [];
    groups.set(r.context, g);
    g.push(i);
  });
  for (const [ctx, g] of groups) {
    const longest = Math.max(...g.map((i) => reqs[i].continuation.length));
    if (g.length < 2 || ctx.length < MIN_SHARED_CONTEXT || ctx.length + longest - 1 > maxLen) groups.delete(ctx);
  }
  return groups;
}

/**
 * A request whose continuation is longer than the model's window, as windows: each predicts the next
 * maxLen - maxLen/2 tokens after the maxLen/2 tokens before them (the first after what context there is).
 */
export function splitLong(r: LlRequest, maxLen: number): LlRequest[] {
  if (r.continuation.length <= maxLen) return [r];
  const all = [...r.context, ...r.continuation], K = Math.floor(maxLen / 2), step = maxLen - K;
  const out: LlRequest[] = [];
  for (let pos = r.context.length; pos < all.length; pos += step) {
    out.push({ context: all.slice(Math.max(0, pos - K), pos), continuation: all.slice(pos, pos + step) });
  }
  return out;
}

export function scoreRequests(model: CausalLM, reqs: readonly LlRequest[], opt: ScoreOptions = {}): LlScore[] {
  const V = model.config.vocabSize, L = Math.min(model.config.maxPos, opt.maxLen ?? Infinity);
  for (const r of reqs) {
    for (const id of [...r.context, ...r.continuation]) {
      if (!(id >= 0 && id < V)) throw new QkdError('E_VOCAB', `loglikelihood: token id ${id} outside the model's vocabulary of ${V}`);
    }
  }
  const parts: LlRequest[] = [], owner: number[] = [];
  reqs.forEach((r, i) => { for (const p of splitLong(r, L)) { parts.push(p); owner.push(i); } });
  const scores = scoreParts(model, parts, L, opt), out = reqs.map((): LlScore => ({ ll: 0, greedy: true }));
  scores.forEach((s, j) => {
    const o = out[owner[j]];
    o.ll += s.ll;
    o.greedy &&= s.greedy;
  });
  return out;
}

/** Requests that fit the window: shared contexts through the KV cache, the rest in batches. */
function scoreParts(model: CausalLM, reqs: readonly LlRequest[], L: number, opt: ScoreOptions): LlScore[] {
  const out: LlScore[] = new Array(reqs.length), groups = sharedGroups(reqs, L);
  const shared = new Set([...groups.values()].flat());
  const rest = reqs.map((_, i) => i).filter((i) => !shared.has(i));
  let done = 0;
  const tick = (n: number) => { done += n; opt.onProgress?.(done, reqs.length); };
  if (groups.size > 0) {
    const cache = model.newCache(1, L);
    try {
      for (const [ctx, g] of groups) {
        scoreShared(model, cache, ctx, g.map((i) => reqs[i].continuation)).forEach((s, k) => { out[g[k]] = s; });
        tick(g.length);
      }
    } finally { freeKVCache(model.backend, cache); }
  }
  scoreBatched(model, reqs, rest, L, opt.batchTokens ?? 2048, out, tick);
  return out;
}

/** The requests `idx` as right-padded batches of about `budget` tokens, longest first. */
function scoreBatched(model: CausalLM, reqs: readonly LlRequest[], idx: readonly number[], L: number, budget: number,
  out: LlScore[], tick: (n: number) => void): void {
  const V = model.config.vocabSize, inputs = new Map(idx.map((i) => [i, inputOf(reqs[i], L)]));
  const len = (i: number) => inputs.get(i)!.length;
  const order = [...idx].sort((a, b) => len(b) - len(a) || a - b);
  for (let s = 0; s < order.length;) {
    const T = Math.min(L, Math.ceil(len(order[s]) / LEN_STEP) * LEN_STEP);
    const batch = order.slice(s, s + Math.max(1, Math.floor(Math.max(budget, T) / T)));
    const ids = new Int32Array(batch.length * T); // (B,T), right-padded with id 0
    batch.forEach((r, b) => ids.set(inputs.get(r)!, b * T));
    const logits = model.forward(ids, batch.length, T); // (B·T, V)
    batch.forEach((r, b) => {
      const c = reqs[r].continuation;
      out[r] = scoreRows(logits, b * T + len(r) - c.length, V, c);
    });
    s += batch.length;
    tick(batch.length);
  }
}
