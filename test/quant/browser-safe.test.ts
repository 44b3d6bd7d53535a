/** src/quant and src/sparse are shared with the browser runtime: their import graphs hold no Node-only module. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, resolve } from 'node:path';

const NODE = new Set([...builtinModules, ...builtinModules.map((m) => `node:${m}`)]);

function imports(file: string): string[] {
  const src = readFileSync(file, 'utf8');
  return [...src.matchAll(/^\s*(?:import|export)\s[^;]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]/gms)]
    .map((m) => m[1] ?? m[2]);
}

for (const entry of ['dist/src/quant/index.js', 'dist/src/sparse/index.js']) {
  test(`${entry} imports no Node-only module (static or dynamic)`, () => {
    const seen = new Set<string>(), bad: string[] = [];
    const visit = (file: string) => {
      if (seen.has(file)) return;
      seen.add(file);
      for (const spec of imports(file)) {
        if (NODE.has(spec) || !spec.startsWith('.')) bad.push(`${file} -> ${spec}`);
        else visit(resolve(dirname(file), spec));
      }
    };
    visit(resolve(entry));
    assert.ok(seen.size >= 3, `walked ${seen.size} modules`);
    assert.deepEqual(bad, []);
  });
}
