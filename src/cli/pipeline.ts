/** `qkd pipeline`: flags -> pipeline config -> the resumable workflow; a summary table on stdout. */
import type { Command } from 'commander';
import { join } from 'node:path';
import { makePipelineConfig, DEFAULT_RECIPE } from '../pipeline/config.js';
import { Interrupted, runPipeline, type PipelineResult } from '../pipeline/pipeline.js';
import { paramCount } from '../model/config.js';
import { loadHfModelConfig } from '../io/hf.js';
import { createBackend } from '../kernels/registry.js';
import { readConfigFile } from '../train/config.js';
import { parseTaskNames } from '../eval/tasks/index.js';
import { addBackendOptions, backendName, intFlag, openBackend, progress, warn } from './common.js';

const collect = (v: string, prev: string[] = []) => [...prev, v];

function pipelineFlags(o: Record<string, any>): Record<string, unknown> {
  const f: Record<string, unknown> = {};
  if (o.text) f.text = o.text;
  if (o.valid) f.valid = o.valid;
  if (o.teacher) f.teacher = o.teacher;
  if (o.recipe) f.recipe = o.recipe;
  if (o.cache) f.cache = o.cache;
  if (o.tasks !== undefined) f.tasks = o.tasks === 'none' ? null : { names: parseTaskNames(o.tasks) };
  if (o.steps !== undefined) f.distill = { steps: o.steps };
  if (o.teacherSteps !== undefined) f.train = { steps: o.teacherSteps };
  return f;
}

const fmt = (x: number, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : '-');

/** The teacher-vs-student table printed at the end (stdout). */
export function summaryTable(r: PipelineResult): string {
  const tParams = paramCount(loadHfModelConfig(r.teacherDir)), tv = r.eval.teacher.valid, sv = r.eval.student.valid;
  const rows = [
    ['', 'teacher', 'student (export)', 'student / teacher'],
    ['size (bytes)', String(tParams * 4) + ' (fp32)', String(r.exportBytes), `${fmt((tParams * 4) / r.exportBytes, 1)}x smaller`],
    ['valid ppl', fmt(tv.ppl), fmt(sv.ppl), `${fmt(sv.ppl / tv.ppl, 3)}x`],
    ['valid top-1', fmt(tv.top1, 4), fmt(sv.top1, 4), `${fmt(100 * (sv.top1 - tv.top1), 2)} points`],
    ...(r.eval.teacher.test ? [['test ppl', fmt(r.eval.teacher.test.ppl), fmt(r.eval.student.test.ppl), `${fmt(r.eval.student.test.ppl / r.eval.teacher.test.ppl, 3)}x`]] : []),
    ...(r.tasks ? [['language tasks Perf (mean acc)', fmt(r.tasks.teacher.perf, 4), fmt(r.tasks.student.perf, 4),
      `${fmt(100 * (r.tasks.student.perf - r.tasks.teacher.perf), 2)} points`]] : []),
    ['decode tok/s (batch 1, 1 thread)', fmt(r.bench.teacher.decodeTokPerS, 0), fmt(r.bench.student.decodeTokPerS, 0),
      `${fmt(r.bench.student.decodeTokPerS / r.bench.teacher.decodeTokPerS, 1)}x faster`],
  ];
  const w = rows[0].map((_, j) => Math.max(...rows.map((row) => row[j].length)));
  const line = (row: string[]) => row.map((c, j) => (j === 0 ? c.padEnd(w[j]) : c.padStart(w[j]))).join('  ');
  return [line(rows[0]), w.map((n) => '-'.repeat(n)).join('  '), ...rows.slice(1).map(line)].join('\n') + '\n';
}

export function registerPipeline(program: Command): void {
  addBackendOptions(program.command('pipeline')
    .description('text (or a teacher) in; a tiny int8/sparse student, its export, evaluation, speed and report out (resumable)')
    .option('--config <file>', 'pipeline config (JSON or YAML); flags override it')
    .option('--text <path>', 'training text: a file or a folder of .txt files (repeatable); default: the Brown corpus', collect)
    .option('--valid <path>', 'held-out text (repeatable); default: the end of the training text', collect)
    .option('--teacher <dir>', 'an existing teacher (qkd or Hugging Face Llama/GPT-2 directory); default: train one')
    .option('--recipe <file>', `distillation recipe (default ${DEFAULT_RECIPE})`)
    .option('--steps <n>', 'distillation steps (overrides the recipe)', intFlag('--steps', 1))
    .option('--teacher-steps <n>', 'teacher training steps', intFlag('--teacher-steps', 1))
    .option('--cache <mode>', 'teacher-logit cache: auto, on or off')
    .option('--tasks <names>', 'language tasks of teacher and student (comma-separated, or none; default: all, 200 items each; docs/tasks.md)')
    .requiredOption('--out <dir>', 'output folder (a new one, or a previous pipeline output to continue)'))
    .action(async (o) => {
      const file = o.config ? readConfigFile(o.config) : {};
      const cfg = makePipelineConfig(file, pipelineFlags(o), o.config ?? 'flags');
      const be = await openBackend(o), t0 = performance.now();
      const log = (m: string) => process.stderr.write(`pipeline: ${m}\n`);
      let bar = progress('pipeline');
      try {
        const r = await runPipeline({
          out: o.out, cfg, be, info: log, benchBackend: () => createBackend(backendName(o), { threads: 1 }),
          hooks: (stage) => {
            bar = progress(`pipeline ${stage}`, ' | loss {loss}');
            return {
              onInfo: (m) => log(`${stage}: ${m}`),
              onStep: (p) => bar.update(p.step, p.steps, { loss: p.loss.toFixed(4) }),
              onEval: (e) => { bar.stop(); log(`${stage}: step ${e.step}: valid ppl ${e.result.ppl.toFixed(3)}${e.best ? ' (best)' : ''}`); },
            };
          },
        });
        bar.stop();
        process.stdout.write(summaryTable(r));
        process.stdout.write(`report: ${r.report}\n`);
        process.stdout.write(`output: ${r.out} (export: ${join(r.out, 'export')}); ran ${r.ran.join(', ') || 'nothing'}` +
          `${r.skipped.length ? `, skipped ${r.skipped.join(', ')}` : ''} in ${((performance.now() - t0) / 1000).toFixed(0)} s\n`);
      } catch (e) {
        bar.stop();
        if (e instanceof Interrupted) { warn(`pipeline stopped: ${e.message}; run the same command again to resume`); process.exitCode = 130; return; }
        throw e;
      } finally {
        await be.dispose();
      }
    });
}
