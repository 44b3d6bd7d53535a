/**
 * How far two teacher caches of the same windows are apart (e.g. one from tools/teacher_cache_writer.py
 * on a GPU, one from `qkd teacher-cache`). Not a test:
 *   node dist/test/distill/compare-caches.js CACHE_A CACHE_B [--abs 1e-4]
 * Prints: headers equal or the differing fields; tokens equal; the largest logit difference; the
 * worst difference in units of (one storage step at that logit + --abs) (f16: the spacing at
 * |t − max t|; int8: the square-law step; --abs allows for the two forwards' own float32
 * difference; ≤ 1 means "agree to the format's rounding") and the share above 1; the KL of a
 * random student against each (first 16 windows, first τ).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { distillationLoss } from '../../src/distill/loss.js';
import { canon, HEADER_FILE, SPEC_KEYS } from '../../src/io/teacher-cache-format.js';
import { TeacherCacheReader } from '../../src/io/teacher-cache.js';
import { randoms } from '../helpers.js';

const [da, db] = process.argv.slice(2).filter((x, i, all) => !x.startsWith('--') && all[i - 1] !== '--abs');
const ai = process.argv.indexOf('--abs'), ABS = ai > 0 ? Number(process.argv[ai + 1]) : 1e-4;
if (!da || !db) throw new Error('usage: node dist/test/distill/compare-caches.js CACHE_A CACHE_B');
const a = TeacherCacheReader.open(da), b = TeacherCacheReader.open(db), h = a.header;
const differ = SPEC_KEYS.filter((k) => canon(a.header[k]) !== canon(b.header[k]));
const bytesEqual = readFileSync(join(da, HEADER_FILE)).equals(readFileSync(join(db, HEADER_FILE)));
console.log(`headers: ${bytesEqual ? 'byte-identical' : differ.length ? `differ in ${differ.join(', ')}` : 'same spec, other bytes'}`);

function step(d: number, R: number): number {
  if (h.logitDtype === 'int8') return (2 * Math.sqrt(d * R) + R / 255) / 255;
  if (h.logitDtype === 'f16') return d < 2 ** -14 ? 2 ** -24 : 2 ** (Math.floor(Math.log2(d)) - 10);
  return Math.max(d, 1) * 2 ** -23;
}

let maxDiff = 0, worst = 0, over = 0, n = 0, tokensEqual = true;
const klA: number[] = [], klB: number[] = [];
for (let w0 = 0; w0 < Math.min(a.windows, b.windows); w0 += 16) {
  const idx = Array.from({ length: Math.min(16, a.windows - w0) }, (_, i) => w0 + i), tau = h.taus[0];
  const x = a.read(idx, tau), y = b.read(idx, tau), k = h.k, N = idx.length * h.T;
  tokensEqual &&= x.x.every((v, i) => v === y.x[i]) && x.y.every((v, i) => v === y.y[i]);
  for (let r = 0; r < N; r++) {
    const p = x.teacher.logits.subarray(r * k, (r + 1) * k), q = y.teacher.logits.subarray(r * k, (r + 1) * k);
    let m = -Infinity, lo = Infinity;
    for (const v of p) { m = Math.max(m, v); lo = Math.min(lo, v); }
    for (let j = 0; j < k; j++) {
      const d = Math.abs(p[j] - q[j]), u = d / (step(m - p[j], m - lo) + ABS);
      maxDiff = Math.max(maxDiff, d); worst = Math.max(worst, u); if (u > 1) over++; n++;
    }
  }
  if (w0 === 0) {
    const s = randoms(N * h.V, 9, -4, 4), o = { alpha: 0, tau, lambda: 0 };
    klA.push(distillationLoss(s, x.y, x.teacher, o, null).kl); klB.push(distillationLoss(s, y.y, y.teacher, o, null).kl);
  }
}
console.log(`windows ${a.windows} vs ${b.windows}; tokens ${tokensEqual ? 'equal' : 'DIFFER'}; logits: max |diff| ${maxDiff.toExponential(2)}, `
  + `worst ${worst.toFixed(2)} storage steps, ${(100 * over / n).toFixed(4)}% over one step; KL (first 16 windows) ${klA[0]} vs ${klB[0]} `
  + `(rel ${Math.abs(klA[0] - klB[0]) / klB[0]})`);
