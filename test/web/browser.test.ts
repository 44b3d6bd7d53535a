/**
 * The browser demo in headless Chromium (playwright-core driving /usr/bin/chromium, or $QKD_CHROMIUM):
 * web/serve.mjs serves the repository with COOP/COEP, the page (web/index.html) loads a tiny student's
 * `qkd export` with loadModelFromUrl on the browser wasm host, and
 * - greedy and seeded-sampled token ids from the page's Generate button equal those that stream()
 *   gives in Node on the Node wasm backend, for the same export, prompt and settings;
 * - one forward pass's logits equal Node's within LOGIT_TOL (the same kernels module on both sides),
 *   also with every kernel call split between the page's thread and a pool Web Worker;
 * - a corrupt export and a missing URL show errors naming the URL and the file/field;
 * - without cross-origin isolation the page falls back to 1 thread, says so, and gives the same ids.
 * Chromium missing is a failure, not a skip (.ci/run installs it).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { loadTokenizer } from '../../src/data/tokenizer-node.js';
import { exportStudent } from '../../src/io/export.js';
import { createWasmBackend, type WasmBackend } from '../../src/kernels/wasm/backend.js';
import { stream, type StreamOptions } from '../../src/runtime/generate.js';
import { loadInt8Model } from '../../src/runtime/int8-node.js';
import type { Int8Transformer } from '../../src/runtime/int8-model.js';
import type { QkdTokenizer } from '../../src/data/tokenizer.js';
import { makeStudent } from '../runtime/students.js';
import { maxAbsDiff } from '../helpers.js';

const CHROMIUM = process.env.QKD_CHROMIUM ?? '/usr/bin/chromium';
/** Max |logit difference| browser vs Node: both run the same kernels module; sums may only be reordered. */
const LOGIT_TOL = 1e-5;
const PROMPT = 'The jury said that';
const N = 24;
const SAMPLED: StreamOptions = { temperature: 0.8, topK: 40, topP: 0.95, repetitionPenalty: 1.1, seed: 7 };

interface Server { url: string; port: number; close(): Promise<void> }
type StartServer = (o: { port?: number; model?: string; isolate?: boolean }) => Promise<Server>;

const tmp = mkdtempSync(join(tmpdir(), 'qkd-web-'));
const models = join(tmp, 'models');
let browser: Browser, server: Server, backend: WasmBackend, model: Int8Transformer, tok: QkdTokenizer;
const pageErrors: string[] = [];

before(async () => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} not found: the browser test needs Chromium ` +
    '(apt-get install -y --no-install-recommends chromium, or set QKD_CHROMIUM)');
  assert.ok(existsSync('dist/wasm/kernels.wasm'), 'dist/wasm/kernels.wasm missing: run npm run build');
  const good = join(models, 'good');
  exportStudent(makeStudent(join(tmp, 'student'), { actBits: 8, sparsity: { target: 0.9, granularity: 'block', block: 4 } }), good);
  // a corrupt copy: one byte of the last tensor's data flipped (its CRC-32 no longer matches)
  cpSync(good, join(models, 'bad'), { recursive: true });
  const st = join(models, 'bad', 'model.safetensors'), bytes = readFileSync(st);
  bytes[bytes.length - 3] ^= 0x40;
  writeFileSync(st, bytes);
  const { startServer } = await import(pathToFileURL(resolve('web/serve.mjs')).href) as { startServer: StartServer };
  server = await startServer({ port: 0, model: models });
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true });
  backend = await createWasmBackend();
  model = loadInt8Model(good, backend).model;
  tok = loadTokenizer(good);
});

after(async () => {
  await browser?.close();
  await server?.close();
  await backend?.dispose();
});

async function openDemo(base: string, modelUrl: string): Promise<Page> {
  const page = await browser.newPage();
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') pageErrors.push(`${m.text()} (${m.location().url})`); });
  const u = new URL(base);
  u.search = '';
  u.searchParams.set('model', modelUrl);
  await page.goto(u.href);
  await page.waitForFunction(() => ['ready', 'error'].includes(document.getElementById('status')!.dataset.state!));
  return page;
}

const statusOf = (page: Page) => page.$eval('#status', (e) => ({ text: e.textContent ?? '', state: (e as HTMLElement).dataset.state }));

/** Clicks Generate with the given settings; the ids and stats the page recorded. */
async function uiGenerate(page: Page, o: StreamOptions): Promise<{ ids: number[]; tokensPerSecond: number }> {
  await page.fill('#prompt', PROMPT);
  await page.fill('#maxNew', String(o.maxNewTokens ?? N));
  await page.setChecked('#greedy', o.greedy === true);
  for (const [id, v] of [['temperature', o.temperature], ['topK', o.topK], ['topP', o.topP], ['penalty', o.repetitionPenalty],
    ['seed', o.seed]] as const) await page.fill(`#${id}`, v === undefined ? '' : String(v));
  await page.click('#generate');
  await page.waitForFunction(() => ['done', 'error'].includes(document.getElementById('status')!.dataset.state!));
  const s = await statusOf(page);
  assert.equal(s.state, 'done', s.text);
  return page.evaluate(() => {
    const d = (window as unknown as { qkdDemo: { lastIds: number[]; lastStats: { tokensPerSecond: number } } }).qkdDemo;
    return { ids: d.lastIds, tokensPerSecond: d.lastStats.tokensPerSecond };
  });
}

/** Node's ids for the same prompt and settings (the same stream() the page uses), and its decode speed. */
async function nodeIds(o: StreamOptions): Promise<{ ids: number[]; tokensPerSecond: number }> {
  const ids: number[] = [], it = stream(model, tok, PROMPT, { maxNewTokens: N, ...o });
  let decodeMs = 0;
  for (;;) {
    const t0 = performance.now(), r = await it.next(), dt = performance.now() - t0;
    if (r.done) break;
    if (ids.length > 0) decodeMs += dt;
    if (r.value.id >= 0) ids.push(r.value.id);
  }
  return { ids, tokensPerSecond: ids.length > 1 ? (ids.length - 1) / (decodeMs / 1000) : 0 };
}

test('the demo page generates the same greedy and seeded-sampled ids as Node', async (t) => {
  const page = await openDemo(server.url, '/model/good/');
  const s = await statusOf(page);
  assert.equal(s.state, 'ready', s.text);
  const info = await page.$eval('#modelInfo', (e) => e.textContent ?? '');
  assert.match(info, /backend wasm, \d+ thread\(s\), relaxed-SIMD FMA/);
  assert.ok(await page.evaluate(() => self.crossOriginIsolated), 'the server sends COOP/COEP');
  for (const [label, o] of [['greedy', { greedy: true }], ['sampled', SAMPLED]] as const) {
    const web = await uiGenerate(page, o), node = await nodeIds(o);
    assert.ok(node.ids.length >= 2, `${label}: Node generated ${node.ids.length} tokens`);
    assert.deepEqual(web.ids, node.ids, `${label}: browser ids vs Node ids`);
    t.diagnostic(`${label}: ${web.ids.length} tokens; decode ${web.tokensPerSecond.toFixed(0)} tokens/s in Chromium, ` +
      `${node.tokensPerSecond.toFixed(0)} tokens/s in Node (${info})`);
  }
  await page.close();
  assert.deepEqual(pageErrors, []);
});

test(`one forward pass: browser logits equal Node's within ${LOGIT_TOL}`, async (t) => {
  const page = await openDemo(server.url, '/model/good/');
  const ids = tok.encode(PROMPT);
  const web = await page.evaluate((x) => {
    const m = (window as unknown as { qkdDemo: { loaded: { model: Int8Transformer } } }).qkdDemo.loaded.model;
    return Array.from(m.forward(x, 1, x.length));
  }, ids);
  const want = model.forward(ids, 1, ids.length);
  assert.equal(web.length, want.length);
  const d = maxAbsDiff(web, want);
  assert.ok(d <= LOGIT_TOL, `max |logit diff| ${d}`);
  t.diagnostic(`${ids.length} positions x ${model.config.vocabSize} logits: max |browser - Node| = ${d}`);
  // every kernel call spread over the main thread (spinning, canBlock false) and a Web Worker
  const par = await page.evaluate(async (x) => {
    const q = (window as unknown as { qkdDemo: { qkd: typeof import('../../src/runtime/index.js') } }).qkdDemo.qkd;
    const l = await q.loadModelFromUrl('/model/good/', { threads: 2, forceParallel: true });
    try {
      return { threads: l.backend.threads, logits: Array.from(l.model.forward(x, 1, x.length)) };
    } finally {
      await l.dispose();
    }
  }, ids);
  assert.equal(par.threads, 2);
  const dp = maxAbsDiff(par.logits, want);
  assert.ok(dp <= LOGIT_TOL, `2 threads, forceParallel: max |logit diff| ${dp}`);
  // createWasmBackend() without a platform picks the browser host outside Node
  const plain = await page.evaluate(async (x) => {
    const q = (window as unknown as { qkdDemo: { qkd: typeof import('../../src/runtime/index.js') } }).qkdDemo.qkd;
    const { createWasmBackend: create } = await import('/dist/src/kernels/wasm/backend.js' as string) as
      typeof import('../../src/kernels/wasm/backend.js');
    const backend = await create({ threads: 1 });
    try {
      const l = await q.loadModelFromUrl('/model/good/', { backend });
      return Array.from(l.model.forward(x, 1, x.length));
    } finally {
      await backend.dispose();
    }
  }, ids);
  assert.ok(maxAbsDiff(plain, want) <= LOGIT_TOL, 'default platform in the page');
  await page.close();
});

test('a corrupt export and a missing one give errors naming the URL and the file', async () => {
  const page = await openDemo(server.url, '/model/bad/');
  const s = await statusOf(page);
  assert.equal(s.state, 'error');
  assert.match(s.text, /^E_FORMAT: http:\/\/[^ ]+\/model\/bad\/: model\.safetensors: .*CRC-32/);
  await page.fill('#modelUrl', '/model/none/');
  await page.click('#load');
  await page.waitForFunction(() => document.getElementById('status')!.dataset.state === 'error' &&
    document.getElementById('status')!.textContent!.includes('/none/'));
  assert.match((await statusOf(page)).text, /^E_MISSING: http:\/\/[^ ]+\/model\/none\/(config|tokenizer)\.json: HTTP 404/);
  await page.close();
});

test('without cross-origin isolation: 1 thread, a clear note, the same ids', async () => {
  const plain = await (await import(pathToFileURL(resolve('web/serve.mjs')).href) as { startServer: StartServer })
    .startServer({ port: 0, model: models, isolate: false });
  try {
    const page = await openDemo(plain.url, '/model/good/');
    assert.equal((await statusOf(page)).state, 'ready');
    assert.match(await page.$eval('#modelInfo', (e) => e.textContent ?? ''), /backend wasm, 1 thread\(s\)/);
    assert.match(await page.$eval('#notes', (e) => e.textContent ?? ''), /not cross-origin isolated/);
    const web = await uiGenerate(page, { greedy: true });
    assert.deepEqual(web.ids, (await nodeIds({ greedy: true })).ids);
    await page.close();
  } finally {
    await plain.close();
  }
});
