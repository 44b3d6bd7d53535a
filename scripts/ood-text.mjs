// The out-of-domain evaluation text (docs/distillation.md): English prose unlike Brown (1960s edited
// American English): the READMEs of packages that package-lock.json pins, fenced code, tables, HTML,
// links and badges removed. Kept out of all training. Deterministic for a given lockfile.
//   node scripts/ood-text.mjs [OUT]   (default runs/ood.txt)
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

const FILES = ['commander/Readme.md', 'semver/README.md', 'type-fest/readme.md', 'binaryen/README.md', 'protobufjs/README.md',
  'cli-progress/README.md', 'global-agent/README.md', 'long/README.md', 'zod/README.md', 'yaml/README.md',
  '@huggingface/tokenizers/README.md', 'assemblyscript/README.md'];

function prose(md) {
  return md.replace(/```[\s\S]*?```/g, '').split('\n')
    .filter((l) => !/^\s*(\||<|!\[|\[!\[|#{1,6}\s*$)/.test(l))
    .map((l) => l.replace(/!\[[^\]]*\]\([^)]*\)/g, '').replace(/\[([^\]]*)\]\([^)]*\)/g, '$1').replace(/`([^`]*)`/g, '$1')
      .replace(/^#{1,6}\s*/, '').replace(/^\s*[-*]\s+/, '').replace(/\*\*?|__/g, '').trimEnd())
    .join('\n').replace(/\n{3,}/g, '\n\n').trim();
}

const out = process.argv[2] ?? 'runs/ood.txt';
const text = FILES.map((f) => prose(readFileSync(join('node_modules', f), 'utf8'))).join('\n\n') + '\n';
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, text);
console.log(`${out}: ${text.length} characters from ${FILES.length} READMEs`);
