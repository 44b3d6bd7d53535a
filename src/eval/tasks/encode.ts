/**
 * Items -> log-likelihood requests for one tokenizer. Context and continuation are encoded
 * separately (as lm-evaluation-harness does); every request starts with the end-of-text token, so
 * the first word of a sentence is scored too. An lm chunk is one request for all its tokens (the
 * scorer cuts what exceeds the model's window into rolling windows).
 */
import type { QkdTokenizer } from '../../data/tokenizer.js';
import type { LlRequest } from './score.js';
import type { Task, TaskName } from './types.js';
import { utf8Bytes } from './util.js';

export interface EncodedTask {
  name: TaskName;
  kind: Task['kind'];
  chance: number;
  hash: string;
  requests: LlRequest[];
  /** Index of this task's first request in the suite's request list. */
  offset: number;
  /** [start, end) of each item's requests, suite-wide indices. */
  spans: [number, number][];
  /** mc: the right choice of each item. */
  gold: number[];
  /** mc: UTF-8 bytes of each request's continuation text, task-local indices. */
  bytes: number[];
  /** lm: bytes and whitespace-separated words of each chunk. */
  chunkBytes: number[];
  chunkWords: number[];
  /** Continuation tokens over all requests. */
  tokens: number;
}

export function encodeTask(t: Task, tok: QkdTokenizer, start: number, offset: number): EncodedTask {
  const e: EncodedTask = {
    name: t.name, kind: t.kind, chance: t.kind === 'lm' ? 0 : t.chance, hash: t.hash, requests: [], offset,
    spans: [], gold: [], bytes: [], chunkBytes: [], chunkWords: [], tokens: 0,
  };
  const add = (reqs: LlRequest[]) => {
    const s = offset + e.requests.length;
    e.requests.push(...reqs);
    e.spans.push([s, s + reqs.length]);
    for (const r of reqs) e.tokens += r.continuation.length;
  };
  if (t.kind === 'lm') {
    for (const it of t.items) {
      add([{ context: [start], continuation: tok.encode(it.text) }]);
      e.chunkBytes.push(utf8Bytes(it.text));
      e.chunkWords.push(it.text.split(/\s+/).filter((w) => w.length > 0).length);
    }
  } else if (t.kind === 'cloze') {
    for (const it of t.items) add([{ context: [start, ...tok.encode(it.context)], continuation: tok.encode(it.target) }]);
  } else {
    for (const it of t.items) {
      const context = [start, ...tok.encode(it.context)];
      add(it.choices.map((c) => ({ context, continuation: tok.encode(c) })));
      e.gold.push(it.gold);
      for (const c of it.choices) e.bytes.push(utf8Bytes(c));
    }
  }
  return e;
}
