// Brown's training split with some paragraphs repeated verbatim right after themselves: text in which
// the teacher copies from earlier in the window, so a distilled student is trained to keep that skill
// (issue 12, docs/distillation.md "Session 6"). Deterministic (seeded); Brown train only, never the
// validation, test or out-of-domain text.
//   node scripts/repeat-text.mjs [--p 0.3] [--seed 1] [--out runs/brown-train-rep.txt]
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { brownSplitText } from '../dist/src/data/brown.js';

const { values: o } = parseArgs({ options: { p: { type: 'string', default: '0.3' }, seed: { type: 'string', default: '1' },
  out: { type: 'string', default: 'runs/brown-train-rep.txt' } } });
const p = Number(o.p);
if (!(p >= 0 && p <= 1)) throw new Error(`--p: a probability from 0 to 1, got ${o.p}`);
let s = Number(o.seed) >>> 0 || 1;
const rand = () => { s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0; return s / 2 ** 32; }; // xorshift32
const paras = brownSplitText('train').split('\n\n');
const out = [];
let repeated = 0;
for (const para of paras) {
  out.push(para);
  if (para.trim() && rand() < p) { out.push(para); repeated++; }
}
writeFileSync(o.out, out.join('\n\n'));
console.log(`${o.out}: ${paras.length} paragraphs, ${repeated} repeated (p ${p})`);
