/**
 * The student-and-report page (web/report.html) in headless Chromium (playwright-core driving
 * /usr/bin/chromium or $QKD_CHROMIUM, as test/web/browser.test.ts): web/serve.mjs serves a tiny
 * pipeline folder (test/eval/report-fixture.ts) with its report (written here by buildReport and
 * writeReport); the page shows the report's summary and its SVG charts beside the demo frame, which
 * loads the student export and generates a few tokens. No console errors; a screenshot is saved under
 * the test's temp folder (its path is printed as a diagnostic).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type Browser, type Frame, type Page } from 'playwright-core';
import { buildReport } from '../../src/eval/report/build.js';
import { writeReport } from '../../src/eval/report/write.js';
import { TsBackend } from '../../src/kernels/ts/backend.js';
import { makeTinyPipeline } from '../eval/report-fixture.js';

const CHROMIUM = process.env.QKD_CHROMIUM ?? '/usr/bin/chromium';

interface Server { url: string; port: number; close(): Promise<void> }
type StartServer = (o: { port?: number; model?: string; report?: string }) => Promise<Server>;

const tmp = mkdtempSync(join(tmpdir(), 'qkd-web-report-'));
const RUN = join(tmp, 'run');
let browser: Browser, server: Server;
const errors: string[] = [];

before(async () => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} not found: the browser test needs Chromium ` +
    '(apt-get install -y --no-install-recommends chromium, or set QKD_CHROMIUM)');
  process.env.QKD_CACHE_DIR ??= join(tmp, 'cache');
  makeTinyPipeline(RUN, { tasks: true });
  writeReport(join(RUN, 'report'), buildReport(RUN, new TsBackend(), { windows: 4 }));
  const { startServer } = await import(pathToFileURL(resolve('web/serve.mjs')).href) as { startServer: StartServer };
  server = await startServer({ port: 0, model: join(RUN, 'export'), report: join(RUN, 'report') });
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true });
});

after(async () => {
  await browser?.close();
  await server?.close();
});

async function open(url: string): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1440, height: 960 } });
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(`${m.text()} (${m.location().url})`); });
  await page.goto(url);
  await page.waitForFunction(() => ['ready', 'error'].includes(document.getElementById('summary')!.dataset.state!));
  return page;
}

/** The demo frame, once its model has loaded (or failed). */
async function demoFrame(page: Page): Promise<Frame> {
  const el = await page.waitForSelector('#demo');
  const frame = (await el.contentFrame())!;
  await frame.waitForFunction(() => ['ready', 'error'].includes(document.getElementById('status')?.dataset.state ?? ''));
  return frame;
}

test('the report page: summary, SVG charts, the student running beside them; a screenshot', async (t) => {
  assert.match(server.url, /\/web\/report\.html\?model=\/model\/&report=\/report\/$/);
  const page = await open(server.url);
  const summary = await page.$eval('#summary', (e) => ({ text: e.textContent ?? '', state: (e as HTMLElement).dataset.state }));
  assert.equal(summary.state, 'ready', summary.text);
  assert.match(summary.text, /smaller than the fp32 teacher/);
  assert.match(summary.text, /model size reduced 8x or more/);
  // charts: five inline <svg> drawn by ECharts, each with drawn paths, inside the report's shadow root
  const charts = await page.locator('#report figure.chart svg').count();
  assert.ok(charts >= 5, `${charts} charts`);
  assert.equal(await page.evaluate(() => (window as unknown as { qkdReport: { charts: number } }).qkdReport.charts), charts);
  const paths = await page.locator('#report figure.chart svg').evaluateAll((svgs) => svgs.map((s) => s.querySelectorAll('path').length));
  assert.ok(paths.every((n) => n > 5), `paths per chart: ${paths}`);
  const box = await page.locator('#report figure.chart svg').first().boundingBox();
  assert.ok(box && box.width > 300 && box.height > 100, `the first chart is laid out: ${JSON.stringify(box)}`);
  // the student, in the demo frame: loaded from /model/ and generating
  const frame = await demoFrame(page);
  const status = await frame.$eval('#status', (e) => ({ text: e.textContent ?? '', state: (e as HTMLElement).dataset.state }));
  assert.equal(status.state, 'ready', status.text);
  await frame.fill('#maxNew', '12');
  await frame.setChecked('#greedy', true);
  await frame.click('#generate');
  await frame.waitForFunction(() => ['done', 'error'].includes(document.getElementById('status')!.dataset.state!));
  assert.equal(await frame.$eval('#status', (e) => (e as HTMLElement).dataset.state), 'done');
  const shot = join(tmp, 'report-page.png');
  await page.screenshot({ path: shot });
  t.diagnostic(`screenshot: ${shot}`);
  await page.close();
  assert.deepEqual(errors, []);
});

test('a missing report says which URL failed', async () => {
  const u = new URL(server.url);
  u.searchParams.set('report', '/report/none/');
  const page = await browser.newPage();
  await page.goto(u.href);
  await page.waitForFunction(() => document.getElementById('summary')!.dataset.state === 'error');
  assert.match(await page.$eval('#summary', (e) => e.textContent ?? ''), /\/report\/none\/report\.json: HTTP 404/);
  await page.close();
});
