/**
 * Throughput of the fixtures' evaluation protocol (src/eval/perplexity.ts: non-overlapping windows
 * of 256 tokens, predict 1..255 inside each) on the teacher over Brown valid, ours against the
 * PyTorch peer (bench/peers/eval.py) on the SAME token ids: ours are written as raw little-endian
 * int32 to a temp file that the peer reads. Both perplexities are reported and must agree to --tol
 * (relative, default 1e-3), else the run fails (exit code 1).
 *
 *   npm run build && node dist/bench/eval.js [--threads 1,2] [--windows N] [--rounds 1] [--batch 8]
 *     [--context 256] [--backend wasm|native|ts|wasm,native] [--no-peer] [--smoke]
 *
 * tokens/s counts input tokens (windows x context) over the timed evaluation; the model load and
 * one untimed warm-up batch are excluded. Several backends run back to back at each thread count,
 * then the peer. With --rounds R every (ours, peer) pair runs R times and the run of median time is
 * reported. Prints a table, then one JSON line.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadTokenizer } from '../src/data/tokenizer-node.js';
import { evaluate, type EvalResult } from '../src/eval/perplexity.js';
import type { Backend, BackendName } from '../src/kernels/backend.js';
import { loadModel } from '../src/io/load-model.js';
import { QkdError } from '../src/tensor/errors.js';
import {
  backendList, fixture, intList, jsonLine, log, machineFacts, openBenchBackend, num, OtherLoad, peakRssMb, posInt,
  printTable, round, runPeer, type Cell, type ChildResult,
} from './common.js';

interface Opts {
  threads: number[]; peerThreads: number[]; windows: number | null; batch: number; context: number;
  backends: BackendName[]; model: string; text: string; peer: boolean; smoke: boolean; tol: number; rounds: number;
}

interface OursRun extends EvalResult {
  backend: BackendName; threads: number; seconds: number; tokensPerS: number; otherLoadCores: number | null;
  /** native backend: the OpenBLAS kernel in use. */
  blas?: string;
}

function parse(argv: string[]): Opts {
  const { values: v } = parseArgs({
    args: argv, strict: true, options: {
      threads: { type: 'string' }, 'peer-threads': { type: 'string' }, windows: { type: 'string' },
      batch: { type: 'string' }, context: { type: 'string' }, backend: { type: 'string' }, model: { type: 'string' },
      text: { type: 'string' }, 'no-peer': { type: 'boolean' }, smoke: { type: 'boolean' }, tol: { type: 'string' },
      rounds: { type: 'string' },
    },
  });
  const smoke = v.smoke ?? false;
  // smoke: 2 windows of 32 tokens on the reference backend, no peer: a CI check of the plumbing.
  const threads = intList(v.threads ?? (smoke ? '1' : '1,2'), 'threads');
  const tol = v.tol === undefined ? 1e-3 : Number(v.tol);
  if (!(tol > 0)) throw new QkdError('E_CONFIG', `--tol: expected a positive number, got "${v.tol}"`);
  return {
    threads, peerThreads: v['peer-threads'] ? intList(v['peer-threads'], 'peer-threads') : threads,
    windows: v.windows === undefined && !smoke ? null : posInt(v.windows, 'windows', 2),
    batch: posInt(v.batch, 'batch', smoke ? 2 : 8), context: posInt(v.context, 'context', smoke ? 32 : 256, 2),
    backends: backendList(v.backend, smoke ? 'ts' : 'wasm'), model: v.model ?? fixture('brown-llama-teacher'),
    text: v.text ?? fixture('brown-text', 'brown-valid.txt'), peer: !(v['no-peer'] ?? smoke), smoke, tol,
    rounds: posInt(v.rounds, 'rounds', 1),
  };
}

/** Token ids of the whole text, cut to whole windows (the first --windows of them when given). */
function tokenIds(o: Opts): { ids: Int32Array; seconds: number; allWindows: number } {
  const t0 = performance.now();
  const all = loadTokenizer(o.model).encode(readFileSync(o.text, 'utf8'));
  const allWindows = Math.floor(all.length / o.context);
  const w = Math.min(allWindows, o.windows ?? allWindows);
  if (w === 0) throw new QkdError('E_INPUT', `${o.text}: ${all.length} tokens, fewer than one window of ${o.context}`);
  return { ids: Int32Array.from(all.slice(0, w * o.context)), seconds: (performance.now() - t0) / 1000, allWindows };
}

async function runOurs(o: Opts, ids: Int32Array, backend: BackendName, threads: number): Promise<OursRun> {
  log(`ours: ${backend}, ${threads} thread(s), ${ids.length / o.context} windows of ${o.context}`);
  const { be, blas } = await openBenchBackend(backend, threads);
  const { model } = loadModel(o.model, be);
  // warm-up: JIT, worker threads, activation buffers of the batch shape
  evaluate(model, ids.subarray(0, Math.min(ids.length, o.batch * o.context)), { context: o.context, batch: o.batch });
  const load = new OtherLoad().start(), t0 = performance.now();
  const r = evaluate(model, ids, { context: o.context, batch: o.batch });
  const seconds = (performance.now() - t0) / 1000, otherLoadCores = load.stop();
  model.dispose();
  await be.dispose();
  log(`  ppl ${r.ppl.toFixed(4)}, ${seconds.toFixed(2)} s, ${(ids.length / seconds).toFixed(0)} tokens/s`);
  return { ...r, backend, threads, seconds: round(seconds, 3), tokensPerS: round(ids.length / seconds, 1), otherLoadCores, blas };
}

/** The ids as raw little-endian int32, the peer's input format. */
function writeIds(ids: Int32Array): string {
  const file = join(tmpdir(), `qkd-eval-ids-${process.pid}.i32`);
  const buf = Buffer.alloc(ids.length * 4);
  ids.forEach((id, i) => buf.writeInt32LE(id, i * 4));
  writeFileSync(file, buf);
  return file;
}

/** The peer at `t`x`t` threads on the ids in `file`: its JSON line, or why it did not run. */
function runPeerAt(o: Opts, file: string, t: number): ChildResult {
  log(`peer: PyTorch CPU, ${t}x${t} threads`);
  const r = runPeer('eval.py', [file, '--window', String(o.context), '--batch', String(o.batch), '--threads', `${t}x${t}`]);
  if (!r.ok) log(`peer unavailable: ${r.reason}`);
  return r;
}

function peerTokensPerS(p: Record<string, unknown> | undefined, nIds: number): number | undefined {
  const s = num(p, 'seconds');
  return s ? round(nIds / s, 1) : num(p, 'tokens_per_s');
}

/** The fixture's valid/test ppl when this run is exactly its protocol (whole file, context 256, teacher). */
function referencePpl(o: Opts, whole: boolean): number | null {
  const split = /brown-(valid|test)\.txt$/.exec(o.text)?.[1];
  if (!whole || !split || o.context !== 256 || o.model !== fixture('brown-llama-teacher')) return null;
  const ref = JSON.parse(readFileSync(join(o.model, 'reference.json'), 'utf8')) as Record<string, { ppl: number }>;
  return ref[split]?.ppl ?? null;
}

function relDiff(a: number, b: number): number { return Math.abs(a - b) / Math.abs(b); }

function report(o: Opts, ids: Int32Array, ours: OursRun[], peers: Map<number, Record<string, unknown>>,
  peerNote: string | null, allWindows: number): boolean {
  const rows: Cell[][] = [], checks: string[] = [];
  const base = ours[0].ppl;
  let maxRel = 0;   // largest relative ppl difference of any run (ours, peer) against our first run
  for (const r of ours) {
    const p = peers.get(r.threads), ptps = peerTokensPerS(p, ids.length);
    rows.push([`qkd ${r.backend}`, r.threads, r.ppl.toFixed(4), r.top1.toFixed(4), r.seconds, r.tokensPerS, r.otherLoadCores,
      ptps ? round(ptps / r.tokensPerS, 2) : null]);
    maxRel = Math.max(maxRel, relDiff(r.ppl, base));
    if (relDiff(r.ppl, base) > o.tol) checks.push(`ours ${r.backend} ${r.threads} thread(s) ppl ${r.ppl} vs ${base}`);
  }
  for (const [t, p] of peers) {
    const ppl = num(p, 'ppl');
    if (ppl !== undefined) maxRel = Math.max(maxRel, relDiff(base, ppl));
    rows.push(['pytorch cpu', `${t}x${t}`, ppl?.toFixed(4), num(p, 'top1')?.toFixed(4), num(p, 'seconds'),
      peerTokensPerS(p, ids.length), num(p, 'other_load_cores'), null]);
    if (ppl === undefined || relDiff(base, ppl) > o.tol) checks.push(`pytorch ${t}x${t} ppl ${ppl} vs ours ${base}`);
  }
  const windows = ids.length / o.context, ref = referencePpl(o, windows === allWindows);
  if (ref !== null) {
    rows.push(['HF reference (fixture)', '-', ref.toFixed(4), null, null, null, null, null]);
    if (relDiff(base, ref) > o.tol) checks.push(`ours ppl ${base} vs the fixture reference ${ref}`);
  }
  console.log(`eval: ${o.model.split('/').pop()} on ${o.text.split('/').pop()}, ${windows}/${allWindows} windows of ` +
    `${o.context} (${ours[0].tokens} predicted tokens), batch ${o.batch}`);
  printTable(['engine', 'threads', 'ppl', 'top1', 'seconds', 'tokens/s', 'other load', 'ours/torch time'], rows);
  const agree = checks.length === 0;
  console.log(agree ? `ppl agreement: all within ${o.tol} relative (largest ${maxRel.toExponential(2)})` : `FAIL: ppl disagree beyond ${o.tol}: ${checks.join('; ')}`);
  for (const r of ours) if (r.blas) console.log(`${r.backend} ${r.threads} thread(s): OpenBLAS ${r.blas}`);
  if (peerNote) console.log(`PyTorch peer not run: ${peerNote}`);
  const ratio = (b: BackendName) => Object.fromEntries(ours.filter((r) => r.backend === b && peerTokensPerS(peers.get(r.threads), ids.length))
    .map((r) => [String(r.threads), round(peerTokensPerS(peers.get(r.threads), ids.length)! / r.tokensPerS, 3)]));
  jsonLine({
    bench: 'eval', model: o.model.split('/').pop(), text: o.text.split('/').pop(), windows, allWindows,
    context: o.context, batch: o.batch, backend: o.backends[0], backends: o.backends, smoke: o.smoke,
    inputTokens: ids.length, ours, pytorch: Object.fromEntries([...peers].map(([t, p]) => [`${t}x${t}`, p])),
    pytorchNote: peerNote, ratioOursOverPytorchTime: ratio(o.backends[0]),   // the first backend's, as before
    ratioByBackend: Object.fromEntries(o.backends.map((b) => [b, ratio(b)])),
    pplAgree: agree, pplMaxRelDiff: maxRel, tol: o.tol, machine: machineFacts(), peakRssMb: peakRssMb(),
  });
  return agree;
}

/** The run of median time among repeats (the lower middle one for an even count). */
function medianRun<R>(runs: R[], seconds: (r: R) => number): R {
  return [...runs].sort((a, b) => seconds(a) - seconds(b))[(runs.length - 1) >> 1];
}

async function main(): Promise<void> {
  const o = parse(process.argv.slice(2));
  const { ids, seconds, allWindows } = tokenIds(o);
  log(`tokenized ${o.text} in ${seconds.toFixed(2)} s: ${allWindows} windows of ${o.context}, using ${ids.length / o.context}`);
  const ours = new Map<string, OursRun[]>(), peers = new Map<number, Record<string, unknown>[]>();
  const push = <K, R>(m: Map<K, R[]>, k: K, r: R) => m.set(k, [...(m.get(k) ?? []), r]);
  let peerNote: string | null = o.peer ? null : 'disabled (--no-peer or --smoke)';
  const file = o.peer ? writeIds(ids) : '';
  try {
    // each peer run right after ours at the same thread count, so both see about the same machine load
    const all = [...new Set([...o.threads, ...(o.peer ? o.peerThreads : [])])];
    for (let r = 0; r < o.rounds; r++) {
      for (const t of all) {
        if (o.threads.includes(t)) for (const b of o.backends) push(ours, `${b}:${t}`, await runOurs(o, ids, b, t));
        if (peerNote !== null || !o.peerThreads.includes(t)) continue;
        const res = runPeerAt(o, file, t);
        if (res.ok) push(peers, t, res.json); else peerNote = res.reason;
      }
    }
  } finally {
    if (file) rmSync(file, { force: true });
  }
  const oursMed = o.threads.flatMap((t) => o.backends.map((b) => medianRun(ours.get(`${b}:${t}`)!, (r) => r.seconds)));
  const peersMed = new Map([...peers].map(([t, rs]) => [t, medianRun(rs, (p) => num(p, 'seconds') ?? 0)]));
  if (!report(o, ids, oursMed, peersMed, peerNote, allWindows)) process.exitCode = 1;
}

main().catch((e: unknown) => { console.error(e); process.exit(1); });
