/**
 * The distillation loss (DESIGN.md "The method"), forward and backward in one call:
 *
 *   loss = α·CE(s, y) + (1−α)·τ²·KL − λ·H(softmax(s))
 *
 * over the N rows of student logits s (N,V) whose target y is >= 0; n = that count, and CE, KL and H
 * are each a mean over those n rows (ignored rows contribute nothing and get a zero gradient; with
 * n = 0 everything is 0). KL is summed over the vocabulary per row. H is the entropy at τ = 1.
 * Forward KL (default): KL(p‖q) with p = softmax(t/τ) (teacher), q = softmax(s/τ) (student);
 * reverse: KL(q‖p). Without ignored rows this is exactly `kd_loss` of ../shared/peers/torch_distill_step.py.
 *
 * Gradients, per row, with π = softmax(s), q = softmax(s/τ), ∂log q_j/∂s_v = (δ_jv − q_v)/τ:
 *   ∂CE/∂s_v = π_v − δ_vy;   ∂(−H)/∂s_v = π_v (log π_v + H)
 *   forward KL:  ∂KL/∂s_v = (q_v − p_v)/τ
 *   reverse KL:  ∂KL/∂s_v = q_v (a_v − KL)/τ,  a_v = log q_v − log p_v
 * so d loss/d s_v = (1/n)[α(π_v − δ_vy) + λ π_v (log π_v + H) + (1−α) τ g_v] with g the bracket above.
 *
 * Top-k teacher with a tail bucket. The teacher keeps its k largest logits t_j, j ∈ K, and
 * LSE_τ = log Σ_v exp(t_v/τ) over the FULL vocabulary, so p_j = exp(t_j/τ − LSE_τ) exactly and the
 * rest of the mass sits in one bucket r = 1 − Σ_K p_j. The student is coarsened the same way:
 * q_j for j ∈ K and Q = 1 − Σ_K q_j = Σ_{v∉K} q_v. For a bucket b (a single j, or the tail),
 * ∂q_b/∂s_v = (q_v [v∈b] − q_v q_b)/τ. Hence
 *   forward  F = Σ_K p_j log(p_j/q_j) + r log(r/Q):
 *     ∂F/∂s_v = −Σ_b (p_b/q_b) ∂q_b/∂s_v = (q_v − q_v p_{b(v)}/q_{b(v)})/τ   (Σ_b p_b = 1)
 *     → j ∈ K: (q_j − p_j)/τ;   v ∉ K: q_v (1 − r/Q)/τ
 *       (the teacher's tail mass is spread over the tail in the student's own proportions);
 *   reverse  R = Σ_K q_j log(q_j/p_j) + Q log(Q/r):
 *     ∂R/∂s_v = Σ_b (log(q_b/p_b) + 1) ∂q_b/∂s_v = q_v (a_{b(v)} − R)/τ
 *     → j ∈ K: q_j (log(q_j/p_j) − R)/τ;   v ∉ K: q_v (log(Q/r) − R)/τ.
 * With k = V both reduce to the full formulas. Rounding (a float32 LSE, float16 logits) can make
 * Σ_K p_j exceed 1: r is clamped at 0 (0·log 0 = 0); reverse KL needs r > 0, so it uses
 * max(r, TAIL_FLOOR). Q is recomputed by a direct sum over the tail when 1 − Σ_K q_j would cancel.
 *
 * Numerics: float64 accumulation, one max pass and one exp pass per row, a gradient pass when
 * dLogits is given; no allocation per call (scratch grows with V).
 */
import { QkdError } from '../tensor/errors.js';
import type { TeacherDist, TopkEntries, TopkTeacher } from '../io/teacher-cache-format.js';

export type { FullTeacher, TeacherDist, TopkEntries, TopkTeacher } from '../io/teacher-cache-format.js';

export type KlDirection = 'forward' | 'reverse';

export interface DistillOptions {
  alpha: number;   // weight of CE, in [0, 1]
  tau: number;     // temperature > 0
  lambda: number;  // entropy bonus >= 0
  kl?: KlDirection; // default 'forward'
}




/** Means over the `positions` non-ignored rows; `kl` is the plain KL (without the τ² factor). */
export interface DistillationLossValue { loss: number; ce: number; kl: number; entropy: number; positions: number }

/** Reverse KL's smallest teacher tail mass (KL(q‖p) is infinite for r = 0). */
export const TAIL_FLOOR = 1e-9;
/** Below this, Q = 1 − Σ_K q_j loses digits to cancellation and is summed directly. */
const Q_DIRECT = 1e-4;

// ---- exp for x <= 0: 2^(k/32)·e^r with |r| <= ln2/64 and a degree-5 polynomial (relative error
// < 1e-13). The row loops call it V times per row; Math.exp is ~1.7x slower there.
const POW2_NEG = new Float64Array(1100).map((_, i) => 2 ** -i);
const POW2_FRAC = new Float64Array(32).map((_, j) => 2 ** (j / 32));
const INV_STEP = 32 / Math.LN2, STEP = Math.LN2 / 32;

function expNeg(x: number): number {
  if (x < -740) x = -740; // e^-740 ~ 4e-322: underflow, yet finite logs stay finite
  const k = Math.floor(x * INV_STEP + 0.5) | 0, r = x - k * STEP;
  return POW2_NEG[-(k >> 5)] * POW2_FRAC[k & 31] * (1 + r * (1 + r * (0.5 + r * (1 / 6 + r * (1 / 24 + r / 120)))));
}

// ---- scratch, grown to V and reused: e = exp(s − max s), u = exp((s − max s)/τ), w = teacher
// exp((t − max t)/τ); stamp marks the row's top-k ids (a fresh stamp per row, so no clearing).
let e = new Float64Array(0), u = new Float64Array(0), w = new Float64Array(0), stamp = new Int32Array(0);
let stampNow = 0;

function ensureScratch(V: number): void {
  if (e.length >= V) return;
  e = new Float64Array(V); u = new Float64Array(V); w = new Float64Array(V); stamp = new Int32Array(V); stampNow = 0;
}

/** Per-row quantities shared by the passes (one mutable record, so rows allocate nothing). */
const row = {
  ms: 0, logZ1: 0, H: 0, logZt: 0, izt: 0, // student: max, log Σe, entropy, log Σu, 1/Σu
  kl: 0, mt: 0, izw: 0, k0: 0, cTail: 0,    // teacher side: KL, max, 1/Σw, reverse offset, tail coefficient
};

/** Max pass and exp pass over the student row at offset o. */
function studentRow(s: Float32Array, o: number, V: number, tau: number): void {
  let ms = -Infinity;
  for (let v = 0; v < V; v++) if (s[o + v] > ms) ms = s[o + v];
  const it = 1 / tau, mode = tau === 1 ? 1 : tau === 2 ? 2 : 0;
  let z1 = 0, zt = 0, b = 0;
  for (let v = 0; v < V; v++) {
    const d = s[o + v] - ms;
    // τ = 2: e = u² (one exp instead of two); τ = 1: e = u
    const uv = mode === 1 ? expNeg(d) : expNeg(d * it), ev = mode === 2 ? uv * uv : mode === 1 ? uv : expNeg(d);
    e[v] = ev; z1 += ev; b += ev * d;
    u[v] = uv; zt += uv;
  }
  row.ms = ms; row.logZ1 = Math.log(z1); row.H = row.logZ1 - b / z1;
  row.logZt = Math.log(zt); row.izt = 1 / zt;
}

/** Full teacher row: fills w, sets row.kl for the direction (formulas in the file comment). */
function fullTeacherRow(s: Float32Array, t: Float32Array, o: number, V: number, tau: number, reverse: boolean): void {
  let mt = -Infinity;
  for (let v = 0; v < V; v++) if (t[o + v] > mt) mt = t[o + v];
  const it = 1 / tau;
  let zw = 0, acc = 0;
  if (!reverse) {
    for (let v = 0; v < V; v++) {
      const wv = expNeg((t[o + v] - mt) * it);
      w[v] = wv; zw += wv; acc += wv * (t[o + v] - s[o + v]);
    }
  } else {
    for (let v = 0; v < V; v++) {
      w[v] = expNeg((t[o + v] - mt) * it); zw += w[v]; acc += u[v] * (s[o + v] - t[o + v]);
    }
  }
  const logZw = Math.log(zw);
  row.mt = mt; row.izw = 1 / zw;
  // forward: Σ p (log p − log q) = (Σ w(t−s)/Σw + ms − mt)/τ − log Σw + log Σu; reverse mirrors it
  row.kl = reverse ? it * (acc * row.izt + mt - row.ms) - row.logZt + logZw
    : it * (acc * row.izw + row.ms - mt) - logZw + row.logZt;
  row.k0 = it * (mt - row.ms) - row.logZt + logZw; // a_v = (s_v − t_v)/τ + k0
}

/** Σ_{v∉K} q_v by direct summation (stamp marks K). */
function tailDirect(V: number): number {
  let z = 0;
  for (let v = 0; v < V; v++) if (stamp[v] !== stampNow) z += u[v];
  return z * row.izt;
}

/** Top-k teacher row i: KL over K + tail bucket, and cTail = g_v/q_v for v ∉ K. Stamps K. */
function topkRow(s: Float32Array, o: number, V: number, T: TopkTeacher, i: number, reverse: boolean): void {
  const { k, ids, logits, lse } = T, it = 1 / T.tau, L = lse[i], ms = row.ms, logZt = row.logZt;
  if (++stampNow === 0x7fffffff) { stamp.fill(0); stampNow = 1; }
  let P = 0, S = 0, acc = 0;
  for (let a = i * k, end = a + k; a < end; a++) {
    const j = ids[a];
    if (!(j >= 0 && j < V) || stamp[j] === stampNow) throw badId(T, i, j, V);
    stamp[j] = stampNow;
    const lp = logits[a] * it - L, lq = (s[o + j] - ms) * it - logZt, p = Math.exp(lp), q = u[j] * row.izt;
    P += p; S += q;
    acc += reverse ? q * (lq - lp) : p * (lp - lq);
  }
  const tailEmpty = k >= V;
  let Q = tailEmpty ? 0 : 1 - S;
  // Q > 0 mathematically; the floor only keeps r/Q finite if the tail underflowed entirely
  if (!tailEmpty && Q < Q_DIRECT) Q = Math.max(tailDirect(V), 1e-300);
  const r = tailEmpty ? 0 : Math.max(0, 1 - P);
  if (!reverse) {
    row.kl = acc + (r > 0 ? r * Math.log(r / Q) : 0);
    row.cTail = tailEmpty ? 0 : 1 - r / Q;
  } else {
    const lr = Math.log(Q / Math.max(r, TAIL_FLOOR));
    row.kl = acc + (Q > 0 ? Q * lr : 0);
    row.cTail = lr - row.kl;
  }
}

function badId(T: TopkTeacher, i: number, j: number, V: number): QkdError {
  const why = j >= 0 && j < V ? 'appears twice' : `is not in 0..V-1 = ${V - 1}`;
  return new QkdError('E_INPUT', `distillationLoss: top-k teacher row ${i}: id ${j} ${why} (k = ${T.k})`);
}

/** Coefficients of the gradient row: d_v = π_v (cA + cL (s_v − ms + hc)) + cK g_v. */
const gc = { cA: 0, cL: 0, cK: 0, hc: 0, iz1: 0 };

function gradRowFull(d: Float32Array, s: Float32Array, t: Float32Array, o: number, V: number, tau: number, reverse: boolean): void {
  const { cA, cL, cK, hc, iz1 } = gc, ms = row.ms, izt = row.izt, izw = row.izw, it = 1 / tau;
  if (!reverse) {
    for (let v = 0; v < V; v++) {
      d[o + v] = e[v] * iz1 * (cA + cL * (s[o + v] - ms + hc)) + cK * (u[v] * izt - w[v] * izw);
    }
  } else {
    const c0 = row.k0 - row.kl;
    for (let v = 0; v < V; v++) {
      const g = u[v] * izt * ((s[o + v] - t[o + v]) * it + c0);
      d[o + v] = e[v] * iz1 * (cA + cL * (s[o + v] - ms + hc)) + cK * g;
    }
  }
}

function gradRowTopk(d: Float32Array, s: Float32Array, o: number, V: number, T: TopkTeacher, i: number, reverse: boolean): void {
  const { cA, cL, cK, hc, iz1 } = gc, ms = row.ms, izt = row.izt, it = 1 / T.tau, cT = cK * row.cTail;
  for (let v = 0; v < V; v++) d[o + v] = e[v] * iz1 * (cA + cL * (s[o + v] - ms + hc)) + cT * u[v] * izt;
  const { k, ids, logits } = T, L = T.lse[i];
  for (let a = i * k, end = a + k; a < end; a++) {
    const j = ids[a], lp = logits[a] * it - L, q = u[j] * izt;
    const g = reverse ? q * ((s[o + j] - ms) * it - row.logZt - lp - row.kl) : q - Math.exp(lp);
    d[o + j] = e[j] * iz1 * (cA + cL * (s[o + j] - ms + hc)) + cK * g;
  }
}

function checkArgs(s: Float32Array, y: Int32Array, T: TeacherDist | null, opts: DistillOptions, d: Float32Array | null): number {
  const { alpha, tau, lambda } = opts, N = y.length;
  const cfg = (m: string) => new QkdError('E_CONFIG', `distillationLoss: ${m}`);
  if (!(alpha >= 0 && alpha <= 1)) throw cfg(`alpha ${alpha} is not in [0, 1]`);
  if (!(tau > 0 && Number.isFinite(tau))) throw cfg(`tau ${tau} is not a positive number`);
  if (!(lambda >= 0 && Number.isFinite(lambda))) throw cfg(`lambda ${lambda} is not a number >= 0`);
  if (opts.kl !== undefined && opts.kl !== 'forward' && opts.kl !== 'reverse') throw cfg(`kl "${String(opts.kl)}" is not forward|reverse`);
  const shape = (m: string) => new QkdError('E_SHAPE', `distillationLoss: ${m}`);
  if (N === 0 || s.length % N !== 0 || s.length === 0) throw shape(`student logits (${s.length}) are not (N = ${N} targets, V)`);
  const V = s.length / N;
  if (d && d.length !== s.length) throw shape(`dLogits has ${d.length} elements, student logits ${s.length}`);
  if (d && d.buffer === s.buffer && d.byteOffset < s.byteOffset + s.byteLength && s.byteOffset < d.byteOffset + d.byteLength) {
    throw shape('dLogits must not overlap the student logits');
  }
  if (!T) {
    if (alpha !== 1) throw cfg(`no teacher given, but alpha = ${alpha} (only alpha = 1, pure CE, needs none)`);
  } else if (T.kind === 'full') {
    if (T.logits.length !== s.length) throw shape(`teacher logits have ${T.logits.length} elements, student logits ${s.length}`);
  } else {
    if (!(Number.isInteger(T.k) && T.k >= 1 && T.k <= V)) throw shape(`top-k teacher k = ${T.k} is not in 1..V = ${V}`);
    if (T.ids.length !== N * T.k || T.logits.length !== N * T.k) throw shape(`top-k teacher ids/logits have ${T.ids.length}/${T.logits.length} elements, expected N·k = ${N * T.k}`);
    if (T.lse.length !== N) throw shape(`top-k teacher lse has ${T.lse.length} elements, expected N = ${N}`);
    if (T.tau !== tau) throw cfg(`top-k teacher lse was computed at tau = ${T.tau}, the loss uses tau = ${tau}`);
  }
  for (let i = 0; i < N; i++) {
    if (y[i] >= V) throw new QkdError('E_INPUT', `distillationLoss: target ${y[i]} at row ${i} is not < V = ${V}`);
  }
  return V;
}

/**
 * The loss and, when dLogits is given, `scale · d loss / d studentLogits` written into dLogits
 * (overwritten, (N,V), must not overlap studentLogits). N = targets.length, V = logits.length / N.
 * `teacher` may be null only when alpha = 1 (then kl is NaN). `be` is accepted for a future fused
 * kernel; the math runs in TypeScript (rows are independent, float64 accumulation).
 */
export function distillationLoss(studentLogits: Float32Array, targets: Int32Array, teacher: TeacherDist | null,
  opts: DistillOptions, dLogits: Float32Array | null, scale = 1): DistillationLossValue {
  const V = checkArgs(studentLogits, targets, teacher, opts, dLogits), N = targets.length;
  const { alpha, tau, lambda } = opts, reverse = opts.kl === 'reverse';
  let n = 0;
  for (let i = 0; i < N; i++) if (targets[i] >= 0) n++;
  if (dLogits) dLogits.fill(0);
  if (n === 0) return { loss: 0, ce: 0, kl: teacher ? 0 : NaN, entropy: 0, positions: 0 };
  ensureScratch(V);
  if (!teacher) { w.fill(0); row.kl = 0; row.izw = 0; } // the CE-only gradient reads w with weight 0
  const sc = scale / n, s = studentLogits;
  gc.cA = alpha * sc; gc.cL = lambda * sc; gc.cK = teacher ? (1 - alpha) * tau * sc : 0;
  let ceSum = 0, klSum = 0, hSum = 0;
  for (let i = 0; i < N; i++) {
    const y = targets[i], o = i * V;
    if (y < 0) continue;
    studentRow(s, o, V, tau);
    ceSum += row.logZ1 - (s[o + y] - row.ms);
    hSum += row.H;
    if (teacher?.kind === 'full') fullTeacherRow(s, teacher.logits, o, V, tau, reverse);
    else if (teacher) topkRow(s, o, V, teacher, i, reverse);
    klSum += row.kl;
    if (!dLogits) continue;
    gc.hc = row.H - row.logZ1; gc.iz1 = Math.exp(-row.logZ1);
    if (teacher?.kind === 'topk') gradRowTopk(dLogits, s, o, V, teacher, i, reverse);
    else gradRowFull(dLogits, s, teacher ? teacher.logits : s, o, V, tau, reverse);
    dLogits[o + y] -= gc.cA;
  }
  const ce = ceSum / n, kl = teacher ? klSum / n : NaN, entropy = hSum / n;
  const loss = alpha * ce + (teacher ? (1 - alpha) * tau * tau * kl : 0) - lambda * entropy;
  return { loss, ce, kl, entropy, positions: n };
}

// ---- top-k entries from full teacher logits (for the cache, or a live top-k teacher)


/** The TopkTeacher at one of the entries' temperatures (views, no copy). */
export function topkTeacher(e: TopkEntries, tau: number): TopkTeacher {
  const a = e.taus.indexOf(tau);
  if (a < 0) throw new QkdError('E_CONFIG', `top-k teacher: tau ${tau} is not one of the stored taus ${JSON.stringify(e.taus)}`);
  const ids = e.k === e.V ? vocabOrderIds(e.N, e.V) : e.ids;
  return { kind: 'topk', k: e.k, ids, logits: e.logits, lse: e.lse.subarray(a * e.N, (a + 1) * e.N), tau };
}

/** The ids of N whole rows in vocabulary order: 0..V-1 repeated. */
function vocabOrderIds(N: number, V: number): Uint16Array | Int32Array {
  const ids = V <= 65536 ? new Uint16Array(N * V) : new Int32Array(N * V);
  for (let i = 0; i < N; i++) for (let v = 0; v < V; v++) ids[i * V + v] = v;
  return ids;
}

let heapV = new Float64Array(0), heapI = new Int32Array(0);

/** Min-heap (by value, then by larger id) sift-down from the root over n entries. */
function siftDown(n: number): void {
  const hv = heapV, hi = heapI;
  let i = 0;
  const x = hv[0], xi = hi[0];
  for (;;) {
    let c = 2 * i + 1;
    if (c >= n) break;
    if (c + 1 < n && (hv[c + 1] < hv[c] || (hv[c + 1] === hv[c] && hi[c + 1] > hi[c]))) c++;
    if (!(hv[c] < x || (hv[c] === x && hi[c] > xi))) break;
    hv[i] = hv[c]; hi[i] = hi[c]; i = c;
  }
  hv[i] = x; hi[i] = xi;
}

/** One row's top-k into ids/logits at offset a: a size-k min-heap over the row, then sorted out. */
function selectRow(t: Float32Array, o: number, V: number, k: number, ids: Uint16Array | Int32Array, out: Float32Array, a: number): void {
  const hv = heapV, hi = heapI;
  for (let j = 0; j < k; j++) { hv[j] = -Infinity; hi[j] = V + j; } // sentinels lose to every real entry
  for (let v = 0; v < V; v++) {
    const x = t[o + v];
    if (x > hv[0] || (x === -Infinity && hi[0] >= V)) { hv[0] = x; hi[0] = v; siftDown(k); }
  }
  for (let n = k; n > 0; n--) { // pop the minimum into the last free slot: descending order
    ids[a + n - 1] = hi[0]; out[a + n - 1] = hv[0];
    hv[0] = hv[n - 1]; hi[0] = hi[n - 1]; siftDown(n - 1);
  }
}

/** Builds top-k entries from full logits (N,V); throws on non-finite logits among the top-k or lse. */
export function topkFromLogits(logits: Float32Array, N: number, V: number, k: number, taus: number[]): TopkEntries {
  if (logits.length !== N * V) throw new QkdError('E_SHAPE', `topkFromLogits: logits have ${logits.length} elements, expected N·V = ${N}·${V}`);
  if (!(Number.isInteger(k) && k >= 1 && k <= V)) throw new QkdError('E_CONFIG', `topkFromLogits: k = ${k} is not in 1..V = ${V}`);
  if (taus.length === 0 || !taus.every((x) => x > 0 && Number.isFinite(x))) throw new QkdError('E_CONFIG', `topkFromLogits: taus ${JSON.stringify(taus)} are not positive numbers`);
  if (heapV.length < k) { heapV = new Float64Array(k); heapI = new Int32Array(k); }
  const full = k === V, n = full ? 0 : N * k;
  const ids = V <= 65536 ? new Uint16Array(n) : new Int32Array(n), top = full ? logits.slice() : new Float32Array(N * k);
  const lse = new Float32Array(taus.length * N);
  for (let i = 0; i < N; i++) {
    const o = i * V;
    if (!full) selectRow(logits, o, V, k, ids, top, i * k);
    // full rows: the max, or NaN when any logit is not finite; top-k rows: sorted, so the ends bound them
    const mt = full ? finiteRowMax(logits, o, V) : top[i * k], least = full ? mt : top[i * k + k - 1];
    if (!Number.isFinite(least) || !Number.isFinite(mt)) throw new QkdError('E_INPUT', `topkFromLogits: row ${i} has non-finite logits among its top ${k}`);
    taus.forEach((tau, a) => {
      let z = 0;
      const it = 1 / tau;
      for (let v = 0; v < V; v++) z += expNeg((logits[o + v] - mt) * it);
      lse[a * N + i] = mt * it + Math.log(z);
      if (!Number.isFinite(lse[a * N + i])) throw new QkdError('E_INPUT', `topkFromLogits: row ${i}: log-sum-exp at tau ${tau} is not finite (NaN logits?)`);
    });
  }
  return { N, V, k, taus: [...taus], ids, logits: top, lse };
}

/** The largest of t[o..o+V), or NaN when one of them is not finite. */
function finiteRowMax(t: Float32Array, o: number, V: number): number {
  let m = -Infinity;
  for (let v = o; v < o + V; v++) {
    const x = t[v];
    if (!Number.isFinite(x)) return NaN;
    if (x > m) m = x;
  }
  return m;
}
