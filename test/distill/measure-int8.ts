/**
 * What the int8 logit format of the teacher cache costs, on real teacher logits. Not a test:
 *   node dist/test/distill/measure-int8.js [--cache DIR] [--windows 24]
 * (1) the fixture teacher's float32 logits (../shared/fixtures/brown-llama-teacher/reference-logits.f32,
 *     64 x 2048): f16 (the default, shifted by the row max), int8 (square-law code, teacher-cache-int8.ts)
 *     and a linear int8 code of the same range, each against float32;
 * (2) with --cache, windows of a full f16 cache (e.g. the Brown@128 one): int8 re-coded from its
 *     decoded rows against those rows (float32 is not in the cache).
 * For students near and far from the teacher, at tau 1 and 2, with the anchor recipes' loss
 * (0.5·CE + 0.5·τ²·KL − 0.01·H): |ΔKL| / KL, the largest gradient difference over the largest
 * gradient element, and the gradient difference's norm over the gradient's norm (rms).
 */
import { readFileSync } from 'node:fs';
import { distillationLoss, type TeacherDist } from '../../src/distill/loss.js';
import { f16ToF32, f32ToF16 } from '../../src/io/safetensors.js';
import { decodeInt8, encodeInt8 } from '../../src/io/teacher-cache-int8.js';
import { TeacherCacheReader } from '../../src/io/teacher-cache.js';
import { fixture, randoms } from '../helpers.js';

const arg = (name: string, def: string) => { const i = process.argv.indexOf(name); return i > 0 ? process.argv[i + 1] : def; };

function f16Shifted(t: Float32Array, V: number): Float32Array {
  const out = new Float32Array(t.length);
  for (let r = 0; r < t.length / V; r++) {
    const row = t.subarray(r * V, (r + 1) * V), m = Math.max(...row);
    out.set(f16ToF32(f32ToF16(row.map((x) => Math.max(x - m, -65504)))).map((x) => x + m), r * V);
  }
  return out;
}

function int8Square(t: Float32Array, V: number): Float32Array {
  const N = t.length / V, codes = new Uint8Array(t.length), range = new Uint16Array(N), out = new Float32Array(t.length);
  encodeInt8(t, V, N, codes, range);
  decodeInt8(codes, range, V, out);
  return out;
}

/** The same range and 256 levels, linear in max − t: what the square law is chosen over. */
function int8Linear(t: Float32Array, V: number): Float32Array {
  const out = new Float32Array(t.length);
  for (let r = 0; r < t.length / V; r++) {
    const row = t.subarray(r * V, (r + 1) * V), m = Math.max(...row), R = Math.min(m - Math.min(...row), 64);
    for (let j = 0; j < V; j++) out[r * V + j] = -R * Math.round((255 * Math.min(m - row[j], R)) / R) / 255;
  }
  return out;
}

function compare(label: string, ref: Float32Array, variants: Record<string, Float32Array>, V: number): void {
  const N = ref.length / V, y = Int32Array.from({ length: N }, (_, i) => (i * 31) % V), noise = randoms(N * V, 7, -1, 1);
  for (const [sl, mix, amp] of [['near', 0.95, 0.5], ['far', 0.6, 3]] as const) {
    const s = ref.map((x, i) => mix * x + amp * noise[i]);
    for (const tau of [2, 1]) {
      const run = (t: Float32Array) => {
        const d = new Float32Array(N * V), T: TeacherDist = { kind: 'full', logits: t };
        return { kl: distillationLoss(s, y, T, { alpha: 0.5, tau, lambda: 0.01 }, d).kl, d };
      };
      const r0 = run(ref), g = r0.d.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
      const cells = Object.entries(variants).map(([name, t]) => {
        const r = run(t);
        let m = 0, e2 = 0, g2 = 0;
        for (let i = 0; i < r.d.length; i++) { const e = r.d[i] - r0.d[i]; m = Math.max(m, Math.abs(e)); e2 += e * e; g2 += r0.d[i] ** 2; }
        return `${name}: KL rel ${Math.abs((r.kl - r0.kl) / r0.kl).toExponential(1)} grad max ${(m / g).toExponential(1)} rms ${Math.sqrt(e2 / g2).toExponential(1)}`;
      });
      console.log(`${label} | ${sl} tau ${tau}: KL ${r0.kl.toFixed(4)} | ${cells.join(' | ')}`);
    }
  }
}

const b = readFileSync(fixture('brown-llama-teacher', 'reference-logits.f32'));
const t = new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)), V = 2048;
compare('fixture f32 (64 rows) vs', t, { f16: f16Shifted(t, V), int8: int8Square(t, V), 'int8 linear': int8Linear(t, V) }, V);

const dir = arg('--cache', '');
if (dir) {
  const r = TeacherCacheReader.open(dir), n = Number(arg('--windows', '24')), h = r.header;
  const idx = Array.from({ length: n }, (_, i) => Math.floor((i * r.windows) / n));
  const ref = r.read(idx, h.taus[0]).teacher.logits; // f16-decoded full rows
  compare(`${dir} (${n} windows x ${h.T}) f16 vs`, ref, { int8: int8Square(ref, h.V), 'int8 linear': int8Linear(ref, h.V) }, h.V);
  r.close();
}
