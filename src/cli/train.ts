/** `qkd train` and `qkd tokenizer`: flags -> partial config -> validate -> run. */
import type { Command } from 'commander';
import { trainBpe } from '../data/bpe.js';
import { brownSplitText } from '../data/brown.js';
import { textPiecesOf } from '../data/text.js';
import { checkOutDir, prepareOutDir, writeOutputDir } from '../io/outdir.js';
import { QkdError } from '../tensor/errors.js';
import { makeTrainConfig, readConfigFile } from '../train/config.js';
import { train } from '../train/trainer.js';
import { addBackendOptions, floatFlag, intFlag, runTrainingJob } from './common.js';

const collect = (v: string, prev: string[] = []) => [...prev, v];

/** Data flags -> the config's `data` field (undefined when no data flag was given). */
export function dataFromFlags(o: { text?: string[]; valid?: string[]; validFraction?: number }): object | undefined {
  if (!o.text) return undefined;
  return { kind: 'text', paths: o.text, ...(o.valid ? { valid: o.valid } : {}), ...(o.validFraction ? { validFraction: o.validFraction } : {}) };
}

/** The run, data and optimisation flags `train` and `distill` share. */
export function addRunOptions(cmd: Command, defaultOut: string): Command {
  return cmd
    .option('--out <dir>', 'run directory', defaultOut)
    .option('--resume', 'continue the run in --out from its last checkpoint')
    .option('--force', 'replace the previous run of the same kind in --out (never another folder)')
    .option('--text <path>', 'training text: a file or a directory of .txt files (repeatable); default: Brown', collect)
    .option('--valid <path>', 'validation text (repeatable); default: the end of the training text', collect)
    .option('--valid-fraction <f>', 'fraction of the text held out for validation', floatFlag('--valid-fraction', 0, 1))
    .option('--steps <n>', 'optimizer steps', intFlag('--steps', 1))
    .option('--batch <n>', 'sequences per step', intFlag('--batch', 1))
    .option('--micro-batch <n>', 'sequences per forward pass (gradient accumulation)', intFlag('--micro-batch', 1))
    .option('--context <n>', 'tokens per sequence', intFlag('--context', 2))
    .option('--lr <x>', 'peak learning rate', floatFlag('--lr', 0))
    .option('--min-lr-ratio <x>', 'final learning rate as a fraction of the peak', floatFlag('--min-lr-ratio', 0, 1))
    .option('--warmup <n>', 'warm-up steps', intFlag('--warmup', 0))
    .option('--weight-decay <x>', 'AdamW weight decay', floatFlag('--weight-decay', 0))
    .option('--clip <x>', 'gradient clipping norm (0 = off)', floatFlag('--clip', 0))
    .option('--seed <n>', 'random seed', intFlag('--seed', 0))
    .option('--eval-every <n>', 'evaluate every N steps (0 = at the end)', intFlag('--eval-every', 0))
    .option('--eval-windows <n>', 'validation windows per evaluation (0 = all)', intFlag('--eval-windows', 0))
    .option('--eval-context <n>', 'tokens per validation window (default 256; the validation text must hold one)', intFlag('--eval-context', 2))
    .option('--checkpoint-every <n>', 'checkpoint every N steps', intFlag('--checkpoint-every', 0));
}

const RUN_KEYS = ['steps', 'batch', 'microBatch', 'context', 'lr', 'minLrRatio', 'warmup', 'weightDecay', 'clip', 'seed',
  'evalEvery', 'evalWindows', 'evalContext', 'checkpointEvery'];

/** --out of a run: the rule of io/outdir.ts (a new, empty or same-kind folder, never an input). */
export function prepareRunOut(kind: 'train' | 'distill', o: { out: string; force?: boolean; resume?: boolean },
  inputs: (string | null | undefined)[]): void {
  if (o.force && o.resume) throw new QkdError('E_CONFIG', '--force and --resume: pass one (start over, or continue)');
  prepareOutDir(o.out, { kind, force: !!o.force, resume: !!o.resume, inputs });
}

/** The files a data config reads. */
export function dataInputs(data: { kind: string; paths?: string[]; valid?: string[] }): string[] {
  return data.kind === 'text' ? [...(data.paths ?? []), ...(data.valid ?? [])] : [];
}

/** Only the flags the user gave among `keys` (+ the shared run flags), mapped onto config keys. */
export function pickFlags(o: Record<string, any>, keys: string[]): Record<string, unknown> {
  const f: Record<string, unknown> = {};
  for (const k of [...RUN_KEYS, ...keys]) if (o[k] !== undefined) f[k] = o[k];
  const data = dataFromFlags(o);
  if (data) f.data = data;
  return f;
}

/** Only the flags the user gave, mapped onto config keys. */
function trainFlags(o: Record<string, any>): Record<string, unknown> {
  const f = pickFlags(o, ['tokenizer', 'vocabSize', 'saveDtype']);
  if (o.preset) f.model = { preset: o.preset };
  return f;
}

export function registerTrain(program: Command): void {
  addRunOptions(addBackendOptions(program.command('train')
    .description('train a float teacher from text (default: the built-in Brown corpus)')
    .option('--config <file>', 'training config (JSON or YAML); flags override it')
    .option('--preset <name>', 'model preset (teacher-small, teacher-fixture, anchor-student, student)')
    .option('--tokenizer <path>', 'use this tokenizer.json instead of training one')
    .option('--vocab-size <n>', 'vocabulary of the trained tokenizer', intFlag('--vocab-size', 1))
    .option('--save-dtype <t>', 'weight dtype of the saved model: F32, BF16, F16')), 'runs/teacher')
    .action(async (o) => {
      const file = o.config ? readConfigFile(o.config) : {};
      const cfg = makeTrainConfig(file, trainFlags(o), o.config ?? 'flags');
      prepareRunOut('train', o, [o.config, cfg.tokenizer, ...dataInputs(cfg.data)]);
      await runTrainingJob('train', o, (be, hooks) => train(cfg, be, o.out, !!o.resume, hooks));
    });

  program.command('tokenizer')
    .description('train a byte-level BPE tokenizer (tokenizer.json) on text (default: Brown train)')
    .option('--text <path>', 'a file or a directory of .txt files (repeatable)', collect)
    .option('--vocab-size <n>', 'vocabulary size', intFlag('--vocab-size', 1), 2048)
    .requiredOption('--out <dir>', 'output directory (new or empty; --force replaces an earlier tokenizer output)')
    .option('--force', 'replace the tokenizer output in --out (never another folder)')
    .action((o) => {
      const req = { kind: 'tokenizer' as const, force: !!o.force, inputs: o.text ?? [] };
      checkOutDir(o.out, req); // before the work: a refused --out costs nothing
      const texts = o.text ? textPiecesOf(o.text) : [brownSplitText('train')];
      const t0 = performance.now();
      const json = trainBpe(texts, { vocabSize: o.vocabSize });
      writeOutputDir(o.out, req, { 'tokenizer.json': JSON.stringify(json) });
      process.stderr.write(`tokenizer: vocab ${o.vocabSize} in ${((performance.now() - t0) / 1000).toFixed(1)} s -> ${o.out}/tokenizer.json\n`);
    });
}
