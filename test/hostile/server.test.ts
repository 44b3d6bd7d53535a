/**
 * web/serve.mjs as an attacker sees it: started on 127.0.0.1 with a free port, a model folder holding
 * a symlink to a file outside it, a symlinked folder and a hidden file; every escape is asked for with
 * raw request lines (no client-side normalisation): `..` in every encoding (plain, %2e%2e, %2f,
 * double-encoded, backslash and %5c), the repository's .git and package files, the runs/ folder,
 * symlinks, and a foreign Host header. Each must be 403 or 404; what the page needs is 200 with nosniff.
 * Also: a missing --model refuses to start, a non-loopback bind warns.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect } from 'node:net';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { tmp } from './helpers.js';

interface Server { url: string; port: number; close(): Promise<void> }
type Start = (o: object) => Promise<Server>;

const SECRET = 'top-secret-do-not-serve';
let server: Server, start: Start, models: string;

before(async () => {
  const dir = tmp('serve');
  models = join(dir, 'models');
  mkdirSync(join(models, 'good'), { recursive: true });
  writeFileSync(join(models, 'good', 'config.json'), '{"ok":true}');
  writeFileSync(join(models, '.hidden'), 'hidden');
  writeFileSync(join(dir, 'secret.txt'), SECRET);
  mkdirSync(join(dir, 'outside'));
  writeFileSync(join(dir, 'outside', 'x.json'), SECRET);
  symlinkSync(join(dir, 'secret.txt'), join(models, 'link.txt'));
  symlinkSync(join(dir, 'outside'), join(models, 'linkdir'));
  symlinkSync('/etc/passwd', join(models, 'passwd'));
  symlinkSync(join(models, 'good', 'config.json'), join(models, 'inside-link.json')); // a link within the folder is fine
  start = (await import(pathToFileURL(resolve('web/serve.mjs')).href) as { startServer: Start }).startServer;
  server = await start({ port: 0, host: '127.0.0.1', model: models });
});

after(async () => { await server?.close(); });

/** One raw GET: the path is sent exactly as given. */
function get(path: string, host = `127.0.0.1:${server.port}`): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  return new Promise((ok, fail) => {
    const req = request({ host: '127.0.0.1', port: server.port, path, method: 'GET', headers: { Host: host }, timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { body += c; });
      res.on('end', () => ok({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${path}: timeout`)));
    req.on('error', fail);
    req.end();
  });
}

test('serves what the page needs, with nosniff', async () => {
  for (const p of ['/web/', '/web/main.js', '/dist/src/runtime/index.js', '/dist/wasm/kernels.wasm', '/node_modules/zod/index.js',
    '/model/good/config.json', '/model/inside-link.json']) {
    const r = await get(p);
    assert.equal(r.status, 200, p);
    assert.equal(r.headers['x-content-type-options'], 'nosniff', p);
  }
  assert.equal((await get('/')).status, 302);
});

test('symlinks out of a served folder: 403, never the target', async () => {
  for (const p of ['/model/link.txt', '/model/linkdir/x.json', '/model/passwd']) {
    const r = await get(p);
    assert.ok(r.status === 403 || r.status === 404, `${p}: ${r.status}`);
    assert.ok(!r.body.includes(SECRET) && !r.body.includes('root:'), `${p} leaked`);
    assert.equal(r.headers['x-content-type-options'], 'nosniff');
  }
});

test('.. in every encoding, the repository .git, package files, runs/ and sources: 403/404', async () => {
  const paths = [
    '/.git/config', '/.git/HEAD', '/package.json', '/.npmrc', '/runs/', '/src/cli/main.ts', '/dist/src/cli/main.js.map',
    '/dist/test/hostile/helpers.js.map', '/node_modules/.package-lock.json', '/README.md', '/model/.hidden',
    '/web/../.git/config', '/web/%2e%2e/.git/config', '/web/%2E%2E/%2E%2E/etc/passwd', '/web/..%2f.git%2fconfig',
    '/web/..%2F..%2Fetc%2Fpasswd', '/web/%252e%252e/.git/config', '/web/%252e%252e%252f.git%252fconfig',
    '/web/..\\.git\\config', '/web/..%5c.git%5cconfig', '/web/%5c..%5c..%5cetc%5cpasswd', '/model/..%2fsecret.txt',
    '/model/%2e%2e/secret.txt', '/model/good/..%2f..%2fsecret.txt', '/dist/src/../../.git/config', '/dist/wasm/..%2f..%2fpackage.json',
    '/model/%00', '/web/%c0%ae%c0%ae/.git/config', '//etc/passwd', '/web//../.git/config', '/.%2e/.git/config',
  ];
  for (const p of paths) {
    const r = await get(p);
    assert.ok(r.status === 403 || r.status === 404, `${p}: status ${r.status}`);
    assert.ok(!/\[core\]|root:|"name": "qkd"|top-secret/.test(r.body), `${p} leaked: ${r.body.slice(0, 80)}`);
  }
});

test('a foreign Host header (DNS rebinding) is refused; the loopback names are accepted', async () => {
  for (const h of ['evil.example', `evil.example:${server.port}`, '127.0.0.1', `127.0.0.1:${server.port + 1}`, `192.168.1.10:${server.port}`]) {
    const r = await get('/web/', h);
    assert.equal(r.status, 403, `Host ${JSON.stringify(h)}: ${r.status}`);
  }
  for (const h of [`localhost:${server.port}`, `127.0.0.1:${server.port}`, `[::1]:${server.port}`]) {
    assert.equal((await get('/web/', h)).status, 200, h);
  }
  // no Host header at all (HTTP/1.0, written on a raw socket)
  const raw = await new Promise<string>((ok, fail) => {
    const s = connect(server.port, '127.0.0.1', () => s.end('GET /web/ HTTP/1.0\r\n\r\n'));
    let got = '';
    s.setEncoding('utf8').on('data', (c) => { got += c; }).on('end', () => ok(got)).on('error', fail);
  });
  assert.match(raw, /^HTTP\/1\.[01] 403/);
});

test('a missing model folder refuses to start; a non-loopback bind warns on stderr', async () => {
  await assert.rejects(() => start({ port: 0, model: join(models, 'nope') }), /nope: no such folder/);
  const cli = spawnSync(process.execPath, ['web/serve.mjs', '--port', '0', '--model', join(models, 'nope')], { encoding: 'utf8', timeout: 10_000 });
  assert.equal(cli.status, 2, cli.stderr);
  assert.match(cli.stderr, /no such folder/);
  const warnings: string[] = [];
  const open = await start({ port: 0, host: '0.0.0.0', warn: (m: string) => warnings.push(m) });
  try {
    assert.match(warnings.join(''), /WARNING: listening on 0\.0\.0\.0:\d+, which is NOT a loopback address/);
  } finally {
    await open.close();
  }
});
