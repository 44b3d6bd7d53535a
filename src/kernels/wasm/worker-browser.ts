/**
 * Web Worker entry of a pool worker (module worker started by browser.ts): the first message carries
 * the WorkerInit (module, shared memory, control block, thread id); the worker answers 'ready' and
 * then stays in the pool loop (Atomics.wait is allowed in a worker) until the pool quits.
 */
import type { WorkerInit } from './platform.js';
import { prepareWorker } from './worker-core.js';

interface WorkerScope {
  onmessage: ((e: MessageEvent) => void) | null;
  postMessage(msg: unknown): void;
}

const scope = globalThis as unknown as WorkerScope;
scope.onmessage = (e: MessageEvent) => {
  scope.onmessage = null;
  let loop: () => void;
  try {
    loop = prepareWorker(e.data as WorkerInit);
  } catch (err) {
    scope.postMessage({ error: String(err) });
    return;
  }
  scope.postMessage('ready');
  loop();
  // the loop returns after QUIT; the pool also terminates the worker
  globalThis.close?.();
};
