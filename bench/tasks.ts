/**
 * The language-task suite (src/eval/tasks): how long it takes to build, how long a model takes to
 * evaluate, and the per-task table of docs/tasks.md.
 *
 *   npm run build && node dist/bench/tasks.js [--model DIR ...] [--random] [--seed 1] [--threads 1]
 *     [--backend wasm|native|ts] [--limit N] [--tasks NAMES] [--smoke]
 *
 * Models: the fixture teacher by default; `--model` any number of model directories or qkd-int8
 * exports; `--random` adds a randomly initialised model of the first model's shape (GPT-2-style
 * N(0, 0.02) init, seeded: the chance baseline). The suite is built once (timed: Brown test split,
 * lexicon included), then each model is loaded and evaluated (timed). Prints one table per model,
 * a summary table, then one JSON line.
 */
import { parseArgs } from 'node:util';
import { loadTokenizer } from '../src/data/tokenizer-node.js';
import { buildSuite, evaluateTasks, parseTaskNames, type TasksResult, type TaskSuite } from '../src/eval/tasks/index.js';
import { isExportDir } from '../src/io/export.js';
import { loadHfModelConfig } from '../src/io/hf.js';
import type { Backend, BackendName } from '../src/kernels/backend.js';
import { initParams } from '../src/model/init.js';
import { loadModel } from '../src/io/load-model.js';
import { Transformer } from '../src/model/transformer.js';
import type { CausalLM } from '../src/runtime/generate.js';
import { loadInt8Model } from '../src/runtime/int8-node.js';
import { backendName, fixture, jsonLine, log, machineFacts, makeBackend, OtherLoad, posInt, printTable, round, type Cell } from './common.js';

interface Opts {
  models: string[]; random: boolean; seed: number; threads: number; backend: BackendName;
  limit?: number; tasks?: string; smoke: boolean;
}

function parse(argv: string[]): Opts {
  const { values: v } = parseArgs({
    args: argv, strict: true, options: {
      model: { type: 'string', multiple: true }, random: { type: 'boolean' }, seed: { type: 'string' },
      threads: { type: 'string' }, backend: { type: 'string' }, limit: { type: 'string' }, tasks: { type: 'string' },
      smoke: { type: 'boolean' },
    },
  });
  const smoke = v.smoke ?? false;
  return {
    models: v.model && v.model.length > 0 ? v.model : [fixture('brown-llama-teacher')], random: v.random ?? false,
    seed: posInt(v.seed, 'seed', 1, 0), threads: posInt(v.threads, 'threads', 1), backend: backendName(v.backend, 'wasm'),
    limit: v.limit === undefined ? (smoke ? 8 : undefined) : posInt(v.limit, 'limit', 1), tasks: v.tasks, smoke,
  };
}

interface Row { name: string; loadSeconds: number; evalSeconds: number; otherLoadCores: number | null; result: TasksResult }

function openModel(spec: string, be: Backend, seed: number): CausalLM & { dispose(): void } {
  if (spec.startsWith('random:')) {
    const m = new Transformer(be, loadHfModelConfig(spec.slice('random:'.length)));
    initParams(m.params, seed);
    return m;
  }
  return isExportDir(spec) ? loadInt8Model(spec, be).model : loadModel(spec, be).model;
}

function runModel(spec: string, suite: TaskSuite, o: Opts, be: Backend): Row {
  const tokDir = spec.startsWith('random:') ? spec.slice('random:'.length) : spec;
  log(`tasks: ${spec}`);
  const t0 = performance.now();
  const model = openModel(spec, be, o.seed), tokenizer = loadTokenizer(tokDir);
  const t1 = performance.now(), load = new OtherLoad().start();
  try {
    const result = evaluateTasks(model, suite, { tokenizer });
    const t2 = performance.now();
    return { name: spec, loadSeconds: (t1 - t0) / 1000, evalSeconds: (t2 - t1) / 1000, otherLoadCores: load.stop(), result };
  } finally { model.dispose(); }
}

const pm = (x: number | null, se: number | null) => (x === null ? '-' : `${x.toFixed(3)} ± ${(se ?? 0).toFixed(3)}`);

function printModel(r: Row): void {
  console.log(`\n${r.name}`);
  const rows: Cell[][] = Object.entries(r.result.tasks).map(([name, t]) => [
    name, t.n, t.chance, pm(t.acc, t.stderr), pm(t.acc_norm, t.stderr_norm),
    t.kind === 'mc' ? round((t.acc - t.chance) / Math.max(t.stderr, 1e-9), 1) : null,
  ]);
  printTable(['task', 'n', 'chance', 'acc ± se', 'acc_norm ± se', '(acc-chance)/se'], rows);
}

async function main(): Promise<void> {
  const o = parse(process.argv.slice(2));
  const specs = [...o.models, ...(o.random ? [`random:${o.models[0]}`] : [])];
  const t0 = performance.now();
  const suite = buildSuite({ limit: o.limit, ...(o.tasks ? { tasks: parseTaskNames(o.tasks) } : {}) });
  const buildSeconds = (performance.now() - t0) / 1000;
  log(`tasks: suite ${suite.hash} built in ${buildSeconds.toFixed(2)} s (${suite.tasks.map((t) => `${t.name} ${t.items.length}`).join(', ')})`);
  const be = await makeBackend(o.backend, o.threads);
  const rows: Row[] = [];
  try {
    for (const spec of specs) rows.push(runModel(spec, suite, o, be));
  } finally { await be.dispose(); }
  for (const r of rows) printModel(r);
  console.log('');
  printTable(['model', 'perf', 'bits/byte', 'word ppl', 'cloze acc', 'load s', 'eval s', 'other load (cores)'], rows.map((r) => [
    r.name, r.result.perf === null ? null : round(r.result.perf, 4), r.result.lm ? round(r.result.lm.bits_per_byte, 4) : null,
    r.result.lm ? round(r.result.lm.word_perplexity, 1) : null, r.result.tasks.cloze ? round(r.result.tasks.cloze.acc, 4) : null,
    round(r.loadSeconds, 2), round(r.evalSeconds, 1), r.otherLoadCores,
  ]));
  console.log(`\nsuite ${suite.hash}: built in ${buildSeconds.toFixed(2)} s`);
  jsonLine({
    bench: 'tasks', ...machineFacts(), backend: o.backend, threads: o.threads, suite: { hash: suite.hash, source: suite.source,
      buildSeconds: round(buildSeconds, 3), sizes: Object.fromEntries(suite.tasks.map((t) => [t.name, t.items.length])) },
    models: rows.map((r) => ({ model: r.name, loadSeconds: round(r.loadSeconds, 3), evalSeconds: round(r.evalSeconds, 2),
      otherLoadCores: r.otherLoadCores, ...r.result })),
  });
}

main().catch((e) => { log(`bench/tasks: ${(e as Error)?.stack ?? String(e)}`); process.exitCode = 1; });
