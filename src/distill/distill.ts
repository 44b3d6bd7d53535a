/**
 * `qkd distill`: Distillation(student, teacher, dataset, epochs, τ, α). Each step: teacher
 * distribution (live forward, or the teacher-logit cache), student forward with fake-quantized,
 * masked weights, loss α·CE + (1−α)·τ²·KL − λ·H, backward, straight-through / LSQ gradients, clipping,
 * AdamW, masks re-applied, masks updated on the cubic schedule. Same run directory, checkpoints and
 * exact resume as `qkd train`.
 */
import { join } from 'node:path';
import type { Backend } from '../kernels/backend.js';
import { WindowSampler, loadTokenData } from '../data/dataset.js';
import { loadTokenizer } from '../data/tokenizer-node.js';
import type { QkdTokenizer } from '../data/tokenizer.js';
import { evaluate, type EvalResult } from '../eval/perplexity.js';
import { writeFileAtomic } from '../io/atomic.js';
import { saveHfModel } from '../io/hf.js';
import { encodeSafetensors } from '../io/safetensors.js';
import { initParams } from '../model/init.js';
import { Transformer } from '../model/transformer.js';
import { scheduleFromFractions, sparsityAt, isMaskUpdateStep, type PruneSchedule } from '../sparse/schedule.js';
import { QkdError } from '../tensor/errors.js';
import { loadCheckpoint, saveCheckpoint } from '../train/checkpoint.js';
import { resolveModel } from '../train/config.js';
import { AdamW } from '../train/optim.js';
import { RunDir } from '../train/run.js';
import { lrAt } from '../train/schedule.js';
import { runLoop } from '../train/loop.js';
import { checkFiniteEval, checkRunPlan } from '../train/guard.js';
import { paramCount } from '../model/config.js';
import type { TrainHooks, TrainSummary } from '../train/trainer.js';
import { compressedConfig, CompressedWeights } from './compress.js';
import type { DistillConfig } from './config.js';
import { distillLoss, type TeacherDist } from './loss.js';
import { openTeacherSource, type TeacherSource } from './teacher.js';

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

export async function distill(cfg: DistillConfig, be: Backend, out: string, resume: boolean, hooks: TrainHooks = {}): Promise<DistillSummary> {
  const info = hooks.onInfo ?? (() => {});
  const tok = loadTokenizer(cfg.teacher);
  const teacherSrc: TeacherSource = openTeacherSource(cfg, be, tok);
  checkVocab(tok, cfg, teacherSrc.vocabSize);
  const run = new RunDir(out);
  const resumeFrom = run.open({ distill: cfg }, resume);
  writeFileAtomic(join(run.dir, 'tokenizer.json'), JSON.stringify(tok.json));
  const data = loadTokenData(cfg.data, tok);
  const sampler = new WindowSampler(data.train, cfg.microBatch, cfg.context, cfg.seed);
  const steps = totalSteps(cfg, sampler.windows);
  info(`data: ${data.source}: ${data.train.length} training tokens (${sampler.windows} windows of ${cfg.context}), ` +
    `${steps} steps; teacher: ${teacherSrc.describe}`);
  const mc = resolveModel({ model: cfg.student as never }, teacherSrc.vocabSize, 'distill config: student');
  checkRunPlan({ where: 'distill', dir: run.dir, steps, warmup: cfg.warmup, evalContext: cfg.evalContext, params: paramCount(mc),
    validTokens: cfg.evalWindows > 0 ? Math.min(data.valid.length, cfg.evalWindows * cfg.evalContext) : data.valid.length });
  const student = new Transformer(be, { ...mc, attnTopK: cfg.attnTopK });
  initParams(student.params, cfg.seed + 1);
  const comp = new CompressedWeights(student, cfg);
  const opt = new AdamW(student.params, { lr: cfg.lr, beta1: cfg.beta1, beta2: cfg.beta2, eps: cfg.eps, weightDecay: cfg.weightDecay });
  const prune: PruneSchedule | null = cfg.sparsity
    ? scheduleFromFractions(steps, cfg.sparsity.start, cfg.sparsity.end, cfg.sparsity.target, cfg.sparsity.every) : null;
  let step = 0, best: EvalResult | null = null, bestStep = 0;
  const n = student.params.size;
  if (resumeFrom) {
    const ck = loadCheckpoint(resumeFrom, { params: n, adam_m: n, adam_v: n, ...comp.stateSizes() });
    student.params.data.set(ck.buffers.params); opt.m.set(ck.buffers.adam_m); opt.v.set(ck.buffers.adam_v);
    step = ck.state.step; opt.step = step;
    comp.loadState(ck.buffers, step);
    sampler.setState(ck.state.sampler as { epoch: number; pos: number });
    best = (ck.state.best as EvalResult | null) ?? null; bestStep = (ck.state.bestStep as number) ?? 0;
    run.truncateMetrics(step);
    info(`resumed at step ${step} of ${steps}`);
  }
  const savedConfig = compressedConfig(student.config, cfg);
  const checkpoint = (done: number) => saveCheckpoint(run.checkpointDir,
    { params: student.params.data, adam_m: opt.m, adam_v: opt.v, ...comp.stateBuffers() },
    { step: done, sampler: sampler.state(), best, bestStep });
  const evalIds = cfg.evalWindows > 0 ? data.valid.subarray(0, cfg.evalWindows * cfg.evalContext) : data.valid;
  const evaluateAt = (done: number) => {
    comp.refresh();
    const r = evaluate(student, evalIds, { context: cfg.evalContext });
    checkFiniteEval(r, done, 'distill');
    // a model only counts once pruning has reached its target (the masks stop changing after `end`)
    const eligible = !prune || done > prune.end;
    const isBest = eligible && (best === null || r.nll < best.nll);
    if (isBest) {
      best = r; bestStep = done;
      const scales = comp.scaleMap();
      saveHfModel(run.modelDir, savedConfig, comp.effectiveMap(), {
        files: {
          'tokenizer.json': JSON.stringify(tok.json),
          ...(scales.size ? { 'quant_scales.safetensors': encodeScales(scales) } : {}),
        },
      });
    }
    run.log({ step: done, valid_ppl: r.ppl, valid_nll: r.nll, valid_top1: r.top1, valid_tokens: r.tokens, best: isBest,
      ...(eligible ? {} : { before_target_sparsity: true }) });
    hooks.onEval?.({ step: done, result: r, best: isBest });
  };
  const nMicro = cfg.batch / cfg.microBatch;
  const distillStep = (s: number) => {
    const lr = lrAt(s, { ...cfg, steps });
    if (prune && isMaskUpdateStep(s, prune)) comp.updateMasks(sparsityAt(s, prune));
    comp.refresh();
    student.params.zeroGrad();
    comp.zeroScaleGrad();
    const m = { loss: 0, ce: 0, kl: 0, entropy: 0 };
    for (let k = 0; k < nMicro; k++) {
      const { x, y, ids } = sampler.next();
      // alpha = 1 is label-only training: the teacher is not consulted
      const teacher: TeacherDist | null = cfg.alpha < 1 ? teacherSrc.batch(x, ids, cfg.microBatch, cfg.context) : null;
      const logits = student.forward(x, cfg.microBatch, cfg.context);
      const g = student.grads(), dLogits = g.dLogitsBuffer();
      const r = distillLoss(be, logits, y, teacher, cfg, dLogits, 1 / nMicro);
      g.backward(dLogits);
      m.loss += r.loss / nMicro; m.ce += r.ce / nMicro; m.kl += r.kl / nMicro; m.entropy += r.entropy / nMicro;
    }
    comp.afterBackward();
    let sq = be.sumSquares(student.params.grad, n);
    if (comp.scaleStore) sq += be.sumSquares(comp.scaleStore.grad, comp.scaleStore.size);
    const norm = Math.sqrt(sq), clip = cfg.clip > 0 ? Math.min(1, cfg.clip / (norm + 1e-6)) : 1;
    opt.update(lr, clip);
    comp.scaleOpt?.update(lr * (cfg.quant?.scaleLrRatio ?? 1), clip);
    comp.afterStep();
    return { ...m, lr, grad_norm: norm, ...(prune ? { sparsity: sparsityAt(s, prune) } : {}) };
  };
  const t0 = performance.now();
  try {
    const r = await runLoop({ run, steps, startStep: step, evalEvery: cfg.evalEvery, checkpointEvery: cfg.checkpointEvery,
      tokensPerStep: cfg.batch * cfg.context, step: distillStep, evaluate: evaluateAt, checkpoint, onStep: hooks.onStep, info });
    return { steps: r.steps, lastLoss: r.lastLoss, best, bestStep, seconds: (performance.now() - t0) / 1000,
      interrupted: r.interrupted, modelDir: run.modelDir, sparsity: comp.sparsities() };
  } finally {
    teacherSrc.dispose();
    comp.dispose(); opt.dispose(); student.dispose();
  }
}

function encodeScales(scales: Map<string, Float32Array>): Uint8Array {
  const t = new Map([...scales].map(([k, v]) => [k, { dtype: 'F32' as const, shape: [v.length], data: v }]));
  return encodeSafetensors(t, { format: 'qkd-quant-scales' }, 'quant_scales.safetensors');
}
