/**
 * What the wasm backend needs from its host (Node or a browser), kept behind one small interface so
 * the engine itself is browser-safe: node specifics live in node.ts, browser ones in browser.ts.
 */

/** Everything a pool worker needs to join: the compiled module, the shared memory, the control block. */
export interface WorkerInit {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  /** Byte offset of the control block (see layout.ts) in the shared memory. */
  ctrl: number;
  /** Thread index 1..threads-1 (the caller's thread is 0). */
  tid: number;
}

export interface PoolWorker {
  /** Ends the worker (after the pool has told it to quit). */
  terminate(): Promise<void>;
}

export interface WasmPlatform {
  /** Logical cores available to this process. */
  readonly cpuCount: number;
  /** Whether the thread that calls the kernels may block in Atomics.wait (not a browser main thread). */
  readonly canBlock: boolean;
  /** Turns on relaxed SIMD where the host needs a flag for it (Node 20); before any compile. */
  enableRelaxedSimd(): void;
  /** The bytes of dist/wasm/kernels-fma.wasm (fma) or dist/wasm/kernels.wasm. */
  loadKernels(fma: boolean): Promise<Uint8Array<ArrayBuffer>>;
  /** Starts a worker that instantiates the module and runs the pool loop; resolves once it is ready. */
  spawnWorker(init: WorkerInit): Promise<PoolWorker>;
}
