/**
 * Training checkpoints: a directory written atomically, holding the flat parameter, AdamW moment
 * (and any extra) buffers in one safetensors file plus a JSON state (step, sampler state, ...).
 * The magic/version in state.json lets readers reject what they do not understand.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { writeDirAtomic } from '../io/atomic.js';
import { encodeSafetensors, readSafetensors } from '../io/safetensors.js';
import { MAX_BYTES, readRegularText } from '../io/read-file.js';
import { QkdError } from '../tensor/errors.js';

export const CHECKPOINT_MAGIC = 'qkd-checkpoint';
export const CHECKPOINT_VERSION = 1;

export interface CheckpointState {
  magic: typeof CHECKPOINT_MAGIC;
  version: number;
  step: number;
  [k: string]: unknown;
}

export function saveCheckpoint(dir: string, buffers: Record<string, Float32Array>, state: Omit<CheckpointState, 'magic' | 'version'>): void {
  const tensors = Object.fromEntries(Object.entries(buffers).map(([k, v]) => [k, { dtype: 'F32' as const, shape: [v.length], data: v }]));
  writeDirAtomic(dir, {
    'state.safetensors': encodeSafetensors(tensors, undefined, join(dir, 'state.safetensors')),
    'state.json': JSON.stringify({ magic: CHECKPOINT_MAGIC, version: CHECKPOINT_VERSION, ...state }, null, 1) + '\n',
  });
}

export function hasCheckpoint(dir: string): boolean {
  return existsSync(join(dir, 'state.json')) && existsSync(join(dir, 'state.safetensors'));
}

/** Reads a checkpoint; each expected buffer must be present with the given length. */
export function loadCheckpoint(dir: string, expect: Record<string, number>): { state: CheckpointState; buffers: Record<string, Float32Array> } {
  const sp = join(dir, 'state.json');
  let state: CheckpointState;
  try { state = JSON.parse(readRegularText(sp, 'checkpoint state', MAX_BYTES.config)); } catch (e) {
    throw new QkdError('E_FORMAT', `${sp}: cannot read the checkpoint state (${(e as Error).message})`);
  }
  if (state?.magic !== CHECKPOINT_MAGIC) throw new QkdError('E_FORMAT', `${sp}: field magic: not a qkd checkpoint`);
  if (state.version !== CHECKPOINT_VERSION) {
    throw new QkdError('E_UNSUPPORTED', `${sp}: field version: ${state.version} (this qkd reads version ${CHECKPOINT_VERSION})`);
  }
  if (!Number.isInteger(state.step) || state.step < 0) throw new QkdError('E_FORMAT', `${sp}: field step: invalid`);
  const file = readSafetensors(join(dir, 'state.safetensors'));
  const buffers: Record<string, Float32Array> = {};
  for (const [name, n] of Object.entries(expect)) {
    const v = file.getF32(name);
    if (v.length !== n) {
      throw new QkdError('E_SHAPE', `${join(dir, 'state.safetensors')}: tensor ${name} has ${v.length} values, the run needs ${n}`);
    }
    buffers[name] = v;
  }
  return { state, buffers };
}
