/**
 * The seed's claims as a checklist (docs/report.md "claims"): "a reduction in model size by a factor of
 * 8x or more", "a reduction in computational complexity by a factor of 10x or more", "a small loss in
 * accuracy or performance, typically on the order of a few percentage points" (read as ≤ 3 points),
 * each with the measured value, the threshold and a status.
 */
import type { TasksJson } from './inputs.js';

export type ClaimStatus = 'pass' | 'fail' | 'not measured';

export interface Claim {
  id: 'size-8x' | 'compute-10x' | 'top1-few-points' | 'tasks-few-points';
  claim: string;
  /** What is compared, in words. */
  measure: string;
  measured: number | null;
  threshold: number;
  /** 'min': measured ≥ threshold passes; 'max': measured ≤ threshold passes. */
  direction: 'min' | 'max';
  status: ClaimStatus;
  detail: string;
}

/** "A few percentage points". */
export const FEW_POINTS = 3;

export interface ClaimInputs {
  bytesRatio: number;
  bitsRatio: number;
  filesRatio: number;
  macRatio: number;
  storedMacRatio: number;
  speedRatio: number | null;
  top1: { teacher: number; student: number; split: string } | null;
  tasks: TasksJson | null;
}

function claim(c: Omit<Claim, 'status'>): Claim {
  const status: ClaimStatus = c.measured === null || !Number.isFinite(c.measured) ? 'not measured'
    : (c.direction === 'min' ? c.measured >= c.threshold : c.measured <= c.threshold) ? 'pass' : 'fail';
  return { ...c, status };
}

const x = (v: number) => `${v.toFixed(2)}x`;

export function claims(m: ClaimInputs): Claim[] {
  const out = [
    claim({
      id: 'size-8x', claim: 'model size reduced 8x or more', measure: 'fp32 teacher bytes (4 per parameter) / export bytes on disk',
      measured: m.bytesRatio, threshold: 8, direction: 'min',
      detail: `bits (exact counts) ${x(m.bitsRatio)}; teacher's own files / export ${x(m.filesRatio)}`,
    }),
    claim({
      id: 'compute-10x', claim: 'compute reduced 10x or more', measure: 'teacher dense multiply-adds / student nonzero multiply-adds per token',
      measured: m.macRatio, threshold: 10, direction: 'min',
      detail: `stored (what the sparse kernels compute) ${x(m.storedMacRatio)}; measured decode speed-up ${m.speedRatio === null ? 'not measured' : x(m.speedRatio)}`,
    }),
    claim({
      id: 'top1-few-points', claim: `accuracy within a few points (≤ ${FEW_POINTS})`, measure: `teacher top-1 − student top-1, percentage points${m.top1 ? ` (${m.top1.split})` : ''}`,
      measured: m.top1 ? 100 * (m.top1.teacher - m.top1.student) : null, threshold: FEW_POINTS, direction: 'max',
      detail: m.top1 ? `teacher ${(100 * m.top1.teacher).toFixed(2)}%, student ${(100 * m.top1.student).toFixed(2)}%` : 'no top-1 measured',
    }),
  ];
  const t = m.tasks;
  out.push(claim({
    id: 'tasks-few-points', claim: `language-task performance within a few points (≤ ${FEW_POINTS})`,
    measure: 'teacher Perf − student Perf (mean task accuracy), percentage points',
    measured: t ? 100 * (t.teacher.perf - t.student.perf) : null, threshold: FEW_POINTS, direction: 'max',
    detail: t ? Object.entries(t.teacher.tasks).map(([n, a]) => `${n}: ${(100 * a.acc).toFixed(1)}% vs ${
      t.student.tasks[n] ? (100 * t.student.tasks[n].acc).toFixed(1) + '%' : '-'}`).join('; ') : 'tasks/tasks.json absent',
  }));
  return out;
}
