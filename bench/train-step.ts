/**
 * One training step of the fixture teacher's architecture (brown-llama-teacher, 4.9M parameters,
 * float32): forward, mean next-token cross-entropy, backward, clip to global norm 1.0, AdamW
 * (lr 1.5e-3, betas 0.9/0.95, eps 1e-8, wd 0.1), zero the gradients. Batch 16 x 128 seeded random
 * token ids (16 x 129 drawn per step: inputs the first 128, targets the last 128), as the PyTorch
 * peer bench/peers/train_step.py does.
 *
 *   npm run build && node dist/bench/train-step.js [--threads 1,2] [--steps 10] [--warmup 2]
 *     [--rounds 2] [--backend wasm|native|ts|wasm,native] [--batch 16] [--ctx 128] [--no-peer] [--smoke]
 *
 * Each (backend, threads, round) runs in a fresh Node process, so its peak RSS is its own. Rounds
 * interleave with the peer: ours (every thread count, the backends of one thread count back to back),
 * PyTorch (every thread count), ours again. The RSS after
 * every timed step is printed with its least-squares slope; a slope above --rss-slope-max MiB/step
 * fails the run (exit code 1): memory must not grow step over step after warm-up.
 * Prints a table, then one JSON line.
 */
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { Backend, BackendName } from '../src/kernels/backend.js';
import { loadModel } from '../src/io/load-model.js';
import { Rng } from '../src/tensor/random.js';
import { AdamW, clipFactor } from '../src/train/optim.js';
import {
  backendList, fixture, intList, jsonLine, log, machineFacts, openBenchBackend, median, num, OtherLoad, peakRssMb,
  posInt, printTable, round, rssMb, runNodeChild, runPeer, slope, type Cell,
} from './common.js';

const ADAMW = { lr: 1.5e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 };

interface Opts {
  threads: number[]; peerThreads: number[]; steps: number; warmup: number; rounds: number; batch: number;
  ctx: number; backends: BackendName[]; model: string; seed: number; peer: boolean; smoke: boolean; rssSlopeMax: number;
}

interface StepRow { ms: number; fwd: number; bwd: number; opt: number; loss: number; rss: number }

/** What one worker process reports. */
interface WorkerOut {
  threads: number; backend: BackendName; params: number; steps: StepRow[]; warmupRss: number[];
  peakRssMb: number; otherLoadCores: number | null; loadSeconds: number;
  /** native backend: the OpenBLAS kernel in use (e.g. SkylakeX) and OPENBLAS_THREAD_TIMEOUT. */
  blas?: string;
}

function parse(argv: string[]): Opts & { worker: boolean } {
  const { values: v } = parseArgs({
    args: argv, strict: true, options: {
      threads: { type: 'string' }, 'peer-threads': { type: 'string' }, steps: { type: 'string' },
      warmup: { type: 'string' }, rounds: { type: 'string' }, batch: { type: 'string' }, ctx: { type: 'string' },
      backend: { type: 'string' }, model: { type: 'string' }, seed: { type: 'string' }, 'no-peer': { type: 'boolean' },
      smoke: { type: 'boolean' }, worker: { type: 'boolean' }, 'rss-slope-max': { type: 'string' },
    },
  });
  const smoke = v.smoke ?? false;
  // smoke: the tiny random Llama fixture at 2 x 16 tokens on the reference backend, no peer: a CI check.
  const threads = intList(v.threads ?? (smoke ? '1' : '1,2'), 'threads');
  return {
    threads, peerThreads: v['peer-threads'] ? intList(v['peer-threads'], 'peer-threads') : threads,
    steps: posInt(v.steps, 'steps', smoke ? 3 : 10), warmup: posInt(v.warmup, 'warmup', smoke ? 1 : 2, 0),
    rounds: posInt(v.rounds, 'rounds', smoke ? 1 : 2), batch: posInt(v.batch, 'batch', smoke ? 2 : 16),
    ctx: posInt(v.ctx, 'ctx', smoke ? 16 : 128), backends: backendList(v.backend, smoke ? 'ts' : 'wasm'),
    model: v.model ?? fixture(smoke ? 'tiny-llama' : 'brown-llama-teacher'), seed: posInt(v.seed, 'seed', 1, 0),
    peer: !(v['no-peer'] ?? smoke), smoke, rssSlopeMax: v['rss-slope-max'] ? Number(v['rss-slope-max']) : 1,
    worker: v.worker ?? false,
  };
}

// ---------------------------------------------------------------- worker: one configuration
async function worker(o: Opts): Promise<WorkerOut> {
  const t = o.threads[0], backend = o.backends[0], tLoad = performance.now();
  const { be, blas } = await openBenchBackend(backend, t);
  const { model } = loadModel(o.model, be);
  const loadSeconds = (performance.now() - tLoad) / 1000;
  const P = model.params, B = o.batch, T = o.ctx, N = B * T, V = model.config.vocabSize;
  const adam = new AdamW(P, { ...ADAMW });
  const rng = new Rng(o.seed), x = new Int32Array(N), targets = be.allocI32(N), losses = be.alloc(N);

  const step = (): StepRow => {
    for (let b = 0; b < B; b++) {                       // (B, T+1) ids: inputs [0,T), targets [1,T+1)
      let prev = rng.int(V);
      for (let i = 0; i < T; i++) { const id = rng.int(V); x[b * T + i] = prev; targets[b * T + i] = id; prev = id; }
    }
    const t0 = performance.now();
    const logits = model.forward(x, B, T);
    const dLogits = model.grads().dLogitsBuffer();
    be.crossEntropy(losses, logits, targets, N, V, dLogits, 1 / N);   // mean CE; its gradient fused in
    let loss = 0;
    for (let i = 0; i < N; i++) loss += losses[i];
    const t1 = performance.now();
    model.grads().backward(dLogits);
    const t2 = performance.now();
    adam.update(ADAMW.lr, clipFactor(be, P.grad, 1.0).scale);
    P.zeroGrad();
    const t3 = performance.now();
    return { ms: t3 - t0, fwd: t1 - t0, bwd: t2 - t1, opt: t3 - t2, loss: loss / N, rss: rssMb() };
  };

  const warmupRss: number[] = [];
  for (let i = 0; i < o.warmup; i++) warmupRss.push(step().rss);
  const load = new OtherLoad().start(), steps: StepRow[] = [];
  for (let i = 0; i < o.steps; i++) {
    steps.push(step());
    const s = steps[i];
    log(`  ${backend} ${t}t step ${i}: ${s.ms.toFixed(1)} ms (fwd+loss ${s.fwd.toFixed(1)}, bwd ${s.bwd.toFixed(1)}, ` +
      `clip+adamw ${s.opt.toFixed(1)}) loss ${s.loss.toFixed(4)} rss ${s.rss} MiB`);
  }
  const otherLoadCores = load.stop();
  const out: WorkerOut = { threads: t, backend, params: P.size, steps, warmupRss, peakRssMb: peakRssMb(),
    otherLoadCores, loadSeconds: round(loadSeconds, 3), blas };
  model.dispose();
  await be.dispose();
  return out;
}

// ---------------------------------------------------------------- parent: rounds, peer, report
function workerArgs(o: Opts, b: BackendName, t: number): string[] {
  return ['--worker', '--threads', String(t), '--steps', String(o.steps), '--warmup', String(o.warmup),
    '--batch', String(o.batch), '--ctx', String(o.ctx), '--backend', b, '--model', o.model,
    '--seed', String(o.seed)];
}

interface OursSummary {
  backend: BackendName; blas?: string; threads: number; msPerStep: number; msMin: number; tokensPerS: number;
  phasesMs: { fwdLoss: number; bwd: number; clipAdamw: number }; peakRssMb: number;
  rssSeries: number[][]; rssSlopeMbPerStep: number[]; rssStable: boolean; loss: number[]; otherLoadCores: (number | null)[];
}

function summarize(o: Opts, b: BackendName, t: number, runs: WorkerOut[]): OursSummary {
  const rows = runs.flatMap((r) => r.steps), med = (f: (s: StepRow) => number) => round(median(rows.map(f)), 2);
  const series = runs.map((r) => r.steps.map((s) => s.rss)), slopes = series.map((s) => round(slope(s), 3));
  const ms = med((s) => s.ms);
  return {
    backend: b, blas: runs[0].blas, threads: t, msPerStep: ms, msMin: round(Math.min(...rows.map((s) => s.ms)), 2),
    tokensPerS: round((o.batch * o.ctx) / ms * 1000, 1),
    phasesMs: { fwdLoss: med((s) => s.fwd), bwd: med((s) => s.bwd), clipAdamw: med((s) => s.opt) },
    peakRssMb: Math.max(...runs.map((r) => r.peakRssMb)), rssSeries: series, rssSlopeMbPerStep: slopes,
    rssStable: slopes.every((s) => s <= o.rssSlopeMax),
    loss: [round(rows[0].loss, 4), round(rows[rows.length - 1].loss, 4)], otherLoadCores: runs.map((r) => r.otherLoadCores),
  };
}

const key = (b: BackendName, t: number): string => `${b}:${t}`;

function runOurs(o: Opts, script: string, byConfig: Map<string, WorkerOut[]>, r: number): void {
  for (const t of o.threads) {
    for (const b of o.backends) {
      log(`ours: ${b}, ${t} thread(s), round ${r + 1}/${o.rounds}`);
      const res = runNodeChild(script, workerArgs(o, b, t));
      if (!res.ok) throw new Error(res.reason);
      byConfig.get(key(b, t))!.push(res.json as unknown as WorkerOut);
    }
  }
}

/** ours/torch per thread count for one backend (median ratio, or ratio of minimums). */
function ratios(ours: OursSummary[], peers: Map<number, Record<string, unknown>>, b: BackendName,
  mins: boolean): Record<string, number> {
  const field = mins ? 'ms_per_step_min' : 'ms_per_step';
  return Object.fromEntries(ours.filter((s) => s.backend === b && num(peers.get(s.threads), field))
    .map((s) => [String(s.threads), round((mins ? s.msMin : s.msPerStep) / num(peers.get(s.threads), field)!, 3)]));
}

function runPeers(o: Opts): { peers: Map<number, Record<string, unknown>>; peerNote: string | null } {
  const peers = new Map<number, Record<string, unknown>>();
  for (const t of o.peerThreads) {
    log(`peer: PyTorch CPU, ${t}x${t} threads`);
    const r = runPeer('train_step.py', ['--threads', `${t}x${t}`, '--batch', String(o.batch), '--ctx', String(o.ctx),
      '--steps', String(o.steps), '--warmup', String(o.warmup)]);
    if (!r.ok) { log(`peer unavailable: ${r.reason}`); return { peers, peerNote: r.reason }; }
    peers.set(t, r.json);
  }
  return { peers, peerNote: null };
}

function report(o: Opts, ours: OursSummary[], peers: Map<number, Record<string, unknown>>, peerNote: string | null,
  params: number): boolean {
  const rows: Cell[][] = [];
  for (const s of ours) {
    const p = peers.get(s.threads), pm = num(p, 'ms_per_step'), pmin = num(p, 'ms_per_step_min');
    rows.push([`qkd ${s.backend}`, s.threads, s.msPerStep, s.msMin, s.phasesMs.fwdLoss, s.phasesMs.bwd, s.phasesMs.clipAdamw,
      s.tokensPerS, s.peakRssMb, s.rssSlopeMbPerStep.join(' / '), s.otherLoadCores.map((c) => c ?? '-').join(' / '),
      pm ? round(s.msPerStep / pm, 2) : null, pmin ? round(s.msMin / pmin, 2) : null]);
  }
  for (const [t, p] of peers) {
    const ph = p.phases_ms as Record<string, number> | undefined;
    rows.push(['pytorch cpu', `${t}x${t}`, num(p, 'ms_per_step'), num(p, 'ms_per_step_min'), ph?.fwd_loss, ph?.bwd,
      ph?.clip_adamw, num(p, 'tokens_per_s'), num(p, 'peak_rss_mb'), null, num(p, 'other_load_cores'), null, null]);
  }
  console.log(`train step: ${o.model.split('/').pop()} (${params} params, float32), batch ${o.batch} x ${o.ctx}, ` +
    `median of ${o.steps} steps x ${o.rounds} round(s) after ${o.warmup} warm-up(s)`);
  printTable(['engine', 'threads', 'ms/step', 'min', 'fwd+loss', 'bwd', 'clip+adamw', 'tokens/s', 'peak RSS MiB',
    'RSS slope MiB/step', 'other load', 'ours/torch', 'min/min'], rows);
  for (const s of ours) {
    s.rssSeries.forEach((ser, r) => console.log(`RSS after each step, ${s.backend}, ${s.threads} thread(s), round ${r + 1} (MiB): ${ser.join(' ')}`));
  }
  for (const s of ours) if (s.blas) console.log(`${s.backend} ${s.threads} thread(s): OpenBLAS ${s.blas}`);
  const stable = ours.every((s) => s.rssStable);
  console.log(stable ? `RSS stable: every slope <= ${o.rssSlopeMax} MiB/step` : `FAIL: RSS grows step over step (> ${o.rssSlopeMax} MiB/step)`);
  if (peerNote) console.log(`PyTorch peer not run: ${peerNote}`);
  jsonLine({
    bench: 'train-step', model: o.model.split('/').pop(), params, batch: o.batch, ctx: o.ctx, steps: o.steps,
    warmup: o.warmup, rounds: o.rounds, backend: o.backends[0], backends: o.backends, smoke: o.smoke, ours,
    pytorch: Object.fromEntries([...peers].map(([t, p]) => [`${t}x${t}`, p])), pytorchNote: peerNote,
    // the first backend's ratios (as before), then every backend's
    ratioOursOverPytorch: ratios(ours, peers, o.backends[0], false), ratioOfMins: ratios(ours, peers, o.backends[0], true),
    ratioByBackend: Object.fromEntries(o.backends.map((b) => [b, ratios(ours, peers, b, false)])),
    ratioOfMinsByBackend: Object.fromEntries(o.backends.map((b) => [b, ratios(ours, peers, b, true)])),
    goalRatio: 1.5, rssStable: stable, machine: machineFacts(),
  });
  return stable;
}

async function main(): Promise<void> {
  const o = parse(process.argv.slice(2));
  if (o.worker) { console.log(JSON.stringify(await worker(o))); return; }
  const script = fileURLToPath(import.meta.url);
  const configs = o.threads.flatMap((t) => o.backends.map((b) => [b, t] as const));
  const byConfig = new Map(configs.map(([b, t]) => [key(b, t), [] as WorkerOut[]]));
  let peers = new Map<number, Record<string, unknown>>(), peerNote: string | null = o.peer ? null : 'disabled (--no-peer or --smoke)';
  for (let r = 0; r < o.rounds; r++) {
    runOurs(o, script, byConfig, r);
    if (r === 0 && o.peer) ({ peers, peerNote } = runPeers(o));
  }
  const ours = configs.map(([b, t]) => summarize(o, b, t, byConfig.get(key(b, t))!));
  const params = ours.length ? byConfig.get(key(...configs[0]))![0].params : 0;
  if (!report(o, ours, peers, peerNote, params)) process.exitCode = 1;
}

main().catch((e: unknown) => { console.error(e); process.exit(1); });
