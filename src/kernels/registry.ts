/** Backend registry: `createBackend('ts' | 'wasm' | 'native')`. */
import type { Backend, BackendName } from './backend.js';
import { TsBackend } from './ts/backend.js';

/** `native` throws QkdError E_UNSUPPORTED, naming what to install, when its OpenBLAS addon is not built. */
export async function createBackend(name: BackendName = 'wasm', opts: { threads?: number } = {}): Promise<Backend> {
  if (name === 'ts') return new TsBackend();
  if (name === 'native') {
    const { createNativeBackend } = await import('./native/backend.js');
    return createNativeBackend(opts);
  }
  const { createWasmBackend } = await import('./wasm/backend.js');
  return createWasmBackend(opts);
}
