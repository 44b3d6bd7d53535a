/**
 * `qkd distill`: Distillation(student, teacher, dataset, epochs, τ, α). Each step: the teacher's
 * distribution (TeacherModel: live forward, or the teacher-logit cache), the StudentModel's forward
 * with fake-quantized, masked weights and quantized activations, the DistillationLoss
 * α·CE + (1−α)·τ²·KL − λ·H, backward with straight-through / LSQ gradients, clipping, AdamW, masks
 * re-applied and updated on the cubic schedule. Run directory, checkpoints, best model and exact
 * resume are the training session's (train/session.ts), shared with `qkd train`.
 */
import type { Backend } from '../kernels/backend.js';
import { WindowSampler, loadTokenData } from '../data/dataset.js';
import { loadTokenizer } from '../data/tokenizer-node.js';
import type { QkdTokenizer } from '../data/tokenizer.js';
import { evaluate } from '../eval/perplexity.js';
import { buildSuite, evaluateTasks, type TasksResult } from '../eval/tasks/index.js';
import { writeFileAtomic } from '../io/atomic.js';
import { loadHfModel, loadHfModelConfig, saveHfModel } from '../io/hf.js';
import type { ModelPreset } from '../model/presets.js';
import { encodeScales } from '../io/quant-scales.js';
import { SCALES_FILE } from '../model/compression.js';
import { initParams } from '../model/init.js';
import { StudentModel } from '../model/student.js';
import { Transformer } from '../model/transformer.js';
import { scheduleFromFractions, sparsityAt, isMaskUpdateStep, type PruneSchedule } from '../sparse/schedule.js';
import { QkdError } from '../tensor/errors.js';
import { resolveModel, TEACHER_PRESET } from '../train/config.js';
import { AdamW, clipFactor } from '../train/optim.js';
import { RunDir } from '../train/run.js';
import { lrAt } from '../train/schedule.js';
import { runSession, type TrainHooks, type TrainSummary } from '../train/session.js';
import { checkRunPlan } from '../train/guard.js';
import { paramCount } from '../model/config.js';
import type { DistillConfig } from './config.js';
import { distillationLoss, type TeacherDist } from './loss.js';
import { openTeacher } from './teacher.js';
import { join } from 'node:path';

export interface DistillSummary extends TrainSummary {
  sparsity: Record<string, number>;
}

/** Steps of a recipe: `steps`, or `epochs` over the training windows. */
export function totalSteps(cfg: DistillConfig, windows: number): number {
  return cfg.epochs ? Math.max(1, Math.round((cfg.epochs * windows) / cfg.batch)) : cfg.steps;
}

function checkVocab(tok: QkdTokenizer, cfg: DistillConfig, teacherVocab: number): void {
  if (tok.vocabSize > teacherVocab) {
    throw new QkdError('E_VOCAB', `${cfg.teacher}: tokenizer.json has ${tok.vocabSize} tokens, the teacher's config only ${teacherVocab}`);
  }
}

/**
 * Training windows shorter than the evaluation's: positions context..evalContext-1 get no training
 * signal (a 1 x 4-pruned student measured 4% worse there on Brown: docs/distillation.md "Session 6").
 */
export function contextNote(context: number, evalContext: number): string {
  return `note: windows of ${context} tokens train positions 0..${context - 1} only; the evaluation (evalContext ${evalContext}) ` +
    `and longer generations also read positions ${context}..${evalContext - 1}, where a pruned student is not trained ` +
    `(context: ${evalContext} trains them, with the teacher cache built at that context)`;
}

/** The student: its architecture from the recipe, initialised at random or from the teacher, with the recipe's compression. */
function makeStudent(cfg: DistillConfig, be: Backend, vocabSize: number): StudentModel {
  const mc = resolveModel(cfg.student, vocabSize, 'distill config: student', cfg.student.preset === TEACHER_PRESET ? teacherArch(cfg.teacher) : undefined);
  if (cfg.context > mc.maxPos) throw new QkdError('E_CONFIG', `distill config: context: ${cfg.context} is longer than the student's ${mc.maxPos} positions`);
  if (cfg.init.layers && cfg.init.layers.length !== mc.nLayer) {
    throw new QkdError('E_CONFIG', `distill config: init.layers: ${cfg.init.layers.length} teacher layers named for ${mc.nLayer} student layers`);
  }
  const model = new Transformer(be, { ...mc, attnTopK: cfg.attnTopK });
  initParams(model.params, cfg.seed + 1);
  if (cfg.init.from === 'teacher') initFromTeacher(model, cfg);
  return new StudentModel(model, { quant: cfg.quant, sparsity: cfg.sparsity }, cfg.sparsity?.criterion);
}

export async function distill(cfg: DistillConfig, be: Backend, out: string, resume: boolean, hooks: TrainHooks = {}): Promise<DistillSummary> {
  const info = hooks.onInfo ?? (() => {});
  const tok = loadTokenizer(cfg.teacher);
  const teacher = openTeacher(cfg, be, tok);
  checkVocab(tok, cfg, teacher.vocabSize);
  const run = new RunDir(out);
  const resumeFrom = run.open({ distill: cfg }, resume);
  writeFileAtomic(join(run.dir, 'tokenizer.json'), JSON.stringify(tok.json));
  const data = loadTokenData(cfg.data, tok);
  const sampler = new WindowSampler(data.train, cfg.microBatch, cfg.context, cfg.seed);
  const steps = totalSteps(cfg, sampler.windows);
  info(`data: ${data.source}: ${data.train.length} training tokens (${sampler.windows} windows of ${cfg.context}), ` +
    `${steps} steps; teacher: ${teacher.describe}`);
  if (cfg.context < cfg.evalContext) info(contextNote(cfg.context, cfg.evalContext));
  const student = makeStudent(cfg, be, teacher.vocabSize), model = student.model;
  checkRunPlan({ where: 'distill', dir: run.dir, steps, warmup: cfg.warmup, evalContext: cfg.evalContext, params: paramCount(model.config),
    validTokens: cfg.evalWindows > 0 ? Math.min(data.valid.length, cfg.evalWindows * cfg.evalContext) : data.valid.length });
  const adam = { lr: cfg.lr, beta1: cfg.beta1, beta2: cfg.beta2, eps: cfg.eps, weightDecay: cfg.weightDecay };
  const opt = new AdamW(model.params, adam);
  const scales = student.scaleStore, scaleOpt = scales
    ? new AdamW({ backend: be, ...scales }, { lr: 0, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 }) : null;
  const prune: PruneSchedule | null = cfg.sparsity
    ? scheduleFromFractions(steps, cfg.sparsity.start, cfg.sparsity.end, cfg.sparsity.target, cfg.sparsity.every) : null;
  const savedConfig = student.savedConfig(cfg.attnTopK);
  const evalIds = cfg.evalWindows > 0 ? data.valid.subarray(0, cfg.evalWindows * cfg.evalContext) : data.valid;
  const nMicro = cfg.batch / cfg.microBatch;
  const tasks = cfg.evalTasks ? buildSuite({ tasks: [...cfg.evalTasks], limit: cfg.evalTasksLimit }) : null;
  // the student as it evaluates (effective weights refreshed by validate just before)
  const evalExtra = tasks ? () => taskMetrics(evaluateTasks(model, tasks, { tokenizer: tok })) : undefined;
  const distillStep = (s: number) => {
    const lr = lrAt(s, { ...cfg, steps });
    if (prune && isMaskUpdateStep(s, prune)) student.updateMasks(sparsityAt(s, prune));
    student.recording = prune !== null && s < prune.end; // input statistics for the next mask update
    student.refresh();
    model.params.zeroGrad();
    student.zeroScaleGrad();
    const m = { loss: 0, ce: 0, kl: 0, entropy: 0 };
    for (let k = 0; k < nMicro; k++) {
      const { x, y, ids } = sampler.next();
      // alpha = 1 is label-only training: the teacher is not consulted
      const t: TeacherDist | null = cfg.alpha < 1 ? teacher.batch(x, ids, cfg.microBatch, cfg.context) : null;
      const logits = model.forward(x, cfg.microBatch, cfg.context);
      const g = model.grads(), dLogits = g.dLogitsBuffer();
      const r = distillationLoss(logits, y, t, cfg, dLogits, 1 / nMicro);
      g.backward(dLogits);
      m.loss += r.loss / nMicro; m.ce += r.ce / nMicro; m.kl += r.kl / nMicro; m.entropy += r.entropy / nMicro;
    }
    student.recording = false;
    student.afterBackward();
    const { norm, scale } = clipFactor(be, scales ? [model.params.grad, scales.grad] : model.params.grad, cfg.clip);
    opt.update(lr, scale);
    scaleOpt?.update(lr * (cfg.quant?.scaleLrRatio ?? 1), scale);
    student.afterStep();
    return { ...m, lr, grad_norm: norm, ...(prune ? { sparsity: sparsityAt(s, prune) } : {}) };
  };
  const saveBest = () => {
    const sc = student.scaleMap();
    saveHfModel(run.modelDir, savedConfig, student.effectiveMap(), {
      files: { 'tokenizer.json': JSON.stringify(tok.json), ...(sc.size ? { [SCALES_FILE]: encodeScales(sc) } : {}) },
    });
  };
  try {
    const r = await runSession({
      label: 'distill', run, resumeFrom, steps, evalEvery: cfg.evalEvery, checkpointEvery: cfg.checkpointEvery, tokensPerStep: cfg.batch * cfg.context,
      buffers: { params: model.params.data, adam_m: opt.m, adam_v: opt.v, ...student.stateBuffers(),
        ...(scaleOpt ? { 'lsq:m': scaleOpt.m, 'lsq:v': scaleOpt.v } : {}) },
      sampler: { state: () => sampler.state(), setState: (st) => sampler.setState(st as { epoch: number; pos: number }) },
      restored: (step) => { opt.step = step; if (scaleOpt) scaleOpt.step = step; },
      step: distillStep,
      validate: () => { student.refresh(); return evaluate(model, evalIds, { context: cfg.evalContext }); },
      // a model only counts once pruning has reached its target (the masks stop changing after `end`)
      eligible: (done) => !prune || done > prune.end,
      saveBest, evalExtra, hooks,
    });
    return { ...r, sparsity: student.sparsities() };
  } finally {
    teacher.dispose();
    scaleOpt?.dispose();
    student.dispose(); opt.dispose(); model.dispose();
  }
}

/** Copies the teacher's weights into a student of the same widths (student layer i <- teacher layer init.layers[i]). */
function initFromTeacher(student: Transformer, cfg: DistillConfig): void {
  const hf = loadHfModel(cfg.teacher);
  const layers = cfg.init.layers ?? [...Array(student.config.nLayer).keys()];
  const renamed = new Map<string, Float32Array>();
  for (const [name, t] of hf.tensors) {
    const m = /^layers\.(\d+)\.(.*)$/.exec(name);
    if (!m) { renamed.set(name, t); continue; }
    layers.forEach((src, i) => { if (src === Number(m[1])) renamed.set(`layers.${i}.${m[2]}`, t); });
  }
  student.params.load(renamed, `${cfg.teacher} (init.from teacher)`);
}

/** The teacher's architecture as a student preset (its compression and special tokens left out). */
function teacherArch(dir: string): ModelPreset {
  const { vocabSize: _v, quant: _q, sparsity: _s, attnTopK: _a, bosTokenId: _b, eosTokenId: _e, ...arch } = loadHfModelConfig(dir);
  return arch;
}

/** The task scores logged with an evaluation: tasks_<name> (acc, stderr) and tasks_perf. */
function taskMetrics(r: TasksResult): Record<string, unknown> {
  const out: Record<string, unknown> = { tasks_perf: r.perf, tasks_hash: r.hash };
  for (const [name, t] of Object.entries(r.tasks)) out[`tasks_${name}`] = { acc: t.acc, acc_norm: t.acc_norm, stderr: t.stderr, n: t.n };
  return out;
}
