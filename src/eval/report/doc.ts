/**
 * The report as a sequence of blocks (headings, paragraphs, tables, lists, chart slots), written once
 * and rendered twice: report.md (render.ts toMarkdown) and report.html (toHtml).
 */
import type { BoundEntry } from './bounds.js';
import type { ComputeEntry, SizeEntry } from './complexity.js';
import type { Report } from './report.js';

export type Block =
  | { kind: 'h'; level: 1 | 2 | 3; text: string }
  | { kind: 'p'; text: string }
  | { kind: 'table'; head: string[]; rows: string[][] }
  | { kind: 'list'; items: string[] }
  | { kind: 'chart'; id: string }
  | { kind: 'headline'; items: { label: string; value: string; status: string }[] };

export const int = (n: number) => Math.round(n).toLocaleString('en-US');
export const num = (n: number | null | undefined, d = 4) => (n === null || n === undefined || !Number.isFinite(n) ? '–' : n.toFixed(d));
export const sig = (n: number) => (Math.abs(n) >= 1e6 ? n.toExponential(3) : Math.abs(n) >= 100 ? int(n) : n.toPrecision(4));
export const ratio = (n: number | null) => (n === null || !Number.isFinite(n) ? '–' : `${n.toFixed(2)}×`);
const pct = (n: number | null | undefined) => (n === null || n === undefined ? '–' : `${(100 * n).toFixed(2)}%`);
const bytes = (n: number) => `${int(n)} B (${(n / 2 ** 20).toFixed(3)} MiB)`;
const STATUS: Record<string, string> = { pass: 'PASS', fail: 'FAIL', 'not measured': 'not measured' };

function headline(r: Report): Block {
  const c = (id: string) => r.claims.find((x) => x.id === id)!;
  const tc = r.complexity.compute.teacher.measured, sc = r.complexity.compute.student.measured;
  const t1 = c('top1-few-points');
  return { kind: 'headline', items: [
    { label: 'smaller (fp32 teacher / export)', value: ratio(r.compression.bytes.ratio), status: c('size-8x').status },
    { label: 'fewer multiply-adds per token', value: ratio(c('compute-10x').measured), status: c('compute-10x').status },
    { label: 'faster decode (measured)', value: tc && sc ? ratio(sc.decodeTokPerS / tc.decodeTokPerS) : '–', status: tc && sc ? 'info' : 'not measured' },
    { label: 'top-1 lost (points)', value: t1.measured === null ? '–' : t1.measured.toFixed(2), status: t1.status },
    { label: 'ApproximationRatio', value: num(r.approximation.ratio), status: 'info' },
  ] };
}

function claimBlocks(r: Report): Block[] {
  return [
    { kind: 'h', level: 2, text: 'The seed\'s claims' },
    { kind: 'table', head: ['status', 'claim', 'measured', 'threshold', 'what is compared', 'detail'], rows: r.claims.map((c) => [
      STATUS[c.status], c.claim, c.measured === null ? '–' : c.id.startsWith('size') || c.id.startsWith('compute') ? ratio(c.measured) : `${c.measured.toFixed(2)} points`,
      `${c.direction === 'min' ? '≥' : '≤'} ${c.threshold}`, c.measure, c.detail]) },
  ];
}

function sizeRows(name: string, e: SizeEntry): string[][] {
  return [
    [name, `${e.formula.name} = ${e.formula.expression}`, `${int(e.formula.bits)} bits`, Object.entries(e.formula.inputs).map(([k, v]) => `${k} = ${v}`).join(', ') +
      (e.formula.unit === 'bits' ? '' : `: ${int(e.formula.value)} parameters × 32 bits (fp32)`)],
    ...e.exact.terms.map((t) => ['', `  ${t.term}`, `${int(t.bits)} bits`, `${int(t.params)} × ${t.bitsPerParam} bits`]),
    ['', 'exact total (every parameter × its bits)', `${int(e.exact.bits)} bits`, `${int(e.exact.params)} parameters; nonzero weights only: ${int(e.exact.nonzeroBits)} bits`],
    ['', `on disk (${e.disk.dtype})`, bytes(e.disk.bytes), `${e.disk.bitsPerParam.toFixed(2)} bits/parameter; ${Object.entries(e.disk.files).map(([f, b]) => `${f} ${int(b)}`).join(', ')}`],
    ['', 'fp32 (4 bytes per parameter)', bytes(e.disk.fp32Bytes), ''],
  ];
}

function computeRows(name: string, e: ComputeEntry): string[] {
  const c = e.counted, m = e.measured;
  return [name, `${e.formula.name} = ${e.formula.expression} = ${sig(e.formula.value)} (${e.formula.unit}; ${Object.entries(e.formula.inputs)
    .map(([k, v]) => `${k} = ${Number.isInteger(v) ? v : v.toFixed(2)}`).join(', ')})`,
  int(c.total.dense), int(c.total.nonzero), int(c.total.stored), int(c.attention), m ? `${int(m.decodeTokPerS)} tok/s` : '–',
  m ? `${(m.nonzeroMacPerS / 1e9).toFixed(2)} G` : '–'];
}

function complexityBlocks(r: Report): Block[] {
  const { size, compute } = r.complexity;
  return [
    { kind: 'h', level: 2, text: 'Complexity' },
    { kind: 'h', level: 3, text: 'Model size' },
    { kind: 'table', head: ['model', 'quantity', 'value', 'how'], rows: [...sizeRows('teacher', size.teacher), ...sizeRows('student', size.student)] },
    { kind: 'h', level: 3, text: 'Compute per token' },
    { kind: 'p', text: `Counted multiply-adds per token: every weight matrix (linear layers and the output head; the embedding is a lookup) plus attention; ${compute.contextNote}. dense = rows·cols, nonzero = nonzero weights counted in the files, stored = what the export's sparse formats compute (zeros inside kept blocks included).` },
    { kind: 'table', head: ['model', 'seed formula (per token)', 'dense MACs', 'nonzero MACs', 'stored MACs', 'of which attention', 'decode (bench)', 'nonzero MAC/s'],
      rows: [computeRows('teacher', compute.teacher), computeRows('student', compute.student)] },
  ];
}

function optimalityBlocks(r: Report): Block[] {
  const c = r.compression, a = r.approximation;
  return [
    { kind: 'h', level: 2, text: 'Compression and approximation' },
    { kind: 'table', head: ['CompressionRatio = Size(teacher) / Size(student)', 'teacher', 'student', 'ratio'], rows: [
      ['bytes: fp32 teacher vs export files', int(c.bytes.teacherFp32), int(c.bytes.student), ratio(c.bytes.ratio)],
      ['bytes: teacher\'s own files vs export files', int(c.bytes.teacherFiles), int(c.bytes.student), ratio(c.bytes.ratioFiles)],
      ['bits: exact counts', int(c.bits.teacher), int(c.bits.student), ratio(c.bits.ratio)],
      ['bits: exact, nonzero weights only', '', '', ratio(c.bits.nonzeroRatio)],
      ['bits: the seed\'s formulas (TeacherModelSize × 32 vs StudentModelSize)', int(c.bits.formulaTeacher), int(c.bits.formulaStudent), ratio(c.bits.formulaRatio)],
    ] },
    { kind: 'p', text: `ApproximationRatio = ${a.formula} = **${num(a.ratio)}** over the first ${a.windows} windows of ${a.context} tokens (${int(a.positions)} positions) of ${r.sources.validText}, with the run's α = ${a.alpha}, τ = ${a.tau}; the teacher itself would score ${num(a.teacherSelf)} (KD = 0).` },
    { kind: 'table', head: ['on these windows', 'CE (nats)', 'KL(teacher_τ ‖ student_τ)', 'KD = τ²·KL', 'entropy', 'top-1', 'DistillationLoss'], rows: [
      ['student (export, int8 runtime)', num(a.student.ce), num(a.student.kl), num(a.student.kd), num(a.student.entropy), pct(a.student.top1), num(a.student.distillationLoss)],
      ['teacher', num(a.teacher.ce), '', '', '', pct(a.teacher.top1), ''],
    ] },
  ];
}

function riskRow(label: string, p: { teacher: { ce: number; zeroOne: number; tokens: number } | null; student: { ce: number; zeroOne: number; tokens: number } | null }): string[] {
  const f = (x: typeof p.teacher) => (x ? `${num(x.ce)} / ${num(x.zeroOne)}` : '–');
  return [label, f(p.teacher), f(p.student), int(p.student?.tokens ?? p.teacher?.tokens ?? 0)];
}

function boundRow(model: string, b: BoundEntry): string[] {
  return [model, b.form === 'seed' ? 'seed (literal)' : 'Occam', b.expression, num(b.empiricalRisk), int(b.n),
    b.descriptionBits === null ? `Σ ln b_p = ${sig(b.complexity)}` : `L = ${int(b.descriptionBits)} bits`, num(b.bound),
    b.vacuous ? `vacuous (> 1); non-vacuous from n = ${b.tokensForNonVacuous === null ? '∞' : int(b.tokensForNonVacuous)} tokens` : 'informative',
    int(b.tokensForSlack05)];
}

function generalizationBlocks(r: Report): Block[] {
  const g = r.generalization, e = g.empiricalRisk, b = g.bounds;
  const rows: string[][] = [];
  if (b.teacher) rows.push(boundRow('teacher', b.teacher.seed), boundRow('teacher', b.teacher.occam));
  if (b.student) rows.push(boundRow('student', b.student.seed), boundRow('student', b.student.occam));
  const vac = [b.teacher, b.student].flatMap((x) => (x ? [x.seed, x.occam] : [])).filter((x) => x.vacuous).length;
  return [
    { kind: 'h', level: 2, text: 'Generalization' },
    { kind: 'p', text: 'EmpiricalRisk = mean loss over the data; cells show cross-entropy (nats) / 0-1 error (1 − top-1).' },
    { kind: 'table', head: ['data', 'teacher CE / 0-1', 'student CE / 0-1', 'tokens'], rows: [
      ...(e.train.windows.student ? [riskRow(`train: the first windows of ${e.train.source}`, e.train.windows)] : []),
      ['train: last training losses', '', `CE ${num(e.train.lastSteps.ce)}, loss ${num(e.train.lastSteps.loss)} (mean of the last ${e.train.lastSteps.steps} logged steps)`, ''],
      riskRow('held-out: the report\'s validation windows', e.heldOut.windows),
      riskRow('held-out: valid (eval/eval.json, whole text)', e.heldOut.valid),
      riskRow('held-out: test (eval/eval.json, whole text)', e.heldOut.test),
    ] },
    { kind: 'p', text: `GeneralizationBound on the 0-1 next-token error with δ = ${g.delta}, on ${g.boundData.split} (${g.boundData.note}). ${vac === 0 ? 'No bound is vacuous.' : `${vac} of ${rows.length} bounds are vacuous (above 1): they say nothing at this amount of held-out text; the column "non-vacuous from" says how many held-out tokens would make each one informative at the same empirical risk.`}` },
    { kind: 'table', head: ['model', 'form', 'formula', 'R_emp (0-1)', 'n', 'model term', 'bound', 'verdict', 'n for slack ≤ 0.05'], rows },
    { kind: 'list', items: g.assumptions },
  ];
}

function convergenceBlocks(r: Report): Block[] {
  const s = r.convergence.summary;
  return [
    { kind: 'h', level: 2, text: 'Convergence' },
    { kind: 'chart', id: 'loss' }, { kind: 'chart', id: 'ppl' }, { kind: 'chart', id: 'sparsity' },
    { kind: 'table', head: ['quantity', 'value'], rows: [
      ['steps', int(s.steps)], ['loss, first 5% → last 5% of steps', `${num(s.firstLoss)} → ${num(s.lastLoss)} (min ${num(s.minLoss)})`],
      ['last CE / KL / KD = τ²·KL / entropy', `${num(s.last.ce)} / ${num(s.last.kl)} / ${num(s.last.kd)} / ${num(s.last.entropy)}`],
      ['sparsity: final / target', `${num(s.finalSparsity, 3)} / ${num(s.targetSparsity, 3)}`],
      ['best validation ppl (step)', s.bestValidPpl === null ? '–' : `${num(s.bestValidPpl, 3)} (${s.bestStep})`],
      ['seed: lim DistillationLoss = 0', s.toZero],
    ] },
  ];
}

export function reportBlocks(r: Report): Block[] {
  const t = r.models.teacher, s = r.models.student;
  return [
    { kind: 'h', level: 1, text: 'qkd report: teacher vs distilled student' },
    { kind: 'p', text: `Run ${r.sources.run} (${r.created}). Teacher: ${t.family}, ${t.nLayer} layers, dim ${t.dim}, ${int(t.params)} parameters (${r.sources.teacher}). Student: ${s.family}, ${s.nLayer} layers, dim ${s.dim}, ${int(s.params)} parameters, exported as qkd-int8 (${r.sources.export}).` },
    headline(r),
    ...claimBlocks(r),
    { kind: 'chart', id: 'claims' },
    ...complexityBlocks(r),
    ...optimalityBlocks(r),
    { kind: 'chart', id: 'approximation' },
    ...generalizationBlocks(r),
    ...convergenceBlocks(r),
    ...(r.notes.length ? [{ kind: 'h', level: 2, text: 'Notes' } as Block, { kind: 'list', items: r.notes } as Block] : []),
  ];
}
