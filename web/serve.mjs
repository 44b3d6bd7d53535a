// Static server for the browser demo: serves the repository root (dist/, node_modules/, web/) with the
// cross-origin isolation headers (COOP/COEP) that SharedArrayBuffer, and so the wasm backend's worker
// threads, need. Optionally mounts one model directory (a `qkd export` output) at /model/, and a
// `qkd report` folder at /report/; --run OUT (a `qkd pipeline` output) mounts OUT/export and OUT/report
// and opens web/report.html (the student beside its report).
//
//   node web/serve.mjs [--port 8080] [--host 127.0.0.1] [--model DIR] [--report DIR | --run OUT] [--no-isolation]
//
// --port 0 picks a free port. --no-isolation leaves the headers out (to see the 1-thread fallback).
// Also importable: startServer({ root, port, host, model, report, isolate }) -> { url, port, close() }.
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer } from 'node:http';
import { dirname, extname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

export const MIME = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8', '.json': 'application/json; charset=utf-8', '.map': 'application/json; charset=utf-8',
  '.wasm': 'application/wasm', '.txt': 'text/plain; charset=utf-8', '.md': 'text/plain; charset=utf-8',
  '.svg': 'image/svg+xml', '.png': 'image/png', '.ico': 'image/x-icon', '.safetensors': 'application/octet-stream',
};

/** The file a URL path names under `base`, or null when it would leave `base`. */
function within(base, rel) {
  const p = resolve(base, '.' + rel);
  return p === base || p.startsWith(base + sep) ? p : null;
}

function mapPath(urlPath, root, model, report) {
  let rel;
  try { rel = decodeURIComponent(urlPath); } catch { return null; }
  if (rel.includes('\0')) return null;
  if (model && (rel === '/model' || rel.startsWith('/model/'))) return within(model, rel.slice('/model'.length) || '/');
  if (report && (rel === '/report' || rel.startsWith('/report/'))) return within(report, rel.slice('/report'.length) || '/');
  return within(root, rel);
}

function send(res, code, text, headers) {
  res.writeHead(code, { ...headers, 'Content-Type': 'text/plain; charset=utf-8' });
  res.end(text + '\n');
}

async function handle(req, res, root, model, isolate, report) {
  const headers = { 'Cache-Control': 'no-store' };
  if (isolate) {
    headers['Cross-Origin-Opener-Policy'] = 'same-origin';
    headers['Cross-Origin-Embedder-Policy'] = 'require-corp';
    headers['Cross-Origin-Resource-Policy'] = 'same-origin';
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'method not allowed', headers);
  const url = new URL(req.url ?? '/', 'http://localhost');
  if (url.pathname === '/') { res.writeHead(302, { ...headers, Location: '/web/' }); return res.end(); }
  let file = mapPath(url.pathname, root, model, report);
  if (file === null) return send(res, 403, 'forbidden', headers);
  let st = await stat(file).catch(() => null);
  if (st?.isDirectory()) {
    if (!url.pathname.endsWith('/')) { res.writeHead(301, { ...headers, Location: url.pathname + '/' + url.search }); return res.end(); }
    file = join(file, 'index.html');
    st = await stat(file).catch(() => null);
  }
  if (!st?.isFile()) return send(res, 404, `not found: ${url.pathname}`, headers);
  res.writeHead(200, { ...headers, 'Content-Type': MIME[extname(file)] ?? 'application/octet-stream', 'Content-Length': st.size });
  if (req.method === 'HEAD') return res.end();
  createReadStream(file).on('error', () => res.destroy()).pipe(res);
}

/** Starts the server; resolves once it listens. */
export function startServer({ root = ROOT, port = 8080, host = '127.0.0.1', model = null, report = null, isolate = true } = {}) {
  const base = resolve(root), mdir = model ? resolve(model) : null, rdir = report ? resolve(report) : null;
  const server = createServer((req, res) => {
    handle(req, res, base, mdir, isolate, rdir).catch((e) => { if (!res.headersSent) send(res, 500, String(e), {}); else res.destroy(); });
  });
  return new Promise((ok, fail) => {
    server.once('error', fail);
    server.listen(port, host, () => {
      const p = server.address().port, h = host.includes(':') ? `[${host}]` : host;
      const url = rdir ? `http://${h}:${p}/web/report.html?${mdir ? 'model=/model/&' : ''}report=/report/`
        : `http://${h}:${p}/web/${mdir ? '?model=/model/' : ''}`;
      ok({ url, port: p, close: () => new Promise((done) => { server.closeAllConnections(); server.close(() => done()); }) });
    });
  });
}

function parseArgs(argv) {
  const o = { port: 8080, host: '127.0.0.1', model: null, report: null, isolate: true };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i], v = () => { if (i + 1 >= argv.length) throw new Error(`${a} needs a value`); return argv[++i]; };
    if (a === '--port') o.port = Number(v());
    else if (a === '--host') o.host = v();
    else if (a === '--model') o.model = v();
    else if (a === '--report') o.report = v();
    else if (a === '--run') { const d = v(); o.model = join(d, 'export'); o.report = join(d, 'report'); }
    else if (a === '--no-isolation') o.isolate = false;
    else if (a === '--help' || a === '-h') o.help = true;
    else throw new Error(`unknown option ${a}`);
  }
  if (!Number.isInteger(o.port) || o.port < 0 || o.port > 65535) throw new Error(`--port ${o.port} is not a port`);
  return o;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  let o;
  try { o = parseArgs(process.argv.slice(2)); } catch (e) { console.error(`serve: ${e.message}`); process.exit(2); }
  if (o.help) {
    console.log('usage: node web/serve.mjs [--port 8080] [--host 127.0.0.1] [--model EXPORT_DIR] [--report REPORT_DIR | --run PIPELINE_OUT] [--no-isolation]');
    process.exit(0);
  }
  const s = await startServer(o).catch((e) => { console.error(`serve: ${e.message}`); process.exit(1); });
  console.log(`qkd demo: ${s.url}${o.isolate ? '' : ' (no COOP/COEP: the wasm backend runs on 1 thread)'}`);
}
