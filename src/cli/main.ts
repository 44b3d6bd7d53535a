#!/usr/bin/env node
/** The `qkd` command: flags -> config -> run. The only place errors become exit codes. */
import { Command, CommanderError } from 'commander';
import { QkdError } from '../tensor/errors.js';
import { registerInfer, registerInspect } from './infer.js';
import { registerTrain } from './train.js';
import { registerDistill } from './distill.js';
import { registerExport } from './export.js';
import { registerPipeline } from './pipeline.js';
import { registerTasks } from './tasks.js';
import { registerReport } from './report.js';
import { registerWorker } from './worker.js';

/** Exit codes: 1 internal error, 2 bad flags/config/input, 3 missing or corrupt file. */
function exitCode(e: unknown): number {
  if (e instanceof QkdError) {
    if (e.code === 'E_MISSING' || e.code === 'E_FORMAT') return 3;
    if (e.code === 'E_INTERNAL') return 1;
    return 2;
  }
  return 1;
}

export async function main(argv: string[]): Promise<number> {
  const program = new Command('qkd')
    .description('quantized, sparse knowledge distillation of small language models')
    .exitOverride()
    .enablePositionalOptions() // `qkd teacher-cache merge --out ...`: the subcommand's flags stay its own
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  registerInfer(program);
  registerInspect(program);
  registerTrain(program);
  registerDistill(program);
  registerExport(program);
  registerPipeline(program);
  registerTasks(program);
  registerReport(program);
  registerWorker(program);
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2;
    if (e instanceof QkdError) process.stderr.write(`qkd: error: ${e.message}\n`);
    else process.stderr.write(`qkd: internal error: ${(e as Error)?.stack ?? String(e)}\n`);
    return exitCode(e);
  }
}

main(process.argv).then((code) => { if (code !== 0) process.exitCode = code; });
