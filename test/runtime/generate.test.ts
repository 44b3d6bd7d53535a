/**
 * Generation on the int8 runtime: the streaming API (text assembly, stop tokens, max tokens, abort),
 * greedy decoding through the KV cache equal to full forward passes, and sampling that is
 * deterministic for a seed (temperature, top-k, top-p, repetition penalty).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tokenizerFromJson } from '../../src/data/tokenizer.js';
import { exportStudent, loadExport } from '../../src/io/export.js';
import { TsBackend } from '../../src/kernels/ts/backend.js';
import { loadModel } from '../../src/io/load-model.js';
import { generate, stream, type CausalLM, type StreamOptions } from '../../src/runtime/generate.js';
import { Int8Transformer } from '../../src/runtime/int8-model.js';
import { fixture } from '../helpers.js';
import { makeStudent } from './students.js';

const tmp = mkdtempSync(join(tmpdir(), 'qkd-gen-'));
const be = new TsBackend();
const studentDir = makeStudent(join(tmp, 's'), {});
const model = new Int8Transformer(be, loadExport(exportStudent(studentDir, join(tmp, 'x')).out));
const tok = tokenizerFromJson(JSON.parse(readFileSync(fixture('tokenizer', 'tokenizer.json'), 'utf8')));
const PROMPT = 'The jury said that the election';

async function collect(m: CausalLM, o: StreamOptions) {
  const ids: number[] = [], texts: string[] = [];
  for await (const t of stream(m, tok, PROMPT, o)) { if (t.id >= 0) ids.push(t.id); texts.push(t.text); }
  return { ids, text: texts.join('') };
}

const SAMPLED: StreamOptions = { maxNewTokens: 24, temperature: 0.9, topK: 50, topP: 0.9, repetitionPenalty: 1.3, stopAtEos: false };

test('sampling is deterministic for a seed and differs across seeds', async () => {
  const a = await collect(model, { ...SAMPLED, seed: 7 }), b = await collect(model, { ...SAMPLED, seed: 7 });
  assert.equal(a.ids.length, 24);
  assert.deepEqual(a.ids, b.ids);
  assert.equal(a.text, b.text);
  const others = await Promise.all([8, 9, 10].map((seed) => collect(model, { ...SAMPLED, seed })));
  assert.ok(others.some((o) => o.ids.join() !== a.ids.join()), 'three other seeds all gave the same tokens');
  // the same seed through the synchronous API
  assert.deepEqual(generate(model, tok.encode(PROMPT), { ...SAMPLED, seed: 7 }), a.ids);
});

test('streamed text is the decoded continuation; greedy decoding through the cache equals full passes', async () => {
  const g = await collect(model, { greedy: true, maxNewTokens: 12, stopAtEos: false });
  assert.equal(g.text, tok.decode(g.ids));
  const seq = tok.encode(PROMPT), V = model.config.vocabSize;
  for (const id of g.ids) {
    const l = model.forward(seq, 1, seq.length);
    let best = 0;
    for (let j = 1; j < V; j++) if (l[(seq.length - 1) * V + j] > l[(seq.length - 1) * V + best]) best = j;
    assert.equal(id, best);
    seq.push(id);
  }
  // the float student (also a CausalLM) streams too, and agrees with its export under greedy decoding
  const f = loadModel(studentDir, be).model;
  assert.deepEqual((await collect(f, { greedy: true, maxNewTokens: 12, stopAtEos: false })).ids, g.ids);
});

test('stop tokens end the stream without being yielded; max tokens and abort are honoured', async () => {
  const g = await collect(model, { ...SAMPLED, seed: 7 });
  const stopAt = g.ids.findIndex((id, i) => i >= 2 && !g.ids.slice(0, i).includes(id));
  assert.ok(stopAt >= 2);
  const s = await collect(model, { ...SAMPLED, seed: 7, stopIds: [g.ids[stopAt]] });
  assert.deepEqual(s.ids, g.ids.slice(0, stopAt));
  assert.equal((await collect(model, { greedy: true, maxNewTokens: 3, stopAtEos: false })).ids.length, 3);
  const ac = new AbortController(), got: number[] = [];
  for await (const t of stream(model, tok, PROMPT, { greedy: true, maxNewTokens: 10, signal: ac.signal, stopAtEos: false })) {
    got.push(t.id);
    if (got.length === 4) ac.abort();
  }
  assert.equal(got.length, 4);
});
