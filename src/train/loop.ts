/**
 * The step loop shared by `qkd train` and `qkd distill`: run steps until done or a signal arrives,
 * log each step, evaluate and checkpoint on their intervals, and finish with an evaluation and a
 * checkpoint (or only a checkpoint when interrupted). A non-finite loss stops the run with a QkdError
 * before that step is logged as done, evaluated or checkpointed (the checkpoint on disk stays the last good one).
 */
import { nonFiniteLoss } from './guard.js';
import type { RunDir } from './run.js';

export interface LoopOptions {
  run: RunDir;
  steps: number;
  /** Completed steps when the loop starts (resume). */
  startStep: number;
  evalEvery: number;
  checkpointEvery: number;
  tokensPerStep: number;
  /** Runs step `step` (0-based) and returns its loss and any extra metrics to log. */
  step: (step: number) => { loss: number; [k: string]: number };
  /** Evaluates after `done` completed steps. */
  evaluate: (done: number) => void;
  checkpoint: (done: number) => void;
  onStep?: (s: { step: number; steps: number; loss: number; lr: number; tokensPerSec: number }) => void;
  info: (msg: string) => void;
}

export async function runLoop(o: LoopOptions): Promise<{ steps: number; lastLoss: number; interrupted: string | null }> {
  let done = o.startStep, lastLoss = NaN, evaluatedAt = -1, lastCheckpoint: number | null = o.startStep > 0 ? o.startStep : null;
  const checkpoint = (n: number) => { o.checkpoint(n); lastCheckpoint = n; };
  o.run.trapSignals();
  try {
    while (done < o.steps && !o.run.stopRequested) {
      const ts = performance.now();
      const m = o.step(done);
      done++;
      // a non-finite gradient norm means this step's update already made the weights non-finite
      const bad = !Number.isFinite(m.loss) ? `the loss is ${m.loss}`
        : m.grad_norm !== undefined && !Number.isFinite(m.grad_norm) ? `the gradient norm is ${m.grad_norm}` : null;
      if (bad) {
        o.run.log({ step: done, ...m, nonfinite: true });
        throw nonFiniteLoss(o.run.dir, done, bad, o.run.checkpointDir, lastCheckpoint);
      }
      lastLoss = m.loss;
      const tps = o.tokensPerStep / ((performance.now() - ts) / 1000);
      o.run.log({ step: done, ...m, tokens_per_s: Math.round(tps) });
      o.onStep?.({ step: done, steps: o.steps, loss: m.loss, lr: m.lr ?? NaN, tokensPerSec: tps });
      testSignal(done);
      if (o.evalEvery > 0 && done % o.evalEvery === 0) { o.evaluate(done); evaluatedAt = done; }
      if (o.checkpointEvery > 0 && done % o.checkpointEvery === 0) checkpoint(done);
      await new Promise((r) => setImmediate(r)); // lets SIGINT/SIGTERM handlers run
    }
    if (o.run.stopRequested) {
      checkpoint(done);
      o.info(`${o.run.stopRequested}: checkpoint saved at step ${done}; continue with --resume`);
    } else {
      if (evaluatedAt !== done) o.evaluate(done);
      checkpoint(done);
    }
  } finally {
    o.run.releaseSignals();
  }
  return { steps: done, lastLoss, interrupted: o.run.stopRequested };
}

/**
 * Test hook for the kill-and-resume tests: QKD_TEST_SIGNAL_AT_STEP="5:SIGKILL" makes the process send
 * itself that signal right after step 5 (between checkpoints), exactly as an outside kill would.
 */
export function testSignal(step: number): void {
  const spec = process.env.QKD_TEST_SIGNAL_AT_STEP;
  if (!spec) return;
  const [at, sig] = spec.split(':');
  if (Number(at) === step) process.kill(process.pid, (sig || 'SIGKILL') as NodeJS.Signals);
}
