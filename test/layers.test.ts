/**
 * The architecture's rules that a reader cannot see from one file (docs/architecture.md): imports
 * point down the layers, there is no import cycle, and no source file grows past the size limit.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
// @ts-expect-error: a plain .mjs script without types
import { checkImports } from '../../scripts/check-imports.mjs';

const ROOT = process.cwd();

test('src/: imports point down the layers and form no cycle', () => {
  const r = checkImports(ROOT) as { files: number; problems: string[] };
  assert.ok(r.files > 90, `walked ${r.files} files`);
  assert.deepEqual(r.problems, []);
});

test('the checker catches a cycle and an upward import', () => {
  // scripts/check-imports.mjs on a tiny tree made here: tensor -> model (upward) and a <-> b (cycle)
  const root = mkdtempSync(join(tmpdir(), 'qkd-layers-'));
  mkdirSync(join(root, 'src', 'tensor'), { recursive: true });
  mkdirSync(join(root, 'src', 'model'), { recursive: true });
  writeFileSync(join(root, 'src', 'tensor', 'a.ts'), "import { b } from '../model/b.js';\nexport const a = 1;\n");
  writeFileSync(join(root, 'src', 'model', 'b.ts'), "import { a } from '../tensor/a.js';\nexport const b = a;\n");
  const r = checkImports(root) as { problems: string[] };
  assert.ok(r.problems.some((p) => p.startsWith('upward import: tensor/a.ts')), r.problems.join('\n'));
  assert.ok(r.problems.some((p) => p.startsWith('import cycle:')), r.problems.join('\n'));
});

test('no source file under src/ is longer than 400 lines (kernels in src/kernels/assembly excepted)', () => {
  const long: string[] = [];
  const walk = (d: string): void => {
    for (const n of readdirSync(d)) {
      const p = join(d, n);
      if (statSync(p).isDirectory()) { if (n !== 'assembly') walk(p); continue; }
      const lines = readFileSync(p, 'utf8').split('\n').length;
      if (p.endsWith('.ts') && lines > 400) long.push(`${p}: ${lines}`);
    }
  };
  walk(join(ROOT, 'src'));
  assert.deepEqual(long, []);
});

test('a clean install never needs the network outside the npm registry, and npm warns of no unknown config', () => {
  // onnxruntime-node's postinstall downloads optional CUDA files from api.nuget.org (CI failed on it
  // once); package.json's allowScripts (npm 11.16+) denies it and msgpackr-extract's optional node-gyp
  // build. The .npmrc key that skipped it before made npm warn 'Unknown project config' on every command.
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
  assert.deepEqual(pkg.allowScripts, { 'msgpackr-extract': false, 'onnxruntime-node': false });
  assert.equal(existsSync(join(ROOT, '.npmrc')), false, 'no project .npmrc (its keys are not npm configs)');
  assert.match(readFileSync(join(ROOT, '.ci', 'run'), 'utf8'), /^export ONNXRUNTIME_NODE_INSTALL=skip$/m);
});
