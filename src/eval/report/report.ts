/**
 * report.json (docs/report.md): its type and its assembly from measured parts. Pure: the models have
 * been run and the files counted by build.ts; this file only combines numbers.
 */
import type { EvalResult } from '../perplexity.js';
import { approximation, occamBound, seedBound, type ApproximationResult, type BoundEntry } from './bounds.js';
import { claims, type Claim } from './claims.js';
import { computeEntry, sizeEntry, type ComputeEntry, type ModelFacts, type SizeEntry } from './complexity.js';
import { convergence, type Convergence } from './convergence.js';
import type { RunInputs } from './inputs.js';
import type { WindowStats } from './windows.js';

export const REPORT_FORMAT = 'qkd-report';
export const REPORT_VERSION = 1;

interface Risk { ce: number; zeroOne: number; tokens: number }
interface RiskPair { teacher: Risk | null; student: Risk | null }

export interface Report {
  format: typeof REPORT_FORMAT;
  version: typeof REPORT_VERSION;
  created: string;
  sources: { run: string; teacher: string; student: string; export: string; validText: string; trainText: string };
  settings: { windows: number; context: number; delta: number; alpha: number; tau: number; lambda: number; kl: string; backend: string };
  models: Record<'teacher' | 'student', { family: string; vocabSize: number; dim: number; nLayer: number; nHead: number; nKVHead: number;
    headDim: number; ffnDim: number; tieEmbeddings: boolean; params: number; quant: unknown; sparsity: unknown }>;
  complexity: {
    size: { teacher: SizeEntry; student: SizeEntry };
    compute: { context: number; contextNote: string; teacher: ComputeEntry; student: ComputeEntry };
  };
  compression: {
    formula: string;
    bytes: { teacherFp32: number; teacherFiles: number; student: number; studentWeightsFile: number; ratio: number; ratioFiles: number };
    bits: { teacher: number; student: number; ratio: number; formulaTeacher: number; formulaStudent: number; formulaRatio: number; nonzeroRatio: number };
  };
  approximation: ApproximationResult;
  generalization: {
    delta: number;
    lossFunctions: { ce: string; zeroOne: string };
    empiricalRisk: {
      train: { source: string; windows: RiskPair; lastSteps: { steps: number; ce: number | null; loss: number | null } };
      heldOut: { windows: RiskPair; valid: RiskPair; test: RiskPair };
    };
    boundData: { split: string; note: string };
    bounds: { teacher: { seed: BoundEntry; occam: BoundEntry } | null; student: { seed: BoundEntry; occam: BoundEntry } | null };
    assumptions: string[];
  };
  convergence: Convergence;
  claims: Claim[];
  notes: string[];
}

export interface MeasuredParts {
  inputs: RunInputs;
  teacher: ModelFacts;
  student: ModelFacts;
  context: number;
  windows: number;
  delta: number;
  backend: string;
  valid: WindowStats[];
  train: WindowStats[] | null;
  trainSource: string;
  validSource: string;
  /** Σ_p ln b_p of each model. */
  sumLnBits: { teacher: number; student: number };
  notes: string[];
}

const riskOf = (r: EvalResult | undefined): Risk | null => (r ? { ce: r.nll, zeroOne: 1 - r.top1, tokens: r.tokens } : null);

function windowRisks(ws: WindowStats[] | null): RiskPair {
  if (!ws || ws.length === 0) return { teacher: null, student: null };
  const n = ws.reduce((s, w) => s + w.positions, 0), avg = (f: (w: WindowStats) => number) => ws.reduce((s, w) => s + f(w) * w.positions, 0) / n;
  return {
    teacher: { ce: avg((w) => w.teacherCe), zeroOne: 1 - avg((w) => w.teacherTop1), tokens: n },
    student: { ce: avg((w) => w.studentCe), zeroOne: 1 - avg((w) => w.studentTop1), tokens: n },
  };
}

function modelInfo(f: ModelFacts, params: number): Report['models']['teacher'] {
  const c = f.config;
  return { family: c.family, vocabSize: c.vocabSize, dim: c.dim, nLayer: c.nLayer, nHead: c.nHead, nKVHead: c.nKVHead, headDim: c.headDim,
    ffnDim: c.ffnDim, tieEmbeddings: c.tieEmbeddings, params, quant: c.quant, sparsity: c.sparsity };
}

function compression(size: Report['complexity']['size']): Report['compression'] {
  const t = size.teacher, s = size.student;
  return {
    formula: 'CompressionRatio = Size(teacher) / Size(student)',
    bytes: { teacherFp32: t.disk.fp32Bytes, teacherFiles: t.disk.bytes, student: s.disk.bytes,
      studentWeightsFile: s.disk.files['model.safetensors'] ?? 0, ratio: t.disk.fp32Bytes / s.disk.bytes, ratioFiles: t.disk.bytes / s.disk.bytes },
    bits: { teacher: t.exact.bits, student: s.exact.bits, ratio: t.exact.bits / s.exact.bits, formulaTeacher: t.formula.bits,
      formulaStudent: s.formula.bits, formulaRatio: t.formula.bits / s.formula.bits, nonzeroRatio: t.exact.nonzeroBits / s.exact.nonzeroBits },
  };
}

/** Held-out 0-1 data for the bounds: test (not used in training or model selection), else valid, else the windows. */
function boundData(p: MeasuredParts, heldOut: Report['generalization']['empiricalRisk']['heldOut']): { split: string; note: string; pair: RiskPair } {
  if (heldOut.test.student) return { split: 'test (eval/eval.json)', note: 'the test text was used neither in training nor in choosing the best checkpoint', pair: heldOut.test };
  if (heldOut.valid.student) return { split: 'valid (eval/eval.json)', note: 'no test split: the validation text chose the best checkpoint, so it is not strictly held out', pair: heldOut.valid };
  return { split: `valid windows (${p.valid.length} × ${p.context})`, note: 'no eval.json: the report\'s own validation windows', pair: heldOut.windows };
}

function bounds(pair: RiskPair, p: MeasuredParts, size: Report['complexity']['size']): Report['generalization']['bounds'] {
  const one = (r: Risk | null, lnBits: number, bytes: number) => r ? {
    seed: seedBound(r.zeroOne, lnBits, r.tokens, p.delta), occam: occamBound(r.zeroOne, bytes, r.tokens, p.delta),
  } : null;
  return { teacher: one(pair.teacher, p.sumLnBits.teacher, size.teacher.disk.bytes), student: one(pair.student, p.sumLnBits.student, size.student.disk.bytes) };
}

const ASSUMPTIONS = [
  'Both bounds are Hoeffding bounds for a loss in [0, 1]: they are applied to the 0-1 next-token error (1 − top-1), not to the cross-entropy, which is unbounded.',
  'They assume the n held-out positions are independent draws from the distribution the bound speaks of. Positions of one text are not independent (neighbouring tokens share context), so on running text the bounds are indicative, not guarantees.',
  'The held-out data must not have influenced the model: the test split qualifies; the validation split chose the best checkpoint.',
  'Occam: the predictor is the export (config.json, model.safetensors, tokenizer.json, generation_config.json) run by the qkd runtime, which was fixed before the data; L = 8·(its bytes) + 64 bits is a prefix-free description length, so Σ 2^−L ≤ 1 and the union bound holds for every model at once.',
  'Seed: Σ_p ln b_p is the log of the product of bit widths; it is not a description length (a b-bit parameter has 2^b values, contributing b·ln 2, not ln b), so the seed\'s form is not a valid bound for this hypothesis class; it is reported because the seed states it.',
  'The teacher\'s Occam bound uses its own files as its description (its storage dtype as on disk).',
];

export function assembleReport(p: MeasuredParts): Report {
  const { inputs: I, context } = p, d = I.distill;
  const size = { teacher: sizeEntry(p.teacher), student: sizeEntry(p.student) };
  const threads = I.bench?.threads ?? null;
  const compute = {
    context, contextNote: `attention at context ${context}: the token at position ${context} attends to ${context} keys`,
    teacher: computeEntry(p.teacher, context, I.bench?.teacher ?? null, threads),
    student: computeEntry(p.student, context, I.bench?.student ?? null, threads),
  };
  const e = I.eval;
  const heldOut = {
    windows: windowRisks(p.valid),
    valid: { teacher: riskOf(e?.teacher.valid), student: riskOf(e?.student.valid) },
    test: { teacher: riskOf(e?.teacher.test), student: riskOf(e?.student.test) },
  };
  const bd = boundData(p, heldOut);
  const conv = convergence(I.train, I.evals, d.tau, d.sparsity?.target ?? null);
  const k = Math.max(1, Math.floor(I.train.length * 0.1)), tail = I.train.slice(-k);
  const avg = (xs: (number | undefined)[]) => { const v = xs.filter((x): x is number => x !== undefined); return v.length ? v.reduce((a, b) => a + b, 0) / v.length : null; };
  const comp = compression(size);
  const top1 = bd.pair.teacher && bd.pair.student ? { teacher: 1 - bd.pair.teacher.zeroOne, student: 1 - bd.pair.student.zeroOne, split: bd.split } : null;
  const tc = compute.teacher, sc = compute.student;
  return {
    format: REPORT_FORMAT, version: REPORT_VERSION, created: new Date().toISOString(),
    sources: { run: I.run, teacher: I.teacherDir, student: I.studentRun, export: I.exportDir, validText: p.validSource, trainText: p.trainSource },
    settings: { windows: p.windows, context, delta: p.delta, alpha: d.alpha, tau: d.tau, lambda: d.lambda, kl: d.kl, backend: p.backend },
    models: { teacher: modelInfo(p.teacher, size.teacher.exact.params), student: modelInfo(p.student, size.student.exact.params) },
    complexity: { size, compute },
    compression: comp,
    approximation: approximation(p.valid, d.alpha, d.tau, d.lambda, context),
    generalization: {
      delta: p.delta,
      lossFunctions: { ce: 'cross-entropy of the next token, nats', zeroOne: '1 − top-1: the argmax is not the next token' },
      empiricalRisk: {
        train: { source: p.trainSource, windows: windowRisks(p.train), lastSteps: { steps: tail.length, ce: avg(tail.map((t) => t.ce)), loss: avg(tail.map((t) => t.loss)) } },
        heldOut,
      },
      boundData: { split: bd.split, note: bd.note },
      bounds: bounds(bd.pair, p, size),
      assumptions: ASSUMPTIONS,
    },
    convergence: conv,
    claims: claims({
      bytesRatio: comp.bytes.ratio, bitsRatio: comp.bits.ratio, filesRatio: comp.bytes.ratioFiles,
      macRatio: tc.counted.total.dense / sc.counted.total.nonzero, storedMacRatio: tc.counted.total.dense / sc.counted.total.stored,
      speedRatio: tc.measured && sc.measured ? sc.measured.decodeTokPerS / tc.measured.decodeTokPerS : null,
      top1, tasks: I.tasks,
    }),
    notes: [...I.notes, ...p.notes],
  };
}
