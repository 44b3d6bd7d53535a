/**
 * The Node host of the wasm backend: worker_threads, core count, the .wasm files next to the
 * compiled JS (dist/src/kernels/wasm/*.js -> dist/wasm/*.wasm), and V8's relaxed-SIMD flag.
 */
import { readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { setFlagsFromString } from 'node:v8';
import { Worker } from 'node:worker_threads';
import { QkdError } from '../../tensor/errors.js';
import type { PoolWorker, WasmPlatform, WorkerInit } from './platform.js';

let relaxedFlagSet = false;

export function nodePlatform(): WasmPlatform {
  return {
    cpuCount: Math.max(1, availableParallelism()),
    canBlock: true,
    enableRelaxedSimd(): void {
      // Node 20's V8 ships relaxed SIMD behind a flag; it must be set before the module is compiled.
      if (!relaxedFlagSet) { setFlagsFromString('--experimental-wasm-relaxed-simd'); relaxedFlagSet = true; }
    },
    async loadKernels(fma: boolean): Promise<Uint8Array<ArrayBuffer>> {
      const url = new URL(`../../../wasm/${fma ? 'kernels-fma' : 'kernels'}.wasm`, import.meta.url);
      try {
        return new Uint8Array(await readFile(url));
      } catch (e) {
        throw new QkdError('E_MISSING', `wasm backend: cannot read kernels module ${url.pathname} (run npm run build)`,
          { cause: e });
      }
    },
    spawnWorker,
  };
}

function spawnWorker(init: WorkerInit): Promise<PoolWorker> {
  // execArgv: [] because the worker needs none of the parent's Node options, and some (--input-type,
  // -e scripts) make a worker fail to start; V8 flags such as relaxed SIMD are process-wide anyway.
  const w = new Worker(new URL('./worker-node.js', import.meta.url), { workerData: init, execArgv: [] });
  return new Promise((resolve, reject) => {
    const fail = (e: unknown): void => reject(new QkdError('E_INTERNAL',
      `wasm backend: worker thread ${init.tid} failed to start: ${String(e)}`, { cause: e }));
    w.once('error', fail);
    w.once('exit', (code) => fail(`exited with code ${code}`));
    w.once('message', () => {
      w.removeAllListeners('error'); w.removeAllListeners('exit');
      w.on('error', (e) => { console.error(`qkd wasm worker ${init.tid}:`, e); });
      // kept referenced while starting (so an awaited start-up cannot let the process exit early),
      // unreferenced afterwards so a CLI exits even if dispose() is forgotten
      w.unref();
      resolve({ terminate: async () => { await w.terminate(); } });
    });
  });
}
