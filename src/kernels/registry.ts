/** Backend registry: `createBackend('ts' | 'wasm')`. */
import type { Backend, BackendName } from './backend.js';
import { TsBackend } from './ts/backend.js';

export async function createBackend(name: BackendName = 'wasm', opts: { threads?: number } = {}): Promise<Backend> {
  if (name === 'ts') return new TsBackend();
  const { createWasmBackend } = await import('./wasm/backend.js');
  return createWasmBackend(opts);
}
