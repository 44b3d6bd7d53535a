/**
 * The command-line contract of eval / logits / generate on the fixture teacher (the acceptance numbers
 * of the engine issue), and clear errors with non-zero exits on bad input.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixture, maxAbsDiff, readF32, readJson } from '../helpers.js';
import { loadTokenizer } from '../../src/data/tokenizer-node.js';
import { HF_LOGIT_TOL } from '../model/parity-check.js';

const CLI = 'dist/src/cli/main.js';
const TEACHER = fixture('brown-llama-teacher');
const ref = readJson(fixture('brown-llama-teacher', 'reference.json'));
const tmp = mkdtempSync(join(tmpdir(), 'qkd-cli-'));
/** ppl relative error, measured 2.4e-8 (valid) and 1.5e-9 to 6.4e-9 (test, 2 or 1 threads): 4x; top-1 measured identical, one position may flip. */
const PPL_REL_TOL = 1e-7;
const TOP1_TOL = 1.5 / 193545;

function qkd(...args: string[]) {
  return spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', maxBuffer: 1 << 26 });
}

for (const split of ['valid', 'test'] as const) {
  test(`qkd eval --json on the teacher reproduces the ${split} reference`, (t) => {
    const r = qkd('eval', '--model', TEACHER, '--text', fixture('brown-text', `brown-${split}.txt`), '--json');
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines.length, 1, 'stdout holds exactly one JSON object');
    const got = JSON.parse(lines[0]), want = ref[split];
    assert.deepEqual(Object.keys(got).sort(), ['nll', 'ppl', 'tokens', 'top1']);
    assert.equal(got.tokens, want.tokens);
    t.diagnostic(`${split}: ppl ${got.ppl} vs ${want.ppl} (rel ${(got.ppl / want.ppl - 1).toExponential(2)}), top1 ${got.top1} vs ${want.top1}`);
    assert.ok(Math.abs(got.ppl / want.ppl - 1) < PPL_REL_TOL, `ppl ${got.ppl} vs ${want.ppl}`);
    assert.ok(Math.abs(got.top1 - want.top1) < TOP1_TOL, `top1 ${got.top1} vs ${want.top1}`);
  });
}

test('qkd logits writes [ids, vocab] float32 logits matching Hugging Face', (t) => {
  const out = join(tmp, 'logits.f32');
  const r = qkd('logits', '--model', TEACHER, '--ids', ref.logits_input_ids.join(','), '--out', out);
  assert.equal(r.status, 0, r.stderr);
  const got = readF32(out), want = readF32(fixture('brown-llama-teacher', 'reference-logits.f32'));
  assert.equal(got.length, ref.logits_shape[0] * ref.logits_shape[1]);
  const d = maxAbsDiff(got, want), tol = HF_LOGIT_TOL['brown-llama-teacher'];
  t.diagnostic(`qkd logits: max |diff| ${d.toExponential(3)} (tol ${tol})`);
  assert.ok(d < tol, `max |diff| ${d} >= ${tol}`);
});

test('qkd generate --greedy prints the reference continuation', () => {
  const tok = loadTokenizer(TEACHER);
  const prompt = tok.decode(ref.greedy_prompt_ids);
  const n = ref.greedy_output_ids.length - ref.greedy_prompt_ids.length;
  const r = qkd('generate', '--model', TEACHER, '--prompt', prompt, '--greedy', '--max-new-tokens', String(n));
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(tok.encode(prompt), ref.greedy_prompt_ids, 'prompt round-trips through the tokenizer');
  assert.equal(r.stdout, tok.decode(ref.greedy_output_ids) + '\n');
});

test('bad input: clear messages naming the file or flag, non-zero exits, nothing written', () => {
  const text = fixture('brown-text', 'brown-valid.txt');
  let r = qkd('eval', '--model', join(tmp, 'nope'), '--text', text);
  assert.equal(r.status, 3); assert.match(r.stderr, /nope/);
  r = qkd('eval', '--model', TEACHER, '--text', join(tmp, 'missing.txt'));
  assert.equal(r.status, 3); assert.match(r.stderr, /missing\.txt/);
  const latin1 = join(tmp, 'latin1.txt');
  writeFileSync(latin1, Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x0a]));
  r = qkd('eval', '--model', TEACHER, '--text', latin1);
  assert.equal(r.status, 2); assert.match(r.stderr, /latin1\.txt: not valid UTF-8/);
  r = qkd('eval', '--model', TEACHER, '--text', text, '--context', 'abc');
  assert.equal(r.status, 2); assert.match(r.stderr, /--context/);
  r = qkd('eval', '--model', TEACHER, '--text', text, '--context', '4096');
  assert.equal(r.status, 2); assert.match(r.stderr, /context 4096 exceeds/);
  const out = join(tmp, 'never.f32');
  r = qkd('logits', '--model', TEACHER, '--ids', '1,2,99999', '--out', out);
  assert.equal(r.status, 2); assert.match(r.stderr, /99999/);
  r = qkd('logits', '--model', TEACHER, '--ids', '1,x', '--out', out);
  assert.equal(r.status, 2); assert.match(r.stderr, /--ids/);
  assert.throws(() => readFileSync(out), 'no output file after a failure');
  // a truncated checkpoint
  const broken = join(tmp, 'broken');
  mkdirSync(broken);
  for (const f of ['config.json', 'tokenizer.json']) copyFileSync(join(TEACHER, f), join(broken, f));
  writeFileSync(join(broken, 'model.safetensors'), readFileSync(join(TEACHER, 'model.safetensors')).subarray(0, 5000));
  r = qkd('generate', '--model', broken, '--prompt', 'The');
  assert.equal(r.status, 3); assert.match(r.stderr, /model\.safetensors/);
  r = qkd('eval', '--model', TEACHER, '--text', text, '--backend', 'gpu');
  assert.equal(r.status, 2); assert.match(r.stderr, /--backend/);
});
