/**
 * `qkd train`: a float teacher from text. Tokenizer (given or trained), token data (cached), model
 * from a preset, AdamW with warm-up + cosine, clipping; the session (train/session.ts) evaluates,
 * keeps the best model, checkpoints and resumes exactly.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Backend } from '../kernels/backend.js';
import { trainBpe } from '../data/bpe.js';
import { brownSplitText } from '../data/brown.js';
import { BatchSampler, loadTokenData, type TokenData } from '../data/dataset.js';
import { textPiecesOf } from '../data/text.js';
import { tokenizerFromJson, type QkdTokenizer } from '../data/tokenizer.js';
import { loadTokenizer } from '../data/tokenizer-node.js';
import { evaluate } from '../eval/perplexity.js';
import { writeFileAtomic } from '../io/atomic.js';
import { saveHfModel } from '../io/hf.js';
import { initParams } from '../model/init.js';
import { paramCount } from '../model/config.js';
import { Transformer } from '../model/transformer.js';
import { resolveModel, type TrainConfig } from './config.js';
import { AdamW, clipFactor } from './optim.js';
import { checkRunPlan } from './guard.js';
import { RunDir } from './run.js';
import { lrAt } from './schedule.js';
import { runSession, type TrainHooks, type TrainSummary } from './session.js';

export type { TrainHooks, TrainSummary } from './session.js';

/** The tokenizer of a run: given, already in the run directory (resume), or trained now. */
function runTokenizer(cfg: TrainConfig, run: RunDir, info: (m: string) => void): QkdTokenizer {
  const saved = join(run.dir, 'tokenizer.json');
  if (cfg.tokenizer) return loadTokenizer(cfg.tokenizer);
  if (existsSync(saved)) return loadTokenizer(saved);
  info(`training a byte-level BPE tokenizer (vocab ${cfg.vocabSize}) on the training text`);
  const texts = cfg.data.kind === 'brown' ? [brownSplitText('train')] : textPiecesOf(cfg.data.paths);
  const json = trainBpe(texts, { vocabSize: cfg.vocabSize });
  writeFileAtomic(saved, JSON.stringify(json));
  return tokenizerFromJson(json, undefined, saved);
}

export async function train(cfg: TrainConfig, be: Backend, out: string, resume: boolean, hooks: TrainHooks = {}): Promise<TrainSummary> {
  const info = hooks.onInfo ?? (() => {});
  const run = new RunDir(out);
  const resumeFrom = run.open({ train: cfg }, resume);
  const tok = runTokenizer(cfg, run, info);
  if (!existsSync(join(run.dir, 'tokenizer.json'))) writeFileAtomic(join(run.dir, 'tokenizer.json'), JSON.stringify(tok.json));
  const data: TokenData = loadTokenData(cfg.data, tok);
  info(`data: ${data.source}: ${data.train.length} training tokens, ${data.valid.length} validation tokens`);
  const mc = resolveModel(cfg.model, tok.vocabSize, 'train config');
  const evalWindows = cfg.evalWindows > 0 ? cfg.evalWindows * cfg.evalContext : data.valid.length;
  const validIds = data.valid.subarray(0, Math.min(data.valid.length, evalWindows));
  checkRunPlan({ where: 'train', dir: run.dir, steps: cfg.steps, warmup: cfg.warmup, validTokens: validIds.length,
    evalContext: cfg.evalContext, params: paramCount(mc) });
  const model = new Transformer(be, mc);
  initParams(model.params, cfg.seed + 1);
  const opt = new AdamW(model.params, { lr: cfg.lr, beta1: cfg.beta1, beta2: cfg.beta2, eps: cfg.eps, weightDecay: cfg.weightDecay });
  const sampler = new BatchSampler(data.train, cfg.microBatch, cfg.context, cfg.seed);
  const nMicro = cfg.batch / cfg.microBatch;
  const trainStep = (s: number) => {
    const lr = lrAt(s, cfg);
    model.params.zeroGrad();
    let loss = 0;
    for (let k = 0; k < nMicro; k++) {
      const { x, y } = sampler.next();
      model.forward(x, cfg.microBatch, cfg.context);
      loss += model.crossEntropy(y, true, 1 / nMicro) / nMicro;
    }
    const { norm, scale } = clipFactor(be, model.params.grad, cfg.clip);
    opt.update(lr, scale);
    return { loss, lr, grad_norm: norm };
  };
  try {
    return await runSession({
      label: 'train', run, resumeFrom, steps: cfg.steps, evalEvery: cfg.evalEvery, checkpointEvery: cfg.checkpointEvery,
      tokensPerStep: cfg.batch * cfg.context, buffers: { params: model.params.data, adam_m: opt.m, adam_v: opt.v },
      sampler: { state: () => sampler.state(), setState: (st) => sampler.setState(st as number[]) },
      restored: (step) => { opt.step = step; },
      step: trainStep, validate: () => evaluate(model, validIds, { context: cfg.evalContext }),
      saveBest: () => saveHfModel(run.modelDir, mc, model.params.toMap(), { dtype: cfg.saveDtype, files: { 'tokenizer.json': JSON.stringify(tok.json) } }),
      hooks,
    });
  } finally {
    opt.dispose();
    model.dispose();
  }
}
