/**
 * Batch-1 greedy decode of one `qkd export` in headless Chromium (the web/ demo page's runtime, served
 * with COOP/COEP by web/serve.mjs) and in Node, side by side in one run: decode tok/s (median of
 * --rounds rounds after 3 warm-up rounds), same prompt, same tokens (checked).
 *
 *   npm run build && node dist/bench/browser-decode.js [--export runs/export-int8a8-block16]
 *     [--threads 1,2] [--new 128] [--rounds 3]
 * Needs Chromium at /usr/bin/chromium (or $QKD_CHROMIUM). Prints a table, then one JSON line.
 */
import { parseArgs } from 'node:util';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import { createBackend } from '../src/kernels/registry.js';
import { loadInt8Model } from '../src/runtime/int8-node.js';
import { generateIds, type CausalLM } from '../src/runtime/generate.js';
import { intList, jsonLine, log, median, posInt, printTable, round } from './common.js';

const PROMPT = Array.from({ length: 16 }, (_, i) => 100 + 37 * i);

/** One round: prefill ms (first token) and decode ms (the rest); runs the same in the page and in Node. */
function timeRound(gen: (model: CausalLM, prompt: number[], o: object) => Generator<number>, model: CausalLM,
  prompt: number[], n: number): { ids: number[]; prefillMs: number; decodeMs: number } {
  const it = gen(model, prompt, { maxNewTokens: n, greedy: true }), ids: number[] = [];
  let t = performance.now(), prefillMs = 0;
  for (let r = it.next(); !r.done; r = it.next()) {
    const now = performance.now();
    if (ids.length === 0) prefillMs = now - t; else if (ids.length === 1) t = now;
    ids.push(r.value);
  }
  return { ids, prefillMs, decodeMs: performance.now() - t };
}

interface Row { where: string; threads: number; decode: number; prefillMs: number; same: string }

async function main(): Promise<void> {
  const { values: v } = parseArgs({ options: {
    export: { type: 'string' }, threads: { type: 'string' }, new: { type: 'string' }, rounds: { type: 'string' },
  } });
  const dir = resolve(v.export ?? 'runs/export-int8a8-block16'), threads = intList(v.threads ?? '1,2', 'threads');
  const n = posInt(v.new, 'new', 128), rounds = posInt(v.rounds, 'rounds', 3), total = rounds + 3;
  const serveUrl = pathToFileURL(resolve('web/serve.mjs')).href;
  const { startServer } = await import(serveUrl) as { startServer(o: object): Promise<{ url: string; close(): Promise<void> }> };
  const server = await startServer({ port: 0, model: dir });
  const browser = await chromium.launch({ executablePath: process.env.QKD_CHROMIUM ?? '/usr/bin/chromium', headless: true });
  const rows: Row[] = [];
  try {
    for (const t of threads) {
      const be = await createBackend('wasm', { threads: t });
      const { model } = loadInt8Model(dir, be);
      const node = Array.from({ length: total }, () => timeRound(generateIds, model, PROMPT, n)).slice(3);
      model.dispose(); await be.dispose();
      const page = await browser.newPage();
      await page.goto(new URL('/web/', server.url).href);
      await page.waitForFunction(() => (window as unknown as { qkdDemo: { qkd: unknown } }).qkdDemo.qkd !== null);
      const web = await page.evaluate(async ({ src, t, n, total, prompt }) => {
        const q = (window as unknown as { qkdDemo: { qkd: any } }).qkdDemo.qkd; // eslint-disable-line @typescript-eslint/no-explicit-any
        const run = new Function(`return (${src})`)();
        const m = await q.loadModelFromUrl('/model/', { threads: t });
        const out = Array.from({ length: total }, () => run(q.generateIds, m.model, prompt, n)).slice(3);
        await m.dispose();
        return out;
      }, { src: timeRound.toString(), t, n, total, prompt: PROMPT });
      await page.close();
      const same = web.every((r) => r.ids.join() === node[0].ids.join()) ? `${n}/${n}` : 'DIFFER';
      for (const [where, rs] of [['chromium', web], ['node', node]] as const) {
        rows.push({ where, threads: t, decode: round((n - 1) / (median(rs.map((r) => r.decodeMs)) / 1000), 1),
          prefillMs: round(median(rs.map((r) => r.prefillMs)), 2), same });
      }
      log(`threads ${t}: done`);
    }
  } finally {
    await browser.close();
    await server.close();
  }
  console.log(`browser decode: ${dir}, prompt ${PROMPT.length}, ${n} new tokens greedy, median of ${rounds} rounds after 3 warm-ups`);
  printTable(['engine', 'threads', 'decode tok/s', 'prefill ms', 'same tokens'],
    rows.map((r) => [r.where, String(r.threads), String(r.decode), String(r.prefillMs), r.same]));
  jsonLine({ bench: 'browser-decode', export: dir, newTokens: n, rounds, rows });
}

await main();
