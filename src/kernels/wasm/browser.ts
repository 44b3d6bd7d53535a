/**
 * The browser host of the wasm backend: navigator.hardwareConcurrency, kernels fetched from a URL,
 * pool workers as module Web Workers (worker-browser.ts).
 *
 * Threads: the pool shares one WebAssembly.Memory with its workers, and posting a shared memory to a
 * worker needs cross-origin isolation (the page served with COOP: same-origin and COEP: require-corp).
 * Without it the platform reports cpuCount 1, so the engine runs every kernel on the calling thread
 * (still SIMD). On the page's main thread Atomics.wait is forbidden, so canBlock is false there: the
 * caller spins until the workers leave a task (kernel calls are short, the workers themselves may
 * sleep). Inside a dedicated Web Worker canBlock is true and the pool behaves as in Node.
 */
import { QkdError } from '../../tensor/errors.js';
import type { PoolWorker, WasmPlatform, WorkerInit } from './platform.js';

export interface BrowserPlatformOptions {
  /**
   * Folder holding kernels.wasm and kernels-fma.wasm (a URL; relative URLs resolve against the page).
   * Default: dist/wasm/ of the compiled tree this module is part of.
   */
  wasmUrl?: string | URL;
  /** URL of the compiled worker-browser.js; default: the one beside this module. */
  workerUrl?: string | URL;
  /** Fetch to use (tests, caching); default: globalThis.fetch. */
  fetch?: typeof fetch;
}

/** Whether this context may share memory with workers (crossOriginIsolated, or a host without the notion). */
export function canShareMemory(): boolean {
  const g = globalThis as { crossOriginIsolated?: boolean };
  return g.crossOriginIsolated !== false && typeof SharedArrayBuffer === 'function';
}

/** Whether this thread may block in Atomics.wait: a dedicated Web Worker (not a page's main thread). */
export function canBlockHere(): boolean {
  const g = globalThis as { DedicatedWorkerGlobalScope?: abstract new () => unknown };
  return g.DedicatedWorkerGlobalScope !== undefined && globalThis instanceof g.DedicatedWorkerGlobalScope;
}

/** Why threads are unavailable here, or null when they are. */
export function threadsUnavailableReason(): string | null {
  if (typeof Worker !== 'function') return 'this context has no Web Workers';
  if (!canShareMemory()) {
    return 'the page is not cross-origin isolated (serve it with Cross-Origin-Opener-Policy: same-origin and ' +
      'Cross-Origin-Embedder-Policy: require-corp), so the wasm kernels run on 1 thread';
  }
  return null;
}

const pageBase = (): string => (globalThis as { location?: { href: string } }).location?.href ?? import.meta.url;

export function browserPlatform(opts: BrowserPlatformOptions = {}): WasmPlatform {
  const wasmBase = new URL(String(opts.wasmUrl ?? new URL('../../../wasm/', import.meta.url)), pageBase());
  const workerUrl = new URL(String(opts.workerUrl ?? new URL('./worker-browser.js', import.meta.url)), pageBase());
  const doFetch = opts.fetch ?? globalThis.fetch.bind(globalThis);
  const nav = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator;
  const threaded = threadsUnavailableReason() === null;
  return {
    cpuCount: threaded ? Math.max(1, nav?.hardwareConcurrency ?? 1) : 1,
    canBlock: canBlockHere(),
    enableRelaxedSimd(): void { /* on by default where browsers have it; the engine validates the module */ },
    async loadKernels(fma: boolean): Promise<Uint8Array<ArrayBuffer>> {
      const url = new URL(fma ? 'kernels-fma.wasm' : 'kernels.wasm', wasmBase);
      let res: Response;
      try {
        res = await doFetch(url);
      } catch (e) {
        throw new QkdError('E_MISSING', `wasm backend: cannot fetch kernels module ${url.href}: ${String(e)}`, { cause: e });
      }
      if (!res.ok) throw new QkdError('E_MISSING', `wasm backend: kernels module ${url.href}: HTTP ${res.status} (built by npm run build?)`);
      return new Uint8Array(await res.arrayBuffer());
    },
    spawnWorker: (init) => spawnWorker(workerUrl, init),
  };
}

function spawnWorker(url: URL, init: WorkerInit): Promise<PoolWorker> {
  const w = new Worker(url, { type: 'module', name: `qkd-wasm-${init.tid}` });
  return new Promise((resolve, reject) => {
    const fail = (why: string): void => {
      w.terminate();
      reject(new QkdError('E_INTERNAL', `wasm backend: web worker ${init.tid} (${url.href}) failed to start: ${why}`));
    };
    w.onerror = (e) => { e.preventDefault(); fail(e.message || 'script error (check the URL and its MIME type)'); };
    w.onmessageerror = () => fail('the shared memory or module could not be posted to it');
    w.onmessage = (e: MessageEvent) => {
      if (e.data !== 'ready') { fail(String((e.data as { error?: string })?.error ?? e.data)); return; }
      w.onerror = (ev) => { console.error(`qkd wasm worker ${init.tid}:`, ev.message); };
      w.onmessage = null; w.onmessageerror = null;
      resolve({ terminate: async () => { w.terminate(); } });
    };
    w.postMessage(init);
  });
}
