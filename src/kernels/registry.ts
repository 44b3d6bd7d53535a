/** Backend registry: `createBackend('ts' | 'wasm' | 'native')`. */
import type { Backend, BackendName } from './backend.js';
import { QkdError } from '../tensor/errors.js';
import { TsBackend } from './ts/backend.js';
import { MAX_THREADS } from './wasm/layout.js';

/** `native` throws QkdError E_UNSUPPORTED, naming what to install, when its OpenBLAS addon is not built. */
export async function createBackend(name: BackendName = 'wasm', opts: { threads?: number } = {}): Promise<Backend> {
  if (name === 'ts') return new TsBackend();
  // one check for both pooled backends, so the message names the backend the user asked for
  const t = opts.threads;
  if (t !== undefined && (!Number.isInteger(t) || t < 1 || t > MAX_THREADS)) {
    throw new QkdError('E_CONFIG', `${name} backend: threads=${t} is outside 1..${MAX_THREADS}`);
  }
  if (name === 'native') {
    const { createNativeBackend } = await import('./native/backend.js');
    return createNativeBackend(opts);
  }
  const { createWasmBackend } = await import('./wasm/backend.js');
  return createWasmBackend(opts);
}
