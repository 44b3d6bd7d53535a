/**
 * Node helper of the int8 runtime: loads a qkd-int8 export directory from disk (the runtime itself,
 * int8-model.ts, stays browser-safe and takes bytes). Integer arrays are placed in the kernels' memory.
 */
import type { Backend } from '../kernels/backend.js';
import { int8KernelsFor } from '../kernels/int8.js';
import { TsInt8Kernels } from '../kernels/ts/int8.js';
import { loadExport } from '../io/export.js';
import { Int8Transformer, type Int8ModelOptions } from './int8-model.js';

export function loadInt8Model(dir: string, backend: Backend, opts: Int8ModelOptions = {}): { model: Int8Transformer; warnings: string[] } {
  const kernels = opts.kernels ?? int8KernelsFor(backend, () => new TsInt8Kernels());
  const loaded = loadExport(dir, kernels);
  return { model: new Int8Transformer(backend, loaded, { ...opts, kernels }), warnings: loaded.warnings };
}
