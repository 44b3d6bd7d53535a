/**
 * Gradual magnitude pruning schedule (Zhu & Gupta 2017, "To prune, or not to prune", cubic).
 * Browser-safe.
 *
 *   s(t) = 0                                                  t < start
 *   s(t) = target + (initial - target) · (1 - (u - start)/(end - start))^3,
 *          u = the last update point <= t                     start <= t < end
 *   s(t) = target                                             t >= end
 *
 * Update points (the steps on which masks are recomputed): `start`, every multiple of `every`
 * strictly between start and end, and `end`. After `end` the mask is not recomputed: pruned
 * weights are held at 0 and get no update, so a recomputation at constant sparsity would select the
 * same mask. Steps count from 0. With start and end multiples of `every` this is exactly Zhu &
 * Gupta's t0 + nΔt grid.
 */
import { QkdError } from '../tensor/errors.js';

export interface PruneSchedule {
  /** First step of pruning (sparsity `initial` from here). */
  start: number;
  /** Step at which `target` is reached (end >= start). */
  end: number;
  /** Final sparsity in [0, 1). */
  target: number;
  /** Sparsity at `start`, in [0, target]; default 0. */
  initial?: number;
  /** Mask update interval in steps (>= 1). */
  every: number;
}

function fail(msg: string): never { throw new QkdError('E_CONFIG', `sparse/schedule.ts: ${msg}`); }

/** Throws E_CONFIG unless the schedule is well formed. */
export function validateSchedule(cfg: PruneSchedule): void {
  const { start, end, target, every } = cfg, initial = cfg.initial ?? 0;
  if (!(Number.isInteger(start) && start >= 0)) fail(`start must be a non-negative integer step, got ${start}`);
  if (!(Number.isInteger(end) && end >= start)) fail(`end must be an integer step >= start (${start}), got ${end}`);
  if (!(Number.isInteger(every) && every >= 1)) fail(`every must be a positive integer, got ${every}`);
  if (!(target >= 0 && target < 1)) fail(`target sparsity must be in [0, 1), got ${target}`);
  if (!(initial >= 0 && initial <= target)) fail(`initial sparsity must be in [0, target=${target}], got ${initial}`);
}

/** The last update point <= step (assumes start <= step < end). */
function lastUpdate(step: number, cfg: PruneSchedule): number {
  const m = Math.floor(step / cfg.every) * cfg.every;
  return m > cfg.start ? m : cfg.start;
}

/** Target sparsity in effect at `step`. */
export function sparsityAt(step: number, cfg: PruneSchedule): number {
  validateSchedule(cfg);
  const initial = cfg.initial ?? 0;
  if (step < cfg.start) return 0;
  if (step >= cfg.end) return cfg.target;
  const frac = (lastUpdate(step, cfg) - cfg.start) / (cfg.end - cfg.start);
  const c = (1 - frac) ** 3; // written as a blend so u = start gives `initial` exactly
  return initial * c + cfg.target * (1 - c);
}

/** True on the steps where masks are recomputed (see the update points above). */
export function isMaskUpdateStep(step: number, cfg: PruneSchedule): boolean {
  validateSchedule(cfg);
  if (!Number.isInteger(step) || step < cfg.start || step > cfg.end) return false;
  return step === cfg.start || step === cfg.end || step % cfg.every === 0;
}

/**
 * Schedule from fractions of training: start = round(startFrac · totalSteps), end =
 * round(endFrac · totalSteps). E.g. scheduleFromFractions(2000, 0.1, 0.7, 0.9, 25) prunes from
 * step 200 to step 1400, masks every 25 steps.
 */
export function scheduleFromFractions(totalSteps: number, startFrac: number, endFrac: number, target: number,
  every: number, initial = 0): PruneSchedule {
  if (!(Number.isInteger(totalSteps) && totalSteps >= 1)) fail(`totalSteps must be a positive integer, got ${totalSteps}`);
  if (!(startFrac >= 0 && startFrac <= endFrac && endFrac <= 1)) {
    fail(`need 0 <= startFrac <= endFrac <= 1, got ${startFrac} and ${endFrac}`);
  }
  const cfg = { start: Math.round(startFrac * totalSteps), end: Math.round(endFrac * totalSteps), target, initial, every };
  validateSchedule(cfg);
  return cfg;
}
