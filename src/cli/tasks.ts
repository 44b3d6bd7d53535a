/** `qkd tasks`: zero-shot language tasks (Acc per task, Perf over them) of a model or a qkd-int8 export. */
import type { Command } from 'commander';
import { loadTokenizer } from '../data/tokenizer-node.js';
import { buildSuite, evaluateTasks, parseTaskNames, type TasksResult } from '../eval/tasks/index.js';
import { withModel } from './infer.js';
import { addBackendOptions, intFlag, progress } from './common.js';

const pm = (x: number, se: number) => `${x.toFixed(4)} ± ${se.toFixed(4)}`;

function printText(r: TasksResult): void {
  const rows = Object.entries(r.tasks).map(([name, t]) => [
    name, String(t.n), String(t.chance), pm(t.acc, t.stderr),
    t.acc_norm === null ? (t.ll !== undefined ? `ll ${t.ll.toFixed(4)}  ppl ${t.ppl!.toFixed(1)}` : '-') : pm(t.acc_norm, t.stderr_norm ?? 0),
  ]);
  const head = ['task', 'n', 'chance', 'acc ± stderr', 'acc_norm ± stderr'];
  const w = head.map((h, j) => Math.max(h.length, ...rows.map((x) => x[j].length)));
  const line = (cells: string[]) => cells.map((c, j) => c.padEnd(w[j])).join('  ').trimEnd() + '\n';
  process.stdout.write(line(head));
  for (const row of rows) process.stdout.write(line(row));
  if (r.lm) {
    process.stdout.write(`lm: bits/byte ${r.lm.bits_per_byte.toFixed(4)} ± ${r.lm.stderr.toFixed(4)}  word ppl ${r.lm.word_perplexity.toFixed(2)}` +
      `  byte ppl ${r.lm.byte_perplexity.toFixed(4)}  (${r.lm.n} chunks, ${r.lm.bytes} bytes, ${r.lm.words} words)\n`);
  }
  if (r.perf !== null) process.stdout.write(`perf ${r.perf.toFixed(4)} (mean acc over the multiple-choice tasks)\n`);
  process.stdout.write(`suite ${r.hash} (${r.source})\n`);
}

export function registerTasks(program: Command): void {
  addBackendOptions(program.command('tasks')
    .description('zero-shot language tasks by log-likelihood (cloze, next sentence, minimal pairs, bits per byte) on held-out text')
    .requiredOption('--model <dir>', 'model directory (config.json, model.safetensors, tokenizer.json) or a qkd-int8 export')
    .option('--tasks <names>', 'comma-separated tasks (cloze,next-sentence,agr-det-noun,agr-subj-verb,word-order,hypernym,lm); default all')
    .option('--text <paths...>', 'held-out text files or directories of .txt files (default: the Brown test split)')
    .option('--limit <n>', 'at most n items per task', intFlag('--limit', 1))
    .option('--seed <n>', 'seed of the suite (which items are drawn)', intFlag('--seed', 0), 0)
    .option('--tokenizer <path>', 'tokenizer.json (file or directory); default: the model directory')
    .option('--batch-tokens <n>', 'tokens per forward pass', intFlag('--batch-tokens', 1), 2048)
    .option('--json', 'print one JSON object {tasks: {name: {acc, acc_norm, stderr, n, chance, ...}}, lm, perf, hash}'))
    .action(async (o) => {
      const t0 = performance.now();
      const suite = buildSuite({ limit: o.limit, seed: o.seed, ...(o.tasks ? { tasks: parseTaskNames(o.tasks) } : {}) }, { text: o.text });
      const buildSecs = (performance.now() - t0) / 1000;
      process.stderr.write(`tasks: suite ${suite.hash} from ${suite.source} in ${buildSecs.toFixed(1)} s: ` +
        `${suite.tasks.map((t) => `${t.name} ${t.items.length}`).join(', ')}\n`);
      const tokenizer = loadTokenizer(o.tokenizer ?? o.model);
      await withModel(o.model, o, ({ model }) => {
        const bar = progress('tasks', ' requests'), t1 = performance.now();
        const r = evaluateTasks(model, suite, { tokenizer, batchTokens: o.batchTokens, onProgress: (d, t) => bar.update(d, t) });
        bar.stop();
        process.stderr.write(`tasks: evaluated in ${((performance.now() - t1) / 1000).toFixed(1)} s\n`);
        if (o.json) process.stdout.write(JSON.stringify(r) + '\n');
        else printText(r);
      });
    });
}
