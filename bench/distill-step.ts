/**
 * One distillation step of the anchor recipe `int8-sparse90-kd` (teacher forward, student forward with
 * int8 fake quantization and 90% masks, KD loss, backward, clip, AdamW), ours with the live teacher and
 * from the teacher-logit cache, next to the PyTorch peer (../shared/peers/torch_distill_step.py) in
 * one run. Our step times come from `qkd distill` itself (metrics.jsonl logs each step's time).
 *
 *   node dist/bench/distill-step.js [--steps 25] [--threads 2] [--backend wasm] [--cache DIR] [--no-peer]
 *
 * --cache: an existing teacher-logit cache for recipes/anchor/int8-sparse90-kd.yaml (else one is built
 * over Brown train first, which takes several minutes).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { jsonLine, lastJsonLine, log, median, printTable, PYTHON, peerUnavailable, round } from './common.js';

const args = process.argv.slice(2);
const flag = (n: string, d: string) => { const i = args.indexOf(n); return i >= 0 ? args[i + 1] : d; };
const steps = Number(flag('--steps', '25')), threads = flag('--threads', '2'), backend = flag('--backend', 'wasm');
// the CLI of the build this bench belongs to (so an older build can be measured side by side)
const RECIPE = 'recipes/anchor/int8-sparse90-kd.yaml', CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), 'qkd-distill-step-'));

function qkd(a: string[]): void {
  const r = spawnSync(process.execPath, [CLI, ...a, '--backend', backend, '--threads', threads], { stdio: ['ignore', 'ignore', 'inherit'] });
  if (r.status !== 0) throw new Error(`qkd ${a[0]} failed (${r.status ?? r.signal})`);
}

/** Median ms per step of a short distill run (skipping 3 warm-up steps and mask-update steps). */
function ours(label: string, extra: string[]): { label: string; ms: number; min: number; other: null } {
  const out = join(tmp, label.replace(/\W+/g, '-'));
  qkd(['distill', '--config', RECIPE, '--steps', String(steps), '--warmup', '1', '--eval-every', '0', '--eval-windows', '1',
    '--checkpoint-every', '0', '--out', out, ...extra]);
  const other = null; // our step runs in a child process, which OtherLoad would count as "other"
  const rows = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l))
    .filter((r) => r.tokens_per_s && r.step > 3);
  const ms = rows.map((r) => (16 * 128 * 1000) / r.tokens_per_s);
  return { label, ms: median(ms), min: Math.min(...ms), other };
}

function peer(): { ms: number; min: number; other: number; json: Record<string, unknown> } | string {
  const why = peerUnavailable();
  if (why) return why;
  const script = join('..', 'shared', 'peers', 'torch_distill_step.py');
  if (!existsSync(script)) return `${script} is absent`;
  const env = { ...process.env };
  delete env.OPENBLAS_CORETYPE; delete env.OPENBLAS_L2_SIZE;
  const r = spawnSync(PYTHON, ['-B', script, '--ctx', '128', '--steps', '20', '--threads', `${threads}x${threads}`],
    { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], timeout: 900_000 });
  const j = lastJsonLine(r.stdout ?? '');
  if (!j) return `peer failed (${r.status ?? r.signal})`;
  const run = (j.runs as Record<string, unknown>[])[0];
  return { ms: j.ms_per_step as number, min: run.ms_min as number, other: run.other_load_cores as number, json: j };
}

let cache = flag('--cache', '');
if (!cache) {
  cache = join(tmp, 'cache');
  log(`building a teacher-logit cache in ${cache} (pass --cache DIR to reuse one)`);
  qkd(['teacher-cache', '--config', RECIPE, '--out', cache, '--k', '64']);
}
const live1 = ours('qkd, live teacher', []);
const cached = ours('qkd, teacher-logit cache', ['--teacher-cache', cache]);
const p = args.includes('--no-peer') ? '--no-peer' : peer();
const live2 = ours('qkd, live teacher (again)', []);
const live = { ...live1, ms: median([live1.ms, live2.ms]), min: Math.min(live1.min, live2.min) };
const torch = typeof p === 'string' ? null : p;
printTable(['engine', 'threads', 'ms/step (median)', 'ms/step (min)', 'tokens/s', 'vs PyTorch', 'other load'], [
  ...[live1, live2, cached].map((r) => [r.label, threads, round(r.ms, 1), round(r.min, 1), Math.round(2048_000 / r.ms),
    torch ? round(r.ms / torch.ms, 2) : '-', r.other ?? '-']),
  ...(torch ? [['PyTorch 1.13 + OpenBLAS', `${threads}x${threads}`, torch.ms, torch.min, Math.round(2048_000 / torch.ms), 1, torch.other]] : []),
]);
if (typeof p === 'string') log(`PyTorch peer not run: ${p}`);
log(`cache speedup over the live teacher: ${round(live.ms / cached.ms, 2)}x`);
jsonLine({ bench: 'distill-step', recipe: 'int8-sparse90-kd', batch: 16, ctx: 128, threads: Number(threads), backend,
  oursLiveMs: round(live.ms, 1), oursCacheMs: round(cached.ms, 1), cacheSpeedup: round(live.ms / cached.ms, 2),
  pytorchMs: torch?.ms ?? null, ratioLiveOverPytorch: torch ? round(live.ms / torch.ms, 2) : null,
  ratioCacheOverPytorch: torch ? round(cached.ms / torch.ms, 2) : null, pytorchNote: typeof p === 'string' ? p : null,
  otherLoad: { live: [live1.other, live2.other], cache: cached.other, pytorch: torch?.other ?? null } });
rmSync(tmp, { recursive: true, force: true });
