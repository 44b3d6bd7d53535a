/** `qkd distill` and `qkd teacher-cache`: flags -> recipe -> validate -> run. */
import { Option, type Command } from 'commander';
import { loadTokenizer } from '../data/tokenizer-node.js';
import { makeDistillConfig } from '../distill/config.js';
import { parseTaskNames } from '../eval/tasks/index.js';
import { distill } from '../distill/distill.js';
import { buildTeacherCache } from '../distill/teacher.js';
import { DEFAULT_QUEUE, parseShard, type CacheBuildRequest } from '../distill/teacher-cache-job.js';
import { DEFAULT_LOGIT_DTYPE, LOGIT_DTYPES } from '../io/teacher-cache-format.js';
import { mergeShards } from '../io/teacher-cache-merge.js';
import { writeCachePlan } from '../distill/teacher-cache-plan.js';
import { submitFromFlags } from './worker.js';
import { DataSchema, readConfigFile } from '../train/config.js';
import { QkdError } from '../tensor/errors.js';
import { addBackendOptions, floatFlag, intFlag, openBackend, progress, runTrainingJob } from './common.js';
import { prepareOutDir } from '../io/outdir.js';
import { addRunOptions, dataFromFlags, dataInputs, pickFlags, prepareRunOut } from './train.js';

const collect = (v: string, prev: string[] = []) => [...prev, v];

/** --student-config: a preset name or a JSON/YAML file with {preset, ...overrides}. */
function studentFlag(v: string | undefined): object | undefined {
  if (v === undefined) return undefined;
  return /\.(json|ya?ml)$/i.test(v) ? readConfigFile(v) : { preset: v };
}

function distillFlags(o: Record<string, any>): Record<string, unknown> {
  const f = pickFlags(o, ['teacher', 'teacherCache', 'epochs', 'alpha', 'tau', 'lambda', 'kl', 'attnTopK']);
  if (o.evalTasks !== undefined) f.evalTasks = parseTaskNames(o.evalTasks);
  const student = studentFlag(o.studentConfig);
  if (student) f.student = student;
  if (o.bits !== undefined || o.scheme !== undefined || o.actBits !== undefined) {
    f.quant = o.bits === 0 ? null : { ...(o.bits !== undefined ? { bits: o.bits } : {}),
      ...(o.scheme ? { scheme: o.scheme } : {}), ...(o.actBits !== undefined ? { actBits: o.actBits } : {}) };
  }
  if (o.sparsity !== undefined || o.granularity !== undefined) {
    f.sparsity = o.sparsity === 0 ? null : { ...(o.sparsity !== undefined ? { target: o.sparsity } : {}),
      ...(o.granularity ? granularity(o.granularity) : {}) };
  }
  return f;
}

/** `unstructured`, `block4` (1 x 4 blocks), `2:4` (N:M). */
function granularity(v: string): object {
  if (v === 'unstructured') return { granularity: 'unstructured' };
  let m = /^block(\d+)$/.exec(v);
  if (m) return { granularity: 'block', block: Number(m[1]) };
  m = /^(\d+):(\d+)$/.exec(v);
  if (m) return { granularity: 'nm', n: Number(m[1]), m: Number(m[2]) };
  throw new QkdError('E_CONFIG', `--granularity: expected unstructured, blockK (e.g. block4) or N:M (e.g. 2:4), got '${v}'`);
}

export function registerDistill(program: Command): void {
  addRunOptions(addBackendOptions(program.command('distill')
    .description('train a quantized, sparse student from a teacher (knowledge distillation)')
    .option('--config <file>', 'recipe (JSON or YAML); flags override it')
    .option('--teacher <dir>', 'teacher model directory (trained by qkd or a Hugging Face Llama/GPT-2)')
    .option('--teacher-cache <dir>', 'teacher-logit cache from `qkd teacher-cache` (instead of a live teacher)')
    .option('--student-config <preset|file>', 'student preset (anchor-student, student, ...) or JSON/YAML {preset, ...}')
    .option('--bits <n>', 'weight bits 2..8 (0 = float student)', intFlag('--bits', 0))
    .option('--act-bits <n>', 'per-token activation bits of linear inputs (0 = off)', intFlag('--act-bits', 0))
    .option('--scheme <s>', 'quantization scales: maxabs or lsq (learned)')
    .option('--sparsity <s>', 'target sparsity of the attention/FFN matrices in [0, 1)', floatFlag('--sparsity', 0, 0.999999))
    .option('--granularity <g>', 'unstructured, blockK (1 x K along the input) or N:M')
    .option('--alpha <a>', 'weight of the label cross-entropy', floatFlag('--alpha', 0, 1))
    .option('--tau <t>', 'distillation temperature', floatFlag('--tau', 1e-6))
    .option('--lambda <l>', 'entropy bonus', floatFlag('--lambda', 0))
    .option('--kl <dir>', 'forward (teacher||student) or reverse')
    .option('--eval-tasks <names>', 'language tasks scored at each evaluation (comma-separated; docs/tasks.md)')
    .option('--attn-top-k <k>', 'sparse attention: keep the top-k scores per query', intFlag('--attn-top-k', 0))
    .option('--epochs <n>', 'epochs over the training windows (instead of --steps)', floatFlag('--epochs', 1e-6))), 'runs/student')
    .action(async (o) => {
      const file = o.config ? readConfigFile(o.config) : {};
      const cfg = makeDistillConfig(file, distillFlags(o), o.config ?? 'flags');
      prepareRunOut('distill', o, [o.config, o.studentConfig, cfg.teacher, cfg.teacherCache, ...dataInputs(cfg.data)]);
      await runTrainingJob('distill', o, (be, hooks) => distill(cfg, be, o.out, !!o.resume, hooks), (s) => {
        const sp = Object.values(s.sparsity);
        return sp.length ? `, sparsity ${Math.min(...sp).toFixed(4)}..${Math.max(...sp).toFixed(4)}` : '';
      });
    });

  const cache = addBackendOptions(program.command('teacher-cache')
    .description("store the teacher's logits (all, or the top-k) for every training window once (resumable; sharded, queued: docs/scale.md)")
    .enablePositionalOptions()
    .option('--config <file>', 'a distillation recipe: teacher, data, context and tau default to its values')
    .option('--teacher <dir>', 'teacher model directory')
    .option('--out <dir>', 'cache directory (required, except with --plan; a partial cache there is resumed; --force starts it over)')
    .option('--force', 'replace the teacher cache in --out (never another folder)')
    .option('--text <path>', 'training text (repeatable); default Brown', collect)
    .option('--valid-fraction <f>', 'fraction of the text held out for validation (as in the recipe)', floatFlag('--valid-fraction', 0, 1))
    .option('--context <n>', 'tokens per window (must equal the distillation context)', intFlag('--context', 2))
    .option('--k <n|all>', 'all: every logit (the live teacher\'s distribution; T·V·2 bytes per window), or the top-n '
      + 'per position (smaller, lossy at tau > 1)', (v: string) => (v === 'all' ? 'all' : intFlag('--k', 1)(v)), 'all')
    .option('--tau <list>', 'temperatures to store log-sum-exps for (comma-separated; default the recipe tau or 2)')
    .option('--logit-dtype <dtype>', 'storage of the logits: f16 (default), int8 (half the bytes; docs/scale.md) or f32')
    .addOption(new Option('--logits <dtype>', 'alias of --logit-dtype').hideHelp())
    .option('--batch <n>', 'windows per teacher forward', intFlag('--batch', 1), 16)
    .option('--shard <I/N>', 'only shard I of N (0-based) of the windows; `qkd teacher-cache merge` joins the N shard folders')
    .option('--queue <url>', 'enqueue the build on a BullMQ queue at redis://HOST:PORT for `qkd worker`s (no teacher runs here)')
    .option('--shards <n>', 'shard jobs of a --queue build', intFlag('--shards', 1), 16)
    .option('--queue-name <name>', 'BullMQ queue name', DEFAULT_QUEUE)
    .option('--attempts <n>', 'tries per queued job that fails', intFlag('--attempts', 1), 3)
    .option('--no-wait', 'with --queue: return once the jobs are queued')
    .option('--plan <dir>', 'write only the plan (header + token stream) for another writer, e.g. tools/teacher_cache_writer.py (docs/teacher-cache.md)'))
    .action(async (o) => {
      if (!o.out && !o.plan) throw new QkdError('E_CONFIG', '--out: required (the cache directory)');
      if (o.queue && o.shard) throw new QkdError('E_CONFIG', '--shard and --queue: choose one (a queued build makes its own shards)');
      const request = cacheRequest(o), shard = o.shard ? parseShard(o.shard) : null, tok = loadTokenizer(request.teacher);
      if (o.plan) {
        const p = writeCachePlan(o.plan, request, tok, shard);
        process.stderr.write(`teacher-cache: plan of windows ${p.first}..${p.end - 1} of ${p.windows} (${p.header.recordBytes} bytes each) -> ${o.plan}\n`);
        return;
      }
      if (o.queue) return submitFromFlags(o, request, tok);
      prepareOutDir(o.out, { kind: 'teacher-cache', force: !!o.force, resume: true,
        inputs: [o.config, request.teacher, ...dataInputs(request.data)] });
      const be = await openBackend(o);
      const bar = progress('teacher-cache', ' windows');
      try {
        const r = await buildTeacherCache({ ...request, out: o.out, shard, onProgress: (d, t) => bar.update(d, t) }, be, tok,
          (w, bytes) => process.stderr.write(`teacher-cache: ${w} windows${shard ? ` (shard ${shard.index}/${shard.count})` : ''}, ${(bytes / 2 ** 30).toFixed(2)} GiB on disk\n`));
        bar.stop();
        process.stderr.write(`teacher-cache: ${r.windows} windows in ${r.seconds.toFixed(1)} s -> ${o.out}\n`);
      } finally {
        bar.stop();
        await be.dispose();
      }
    });

  cache.command('merge')
    .description('merge the shard folders of `qkd teacher-cache --shard I/N` (all N of them) into one cache')
    .requiredOption('--out <dir>', 'the merged cache directory (must not exist)')
    .argument('<shard-dirs...>', 'the shard folders, in any order')
    .action((dirs: string[], o: { out: string }) => {
      const r = mergeShards(o.out, dirs, undefined);
      process.stderr.write(`teacher-cache merge: ${r.windows} windows, ${(r.bytes / 2 ** 30).toFixed(3)} GiB ${
        r.already ? '(already merged)' : `in ${r.seconds.toFixed(1)} s`} -> ${o.out}\n`);
    });
}

/** The build a teacher-cache command line asks for (flags over its --config recipe). */
function cacheRequest(o: Record<string, any>): CacheBuildRequest {
  const recipe = o.config ? makeDistillConfig(readConfigFile(o.config), {}, o.config) : null;
  const teacher: string | undefined = o.teacher ?? recipe?.teacher;
  if (!teacher) throw new QkdError('E_CONFIG', '--teacher: required (or a --config recipe naming the teacher)');
  const taus = String(o.tau ?? recipe?.tau ?? 2).split(',').map((t: string) => floatFlag('--tau', 1e-6)(t));
  const logitDtype = o.logitDtype ?? o.logits ?? DEFAULT_LOGIT_DTYPE;
  if (!LOGIT_DTYPES.includes(logitDtype)) throw new QkdError('E_CONFIG', `--logit-dtype: expected ${LOGIT_DTYPES.join(', ')}, got '${logitDtype}'`);
  const parsed = DataSchema.safeParse(dataFromFlags(o) ?? recipe?.data ?? { kind: 'brown' });
  if (!parsed.success) throw new QkdError('E_CONFIG', `teacher-cache data: ${parsed.error.issues.map((i) => i.message).join('; ')}`);
  return { teacher, data: parsed.data, context: o.context ?? recipe?.context ?? 128, k: o.k, taus, logitDtype, batch: o.batch };
}
