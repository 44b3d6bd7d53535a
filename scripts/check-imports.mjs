// The import graph of src/: fails on a cycle and on an import that points up the layers below
// (docs/architecture.md). Run by the test suite (test/layers.test.ts) and by hand: node scripts/check-imports.mjs
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Lower layers first; a module may import its own layer and the ones before it. */
export const LAYERS = [
  ['tensor'],
  ['quant', 'sparse'],
  ['kernels'],
  ['nn'],
  ['model'],
  ['data', 'io'],
  ['eval', 'runtime'],
  ['train'],
  ['distill'],
  ['pipeline'],
  ['cli'],
  ['index.ts'],
];

function walk(dir) {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? (n === 'assembly' ? [] : walk(p)) : p.endsWith('.ts') ? [p] : [];
  });
}

const layerOf = (rel) => LAYERS.findIndex((l) => l.includes(rel.split('/')[0]));

export function checkImports(root) {
  const src = join(root, 'src'), files = walk(src), graph = new Map(), problems = [];
  for (const f of files) {
    const text = readFileSync(f, 'utf8'), deps = [];
    for (const m of text.matchAll(/^(?:import|export)\s[^'"]*?from\s+['"](\.[^'"]+)['"]/gm)) {
      deps.push(resolve(dirname(f), m[1]).replace(/\.js$/, '.ts'));
    }
    graph.set(f, deps);
    const from = relative(src, f), lf = layerOf(from);
    for (const d of deps) {
      const to = relative(src, d), lt = layerOf(to);
      if (lf < 0 || lt < 0) problems.push(`${from}: no layer for ${lf < 0 ? from : to}`);
      else if (lt > lf) problems.push(`upward import: ${from} (layer ${LAYERS[lf].join('/')}) -> ${to} (layer ${LAYERS[lt].join('/')})`);
    }
  }
  const state = new Map(), stack = [];
  const visit = (f) => {
    state.set(f, 1); stack.push(f);
    for (const d of graph.get(f) ?? []) {
      if (state.get(d) === 1) problems.push(`import cycle: ${[...stack.slice(stack.indexOf(d)), d].map((p) => relative(src, p)).join(' -> ')}`);
      else if (!state.has(d) && graph.has(d)) visit(d);
    }
    stack.pop(); state.set(f, 2);
  };
  for (const f of files) if (!state.has(f)) visit(f);
  return { files: files.length, problems };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const r = checkImports(resolve(dirname(fileURLToPath(import.meta.url)), '..'));
  for (const p of r.problems) console.log(p);
  console.log(`${r.files} files, ${r.problems.length} problems`);
  process.exit(r.problems.length ? 1 : 0);
}
