/**
 * Optimality and generalization quantities as pure functions of measured numbers
 * (docs/report.md "approximation", "generalization").
 *
 * ApproximationRatio = (1/|D|) Σ_w exp(−α·CE_w − (1−α)·KD_w), D = the held-out windows, CE_w the
 * student's mean cross-entropy in window w, KD_w = τ²·(mean KL(teacher_τ ‖ student_τ) in w).
 *
 * GeneralizationBound, two forms, both for a loss in [0, 1] (the 0-1 next-token error) over n held-out
 * positions, with probability ≥ 1 − δ:
 *   seed:  R_emp + sqrt((Σ_p ln b_p + ln(1/δ)) / (2n))   (the seed's literal formula; b_p = bits of parameter p)
 *   Occam: R_emp + sqrt((L·ln 2 + ln(1/δ)) / (2n))       (L = description length of the model in bits)
 * The Occam form is Hoeffding's inequality for one fixed predictor plus a union bound over all
 * predictors weighted by 2^−L (Kraft: Σ 2^−L ≤ 1 for a prefix-free code). Here L = 8·(bytes of the
 * export's files) + 64: the files fully determine the predictor given the qkd runtime (fixed before
 * the data), and a 64-bit length header makes the code prefix-free.
 */
import type { WindowStats } from './windows.js';

export interface ApproximationResult {
  formula: string;
  alpha: number;
  tau: number;
  windows: number;
  context: number;
  positions: number;
  /** The seed's ApproximationRatio: mean over windows of exp(−α·CE − (1−α)·KD). */
  ratio: number;
  /** The same with KD = 0 and the teacher's own CE: the value a student identical to the teacher gets. */
  teacherSelf: number;
  student: { ce: number; kl: number; kd: number; entropy: number; top1: number; distillationLoss: number };
  teacher: { ce: number; top1: number };
  perWindow: { ce: number; kd: number; ratio: number; teacherCe: number }[];
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

export function approximation(ws: WindowStats[], alpha: number, tau: number, lambda: number, context: number): ApproximationResult {
  const per = ws.map((w) => {
    const kd = tau * tau * w.kl;
    return { ce: w.studentCe, kd, ratio: Math.exp(-alpha * w.studentCe - (1 - alpha) * kd), teacherCe: w.teacherCe };
  });
  const ce = mean(ws.map((w) => w.studentCe)), kl = mean(ws.map((w) => w.kl)), entropy = mean(ws.map((w) => w.studentEntropy));
  return {
    formula: 'mean over windows of exp(−α·CE − (1−α)·τ²·KL(teacher_τ ‖ student_τ))', alpha, tau, windows: ws.length, context,
    positions: ws.reduce((s, w) => s + w.positions, 0),
    ratio: mean(per.map((p) => p.ratio)),
    teacherSelf: mean(ws.map((w) => Math.exp(-alpha * w.teacherCe))),
    student: { ce, kl, kd: tau * tau * kl, entropy, top1: mean(ws.map((w) => w.studentTop1)),
      distillationLoss: alpha * ce + (1 - alpha) * tau * tau * kl - lambda * entropy },
    teacher: { ce: mean(ws.map((w) => w.teacherCe)), top1: mean(ws.map((w) => w.teacherTop1)) },
    perWindow: per,
  };
}

export interface BoundEntry {
  form: 'seed' | 'occam';
  expression: string;
  /** 0-1 error on the held-out positions. */
  empiricalRisk: number;
  n: number;
  delta: number;
  /** The numerator's model term: Σ_p ln b_p (seed) or L·ln 2 (Occam), in nats. */
  complexity: number;
  descriptionBits: number | null;
  slack: number;
  bound: number;
  /** bound > 1: says nothing about a 0-1 error. */
  vacuous: boolean;
  /** Smallest n with bound < 1 at this empirical risk (null when R_emp ≥ 1). */
  tokensForNonVacuous: number | null;
  /** Smallest n with slack ≤ 0.05. */
  tokensForSlack05: number;
}

/** R_emp + sqrt((complexity + ln(1/δ)) / (2n)). */
export function hoeffdingBound(emp: number, complexity: number, n: number, delta: number): number {
  return emp + Math.sqrt((complexity + Math.log(1 / delta)) / (2 * n));
}

function entry(form: BoundEntry['form'], expression: string, emp: number, complexity: number, bits: number | null,
  n: number, delta: number): BoundEntry {
  const C = complexity + Math.log(1 / delta), bound = hoeffdingBound(emp, complexity, n, delta);
  return {
    form, expression, empiricalRisk: emp, n, delta, complexity, descriptionBits: bits, slack: bound - emp, bound, vacuous: bound > 1,
    tokensForNonVacuous: emp < 1 ? Math.floor(C / (2 * (1 - emp) ** 2)) + 1 : null,
    tokensForSlack05: Math.ceil(C / (2 * 0.05 ** 2)),
  };
}

/** The seed's literal GeneralizationBound: Σ_p ln b_p over every parameter p. */
export function seedBound(emp: number, sumLnBits: number, n: number, delta: number): BoundEntry {
  return entry('seed', 'R_emp + sqrt((Σ_p ln b_p + ln(1/δ)) / (2n))', emp, sumLnBits, null, n, delta);
}

/** Occam bound with description length L = 8·bytes + 64 bits. */
export function occamBound(emp: number, bytes: number, n: number, delta: number): BoundEntry {
  const L = 8 * bytes + 64;
  return entry('occam', 'R_emp + sqrt((L·ln 2 + ln(1/δ)) / (2n)), L = 8·bytes + 64', emp, L * Math.LN2, L, n, delta);
}
