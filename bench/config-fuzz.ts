/**
 * Config-value fuzz of the float (Hugging Face config.json + safetensors) and export (qkd-int8)
 * readers: every case sets 1-3 numeric fields of a real model's config.json (tiny-llama and tiny-gpt2
 * from ../shared/fixtures, and their qkd-int8 exports) to a random large, negative, zero, fractional or
 * huge value, then loads it exactly as `qkd eval` would (reader + model construction on the ts
 * backend, whose buffers are plain typed arrays). An export's config checksum is recomputed after the
 * edit, as an attacker would, so the size limits themselves are reached. Each case must either load or
 * fail with a QkdError whose message names the file: never another exception (a RangeError from a
 * typed-array constructor, a stack trace), and never hold more memory than the model's budget
 * (model/limits.ts: max(256 MiB, 4 x weights) + what the weights file backs).
 *
 *   node dist/bench/config-fuzz.js [--cases 1000] [--seed 7] [--json]
 *
 * Prints a table of outcomes per field and one JSON line; exits 1 when a case failed the contract.
 * test/hostile/fuzz.test.ts runs 100 cases in CI.
 */
import { copyFileSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { exportStudent } from '../src/io/export.js';
import { parseExport } from '../src/io/export-read.js';
import { TsBackend } from '../src/kernels/ts/backend.js';
import { memoryBudget } from '../src/model/limits.js';
import { loadModel } from '../src/io/load-model.js';
import { rng } from '../src/runtime/generate.js';
import { Int8Transformer } from '../src/runtime/int8-model.js';
import { QkdError } from '../src/tensor/errors.js';
import { rechecksum } from '../test/hostile/models.js';

type Json = Record<string, unknown>;
interface Base { name: string; kind: 'float' | 'export'; dir: string; config: Json; weightBytes: number; model?: Uint8Array }

export interface FuzzReport {
  cases: number;
  seed: number;
  loaded: number;
  rejected: number;
  /** Contract violations: a non-QkdError, a message naming no file, or memory over the budget. */
  failures: string[];
  /** Largest memory held by a loaded model (array buffers, bytes) and its budget. */
  maxHeldBytes: number;
  budgetBytes: number;
  slowestMs: number;
  byField: Record<string, { loaded: number; rejected: number }>;
}

const FIX = join(process.cwd(), '..', 'shared', 'fixtures');

/** Numeric leaves of a config (dotted paths), the quantization block's matrices left out. */
function numericFields(o: Json, prefix = ''): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(o)) {
    const p = prefix ? `${prefix}.${k}` : k;
    if (typeof v === 'number') out.push(p);
    else if (v && typeof v === 'object' && !Array.isArray(v) && k !== 'matrices') out.push(...numericFields(v as Json, p));
  }
  return out;
}

function setPath(o: Json, path: string, v: unknown): void {
  const keys = path.split('.');
  let cur = o;
  for (const k of keys.slice(0, -1)) cur = cur[k] as Json;
  cur[keys[keys.length - 1]] = v;
}

/** A hostile value: a power of two up to 2^62 (+/- 1), negative, zero, fractional, tiny or huge. */
function hostile(r: () => number, old: number): number {
  const k = Math.floor(r() * 63), big = 2 ** k;
  const pick = Math.floor(r() * 10);
  switch (pick) {
    case 0: return big;
    case 1: return big + 1;
    case 2: return big - 1;
    case 3: return -big;
    case 4: return 0;
    case 5: return old + 0.5;
    case 6: return -old;
    case 7: return 1e308;
    case 8: return Number.MAX_SAFE_INTEGER + 2;
    default: return old * 2 ** (1 + Math.floor(r() * 20));
  }
}

function makeBases(tmp: string): Base[] {
  const bases: Base[] = [];
  for (const fx of ['tiny-llama', 'tiny-gpt2']) {
    const src = join(FIX, fx), d = mkdtempSync(join(tmp, `${fx}-`));
    symlinkSync(join(src, 'model.safetensors'), join(d, 'model.safetensors'));
    const config = JSON.parse(readFileSync(join(src, 'config.json'), 'utf8')) as Json;
    bases.push({ name: `${fx} (float)`, kind: 'float', dir: d, config, weightBytes: statSync(join(src, 'model.safetensors')).size });
    const ex = join(tmp, `${fx}-export`), plain = mkdtempSync(join(tmp, `${fx}-plain-`));
    copyFileSync(join(src, 'config.json'), join(plain, 'config.json'));
    copyFileSync(join(src, 'model.safetensors'), join(plain, 'model.safetensors'));
    exportStudent(plain, ex);
    const model = new Uint8Array(readFileSync(join(ex, 'model.safetensors')));
    bases.push({ name: `${fx} (qkd-int8 export)`, kind: 'export', dir: ex, config: JSON.parse(readFileSync(join(ex, 'config.json'), 'utf8')),
      weightBytes: model.length, model });
  }
  return bases;
}

function loadCase(b: Base, config: Json, be: TsBackend): { dispose(): void } {
  if (b.kind === 'float') {
    writeFileSync(join(b.dir, 'config.json'), JSON.stringify(config));
    return loadModel(b.dir, be).model;
  }
  const files = { config: new TextEncoder().encode(JSON.stringify(config)), model: rechecksum(b.model!, config) };
  return new Int8Transformer(be, parseExport(files));
}

export function runConfigFuzz(cases: number, seed: number): FuzzReport {
  const tmp = mkdtempSync(join(tmpdir(), 'qkd-config-fuzz-'));
  const r = rng(seed), be = new TsBackend();
  const rep: FuzzReport = { cases, seed, loaded: 0, rejected: 0, failures: [], maxHeldBytes: 0, budgetBytes: 0, slowestMs: 0, byField: {} };
  try {
    const bases = makeBases(tmp);
    for (let i = 0; i < cases; i++) {
      const b = bases[i % bases.length], config = structuredClone(b.config), fields = numericFields(b.config);
      const edits: string[] = [];
      for (let k = 1 + Math.floor(r() * 3); k > 0; k--) {
        const f = fields[Math.floor(r() * fields.length)];
        const v = hostile(r, Number(f.split('.').reduce<unknown>((o, key) => (o as Json)[key], b.config)));
        setPath(config, f, v);
        edits.push(`${f}=${v}`);
      }
      const label = `case ${i} ${b.name}: ${edits.join(', ')}`, field = edits[0].split('=')[0];
      const stat = (rep.byField[field] ??= { loaded: 0, rejected: 0 });
      const base = process.memoryUsage().arrayBuffers, t0 = performance.now();
      try {
        const m = loadCase(b, config, be);
        const held = process.memoryUsage().arrayBuffers - base, budget = memoryBudget(b.weightBytes) + 8 * b.weightBytes;
        rep.maxHeldBytes = Math.max(rep.maxHeldBytes, held);
        rep.budgetBytes = Math.max(rep.budgetBytes, budget);
        if (held > budget) rep.failures.push(`${label}: loaded holding ${held} bytes, over the budget of ${budget}`);
        m.dispose();
        rep.loaded++; stat.loaded++;
      } catch (e) {
        if (!(e instanceof QkdError)) rep.failures.push(`${label}: ${(e as Error)?.stack ?? String(e)}`);
        else if (!/config\.json|model\.safetensors/.test(e.message)) rep.failures.push(`${label}: message names no file: ${e.message}`);
        rep.rejected++; stat.rejected++;
      }
      rep.slowestMs = Math.max(rep.slowestMs, performance.now() - t0);
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return rep;
}

function main(): void {
  const { values: v } = parseArgs({ options: { cases: { type: 'string' }, seed: { type: 'string' }, json: { type: 'boolean' } } });
  const cases = Number(v.cases ?? 1000), seed = Number(v.seed ?? 7);
  const rep = runConfigFuzz(cases, seed);
  if (!v.json) {
    const rows = Object.entries(rep.byField).sort(([a], [b]) => a.localeCompare(b));
    console.log(`config-value fuzz: ${cases} cases (seed ${seed}): ${rep.loaded} loaded, ${rep.rejected} rejected with a QkdError, ` +
      `${rep.failures.length} contract failures`);
    console.log(`largest memory held by a loaded case: ${(rep.maxHeldBytes / 2 ** 20).toFixed(1)} MiB (budget ` +
      `${(rep.budgetBytes / 2 ** 20).toFixed(1)} MiB); slowest case ${rep.slowestMs.toFixed(0)} ms\n`);
    console.log('| first field edited | loaded | rejected |\n| --- | ---: | ---: |');
    for (const [f, s] of rows) console.log(`| ${f} | ${s.loaded} | ${s.rejected} |`);
    for (const f of rep.failures.slice(0, 20)) console.log(`FAIL ${f}`);
  }
  console.log(JSON.stringify({ bench: 'config-fuzz', ...rep, byField: undefined, failures: rep.failures.slice(0, 20) }));
  if (rep.failures.length) process.exitCode = 1;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) main();
