/** `qkd report --run DIR`: the evidence report of a pipeline's output folder (docs/report.md). */
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { buildReport } from '../eval/report/build.js';
import { writeReport } from '../eval/report/write.js';
import { addBackendOptions, floatFlag, intFlag, openBackend, progress, type Progress } from './common.js';

export function registerReport(program: Command): void {
  addBackendOptions(program.command('report')
    .description('report.json, report.md and report.html (SVG charts) for a pipeline output: size, compute, compression, approximation, bounds, convergence, the seed\'s claims')
    .requiredOption('--run <dir>', 'pipeline output folder (pipeline.json, student/, export/, eval/, bench/, tasks/)')
    .option('--out <dir>', 'report folder (default: RUN/report); replaced only when it holds a previous report, or with --force')
    .option('--windows <n>', 'held-out and training windows to run teacher and student on', intFlag('--windows', 1), 8)
    .option('--context <n>', 'window length in tokens (default: the run\'s evalContext, capped by the models)', intFlag('--context', 2))
    .option('--delta <x>', 'confidence parameter of the generalization bounds', floatFlag('--delta', 1e-12, 0.999999), 0.05)
    .option('--no-train-windows', 'report the training risk from the last training losses only (no training-text windows)')
    .option('--force', 'replace an existing --out folder that is not a report'))
    .action(async (o) => {
      const be = await openBackend(o);
      let bar: Progress | null = null, phase = '';
      let r;
      try {
        r = buildReport(o.run, be, {
          windows: o.windows, context: o.context, delta: o.delta, noTrainWindows: o.trainWindows === false,
          onProgress: (what, d, n) => {
            if (what !== phase) { bar?.stop(); bar = progress(`report: ${what}`); phase = what; }
            bar!.update(d, n);
          },
        });
      } finally {
        (bar as Progress | null)?.stop();
        await be.dispose();
      }
      const out = o.out ?? join(o.run, 'report');
      const w = writeReport(out, r, { force: !!o.force });
      const c = r.claims.map((x) => `${x.id} ${x.status}`).join(', ');
      process.stderr.write(`report: ${resolve(w.out)}: ${Object.keys(w.files).filter((f) => !f.startsWith('.')).join(', ')}; ` +
        `approximation ratio ${r.approximation.ratio.toFixed(4)}; claims: ${c}\n`);
      process.stdout.write(`${join(resolve(w.out), 'report.html')}\n`);
    });
}
