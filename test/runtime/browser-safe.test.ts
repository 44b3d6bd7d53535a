/** The `runtime` entry must load in a browser: its static import graph holds no Node-only module. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, resolve } from 'node:path';

const NODE = new Set([...builtinModules, ...builtinModules.map((m) => `node:${m}`)]);

/** Static imports/exports of a compiled ES module (dynamic import() is allowed to be node-only). */
function staticImports(file: string): string[] {
  const src = readFileSync(file, 'utf8');
  return [...src.matchAll(/^\s*(?:import|export)\s[^;]*?from\s+['"]([^'"]+)['"]/gms)].map((m) => m[1]);
}

test('dist/src/runtime/index.js imports no Node-only module', () => {
  const seen = new Set<string>(), bad: string[] = [];
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    for (const spec of staticImports(file)) {
      if (NODE.has(spec)) bad.push(`${file} -> ${spec}`);
      else if (spec.startsWith('.')) visit(resolve(dirname(file), spec));
    }
  };
  visit(resolve('dist/src/runtime/index.js'));
  assert.ok(seen.size > 5, `walked ${seen.size} modules`);
  assert.deepEqual(bad, []);
});
