/** `qkd eval`, `qkd logits`, `qkd generate`: inference commands over a model directory. */
import { statSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { encodeTextFile } from '../data/text.js';
import { checkTokenizerFits, type QkdTokenizer } from '../data/tokenizer.js';
import { loadTokenizer, resolveTokenizerPath } from '../data/tokenizer-node.js';
import { checkOutFile } from '../io/outdir.js';
import { evaluate, positionRangeBounds } from '../eval/perplexity.js';
import { writeFileAtomic } from '../io/atomic.js';
import { loadModel } from '../io/load-model.js';
import type { Transformer } from '../model/transformer.js';
import { EXPORT_FILES, isExportDir, resolveModelDir } from '../io/export.js';
import { checkpointBytes } from '../io/hf-checkpoint.js';
import { checkForwardMemory } from '../model/limits.js';
import { loadInt8Model } from '../runtime/int8-node.js';
import type { CausalLM } from '../runtime/generate.js';
import { loadHfModel } from '../io/hf.js';
import { paramLayout } from '../model/config.js';
import { compressionReport } from '../eval/compression.js';
import { readSavedScales } from '../io/quant-scales.js';
import { checkGenerateRequest, generateIds } from '../runtime/generate.js';
import { addBackendOptions, floatFlag, intFlag, openBackend, parseIds, progress, warn, type BackendFlags } from './common.js';

/** A float model directory (Transformer) or a qkd-int8 export (Int8Transformer, integer kernels). */
export async function withModel<T>(dir: string, flags: BackendFlags,
  fn: (m: { model: CausalLM; fits: (where: string, B: number, T: number, cacheT?: number) => void }) => Promise<T> | T): Promise<T> {
  const be = await openBackend(flags);
  try {
    let model: CausalLM & { dispose(): void }, weightBytes: number;
    if (isExportDir(dir)) {
      weightBytes = statSync(join(dir, EXPORT_FILES.model)).size;
      const loaded = loadInt8Model(dir, be);
      for (const w of loaded.warnings) warn(w);
      model = loaded.model;
    } else {
      const loaded = loadModel(dir, be);
      for (const w of loaded.warnings) warn(w);
      model = loaded.model;
      weightBytes = checkpointBytes(dir)?.bytes ?? 0;
    }
    // activations of the forward the command is about to run, within the model's memory budget
    const fits = (where: string, B: number, T: number, cacheT = 0) =>
      checkForwardMemory(model.config, where, B, Math.min(T, model.config.maxPos), weightBytes, Math.min(cacheT, model.config.maxPos));
    try { return await fn({ model, fits }); } finally { model.dispose(); }
  } finally {
    await be.dispose();
  }
}

/** The tokenizer of a command (--tokenizer, else the model's) and the file it came from, for messages. */
function commandTokenizer(o: { tokenizer?: string; model: string }): { tok: QkdTokenizer; path: string } {
  const path = resolveTokenizerPath(o.tokenizer ?? o.model);
  return { tok: loadTokenizer(path), path };
}

export function registerInfer(program: Command): void {
  addBackendOptions(program.command('eval')
    .description('perplexity / top-1 of a model on a text file (fixture protocol: non-overlapping windows)')
    .requiredOption('--model <dir>', 'model directory (config.json, model.safetensors, tokenizer.json) or a qkd-int8 export (a run or pipeline folder: its model)', resolveModelDir)
    .requiredOption('--text <file>', 'UTF-8 text file')
    .option('--tokenizer <path>', 'tokenizer.json (file or directory); default: the model directory')
    .option('--context <n>', 'window length in tokens', intFlag('--context', 2), 256)
    .option('--batch <n>', 'windows per forward pass', intFlag('--batch', 1), 8)
    .option('--by-position <n>', 'also report each of n equal ranges of window positions (does quality hold deep into the window?)',
      intFlag('--by-position', 1))
    .option('--json', 'print one JSON object {ppl, nll, top1, tokens[, byPosition]} on stdout'))
    .action(async (o) => {
      if (o.byPosition !== undefined) positionRangeBounds(o.context, o.byPosition, { ranges: '--by-position', context: '--context' });
      const { tok, path } = commandTokenizer(o);
      await withModel(o.model, o, ({ model, fits }) => {
        checkTokenizerFits(tok, model.config.vocabSize, path);
        const ids = encodeTextFile(tok, o.text); // streamed in bounded pieces: memory follows the token count
        fits('eval', Math.max(1, Math.min(o.batch, Math.floor(ids.length / o.context))), o.context);
        const bar = progress('eval', ' windows');
        const t0 = performance.now();
        // evaluate only uses the CausalLM members (config, backend, forward)
        const r = evaluate(model, ids, { context: o.context, batch: o.batch, positionRanges: o.byPosition, onProgress: (d, t) => bar.update(d, t) });
        bar.stop();
        const secs = (performance.now() - t0) / 1000;
        if (o.json) process.stdout.write(JSON.stringify(r) + '\n');
        else {
          process.stdout.write(`ppl ${r.ppl.toFixed(4)}  nll ${r.nll.toFixed(6)}  top1 ${r.top1.toFixed(4)}  tokens ${r.tokens}\n`);
          for (const p of r.byPosition ?? []) {
            process.stdout.write(`  positions ${p.from}..${p.to - 1}: ppl ${p.ppl.toFixed(4)}  top1 ${p.top1.toFixed(4)}  tokens ${p.tokens}\n`);
          }
        }
        process.stderr.write(`eval: ${r.tokens} tokens in ${secs.toFixed(1)} s (${(r.tokens / secs).toFixed(0)} tokens/s)\n`);
      });
    });

  addBackendOptions(program.command('logits')
    .description('raw little-endian float32 logits, shape [number of ids, vocab], for one sequence of ids')
    .requiredOption('--model <dir>', 'model directory or a qkd-int8 export (a run or pipeline folder: its model)', resolveModelDir)
    .requiredOption('--ids <list>', 'comma-separated token ids')
    .requiredOption('--out <file>', 'output file'))
    .action(async (o) => {
      const ids = parseIds('--ids', o.ids);
      checkOutFile(o.out, [o.model]);
      await withModel(o.model, o, ({ model, fits }) => {
        fits('logits', 1, ids.length);
        const logits = model.forward(ids, 1, ids.length);
        const bytes = new Uint8Array(logits.length * 4);
        new Float32Array(bytes.buffer).set(logits);
        writeFileAtomic(o.out, bytes);
      });
    });

  addBackendOptions(program.command('generate')
    .description('continue a prompt; prints the text')
    .requiredOption('--model <dir>', 'model directory or a qkd-int8 export (a run or pipeline folder: its model)', resolveModelDir)
    .requiredOption('--prompt <text>', 'prompt text')
    .option('--tokenizer <path>', 'tokenizer.json (file or directory); default: the model directory')
    .option('--max-new-tokens <n>', 'tokens to generate (prompt + new tokens must fit the model\'s context)', intFlag('--max-new-tokens', 1), 64)
    .option('--greedy', 'always take the most likely token')
    .option('--temperature <t>', 'sampling temperature', floatFlag('--temperature', 0), 1)
    .option('--top-k <k>', 'sample among the k most likely tokens', intFlag('--top-k', 0), 0)
    .option('--top-p <p>', 'nucleus sampling mass', floatFlag('--top-p', 0, 1), 1)
    .option('--repetition-penalty <r>', 'penalty (> 0) for tokens already present', floatFlag('--repetition-penalty', 0, Infinity, true), 1)
    .option('--seed <n>', 'sampling seed', intFlag('--seed', 0), 0))
    .action(async (o) => {
      const { tok, path } = commandTokenizer(o);
      const prompt = tok.encode(o.prompt);
      await withModel(o.model, o, ({ model, fits }) => {
        const stopIds = tok.eosId !== null && tok.eosId !== undefined ? [tok.eosId] : [];
        const opts = { maxNewTokens: o.maxNewTokens, greedy: o.greedy, temperature: o.temperature, topK: o.topK, topP: o.topP,
          repetitionPenalty: o.repetitionPenalty, seed: o.seed, stopIds };
        // every check before the first byte of output: a refused request prints nothing
        checkTokenizerFits(tok, model.config.vocabSize, path);
        checkGenerateRequest(model.config, prompt.length, opts);
        fits('generate', 1, prompt.length, prompt.length + o.maxNewTokens);
        const out: number[] = [];
        process.stdout.write(o.prompt);
        let printed = '';
        for (const id of generateIds(model, prompt, opts)) {
          if (stopIds.includes(id)) break;
          out.push(id);
          // decode the whole continuation so multi-byte characters split across tokens print correctly
          const text = tok.decode(out);
          if (!text.endsWith('\uFFFD')) { process.stdout.write(text.slice(printed.length)); printed = text; }
        }
        process.stdout.write(tok.decode(out).slice(printed.length) + '\n');
      });
    });
}

export function registerInspect(program: Command): void {
  program.command('inspect')
    .description('architecture, parameter count, sparsity and quantization-grid check of a model directory')
    .requiredOption('--model <dir>', 'model directory (a run or pipeline folder: its model)', resolveModelDir)
    .option('--json', 'print the report as JSON')
    .action((o) => {
      const hf = loadHfModel(o.model);
      const shapes = new Map(paramLayout(hf.config).map((p) => [p.name, p.shape]));
      const r = compressionReport(hf.config, hf.tensors, shapes, readSavedScales(o.model));
      const summary = {
        family: hf.config.family, params: r.params, dtype: hf.dtype, quant: hf.config.quant, sparsity: hf.config.sparsity,
        overallSparsity: r.overallSparsity, minSparsity: r.minSparsity, maxSparsity: r.maxSparsity, offGrid: r.offGrid,
        bitsIfPacked: r.bits, matrices: r.matrices,
      };
      if (o.json) { process.stdout.write(JSON.stringify(summary) + '\n'); return; }
      process.stdout.write(`${hf.config.family}: ${r.params} parameters stored as ${hf.dtype}; ` +
        `quant ${JSON.stringify(hf.config.quant)}; sparsity ${JSON.stringify(hf.config.sparsity)}\n`);
      for (const m of r.matrices) {
        process.stdout.write(`  ${m.name.padEnd(28)} ${`${m.rows}x${m.cols}`.padEnd(10)} bits ${m.bits || '-'}  sparsity ${m.sparsity.toFixed(4)}  off-grid ${m.offGrid}\n`);
      }
      process.stdout.write(`pruned matrices: sparsity ${r.minSparsity.toFixed(4)}..${r.maxSparsity.toFixed(4)} (overall ${r.overallSparsity.toFixed(4)}); off-grid weights ${r.offGrid}\n`);
    });
}
