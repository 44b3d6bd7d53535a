/**
 * qkd distill end to end at small scale with the fixture teacher: mask and grid invariants of the
 * saved student, exact resume after SIGKILL / SIGTERM (masks, scales, optimizer state), the logit
 * cache path, and the errors for bad input.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixture } from '../helpers.js';

const CLI = 'dist/src/cli/main.js';
const TEACHER = fixture('brown-llama-teacher');
const tmp = mkdtempSync(join(tmpdir(), 'qkd-distill-'));
const text = join(tmp, 'text.txt');
writeFileSync(text, readFileSync(fixture('brown-text', 'brown-valid.txt'), 'utf8').slice(0, 40000));

function recipe(name: string, extra: string[]): string {
  const p = join(tmp, `${name}.yaml`);
  writeFileSync(p, [
    `teacher: ${TEACHER}`,
    'student: { preset: anchor-student, dim: 32, nLayer: 2, nHead: 2, nKVHead: 1, headDim: 16, ffnDim: 64, maxPos: 64 }',
    `data: { kind: text, paths: [${text}], validFraction: 0.1 }`,
    'steps: 12', 'batch: 4', 'microBatch: 2', 'context: 32', 'warmup: 2', 'lr: 0.003',
    'evalEvery: 6', 'evalWindows: 2', 'evalContext: 32', 'checkpointEvery: 2', 'seed: 3',
    ...extra,
  ].join('\n'));
  return p;
}

function qkd(args: string[], env: Record<string, string> = {}) {
  return spawnSync(process.execPath, [CLI, ...args], {
    encoding: 'utf8', env: { ...process.env, ...env, QKD_CACHE_DIR: join(tmp, 'cache') },
  });
}

const lines = (dir: string) => readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
const file = (dir: string, f: string) => readFileSync(join(dir, f));

const RECIPES = {
  'int8 max-abs, unstructured 90%': ['quant: { bits: 8 }', 'sparsity: { target: 0.9, start: 0.1, end: 0.6, every: 2 }'],
  'int4 LSQ + activations, 1x4 blocks': ['quant: { bits: 4, scheme: lsq, actBits: 8 }',
    'sparsity: { target: 0.9, granularity: block, block: 4, start: 0.1, end: 0.6, every: 2 }'],
};

for (const [label, extra] of Object.entries(RECIPES)) {
  const name = label.replace(/\W+/g, '-');
  const cfg = recipe(name, extra);
  const ref = join(tmp, `${name}-ref`);

  test(`${label}: pruned matrices at 0.900, quantized weights on their grid, evaluable`, () => {
    const r = qkd(['distill', '--config', cfg, '--out', ref]);
    assert.equal(r.status, 0, r.stderr);
    const rep = JSON.parse(qkd(['inspect', '--model', join(ref, 'model'), '--json']).stdout);
    assert.ok(rep.matrices.length >= 14);
    // masks hold exactly 90% zeros; at 4 bits a few kept weights also round to zero
    const hi = label.startsWith('int8') ? 0.901 : 0.95;
    for (const m of rep.matrices.filter((x: { name: string }) => /\.(q|k|v|o|gate|up|down)\.weight$/.test(x.name))) {
      assert.ok(m.sparsity >= 0.899 && m.sparsity <= hi, `${m.name} sparsity ${m.sparsity}`);
    }
    // mask sparsity of every pruned matrix, to the resolution of these tiny 32-wide matrices (one 1x4 block = 1/256)
    const m = /sparsity (\d\.\d+)\.\.(\d\.\d+)/.exec(r.stderr);
    assert.ok(m, r.stderr);
    const tol = label.startsWith('int8') ? 1 / 1024 : 1 / 256;
    for (const v of [Number(m[1]), Number(m[2])]) assert.ok(Math.abs(v - 0.9) <= tol, `mask sparsity ${v}`);
    assert.equal(rep.offGrid, 0, 'every quantized weight is an integer multiple of its row scale');
    const ev = qkd(['eval', '--model', join(ref, 'model'), '--text', text, '--context', '32', '--json']);
    assert.equal(ev.status, 0, ev.stderr);
    const last = lines(ref).filter((l) => l.valid_ppl).pop();
    assert.ok(Number.isFinite(JSON.parse(ev.stdout).ppl) && last.valid_ppl > 1);
  });

  const sig = label.startsWith('int8') ? 'SIGKILL' : 'SIGTERM';
  test(`${label}: ${sig} after step 5 and --resume reproduce the run exactly`, () => {
    const out = join(tmp, `${name}-${sig}`);
    const killed = qkd(['distill', '--config', cfg, '--out', out], { QKD_TEST_SIGNAL_AT_STEP: `5:${sig}` });
    assert.ok(killed.signal === 'SIGKILL' || killed.status === 130, killed.stderr);
    const resumed = qkd(['distill', '--config', cfg, '--out', out, '--resume']);
    assert.equal(resumed.status, 0, resumed.stderr);
    const strip = (d: string) => lines(d).map(({ tokens_per_s: _t, ...rest }) => rest);
    assert.deepEqual(strip(out), strip(ref));
    assert.ok(file(out, 'model/model.safetensors').equals(file(ref, 'model/model.safetensors')), 'weights differ');
    assert.ok(file(out, 'checkpoint/state.safetensors').equals(file(ref, 'checkpoint/state.safetensors')), 'state differs');
  });
}

test('teacher-logit cache: build, distill from it, and reject a cache of another tokenizer', () => {
  const cache = join(tmp, 'tcache');
  const cfg = recipe('cached', ['quant: { bits: 8 }', `teacherCache: ${cache}`]);
  const b = qkd(['teacher-cache', '--config', cfg, '--out', cache, '--k', '16']);
  assert.equal(b.status, 0, b.stderr);
  const r = qkd(['distill', '--config', cfg, '--out', join(tmp, 'from-cache')]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /teacher-logit cache/);
  // a teacher whose tokenizer differs from the one the cache was built with
  const other = join(tmp, 'other-teacher');
  cpSync(TEACHER, other, { recursive: true });
  const tj = JSON.parse(readFileSync(join(other, 'tokenizer.json'), 'utf8'));
  const merges = tj.model.merges as unknown[];
  [merges[0], merges[1]] = [merges[1], merges[0]];
  writeFileSync(join(other, 'tokenizer.json'), JSON.stringify(tj));
  const bad = qkd(['distill', '--config', cfg, '--teacher', other, '--out', join(tmp, 'bad-vocab')]);
  assert.equal(bad.status, 2, bad.stderr);
  assert.match(bad.stderr, /tokenizerSha256/);
});

test('a cache of every logit (the default --k) trains like the live teacher', () => {
  const cache = join(tmp, 'tcache-all');
  const live = recipe('live-all', ['quant: { bits: 8 }']), cached = recipe('cached-all', ['quant: { bits: 8 }', `teacherCache: ${cache}`]);
  const b = qkd(['teacher-cache', '--config', cached, '--out', cache]);
  assert.equal(b.status, 0, b.stderr);
  assert.match(b.stderr, /GiB on disk/);
  const h = JSON.parse(readFileSync(join(cache, 'cache.json'), 'utf8'));
  assert.equal(h.k, h.V, 'default --k is all');
  for (const [cfg, out] of [[live, 'live-all'], [cached, 'cached-all']]) {
    const r = qkd(['distill', '--config', cfg, '--out', join(tmp, out)]);
    assert.equal(r.status, 0, r.stderr);
  }
  // same student, data and teacher distribution: the KL differs only by the cache's f16 rounding
  const a = lines(join(tmp, 'live-all')).filter((l) => l.step <= 3 && l.kl !== undefined);
  const c = lines(join(tmp, 'cached-all')).filter((l) => l.step <= 3 && l.kl !== undefined);
  assert.equal(a.length, 3);
  a.forEach((l, i) => {
    assert.ok(Math.abs(l.kl - c[i].kl) <= 1e-4 * l.kl, `step ${l.step}: kl live ${l.kl} vs cache ${c[i].kl}`);
    assert.ok(Math.abs(l.loss - c[i].loss) <= 1e-4 * l.loss, `step ${l.step}: loss live ${l.loss} vs cache ${c[i].loss}`);
  });
});

test('bad recipes fail before any work with clear messages', () => {
  const cfg = recipe('bad', []);
  const cases: [string[], number, RegExp][] = [
    [['--bits', '9'], 2, /quant\.bits/],
    [['--bits', '1'], 2, /quant\.bits/],
    [['--sparsity', '1'], 2, /--sparsity/],
    [['--sparsity', '-0.1'], 2, /--sparsity/],
    [['--teacher', join(tmp, 'no-teacher')], 3, /no-teacher/],
    [['--granularity', 'blocky'], 2, /--granularity/],
    [['--student-config', 'nope'], 2, /student\.preset/],
  ];
  for (const [flags, code, msg] of cases) {
    const out = join(tmp, 'never');
    const r = qkd(['distill', '--config', cfg, '--out', out, ...flags]);
    assert.equal(r.status, code, `${flags.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, msg, flags.join(' '));
    assert.throws(() => readFileSync(join(out, 'config.json')), 'nothing written');
  }
});
