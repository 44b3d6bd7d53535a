/**
 * Writes a report folder atomically (io/atomic.ts writeDirAtomic): report.json, report.md,
 * report.html and the marker `.qkd-output.json` ({format: "qkd-output", version: 1, kind: "report"}).
 * An existing folder is replaced only when it is empty or holds a previous report (the marker),
 * or with `force`; never when it is the run folder, lies above it or holds one of the run's inputs.
 */
import { existsSync, readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { writeDirAtomic } from '../../io/atomic.js';
import { QkdError } from '../../tensor/errors.js';
import { reportCharts } from './charts.js';
import { reportBlocks } from './doc.js';
import { toHtml, toMarkdown } from './render.js';
import type { Report } from './report.js';

export const MARKER_FILE = '.qkd-output.json';
export const MARKER = { format: 'qkd-output', version: 1, kind: 'report' } as const;

/** True when `dir` holds a report marker. */
export function isReportDir(dir: string): boolean {
  try {
    const m = JSON.parse(readFileSync(join(dir, MARKER_FILE), 'utf8')) as Record<string, unknown>;
    return m.format === MARKER.format && m.kind === MARKER.kind;
  } catch {
    return false;
  }
}

/** The path with its longest existing prefix resolved through symlinks. */
function real(p: string): string {
  let head = resolve(p);
  const tail: string[] = [];
  while (!existsSync(head) && dirname(head) !== head) { tail.unshift(head.slice(dirname(head).length + 1)); head = dirname(head); }
  return join(realpathSync(head), ...tail);
}

const inside = (p: string, base: string) => p === base || p.startsWith(base.endsWith(sep) ? base : base + sep);

/** Refuses an output folder that would destroy something that is not a previous report. */
export function checkOutDir(out: string, inputs: string[], force: boolean): void {
  const o = real(out);
  for (const i of inputs) {
    const r = real(i);
    if (inside(r, o)) throw new QkdError('E_CONFIG', `--out ${out}: it holds the input ${i}; writing the report there would replace it (even with --force)`);
  }
  if (!existsSync(o)) return;
  if (!statSync(o).isDirectory()) throw new QkdError('E_CONFIG', `--out ${out}: is a file, not a folder`);
  if (readdirSync(o).length === 0 || isReportDir(o) || force) return;
  throw new QkdError('E_CONFIG', `--out ${out}: the folder exists and is not a qkd report (no ${MARKER_FILE}); ` +
    'choose another --out, or pass --force to replace it');
}

export interface WrittenReport { out: string; files: Record<string, number> }

/** The three renderings of a report (file name -> contents). */
export function renderReport(r: Report): Record<string, string> {
  const blocks = reportBlocks(r), charts = reportCharts(r);
  return {
    'report.json': JSON.stringify(r, null, 1) + '\n',
    'report.md': toMarkdown(blocks, charts),
    'report.html': toHtml(blocks, charts, `qkd report: ${relative(process.cwd(), r.sources.run) || r.sources.run}`),
  };
}

/** Renders and writes the report folder; `inputs` are the paths the report was made from. */
export function writeReport(out: string, r: Report, opts: { force?: boolean; inputs?: string[] } = {}): WrittenReport {
  checkOutDir(out, opts.inputs ?? [r.sources.teacher, r.sources.student, r.sources.export], opts.force ?? false);
  const files: Record<string, string> = { ...renderReport(r), [MARKER_FILE]: JSON.stringify(MARKER) + '\n' };
  writeDirAtomic(out, files);
  const sizes: Record<string, number> = {};
  for (const [n, d] of Object.entries(files)) sizes[n] = Buffer.byteLength(d);
  return { out, files: sizes };
}
