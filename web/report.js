// The student-and-report page: the left frame is the demo page (web/index.html) running the export at
// ?model= (default /model/); the right pane shows the report at ?report= (default /report/): a summary
// line from report.json and report.html's content with its inline SVG charts, inside a shadow root so
// that the report's styles and the page's stay apart. `node web/serve.mjs --run OUT` serves both.
//
// window.qkdReport exposes {json, charts, error} for the console and for the browser test.

const $ = (id) => document.getElementById(id);
const state = { json: null, charts: 0, error: null };
window.qkdReport = state;

const q = new URLSearchParams(location.search);
const asDir = (u) => (u.endsWith('/') ? u : u + '/');
const modelUrl = asDir(q.get('model') ?? '/model/'), reportUrl = asDir(q.get('report') ?? '/report/');

async function fetchOk(url, what) {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status} (${what})`);
  return r;
}

const span = (text, cls) => Object.assign(document.createElement('span'), { textContent: text, ...(cls ? { className: cls } : {}) });
const x = (v) => (typeof v === 'number' && Number.isFinite(v) ? `${v.toFixed(1)}×` : '–');

/** One line from report.json: sizes, ratios and the claims' statuses (text nodes only). */
function showSummary(j) {
  const s = j.models.student, t = j.models.teacher, b = j.compression.bytes;
  const line = [span(`Student: ${s.params.toLocaleString('en-US')} parameters, ${(b.student / 1e6).toFixed(2)} MB on disk, ` +
    `${x(b.ratio)} smaller than the fp32 teacher (${t.params.toLocaleString('en-US')} parameters); ` +
    `ApproximationRatio ${j.approximation.ratio.toFixed(4)}. Claims: `)];
  j.claims.forEach((c, i) => {
    const ok = c.status === 'pass', bad = c.status === 'fail';
    line.push(span(`${ok ? '✓' : bad ? '✗' : '?'} ${c.claim}`, ok ? 'ok' : bad ? 'bad' : ''));
    if (i + 1 < j.claims.length) line.push(span(' · '));
  });
  $('summary').replaceChildren(...line);
}

/** report.html's <main> and <style> into a shadow root; nothing executable is carried over. */
function embed(html) {
  const doc = new DOMParser().parseFromString(html, 'text/html');
  const main = doc.querySelector('main.qkd-report');
  if (!main) throw new Error(`${reportUrl}report.html: no report content (<main class="qkd-report">)`);
  for (const el of main.querySelectorAll('script, iframe, object, embed')) el.remove();
  for (const el of main.querySelectorAll('*')) {
    for (const a of [...el.attributes]) if (/^on/i.test(a.name) || /^\s*javascript:/i.test(a.value)) el.removeAttribute(a.name);
  }
  const root = $('report').shadowRoot ?? $('report').attachShadow({ mode: 'open' });
  const style = document.createElement('style');
  style.textContent = (doc.querySelector('style')?.textContent ?? '') + '\n:host { display: block; } main { padding-top: 0; }';
  root.replaceChildren(style, document.importNode(main, true));
  return root.querySelectorAll('figure.chart svg').length;
}

async function main() {
  $('demo').src = `./index.html?model=${encodeURIComponent(modelUrl)}`;
  $('reportLink').href = `${reportUrl}report.html`;
  try {
    const j = await (await fetchOk(`${reportUrl}report.json`, 'report.json')).json();
    if (j?.format !== 'qkd-report') throw new Error(`${reportUrl}report.json: not a qkd report (format ${JSON.stringify(j?.format)})`);
    state.json = j;
    showSummary(j);
    state.charts = embed(await (await fetchOk(`${reportUrl}report.html`, 'report.html')).text());
    $('summary').dataset.state = 'ready';
  } catch (e) {
    state.error = e.message;
    $('summary').textContent = `cannot show the report: ${e.message}`;
    $('summary').dataset.state = 'error';
  }
}

main();
