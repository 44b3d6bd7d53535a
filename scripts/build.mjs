// Build: TypeScript (tsc), the AssemblyScript kernels (asc, two flavours: FMA and mul+add), and the
// optional OpenBLAS addon of the native backend (g++; skipped with one line when its prerequisites are absent).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { buildNative } from '../native/build.mjs';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bin = (n) => join(root, 'node_modules', '.bin', n);
const run = (cmd, args) => execFileSync(cmd, args, { stdio: 'inherit', cwd: root });

// tsc still emits JS when it reports type errors; build the kernels anyway and fail at the end.
let tscFailed = false;
try { run(bin('tsc'), ['-p', 'tsconfig.json']); } catch { tscFailed = true; }
const entry = join(root, 'src/kernels/assembly/index.ts');
if (existsSync(entry)) {
  const out = join(root, 'dist/wasm');
  mkdirSync(out, { recursive: true });
  const common = [entry, '-O3', '--runtime', 'stub', '--enable', 'simd', '--enable', 'threads',
    '--importMemory', '--sharedMemory', '--initialMemory', '1', '--maximumMemory', '65536', '--noAssert'];
  run(bin('asc'), [...common, '--enable', 'relaxed-simd', '--use', 'FMA=1', '-o', join(out, 'kernels-fma.wasm')]);
  run(bin('asc'), [...common, '--use', 'FMA=0', '-o', join(out, 'kernels.wasm')]);
}
buildNative(root);
if (tscFailed) { console.error('build: tsc reported errors (see above)'); process.exit(1); }
