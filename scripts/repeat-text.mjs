// Brown's training split with some paragraphs repeated verbatim right after themselves: text in which
// the teacher copies from earlier in the window, so a distilled student is trained to keep that skill
// (issue 12, docs/distillation.md "Session 6"). Deterministic (seeded); Brown train only, never the
// validation, test or out-of-domain text.
// An existing --out is left alone unless --force; the file is written whole or not at all.
//   node scripts/repeat-text.mjs [--p 0.3] [--seed 1] [--out runs/brown-train-rep.txt] [--force]
import { existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { parseArgs } from 'node:util';
import { brownSplitText } from '../dist/src/data/brown.js';
import { writeFileAtomic } from '../dist/src/io/atomic.js';

const { values: o } = parseArgs({ options: { p: { type: 'string', default: '0.3' }, seed: { type: 'string', default: '1' },
  out: { type: 'string', default: 'runs/brown-train-rep.txt' }, force: { type: 'boolean', default: false } } });
const fail = (msg) => { process.stderr.write(`repeat-text: ${msg}\n`); process.exit(2); };
const p = Number(o.p);
if (!(p >= 0 && p <= 1)) fail(`--p: a probability from 0 to 1, got ${o.p}`);
if (existsSync(o.out) && !o.force) fail(`--out ${o.out}: exists; refusing to overwrite it (--force replaces it)`);
let s = Number(o.seed) >>> 0 || 1;
const rand = () => { s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0; return s / 2 ** 32; }; // xorshift32
const paras = brownSplitText('train').split('\n\n');
const out = [];
let repeated = 0;
for (const para of paras) {
  out.push(para);
  if (para.trim() && rand() < p) { out.push(para); repeated++; }
}
mkdirSync(dirname(o.out), { recursive: true });
writeFileAtomic(o.out, out.join('\n\n'));
console.log(`${o.out}: ${paras.length} paragraphs, ${repeated} repeated (p ${p})`);
