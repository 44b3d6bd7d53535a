/**
 * onnxruntime-node decode speed of qkd's ONNX exports (the "onnxruntime float32" and "onnxruntime
 * int8" peers of issue 5): batch 1, a 16-token prompt, 128 new tokens by greedy decoding through the
 * key/value-cache export, at 1 and 2 intra-op threads. Each (variant, threads) runs in a fresh Node
 * process so its peak RSS is its own.
 *
 *   node dist/bench/onnx-decode.js [--model DIR] [--threads 1,2] [--prompt 16] [--new 128]
 *     [--rounds 3] [--variants float,int8] [--smoke]
 *
 * Timing per round: prefill = one run over the prompt (gives new token 1); decode = the following
 * new-1 single-token runs. Medians over --rounds timed rounds after one untimed round.
 */
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { exportOnnx, kvNames } from '../src/io/onnx.js';
import {
  fixture, intList, jsonLine, log, machineFacts, median, OtherLoad, peakRssMb, posInt, printTable, round, runNodeChild,
} from './common.js';

type Variant = 'float' | 'int8';

interface Opts {
  model: string; threads: number[]; prompt: number; newTokens: number; rounds: number; variants: Variant[];
}

/** What one worker process reports. */
interface WorkerOut {
  variant: Variant; threads: number; loadMs: number; prefillMs: number; prefillTokPerS: number; decodeMs: number;
  decodeTokPerS: number; msPerToken: number;
  /** Median single-step time: robust to the other processes sharing the machine. */
  medianStepMs: number; tokens: number[]; peakRssMb: number; otherLoadCores: number | null;
}

/** The model dimensions a worker needs to feed an empty cache. */
interface Dims { V: number; nLayer: number; KV: number; D: number }

function parse(argv: string[]) {
  const { values: v } = parseArgs({
    args: argv, strict: true, options: {
      model: { type: 'string' }, threads: { type: 'string' }, prompt: { type: 'string' }, new: { type: 'string' },
      rounds: { type: 'string' }, variants: { type: 'string' }, smoke: { type: 'boolean' },
      worker: { type: 'boolean' }, onnx: { type: 'string' }, variant: { type: 'string' }, dims: { type: 'string' },
    },
  });
  const smoke = v.smoke ?? false;
  const variants = (v.variants ?? 'float,int8').split(',').map((s) => s.trim());
  for (const s of variants) if (s !== 'float' && s !== 'int8') throw new Error(`--variants: unknown variant "${s}" (float, int8)`);
  const o: Opts = {
    model: v.model ?? fixture(smoke ? 'tiny-llama' : 'brown-llama-teacher'),
    threads: intList(v.threads ?? (smoke ? '1' : '1,2'), 'threads'),
    prompt: posInt(v.prompt, 'prompt', 16), newTokens: posInt(v.new, 'new', smoke ? 8 : 128, 2),
    rounds: posInt(v.rounds, 'rounds', smoke ? 1 : 3), variants: variants as Variant[],
  };
  return { o, worker: v.worker ?? false, onnx: v.onnx, variant: v.variant as Variant, dims: v.dims };
}

// ---------------------------------------------------------------- worker: one (variant, threads)
function emptyPast(d: Dims): Record<string, ort.Tensor> {
  const f: Record<string, ort.Tensor> = {};
  for (let l = 0; l < d.nLayer; l++) {
    const n = kvNames(l);
    f[n.pastKey] = new ort.Tensor('float32', new Float32Array(0), [1, d.KV, 0, d.D]);
    f[n.pastValue] = new ort.Tensor('float32', new Float32Array(0), [1, d.KV, 0, d.D]);
  }
  return f;
}

function lastArgmax(out: ort.InferenceSession.OnnxValueMapType, V: number): number {
  const d = out.logits.data as Float32Array, off = d.length - V;
  let best = 0;
  for (let j = 1; j < V; j++) if (d[off + j] > d[off + best]) best = j;
  return best;
}

/** One greedy generation: prefill + (new - 1) cached steps. */
async function generateOnce(s: ort.InferenceSession, d: Dims, prompt: number[], newTokens: number) {
  const ids = (xs: number[]) => new ort.Tensor('int64', BigInt64Array.from(xs.map(BigInt)), [1, xs.length]);
  const t0 = performance.now();
  let out = await s.run({ input_ids: ids(prompt), ...emptyPast(d) });
  const tokens = [lastArgmax(out, d.V)];
  const t1 = performance.now(), stepMs: number[] = [];
  while (tokens.length < newTokens) {
    const ts = performance.now();
    const feeds: Record<string, ort.Tensor> = { input_ids: ids([tokens[tokens.length - 1]]) };
    for (let l = 0; l < d.nLayer; l++) {
      const n = kvNames(l);
      feeds[n.pastKey] = out[n.presentKey] as ort.Tensor;
      feeds[n.pastValue] = out[n.presentValue] as ort.Tensor;
    }
    out = await s.run(feeds);
    tokens.push(lastArgmax(out, d.V));
    stepMs.push(performance.now() - ts);
  }
  return { prefillMs: t1 - t0, decodeMs: performance.now() - t1, tokens, stepMs };
}

async function worker(o: Opts, onnx: string, variant: Variant, dims: Dims): Promise<WorkerOut> {
  const t = o.threads[0], tl = performance.now();
  const s = await ort.InferenceSession.create(onnx, {
    intraOpNumThreads: t, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all',
  });
  const loadMs = performance.now() - tl;
  const prompt = Array.from({ length: o.prompt }, (_, i) => (i * 131 + 7) % dims.V);
  await generateOnce(s, dims, prompt, o.newTokens);
  const load = new OtherLoad().start(), runs = [];
  for (let r = 0; r < o.rounds; r++) runs.push(await generateOnce(s, dims, prompt, o.newTokens));
  const otherLoadCores = load.stop();
  const prefillMs = median(runs.map((x) => x.prefillMs)), decodeMs = median(runs.map((x) => x.decodeMs));
  const steps = o.newTokens - 1;
  await s.release();
  return {
    variant, threads: t, loadMs: round(loadMs, 1), prefillMs: round(prefillMs, 2),
    prefillTokPerS: round(o.prompt / (prefillMs / 1000), 1), decodeMs: round(decodeMs, 1),
    decodeTokPerS: round(steps / (decodeMs / 1000), 1), msPerToken: round(decodeMs / steps, 3),
    medianStepMs: round(median(runs.flatMap((x) => x.stepMs)), 3),
    tokens: runs[0].tokens, peakRssMb: peakRssMb(), otherLoadCores,
  };
}

// ---------------------------------------------------------------- driver
async function main(): Promise<void> {
  const { o, worker: isWorker, onnx, variant, dims } = parse(process.argv.slice(2));
  if (isWorker) {
    const [V, nLayer, KV, D] = intList(dims ?? '', 'dims');
    console.log(JSON.stringify(await worker(o, onnx!, variant, { V, nLayer, KV, D })));
    return;
  }
  const tmp = mkdtempSync(join(tmpdir(), 'qkd-onnx-bench-'));
  try {
    const files = new Map<Variant, { path: string; bytes: number; exportMs: number }>();
    let dimsArg = '';
    for (const v of o.variants) {
      const t0 = performance.now();
      const r = exportOnnx(o.model, join(tmp, `${v}.onnx`), { int8: v === 'int8', kvCache: true });
      files.set(v, { path: r.out, bytes: r.bytes, exportMs: round(performance.now() - t0, 0) });
      dimsArg = [r.config.vocabSize, r.config.nLayer, r.config.nKVHead, r.config.headDim].join(',');
      log(`exported ${v}: ${r.bytes} bytes in ${files.get(v)!.exportMs} ms`);
    }
    const script = fileURLToPath(import.meta.url), rows: WorkerOut[] = [];
    for (const v of o.variants) {
      for (const t of o.threads) {
        log(`running ${v} at ${t} thread(s)`);
        const res = runNodeChild(script, ['--worker', '--onnx', files.get(v)!.path, '--variant', v, '--dims', dimsArg,
          '--threads', String(t), '--prompt', String(o.prompt), '--new', String(o.newTokens), '--rounds', String(o.rounds)]);
        if (!res.ok) throw new Error(res.reason);
        rows.push(res.json as unknown as WorkerOut);
      }
    }
    report(o, rows, files);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

function report(o: Opts, rows: WorkerOut[], files: Map<Variant, { bytes: number; exportMs: number }>): void {
  const ref = rows.find((r) => r.variant === 'float')?.tokens;
  const agree = (r: WorkerOut) => (ref ? r.tokens.filter((x, i) => x === ref[i]).length : null);
  console.log(`onnxruntime-node ${ort.env.versions.node}: ${o.model}, batch 1, prompt ${o.prompt}, ${o.newTokens} new tokens (greedy, kv cache)`);
  printTable(
    ['variant', 'threads', 'MB', 'prefill tok/s', 'decode tok/s', 'ms/token', 'median step ms', 'same tokens as float', 'peak RSS MB', 'other load'],
    rows.map((r) => [r.variant, r.threads, round(files.get(r.variant)!.bytes / 1e6, 2), r.prefillTokPerS, r.decodeTokPerS,
      r.msPerToken, r.medianStepMs, agree(r) === null ? null : `${agree(r)}/${o.newTokens}`, r.peakRssMb, r.otherLoadCores]),
  );
  jsonLine({
    bench: 'onnx-decode', ort: ort.env.versions.node, model: o.model, prompt: o.prompt, newTokens: o.newTokens,
    rounds: o.rounds, files: Object.fromEntries([...files].map(([k, f]) => [k, f])),
    rows: rows.map((r) => ({ ...r, sameTokensAsFloat: agree(r), tokens: undefined })), machine: machineFacts(),
  });
}

main().catch((e: unknown) => { console.error(e); process.exit(1); });
