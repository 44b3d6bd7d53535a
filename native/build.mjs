// Builds the native backend's addon, dist/native/qkd_native.node, from native/qkd_native.cc with g++
// against Node's headers and the system OpenBLAS. Optional: when a prerequisite is missing it prints one
// line saying what to install and returns; `createBackend('native')` then explains the same at run time.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const INSTALL = 'apt-get install -y --no-install-recommends libopenblas-dev g++';

/** A directory holding node_api.h for this Node: beside the binary, the system include dirs, node-gyp's cache. */
function nodeIncludeDir() {
  const v = process.version.slice(1);
  const prefix = process.config?.variables?.node_prefix;
  const dirs = [join(dirname(process.execPath), '..', 'include', 'node'), prefix && join(prefix, 'include', 'node'),
    '/usr/include/node', '/usr/local/include/node', join(homedir(), '.cache', 'node-gyp', v, 'include', 'node')];
  return dirs.find((d) => d && existsSync(join(d, 'node_api.h'))) ?? null;
}

/** Why the addon cannot be built here (null when it can). */
function missing(cxx, inc) {
  if (spawnSync(cxx, ['--version'], { stdio: 'ignore' }).status !== 0) return `${cxx} (the C++ compiler)`;
  if (!inc) return "Node's headers (node_api.h; they ship with Node, e.g. /usr/include/node)";
  const pre = spawnSync(cxx, ['-E', '-x', 'c++', '-'], { input: '#include <cblas.h>\n', stdio: ['pipe', 'ignore', 'ignore'] });
  if (pre.status !== 0) return 'the OpenBLAS headers (cblas.h)';
  const lib = spawnSync(cxx, ['-print-file-name=libopenblas.so'], { encoding: 'utf8' }).stdout.trim();
  if (!lib.startsWith('/') || !existsSync(lib)) return 'the OpenBLAS library (libopenblas.so)';
  return null;
}

export function buildNative(root) {
  const src = join(root, 'native', 'qkd_native.cc'), out = join(root, 'dist', 'native', 'qkd_native.node');
  if (!existsSync(src)) return;
  const self = fileURLToPath(import.meta.url);
  const newest = Math.max(statSync(src).mtimeMs, statSync(self).mtimeMs);
  if (existsSync(out) && statSync(out).mtimeMs > newest) return;   // up to date
  const cxx = process.env.CXX || 'g++', inc = nodeIncludeDir();
  const why = missing(cxx, inc);
  if (why) {
    console.log(`build: native backend skipped: ${why} not found (optional; to build it: ${INSTALL})`);
    return;
  }
  mkdirSync(dirname(out), { recursive: true });
  const tmp = `${out}.tmp-${process.pid}`;   // written whole, then renamed: never a half-written addon
  try {
    execFileSync(cxx, ['-O2', '-fPIC', '-shared', '-std=c++17', '-Wall', '-Wextra', `-I${inc}`, src, '-o', tmp,
      '-lopenblas'], { stdio: 'inherit', cwd: root });
    renameSync(tmp, out);
    console.log(`build: native backend addon ${out}`);
  } catch {
    rmSync(tmp, { force: true });
    console.log(`build: native backend skipped: ${cxx} failed on native/qkd_native.cc (see above); the rest of the build is fine`);
  }
}
