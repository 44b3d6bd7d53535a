// Where a student's extra loss over its teacher goes on a text (docs/distillation.md "Session 7"):
// per predicted token, student nll - teacher nll, grouped by how often the target token occurs in
// Brown's training split (rare < 100, mid < 1000, freq) and by whether the teacher is confident
// (nll < 2: mostly tokens it copies from earlier in the window). Windows of --context tokens, as
// `qkd eval`; the native backend, 1 thread. Reads only; prints a table, or JSON with --json.
//   node scripts/copy-excess.mjs [--text runs/ood.txt] [--teacher DIR] [--context 256] [--json] MODEL_DIR...
import { parseArgs } from 'node:util';
import { loadModel } from '../dist/src/io/load-model.js';
import { createBackend } from '../dist/src/kernels/registry.js';
import { loadTokenizer } from '../dist/src/data/tokenizer-node.js';
import { loadTokenData } from '../dist/src/data/dataset.js';
import { readTextFile } from '../dist/src/data/text.js';
import { checkTokenizerFits } from '../dist/src/data/tokenizer.js';
import { evaluate } from '../dist/src/eval/perplexity.js';

const { values: o, positionals: models } = parseArgs({ allowPositionals: true, options: {
  text: { type: 'string', default: 'runs/ood.txt' }, teacher: { type: 'string', default: '../shared/fixtures/brown-llama-teacher' },
  context: { type: 'string', default: '256' }, json: { type: 'boolean', default: false } } });
const fail = (msg) => { process.stderr.write(`copy-excess: ${msg}\n`); process.exit(2); };
process.on('uncaughtException', (e) => fail(e.message)); // missing or bad files: qkd's message, no stack
const T = Number(o.context);
if (!Number.isInteger(T) || T < 2) fail(`--context: an integer of at least 2, got ${o.context}`);
if (models.length === 0) fail('name at least one student model directory');

const be = await createBackend('native', { threads: 1 });
const tok = loadTokenizer(o.teacher);
const ids = Int32Array.from(tok.encode(readTextFile(o.text).text));
const W = Math.floor(ids.length / T);
if (W < 1) fail(`${o.text}: ${ids.length} tokens, fewer than one window of ${T}`);
const freq = new Float64Array(tok.vocabSize);
for (const t of loadTokenData({ kind: 'brown' }, tok).train) freq[t]++;

/** nll of every prediction, as `qkd eval` computes it (NaN at each window's last position). */
function nlls(dir) {
  const m = loadModel(dir, be).model, out = new Float32Array(W * T).fill(NaN);
  checkTokenizerFits(tok, m.config.vocabSize, o.teacher);
  evaluate(m, ids, { context: T, tokenNll: out });
  m.dispose();
  return out;
}

const teacher = nlls(o.teacher), bucket = (f) => (f < 100 ? 'rare' : f < 1000 ? 'mid' : 'freq');
const report = models.map((dir) => {
  const s = nlls(dir), g = new Map();
  let n = 0, total = 0;
  for (let i = 0; i < W * T; i++) {
    if (Number.isNaN(s[i])) continue;
    const k = `${bucket(freq[ids[i + 1]])} ${teacher[i] < 2 ? 'confident' : 'other'}`;
    const e = g.get(k) ?? { tokens: 0, teacherNll: 0, excess: 0 };
    e.tokens++; e.teacherNll += teacher[i]; e.excess += s[i] - teacher[i]; g.set(k, e);
    n++; total += s[i] - teacher[i];
  }
  const groups = [...g.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([group, e]) => ({ group, tokens: e.tokens,
    teacherNll: e.teacherNll / e.tokens, excessPerToken: e.excess / e.tokens, shareOfExcess: e.excess / n }));
  return { model: dir, tokens: n, excessPerToken: total / n, groups };
});
await be.dispose();
if (o.json) { console.log(JSON.stringify({ text: o.text, context: T, models: report }, null, 1)); process.exit(0); }
for (const r of report) {
  console.log(`${r.model}: ${r.tokens} tokens, excess ${r.excessPerToken.toFixed(3)} nats/token over the teacher (ppl x${Math.exp(r.excessPerToken).toFixed(3)})`);
  console.log('  group (Brown freq, teacher)  tokens  teacher nll  excess/token  share of the mean excess');
  for (const e of r.groups) {
    console.log(`  ${e.group.padEnd(27)} ${String(e.tokens).padStart(6)}  ${e.teacherNll.toFixed(3).padStart(11)}  ${e.excessPerToken.toFixed(3).padStart(12)}  ${e.shareOfExcess.toFixed(4).padStart(8)}`);
  }
}
