/**
 * Zero-shot evaluation of a model on a task suite by log-likelihood (lm-evaluation-harness style):
 *  - multiple choice: `acc` picks the choice of highest summed log-likelihood, `acc_norm` the highest
 *    log-likelihood per UTF-8 byte of the choice;
 *  - cloze: `acc` is greedy exact match of the target, with its mean log-likelihood and perplexity;
 *  - lm: bits per byte and word-level perplexity (tokenizer-independent).
 * Standard errors are bootstrap (seeded, deterministic) over items. Pure: the model brings its backend.
 */
import type { QkdTokenizer } from '../../data/tokenizer.js';
import type { CausalLM } from '../../runtime/generate.js';
import { QkdError } from '../../tensor/errors.js';
import { Rng } from '../../tensor/random.js';
import { encodeTask, type EncodedTask } from './encode.js';
import { scoreRequests, type LlRequest, type LlScore } from './score.js';
import type { TaskSuite } from './types.js';

export interface EvaluateTasksOptions {
  tokenizer: QkdTokenizer;
  /** Tokens per forward pass (default 2048). */
  batchTokens?: number;
  /** Bootstrap resamples for the standard errors (default 1000). */
  bootstrap?: number;
  /** Seed of the bootstrap (default 0). */
  seed?: number;
  onProgress?: (done: number, total: number) => void;
}

export interface ChoiceTaskResult {
  kind: 'mc' | 'cloze';
  acc: number;
  /** Multiple choice: accuracy by log-likelihood per byte; null for cloze. */
  acc_norm: number | null;
  /** Bootstrap standard error of acc (and of acc_norm). */
  stderr: number;
  stderr_norm: number | null;
  n: number;
  chance: number;
  /** Cloze: mean log-likelihood of the target (nats) and exp(-that). */
  ll?: number;
  ppl?: number;
  hash: string;
}

export interface LmResult {
  bits_per_byte: number;
  /** Bootstrap standard error of bits_per_byte over chunks. */
  stderr: number;
  word_perplexity: number;
  byte_perplexity: number;
  n: number;
  bytes: number;
  words: number;
  tokens: number;
  hash: string;
}

export interface TasksResult {
  tasks: Record<string, ChoiceTaskResult>;
  lm: LmResult | null;
  /** Mean acc over the multiple-choice tasks (the seed's Perf(M, L)); null when none ran. */
  perf: number | null;
  hash: string;
  source: string;
}

/** Bootstrap standard error of sum(num)/sum(den) over resampled items (den = 1 each for a mean). */
export function bootstrapStderr(num: readonly number[], den: readonly number[] | null, R: number, rng: Rng): number {
  const n = num.length;
  if (n < 2 || R < 2) return 0;
  const stats = new Float64Array(R);
  for (let r = 0; r < R; r++) {
    let a = 0, b = 0;
    for (let k = 0; k < n; k++) { const i = rng.int(n); a += num[i]; b += den ? den[i] : 1; }
    stats[r] = a / b;
  }
  let mean = 0;
  for (const s of stats) mean += s / R;
  let v = 0;
  for (const s of stats) v += (s - mean) ** 2;
  return Math.sqrt(v / (R - 1));
}

const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

function argmax(xs: readonly number[]): number {
  let best = 0;
  for (let j = 1; j < xs.length; j++) if (xs[j] > xs[best]) best = j;
  return best;
}

function choiceResult(t: EncodedTask, scores: readonly LlScore[], R: number, rng: Rng): ChoiceTaskResult {
  if (t.kind === 'cloze') {
    const hit = t.spans.map(([s]) => (scores[s].greedy ? 1 : 0)), ll = t.spans.map(([s]) => scores[s].ll);
    const mll = mean(ll);
    return { kind: 'cloze', acc: mean(hit), acc_norm: null, stderr: bootstrapStderr(hit, null, R, rng), stderr_norm: null,
      n: hit.length, chance: t.chance, ll: mll, ppl: Math.exp(-mll), hash: t.hash };
  }
  const acc: number[] = [], accNorm: number[] = [];
  t.spans.forEach(([s, e], i) => {
    const ll = scores.slice(s, e).map((x) => x.ll), bytes = t.bytes.slice(s - t.offset, e - t.offset);
    acc.push(argmax(ll) === t.gold[i] ? 1 : 0);
    accNorm.push(argmax(ll.map((x, j) => x / bytes[j])) === t.gold[i] ? 1 : 0);
  });
  const seed = rng.nextU32();
  return { kind: 'mc', acc: mean(acc), acc_norm: mean(accNorm), stderr: bootstrapStderr(acc, null, R, new Rng(seed)),
    stderr_norm: bootstrapStderr(accNorm, null, R, new Rng(seed)), n: acc.length, chance: t.chance, hash: t.hash };
}

function lmResult(t: EncodedTask, scores: readonly LlScore[], R: number, rng: Rng): LmResult {
  const nll = t.spans.map(([s, e]) => -scores.slice(s, e).reduce((a, x) => a + x.ll, 0));
  const bytes = t.chunkBytes, words = t.chunkWords;
  const sum = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0);
  const N = sum(nll), B = sum(bytes), W = sum(words);
  return {
    bits_per_byte: N / Math.LN2 / B, stderr: bootstrapStderr(nll.map((x) => x / Math.LN2), bytes, R, rng),
    word_perplexity: Math.exp(N / W), byte_perplexity: Math.exp(N / B),
    n: nll.length, bytes: B, words: W, tokens: t.tokens, hash: t.hash,
  };
}

const encodedCache = new WeakMap<TaskSuite, WeakMap<QkdTokenizer, EncodedTask[]>>();

/** The suite's log-likelihood requests for this tokenizer (memoized per suite and tokenizer object). */
export function encodeSuite(suite: TaskSuite, tokenizer: QkdTokenizer): EncodedTask[] {
  let byTok = encodedCache.get(suite);
  if (!byTok) { byTok = new WeakMap(); encodedCache.set(suite, byTok); }
  let enc = byTok.get(tokenizer);
  if (!enc) {
    const start = tokenizer.eosId;
    if (start === undefined) throw new QkdError('E_VOCAB', 'tasks: the tokenizer has no end-of-text token to start items with');
    let offset = 0;
    enc = suite.tasks.map((t) => {
      const e = encodeTask(t, tokenizer, start, offset);
      offset += e.requests.length;
      return e;
    });
    byTok.set(tokenizer, enc);
  }
  return enc;
}

/**
 * Scores every task of the suite with `model` (float Transformer or int8 export: any CausalLM).
 * Deterministic for a given model, suite and options.
 */
export function evaluateTasks(model: CausalLM, suite: TaskSuite, opts: EvaluateTasksOptions): TasksResult {
  const maxLen = model.config.maxPos, R = opts.bootstrap ?? 1000;
  if (opts.tokenizer.vocabSize > model.config.vocabSize) {
    throw new QkdError('E_VOCAB', `tasks: tokenizer vocabulary of ${opts.tokenizer.vocabSize} exceeds the model's ${model.config.vocabSize}`);
  }
  const enc = encodeSuite(suite, opts.tokenizer);
  const requests: LlRequest[] = enc.flatMap((e) => e.requests);
  const scores = scoreRequests(model, requests, { maxLen, batchTokens: opts.batchTokens, onProgress: opts.onProgress });
  const rng = new Rng(opts.seed ?? 0);
  const tasks: Record<string, ChoiceTaskResult> = {};
  let lm: LmResult | null = null;
  for (const e of enc) {
    if (e.kind === 'lm') lm = lmResult(e, scores, R, new Rng(rng.nextU32()));
    else tasks[e.name] = choiceResult(e, scores, R, new Rng(rng.nextU32()));
  }
  const mc = Object.values(tasks).filter((t) => t.kind === 'mc');
  return { tasks, lm, perf: mc.length ? mean(mc.map((t) => t.acc)) : null, hash: suite.hash, source: suite.source };
}
