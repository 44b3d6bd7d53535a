/**
 * `qkd report` on a tiny pipeline folder (report-fixture.ts: teacher tiny-llama, a random int8 /
 * 90%-block-sparse student and its export), every quantity checked against an independent computation:
 * - size bits: tensor shapes read from the safetensors headers by hand, bits from config.json's quant
 *   block by Hugging Face tensor name; bytes: stat of the files;
 * - multiply-adds: nonzeros of the student's saved float weights (its masks), not of the export;
 * - the approximation ratio and the window risks: logits from the plain ts backend here (the report ran
 *   the wasm backend), CE and KL from distill/loss.ts distillationLoss (the report has its own code);
 * - the bounds from their formulas with eval.json's numbers; convergence from metrics.jsonl; the claims.
 * Also the files (report.md, a self-contained report.html with SVG charts) and the output-folder rule.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadTokenizer } from '../../src/data/tokenizer-node.js';
import { distillationLoss } from '../../src/distill/loss.js';
import { loadModel } from '../../src/io/load-model.js';
import { TsBackend } from '../../src/kernels/ts/backend.js';
import { loadInt8Model } from '../../src/runtime/int8-node.js';
import type { Report } from '../../src/eval/report/report.js';
import { fixture } from '../helpers.js';
import { BENCH, DISTILL, EVAL, makeTinyPipeline } from './report-fixture.js';

const CLI = 'dist/src/cli/main.js';
const tmp = mkdtempSync(join(tmpdir(), 'qkd-report-'));
const RUN = join(tmp, 'run'), TEACHER = fixture('tiny-llama'), T = 64, N = 8, V = 2048;
let r: Report;

function qkd(...args: string[]) {
  return spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, QKD_CACHE_DIR: join(tmp, 'cache') } });
}

/** name -> {dtype, shape, offsets} from a safetensors header, and the data section. */
function header(path: string): { h: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>; data: Buffer } {
  const b = readFileSync(path), n = Number(b.readBigUInt64LE(0));
  const h = JSON.parse(b.subarray(8, 8 + n).toString('utf8'));
  delete h.__metadata__;
  return { h, data: b.subarray(8 + n) };
}

const LINEAR = /\.(q|k|v|o|gate|up|down)_proj\.weight$/, EMBED = /(embed_tokens|lm_head)\.weight$/;
const size = (s: number[]) => s.reduce((a, b) => a * b, 1);
const fileBytes = (dir: string, names: string[]) => names.reduce((s, n) => s + statSync(join(dir, n)).size, 0);
const close = (a: number, b: number, rel: number, what: string) => assert.ok(Math.abs(a - b) <= rel * Math.max(1, Math.abs(b)), `${what}: ${a} vs ${b}`);

before(() => {
  makeTinyPipeline(RUN, { tasks: true });
  const t0 = performance.now();
  const p = qkd('report', '--run', RUN, '--threads', '1', '--windows', String(N));
  assert.equal(p.status, 0, p.stderr);
  assert.equal(p.stdout.trim(), join(RUN, 'report', 'report.html'));
  r = JSON.parse(readFileSync(join(RUN, 'report', 'report.json'), 'utf8'));
  process.stderr.write(`# qkd report on the tiny pipeline: ${((performance.now() - t0) / 1000).toFixed(2)} s (CLI process)\n`);
});

test('size in bits: every parameter × its bits, counted from the safetensors headers; bytes from the files', () => {
  const cfg = JSON.parse(readFileSync(join(RUN, 'student', 'model', 'config.json'), 'utf8'));
  const q = cfg.qkd_compression.quant;
  const { h } = header(join(RUN, 'student', 'model', 'model.safetensors'));
  let bits = 0, params = 0;
  for (const [name, e] of Object.entries(h)) {
    const n = size(e.shape), b = LINEAR.test(name) ? q.bits : EMBED.test(name) ? q.embedBits : 32;
    params += n; bits += n * b;
    if (LINEAR.test(name) || EMBED.test(name)) bits += 32 * e.shape[0]; // its row scales
  }
  const s = r.complexity.size.student;
  assert.equal(s.exact.params, params);
  assert.equal(s.exact.bits, bits);
  const v = cfg.vocab_size, d = cfg.hidden_size, L = cfg.num_hidden_layers;
  assert.equal(s.formula.bits, v * d * q.bits + L * d * d * q.bits);
  const exportFiles = readdirSync(join(RUN, 'export')).filter((f) => !f.startsWith('.'));
  assert.equal(s.disk.bytes, fileBytes(join(RUN, 'export'), exportFiles));
  const t = header(join(TEACHER, 'model.safetensors')).h;
  const tParams = Object.values(t).reduce((a, e) => a + size(e.shape), 0);
  const te = r.complexity.size.teacher;
  assert.equal(te.exact.params, tParams);
  assert.equal(te.exact.bits, 32 * tParams);
  assert.equal(te.disk.fp32Bytes, 4 * tParams);
  assert.equal(te.disk.bytes, fileBytes(TEACHER, ['config.json', 'generation_config.json', 'model.safetensors']), 'the reference files beside the model do not count');
  assert.equal(r.compression.bytes.ratio, 4 * tParams / s.disk.bytes);
  assert.equal(r.compression.bits.ratio, 32 * tParams / bits);
});

test('multiply-adds per token: nonzeros of the student\'s masks, dense teacher, attention at the stated context', () => {
  const { h, data } = header(join(RUN, 'student', 'model', 'model.safetensors'));
  const cfg = JSON.parse(readFileSync(join(RUN, 'student', 'model', 'config.json'), 'utf8'));
  let nnz = 0, dense = 0, linNnz = 0, linRows = 0, zeros = 0;
  for (const [name, e] of Object.entries(h)) {
    if (!LINEAR.test(name) && !/embed_tokens\.weight$/.test(name)) continue; // tied head: the embedding
    assert.equal(e.dtype, 'F32');
    const w = new Float32Array(data.buffer.slice(data.byteOffset + e.data_offsets[0], data.byteOffset + e.data_offsets[1]));
    let z = 0;
    for (const x of w) if (x !== 0) z++;
    nnz += z; dense += w.length; zeros += w.length - z;
    if (LINEAR.test(name)) { linNnz += z; linRows += e.shape[0]; }
  }
  // pruned weights cost no bits in the nonzero count; the formula's k is the mean nonzeros per linear row
  assert.equal(r.complexity.size.student.exact.nonzeroBits, r.complexity.size.student.exact.bits - 8 * zeros);
  const k = linNnz / linRows, sf = r.complexity.compute.student.formula;
  close(sf.value, cfg.num_hidden_layers * cfg.num_attention_heads * cfg.hidden_size * k * 8, 1e-12, 'StudentModelCompute');
  const c = r.complexity.compute.context;
  assert.equal(c, r.settings.context);
  const att = (L: number, H: number, hd: number) => L * H * hd * 2 * c;
  const sAtt = att(cfg.num_hidden_layers, cfg.num_attention_heads, cfg.head_dim);
  const s = r.complexity.compute.student.counted;
  assert.equal(s.attention, sAtt);
  assert.equal(s.total.nonzero, nnz + sAtt);
  assert.equal(s.total.dense, dense + sAtt);
  assert.ok(s.total.stored >= s.total.nonzero && s.total.stored <= s.total.dense);
  const t = header(join(TEACHER, 'model.safetensors')).h, tc = JSON.parse(readFileSync(join(TEACHER, 'config.json'), 'utf8'));
  const tDense = Object.entries(t).filter(([n]) => LINEAR.test(n) || /lm_head\.weight$/.test(n)).reduce((a, [, e]) => a + size(e.shape), 0);
  const tm = r.complexity.compute.teacher;
  assert.equal(tm.counted.total.dense, tDense + att(tc.num_hidden_layers, tc.num_attention_heads, tc.head_dim));
  assert.equal(tm.formula.value, tc.num_hidden_layers * tc.num_attention_heads * tc.hidden_size ** 2);
  assert.equal(tm.measured!.decodeTokPerS, BENCH.teacher.decodeTokPerS);
  assert.equal(r.claims.find((x) => x.id === 'compute-10x')!.measured, tm.counted.total.dense / s.total.nonzero);
});

test('ApproximationRatio and the window risks equal an independent computation on ts-backend logits', () => {
  const be = new TsBackend(), tok = loadTokenizer(join(RUN, 'export'));
  const teacher = loadModel(TEACHER, be).model, student = loadInt8Model(join(RUN, 'export'), be).model;
  const run = (file: string) => {
    const ids = tok.encode(readFileSync(file, 'utf8'));
    return Array.from({ length: N }, (_, w) => {
      const x = Int32Array.from(ids.slice(w * T, (w + 1) * T)), y = Int32Array.from(x, (_, i) => (i < T - 1 ? x[i + 1] : -1));
      const s = student.forward(x, 1, T).slice(), t = teacher.forward(x, 1, T).slice();
      const l = distillationLoss(s, y, { kind: 'full', logits: t }, { alpha: DISTILL.alpha, tau: DISTILL.tau, lambda: 0 }, null);
      const tce = distillationLoss(t, y, null, { alpha: 1, tau: 1, lambda: 0 }, null).ce;
      const hits = (z: Float32Array) => y.reduce((c, yi, i) => {
        if (yi < 0) return c;
        const row = z.subarray(i * V, (i + 1) * V);
        return c + (row.indexOf(Math.max(...row)) === yi ? 1 : 0);
      }, 0);
      return { ce: l.ce, kl: l.kl, entropy: l.entropy, tce, sHits: hits(s), tHits: hits(t) };
    });
  };
  const valid = run(join(RUN, 'text', 'valid.txt')), train = run(join(RUN, 'text', 'train.txt'));
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const ratio = mean(valid.map((w) => Math.exp(-DISTILL.alpha * w.ce - (1 - DISTILL.alpha) * DISTILL.tau ** 2 * w.kl)));
  const a = r.approximation;
  assert.equal(a.windows, N);
  assert.equal(a.positions, N * (T - 1));
  close(a.ratio, ratio, 1e-5, 'ApproximationRatio');
  close(a.student.ce, mean(valid.map((w) => w.ce)), 1e-5, 'student CE');
  close(a.student.kl, mean(valid.map((w) => w.kl)), 1e-4, 'KL');
  close(a.student.entropy, mean(valid.map((w) => w.entropy)), 1e-5, 'entropy');
  close(a.teacherSelf, mean(valid.map((w) => Math.exp(-DISTILL.alpha * w.tce))), 1e-5, 'teacher itself');
  const e = r.generalization.empiricalRisk;
  close(e.heldOut.windows.teacher!.ce, mean(valid.map((w) => w.tce)), 1e-5, 'held-out teacher CE');
  close(e.train.windows.student!.ce, mean(train.map((w) => w.ce)), 1e-5, 'train student CE');
  close(e.train.windows.teacher!.ce, mean(train.map((w) => w.tce)), 1e-5, 'train teacher CE');
  // top-1 from argmax of the ts logits (the wasm logits may flip a near-tie: one position of slack)
  const pos = N * (T - 1), sum = (xs: number[]) => xs.reduce((p, q) => p + q, 0);
  assert.ok(Math.abs(a.student.top1 * pos - sum(valid.map((w) => w.sHits))) <= 1, 'student top-1 on the windows');
  assert.ok(Math.abs((1 - e.heldOut.windows.teacher!.zeroOne) * pos - sum(valid.map((w) => w.tHits))) <= 1, 'teacher top-1 on the windows');
  teacher.dispose(); student.dispose();
});

test('generalization bounds follow their formulas (δ = 0.05, test split of eval.json)', () => {
  const g = r.generalization, s = g.bounds.student!, t = g.bounds.teacher!;
  assert.match(g.boundData.split, /^test/);
  const n = EVAL.student.test.tokens, emp = 1 - EVAL.student.test.top1, d = 0.05;
  const L = 8 * r.complexity.size.student.disk.bytes + 64;
  close(s.occam.bound, emp + Math.sqrt((L * Math.LN2 + Math.log(1 / d)) / (2 * n)), 1e-12, 'Occam');
  const { h } = header(join(RUN, 'student', 'model', 'model.safetensors'));
  const lnb = Object.entries(h).reduce((a, [name, e]) => a + size(e.shape) * Math.log(LINEAR.test(name) || EMBED.test(name) ? 8 : 32), 0);
  close(s.seed.bound, emp + Math.sqrt((lnb + Math.log(1 / d)) / (2 * n)), 1e-12, 'seed');
  for (const b of [s.seed, s.occam, t.seed, t.occam]) {
    assert.equal(b.vacuous, b.bound > 1);
    const at = (m: number) => b.empiricalRisk + Math.sqrt((b.complexity + Math.log(1 / d)) / (2 * m));
    assert.ok(at(b.tokensForNonVacuous!) < 1 && at(b.tokensForNonVacuous! - 1) >= 1, `${b.form}: n for a non-vacuous bound`);
    assert.ok(at(b.tokensForSlack05) - b.empiricalRisk <= 0.05 + 1e-12);
  }
  assert.ok(s.occam.vacuous, 'the tiny export\'s Occam bound on 400k tokens is vacuous, and the report says so');
  const md = readFileSync(join(RUN, 'report', 'report.md'), 'utf8');
  assert.match(md, /vacuous \(> 1\); non-vacuous from n = [\d,]+ tokens/);
});

test('convergence series and summary come from metrics.jsonl', () => {
  const lines = readFileSync(join(RUN, 'student', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  const steps = lines.filter((l) => 'loss' in l), evals = lines.filter((l) => 'valid_ppl' in l);
  const c = r.convergence;
  assert.deepEqual(c.series.step, steps.map((l) => l.step));
  assert.deepEqual(c.series.loss, steps.map((l) => l.loss));
  assert.deepEqual(c.series.sparsity, steps.map((l) => l.sparsity));
  assert.deepEqual(c.evals.validPpl, evals.map((l) => l.valid_ppl));
  const k = Math.floor(steps.length * 0.05);
  close(c.summary.lastLoss!, steps.slice(-k).reduce((a, l) => a + l.loss, 0) / k, 1e-12, 'last loss');
  assert.equal(c.summary.finalSparsity, steps[steps.length - 1].sparsity);
  assert.equal(c.summary.targetSparsity, 0.9);
});

test('claims: measured values, thresholds and statuses', () => {
  const by = Object.fromEntries(r.claims.map((c) => [c.id, c]));
  assert.equal(by['size-8x'].measured, r.compression.bytes.ratio);
  assert.equal(by['size-8x'].status, r.compression.bytes.ratio >= 8 ? 'pass' : 'fail');
  close(by['top1-few-points'].measured!, 100 * (EVAL.teacher.test.top1 - EVAL.student.test.top1), 1e-9, 'top-1 points');
  assert.equal(by['top1-few-points'].status, 'pass');
  close(by['tasks-few-points'].measured!, 5, 1e-9, 'task points');
  assert.equal(by['tasks-few-points'].status, 'fail');
  assert.equal(by['compute-10x'].status, by['compute-10x'].measured! >= 10 ? 'pass' : 'fail');
});

test('report.md and a self-contained report.html with SVG charts; the output-folder rule', () => {
  const html = readFileSync(join(RUN, 'report', 'report.html'), 'utf8');
  assert.ok((html.match(/<svg[\s>]/g) ?? []).length >= 5, 'five charts');
  assert.doesNotMatch(html, /<script|<link|src="http|href="http/i, 'no script, no external resource');
  for (const id of ['claims', 'loss', 'ppl', 'sparsity', 'approximation']) assert.match(html, new RegExp(`data-chart="${id}"`));
  assert.deepEqual(Object.keys(r).filter((k) => ['complexity', 'compression', 'approximation', 'generalization', 'convergence', 'claims'].includes(k)).length, 6);
  // a second run replaces the previous report; a foreign folder is refused unless --force; the run itself never
  assert.equal(qkd('report', '--run', RUN, '--threads', '1', '--windows', '1', '--no-train-windows').status, 0);
  const foreign = join(tmp, 'foreign');
  mkdirSync(foreign);
  writeFileSync(join(foreign, 'notes.txt'), 'mine');
  const refused = qkd('report', '--run', RUN, '--threads', '1', '--windows', '1', '--no-train-windows', '--out', foreign);
  assert.equal(refused.status, 2);
  assert.match(refused.stderr, /not a qkd report/);
  assert.equal(readFileSync(join(foreign, 'notes.txt'), 'utf8'), 'mine');
  const over = qkd('report', '--run', RUN, '--threads', '1', '--windows', '1', '--no-train-windows', '--out', RUN, '--force');
  assert.equal(over.status, 2);
  assert.match(over.stderr, /holds the input/);
  assert.ok(statSync(join(RUN, 'student', 'metrics.jsonl')).isFile());
});
