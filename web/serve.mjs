// Static server for the browser demo, with the cross-origin isolation headers (COOP/COEP) that
// SharedArrayBuffer, and so the wasm backend's worker threads, need. It serves only what the page
// loads, each URL prefix mapped to one folder ("mount") and filtered by file type:
//
//   /web/...                          web/                            (the page)
//   /dist/src/...*.js                 dist/src/                       (the compiled runtime)
//   /dist/wasm/...*.wasm              dist/wasm/                      (the kernels)
//   /node_modules/zod/...*.js         node_modules/zod/               (the page's import map)
//   /node_modules/@huggingface/tokenizers/...*.{js,mjs}
//   /model/...                        --model DIR (a `qkd export` output), if given
//   /report/...                       --report DIR (a `qkd report` output), if given
// --run OUT (a `qkd pipeline` output) mounts OUT/export as the model and OUT/report as the report and
// opens web/report.html: the student beside its report.
//
// Everything else is 404. Each request path is decoded segment by segment (no empty, ".", ".." or
// hidden segments, no slashes, backslashes or NULs inside one), then resolved through fs.realpath and
// served only if the real path still lies inside the mount's real folder (a symlink out of it is 403).
// The Host header must name the bound address (localhost / 127.0.0.1 / [::1] and the port on a
// loopback bind), which stops DNS rebinding. Every response carries X-Content-Type-Options: nosniff.
// Binding to a non-loopback address prints a warning: anyone on that network can then read the model.
//
//   node web/serve.mjs [--port 8080] [--host 127.0.0.1] [--model DIR] [--report DIR | --run OUT] [--no-isolation]
//
// --port 0 picks a free port. --no-isolation leaves the headers out (to see the 1-thread fallback).
// Also importable: startServer({ root, port, host, model, report, isolate, warn }) -> { url, port, close() }.
import { createReadStream } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import { createServer } from 'node:http';
import { networkInterfaces } from 'node:os';
import { dirname, extname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

export const MIME = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8', '.json': 'application/json; charset=utf-8', '.map': 'application/json; charset=utf-8',
  '.wasm': 'application/wasm', '.txt': 'text/plain; charset=utf-8', '.md': 'text/plain; charset=utf-8',
  '.svg': 'image/svg+xml', '.png': 'image/png', '.ico': 'image/x-icon', '.safetensors': 'application/octet-stream',
};

/** URL prefix -> folder (relative to the repository root) and the file types served from it (null: any). */
const MOUNTS = [
  { prefix: '/web/', dir: 'web', ext: null },
  { prefix: '/dist/src/', dir: 'dist/src', ext: ['.js'] },
  { prefix: '/dist/wasm/', dir: 'dist/wasm', ext: ['.wasm'] },
  { prefix: '/node_modules/zod/', dir: 'node_modules/zod', ext: ['.js'] },
  { prefix: '/node_modules/@huggingface/tokenizers/', dir: 'node_modules/@huggingface/tokenizers', ext: ['.js', '.mjs'] },
];

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1', '[::1]']);
export const isLoopback = (host) => LOOPBACK.has(host) || /^127\.\d+\.\d+\.\d+$/.test(host);

const within = (p, base) => p === base || p.startsWith(base.endsWith(sep) ? base : base + sep);

/** The mount and decoded relative segments a URL path names, or null (=> 404). */
function route(pathname, mounts) {
  const m = mounts.find((x) => pathname === x.prefix.slice(0, -1) || pathname.startsWith(x.prefix));
  if (!m) return null;
  if (pathname === m.prefix.slice(0, -1)) return { mount: m, segments: null }; // "/model" -> redirect to "/model/"
  const raw = pathname.slice(m.prefix.length).split('/');
  if (raw[raw.length - 1] === '') raw.pop(); // a trailing slash names a folder
  const segments = [];
  for (const r of raw) {
    let s;
    try { s = decodeURIComponent(r); } catch { return null; }
    if (s === '' || s.startsWith('.') || /[/\\\0]/.test(s)) return null;
    segments.push(s);
  }
  return { mount: m, segments };
}

function send(res, code, text, headers) {
  res.writeHead(code, { ...headers, 'Content-Type': 'text/plain; charset=utf-8' });
  res.end(text + '\n');
}

/** The real path of a regular file the request may read, or an HTTP status. */
async function resolveFile(mount, segments, wantsDir) {
  let p = join(mount.real, ...segments);
  let real = await realpath(p).catch(() => null);
  if (real === null) return 404;
  if (!within(real, mount.real)) return 403; // a symlink (or a mount moved) out of the folder
  let st = await stat(real).catch(() => null);
  if (st?.isDirectory()) {
    if (!wantsDir) return 'redirect';
    p = join(real, 'index.html');
    real = await realpath(p).catch(() => null);
    if (real === null) return 404;
    if (!within(real, mount.real)) return 403;
    st = await stat(real).catch(() => null);
  }
  if (!st?.isFile()) return 404;
  if (mount.ext && !mount.ext.includes(extname(real))) return 404;
  return real;
}

async function handle(req, res, ctx) {
  const headers = { 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff' };
  if (ctx.isolate) {
    headers['Cross-Origin-Opener-Policy'] = 'same-origin';
    headers['Cross-Origin-Embedder-Policy'] = 'require-corp';
    headers['Cross-Origin-Resource-Policy'] = 'same-origin';
  }
  const host = String(req.headers.host ?? '').toLowerCase();
  if (!ctx.hosts.has(host)) return send(res, 403, 'forbidden: unexpected Host header', headers);
  if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'method not allowed', headers);
  let url;
  try { url = new URL(req.url ?? '/', 'http://localhost'); } catch { return send(res, 400, 'bad request', headers); }
  if (url.pathname === '/') { res.writeHead(302, { ...headers, Location: '/web/' }); return res.end(); }
  const r = route(url.pathname, ctx.mounts);
  if (r === null) return send(res, 404, 'not found', headers);
  if (r.segments === null) { res.writeHead(301, { ...headers, Location: url.pathname + '/' + url.search }); return res.end(); }
  const file = await resolveFile(r.mount, r.segments, url.pathname.endsWith('/'));
  if (file === 'redirect') { res.writeHead(301, { ...headers, Location: url.pathname + '/' + url.search }); return res.end(); }
  if (file === 403) return send(res, 403, 'forbidden', headers);
  if (file === 404) return send(res, 404, 'not found', headers);
  const st = await stat(file);
  res.writeHead(200, { ...headers, 'Content-Type': MIME[extname(file)] ?? 'application/octet-stream', 'Content-Length': st.size });
  if (req.method === 'HEAD') return res.end();
  createReadStream(file).on('error', () => res.destroy()).pipe(res);
}

/** Host header values accepted for a server bound to `host` on `port`. */
function allowedHosts(host, port) {
  const names = new Set(['localhost', '127.0.0.1', '[::1]']);
  if (!isLoopback(host)) {
    const any = host === '0.0.0.0' || host === '::' || host === '';
    const addrs = any ? Object.values(networkInterfaces()).flat().map((i) => i.address) : [host];
    for (const a of addrs) names.add(a.includes(':') && !a.startsWith('[') ? `[${a}]` : a);
  }
  return new Set([...names].map((n) => `${n.toLowerCase()}:${port}`));
}

/** The mounts with their real folders (the model and report folders must exist: a typo fails here, not per request). */
async function realMounts(root, model, report) {
  const base = await realpath(resolve(root));
  const mounts = [];
  for (const m of MOUNTS) {
    const real = await realpath(join(base, m.dir)).catch(() => null);
    if (real) mounts.push({ ...m, real });
  }
  for (const [flag, dir, prefix, what] of [['--model', model, '/model/', 'a `qkd export` output'], ['--report', report, '/report/', 'a `qkd report` output']]) {
    if (dir === null || dir === undefined) continue;
    const real = await realpath(resolve(dir)).catch(() => null);
    const st = real ? await stat(real).catch(() => null) : null;
    if (!st?.isDirectory()) throw new Error(`${flag} ${dir}: no such folder (give ${what})`);
    mounts.push({ prefix, dir, ext: null, real });
  }
  return mounts;
}

/** Starts the server; resolves once it listens. Rejects when the model folder does not exist. */
export async function startServer({ root = ROOT, port = 8080, host = '127.0.0.1', model = null, report = null, isolate = true,
  warn = (m) => process.stderr.write(m) } = {}) {
  const mounts = await realMounts(root, model, report);
  const ctx = { mounts, isolate, hosts: new Set() };
  const server = createServer((req, res) => {
    handle(req, res, ctx).catch(() => { if (!res.headersSent) send(res, 500, 'internal error', {}); else res.destroy(); });
  });
  await new Promise((ok, fail) => {
    server.once('error', fail);
    server.listen(port, host, ok);
  });
  const p = server.address().port, h = host.includes(':') ? `[${host}]` : host;
  ctx.hosts = allowedHosts(host, p);
  if (!isLoopback(host)) {
    warn(`\nserve: WARNING: listening on ${host}:${p}, which is NOT a loopback address: anyone who can reach this\n` +
      'serve: machine on that network can load the demo and download the model. Use --host 127.0.0.1 unless you mean it.\n\n');
  }
  const origin = `http://${h === '0.0.0.0' || h === '[::]' ? '127.0.0.1' : h}:${p}`, hasModel = mounts.some((m) => m.prefix === '/model/');
  const url = report ? `${origin}/web/report.html?${hasModel ? 'model=/model/&' : ''}report=/report/`
    : `${origin}/web/${hasModel ? '?model=/model/' : ''}`;
  return { url, port: p, close: () => new Promise((done) => { server.closeAllConnections(); server.close(() => done()); }) };
}

function parseArgs(argv) {
  const o = { port: 8080, host: '127.0.0.1', model: null, report: null, isolate: true };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i], v = () => { if (i + 1 >= argv.length) throw new Error(`${a} needs a value`); return argv[++i]; };
    if (a === '--port') o.port = /^[0-9]+$/.test(v()) ? Number(argv[i]) : NaN;
    else if (a === '--host') o.host = v();
    else if (a === '--model') o.model = v();
    else if (a === '--report') o.report = v();
    else if (a === '--run') { const d = v(); o.model = join(d, 'export'); o.report = join(d, 'report'); }
    else if (a === '--no-isolation') o.isolate = false;
    else if (a === '--help' || a === '-h') o.help = true;
    else throw new Error(`unknown option ${a}`);
  }
  if (!Number.isInteger(o.port) || o.port < 0 || o.port > 65535) throw new Error(`--port ${argv[argv.indexOf('--port') + 1]} is not a port`);
  return o;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  let o;
  try { o = parseArgs(process.argv.slice(2)); } catch (e) { console.error(`serve: ${e.message}`); process.exit(2); }
  if (o.help) {
    console.log('usage: node web/serve.mjs [--port 8080] [--host 127.0.0.1] [--model EXPORT_DIR] [--report REPORT_DIR | --run PIPELINE_OUT] [--no-isolation]');
    process.exit(0);
  }
  const s = await startServer(o).catch((e) => { console.error(`serve: ${e.message}`); process.exit(2); });
  console.log(`qkd demo: ${s.url}${o.isolate ? '' : ' (no COOP/COEP: the wasm backend runs on 1 thread)'}`);
}
