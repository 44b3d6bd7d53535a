/**
 * Teacher and student on the same windows (the fixture protocol of eval/perplexity.ts: non-overlapping
 * windows of T tokens from the start of the text; in each, positions 0..T-2 predict tokens 1..T-1),
 * per window: the student's CE, the teacher's CE, KL(teacher_τ ‖ student_τ), the student's entropy
 * and both top-1 counts, accumulated in float64 from the logits (docs/report.md "approximation").
 *
 * Per position with p = softmax(t/τ), q = softmax(s/τ), π = softmax(s):
 *   CE = −log π_y,   KL = Σ_v p_v (log p_v − log q_v),   H = −Σ_v π_v log π_v.
 */
import type { CausalLM } from '../../runtime/generate.js';
import { QkdError } from '../../tensor/errors.js';

export interface WindowStats {
  /** Predicted positions (T − 1). */
  positions: number;
  studentCe: number;
  teacherCe: number;
  /** Mean KL(softmax(t/τ) ‖ softmax(s/τ)) over the positions (without τ²). */
  kl: number;
  studentEntropy: number;
  studentTop1: number;
  teacherTop1: number;
}

/** log Σ exp(x_v / τ) over a row, and the row's argmax. */
function lse(x: Float32Array, o: number, V: number, tau: number): { lse: number; max: number; arg: number } {
  let m = -Infinity, arg = 0;
  for (let v = 0; v < V; v++) if (x[o + v] > m) { m = x[o + v]; arg = v; }
  let z = 0;
  for (let v = 0; v < V; v++) z += Math.exp((x[o + v] - m) / tau);
  return { lse: m / tau + Math.log(z), max: m, arg };
}

/** Stats of one window from its logits (T, V) and ids (T). */
export function windowStats(s: Float32Array, t: Float32Array, ids: ArrayLike<number>, T: number, V: number, tau: number): WindowStats {
  const w: WindowStats = { positions: T - 1, studentCe: 0, teacherCe: 0, kl: 0, studentEntropy: 0, studentTop1: 0, teacherTop1: 0 };
  for (let i = 0; i < T - 1; i++) {
    const o = i * V, y = ids[i + 1];
    const s1 = lse(s, o, V, 1), t1 = lse(t, o, V, 1);
    const sT = tau === 1 ? s1 : lse(s, o, V, tau), tT = tau === 1 ? t1 : lse(t, o, V, tau);
    w.studentCe += s1.lse - s[o + y];
    w.teacherCe += t1.lse - t[o + y];
    if (s1.arg === y) w.studentTop1++;
    if (t1.arg === y) w.teacherTop1++;
    let kl = 0, h = 0;
    for (let v = 0; v < V; v++) {
      const lp = t[o + v] / tau - tT.lse, lq = s[o + v] / tau - sT.lse, lpi = s[o + v] - s1.lse;
      kl += Math.exp(lp) * (lp - lq);
      h -= Math.exp(lpi) * lpi;
    }
    w.kl += kl;
    w.studentEntropy += h;
  }
  const n = T - 1;
  w.studentCe /= n; w.teacherCe /= n; w.kl /= n; w.studentEntropy /= n; w.studentTop1 /= n; w.teacherTop1 /= n;
  return w;
}

/** The first `windows` windows of `ids` at context T through both models (one window per forward). */
export function runWindows(teacher: CausalLM, student: CausalLM, ids: ArrayLike<number>, windows: number, T: number, tau: number,
  onProgress?: (done: number, total: number) => void): WindowStats[] {
  const V = student.config.vocabSize;
  if (teacher.config.vocabSize !== V) {
    throw new QkdError('E_VOCAB', `teacher vocabulary ${teacher.config.vocabSize} differs from the student's ${V}: the report compares them token by token`);
  }
  const avail = Math.floor(ids.length / T);
  if (avail < 1) throw new QkdError('E_INPUT', `text has ${ids.length} tokens, fewer than one window of ${T}`);
  const n = Math.min(windows, avail), out: WindowStats[] = [];
  for (let w = 0; w < n; w++) {
    const x = Int32Array.from({ length: T }, (_, i) => ids[w * T + i]);
    const s = student.forward(x, 1, T).slice();
    const t = teacher.forward(x, 1, T).slice();
    out.push(windowStats(s, t, x, T, V, tau));
    onProgress?.(w + 1, n);
  }
  return out;
}
