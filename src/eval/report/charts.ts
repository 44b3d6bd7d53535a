/**
 * The report's charts as SVG strings, drawn by Apache ECharts' server-side SVG renderer
 * (`init(null, null, {renderer: 'svg', ssr: true})`, no DOM, no network). Each chart is its own
 * inline <svg>; report.html embeds them as they are.
 */
import { createRequire } from 'node:module';
import type { Report } from './report.js';

type ECharts = typeof import('echarts');
let lib: ECharts | null = null;
/** The single-file CommonJS build: ~0.25 s to load, against ~1.6 s for the ESM module tree. */
const echarts = (): ECharts => (lib ??= createRequire(import.meta.url)('echarts') as ECharts);

export interface Chart { id: string; title: string; caption: string; svg: string }

const W = 720, H = 320;
const PALETTE = ['#3366cc', '#dc3912', '#ff9900', '#109618', '#990099', '#0099c6'];

function render(option: Record<string, unknown>, width = W, height = H): string {
  const chart = echarts().init(null, null, { renderer: 'svg', ssr: true, width, height });
  try {
    chart.setOption({ animation: false, color: PALETTE, textStyle: { fontFamily: 'system-ui, sans-serif' }, ...option });
    return chart.renderToSVGString();
  } finally {
    chart.dispose();
  }
}

/** 1, 2 or 5 times a power of ten, at least x. */
const niceCeil = (x: number) => { const p = 10 ** Math.floor(Math.log10(x)); return [1, 2, 5, 10].map((m) => m * p).find((v) => v >= x)!; };
const zip = (xs: number[], ys: (number | null)[]) => xs.map((x, i) => [x, ys[i]]);
const grid = { left: 64, right: 24, top: 48, bottom: 48, containLabel: false };
const legend = { top: 8, left: 'center' };

function claimsChart(r: Report): Chart | null {
  const c = r.claims, bars: [string, number | null, number | null][] = [
    ['size (fp32 bytes / export bytes)', r.compression.bytes.ratio, 8],
    ['compute (dense / nonzero MACs)', c.find((x) => x.id === 'compute-10x')?.measured ?? null, 10],
    ['decode speed (student / teacher tok/s)', r.complexity.compute.student.measured && r.complexity.compute.teacher.measured
      ? r.complexity.compute.student.measured.decodeTokPerS / r.complexity.compute.teacher.measured.decodeTokPerS : null, null],
  ];
  const shown = bars.filter((b) => b[1] !== null);
  if (!shown.length) return null;
  const svg = render({
    grid: { ...grid, left: 250, right: 48 }, legend,
    xAxis: { type: 'log', name: 'teacher / student (×)', nameLocation: 'middle', nameGap: 28, min: 1,
      max: 10 ** Math.ceil(Math.log10(1.5 * Math.max(10, ...shown.map((b) => b[1]!)))) },
    yAxis: { type: 'category', data: shown.map((b) => b[0]), inverse: true },
    series: [
      { name: 'measured', type: 'bar', data: shown.map((b) => b[1]), label: { show: true, position: 'insideRight', color: '#fff', fontWeight: 'bold', formatter: (p: { value: number }) => `${p.value.toFixed(1)}×` } },
      { name: 'seed\'s claim', type: 'scatter', symbol: 'diamond', symbolSize: 14, data: shown.map((b) => b[2] ?? '-') },
    ],
  }, W, 220);
  return { id: 'claims', title: 'Teacher / student ratios against the seed\'s claims', caption: 'Bars: measured ratios (log scale); diamonds: the claimed 8× (size) and 10× (compute).', svg };
}

function lossChart(r: Report): Chart | null {
  const s = r.convergence.series;
  if (!s.step.length) return null;
  const line = (name: string, ys: (number | null)[]) => ({ name, type: 'line', showSymbol: false, data: zip(s.step, ys), connectNulls: true });
  const svg = render({
    grid, legend,
    xAxis: { type: 'value', name: 'step', nameLocation: 'middle', nameGap: 28 },
    yAxis: { type: 'value', name: 'nats', scale: true },
    series: [line('loss', s.loss), line('CE', s.ce), line('KL (τ)', s.kl), line('entropy H', s.entropy)],
  });
  return { id: 'loss', title: 'Distillation loss and its parts per step',
    caption: `loss = α·CE + (1−α)·τ²·KL − λ·H with α = ${r.settings.alpha}, τ = ${r.settings.tau}, λ = ${r.settings.lambda} (metrics.jsonl${r.convergence.stride > 1 ? `, every ${r.convergence.stride}th step` : ''}).`, svg };
}

function pplChart(r: Report): Chart | null {
  const e = r.convergence.evals;
  if (!e.step.length) return null;
  const tv = r.generalization.empiricalRisk.heldOut.valid.teacher;
  const svg = render({
    grid, legend,
    xAxis: { type: 'value', name: 'step', nameLocation: 'middle', nameGap: 28 },
    yAxis: { type: 'value', name: 'valid ppl', scale: true,
      ...(tv ? { min: Math.floor(0.95 * Math.min(Math.exp(tv.ce), ...e.validPpl)), max: Math.ceil(1.02 * Math.max(Math.exp(tv.ce), ...e.validPpl)) } : {}) },
    series: [{
      name: 'student valid ppl', type: 'line', data: zip(e.step, e.validPpl), symbolSize: 6,
      ...(tv ? { markLine: { symbol: 'none', label: { formatter: `teacher ${Math.exp(tv.ce).toFixed(2)}`, position: 'insideEndTop' },
        data: [{ yAxis: Math.exp(tv.ce) }] } } : {}),
    }],
  });
  return { id: 'ppl', title: 'Validation perplexity per evaluation', caption: tv ? 'Dashed line: the teacher on the same text (eval/eval.json).' : 'Student only (no eval/eval.json).', svg };
}

function sparsityChart(r: Report): Chart | null {
  const s = r.convergence.series;
  if (!s.sparsity.some((x) => x !== null) && !s.lr.some((x) => x !== null)) return null;
  const svg = render({
    grid: { ...grid, right: 72 }, legend,
    xAxis: { type: 'value', name: 'step', nameLocation: 'middle', nameGap: 28 },
    yAxis: [{ type: 'value', name: 'sparsity', min: 0, max: 1 }, { type: 'value', name: 'learning rate', splitLine: { show: false } }],
    series: [
      { name: 'sparsity', type: 'line', showSymbol: false, data: zip(s.step, s.sparsity) },
      { name: 'lr', type: 'line', showSymbol: false, yAxisIndex: 1, lineStyle: { type: 'dashed' }, data: zip(s.step, s.lr) },
    ],
  });
  const t = r.convergence.summary.targetSparsity;
  return { id: 'sparsity', title: 'Sparsity schedule and learning rate', caption: `Cubic pruning schedule${t === null ? '' : ` to the target ${t}`}; dashed: the learning rate.`, svg };
}

function approxChart(r: Report): Chart {
  const a = r.approximation;
  const svg = render({
    grid, legend,
    xAxis: { type: 'category', name: 'window', nameLocation: 'middle', nameGap: 28, data: a.perWindow.map((_, i) => String(i)) },
    yAxis: { type: 'value', name: 'exp(−α·CE − (1−α)·KD)', min: 0, max: (v: { max: number }) => niceCeil(1.1 * Math.max(v.max, a.teacherSelf)) },
    series: [{
      name: 'per window', type: 'bar', data: a.perWindow.map((w) => w.ratio),
      markLine: { symbol: 'none', data: [
        { yAxis: a.ratio, name: 'mean', label: { formatter: `ratio ${a.ratio.toFixed(4)}`, position: 'insideEndTop' } },
        { yAxis: a.teacherSelf, name: 'teacher', label: { formatter: `teacher itself ${a.teacherSelf.toFixed(4)}`, position: 'insideStartTop' } },
      ] },
    }],
  }, W, 260);
  return { id: 'approximation', title: 'ApproximationRatio per held-out window',
    caption: `${a.windows} windows of ${a.context} tokens; lines: the mean (the ratio) and exp(−α·CE) of the teacher itself (KD = 0).`, svg };
}

/** Every chart the data allows, in reading order. */
export function reportCharts(r: Report): Chart[] {
  return [claimsChart(r), lossChart(r), pplChart(r), sparsityChart(r), approxChart(r)].filter((c): c is Chart => c !== null);
}
