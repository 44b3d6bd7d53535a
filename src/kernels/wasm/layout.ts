/**
 * Kernel ids and the control block through which the caller's thread hands tasks to the pool.
 * Shared by the engine (caller side) and the workers; browser-safe.
 *
 * Control block (CTRL_BYTES, 64-byte aligned in the shared memory), Int32 word indices:
 *   SEQ       task sequence number; a worker runs a task whenever it changes (own cache line)
 *   DONE      workers that finished the current task (own cache line)
 *   KID..     kernel id, thread count, argument count, error count, quit flag, sleeping workers,
 *             "caller is sleeping" flag
 * then f64 arguments at ARGS_BYTE, f64 per-thread results at RESULTS_BYTE, an error message at MSG_BYTE.
 */
export const KERNELS = [
  'matmul', 'bmm', 'softmaxForward', 'softmaxBackward', 'crossEntropy', 'layerNormForward', 'layerNormBackward',
  'rmsNormForward', 'rmsNormBackward', 'add', 'scale', 'addBias', 'biasBackward',
  'activationForward', 'activationBackward', 'gluForward', 'gluBackward', 'adamw', 'sumSquares', 'rope',
  'embeddingBackward', 'logSoftmaxForward', 'logSoftmaxBackward', 'permute0213',
] as const;
export type KernelName = typeof KERNELS[number];
export const KID: { readonly [K in KernelName]: number } =
  Object.fromEntries(KERNELS.map((k, i) => [k, i])) as { [K in KernelName]: number };

export const SEQ = 0, DONE = 16, KIND = 32, NTH = 33, ARGC = 34, ERR = 35, QUIT = 36, SLEEPERS = 37, MAIN_SLEEP = 38;
export const ARGS_BYTE = 256, MAX_ARGS = 32;
export const RESULTS_BYTE = 512, MAX_THREADS = 64;
export const MSG_BYTE = 1024, MSG_BYTES = 1024;
export const CTRL_BYTES = 2048;

/** Spin iterations on Atomics.load before sleeping in Atomics.wait (~tens of µs). */
export const SPIN = 20000;

/** A wasm kernel export: (tid, nth, ...args). */
export type KernelFn = (...args: number[]) => void;

/** Instantiates the kernels module on the shared memory (the same way on every thread). */
export function instantiateKernels(module: WebAssembly.Module, memory: WebAssembly.Memory): WebAssembly.Exports {
  const abort = (): never => { throw new Error('wasm kernel abort'); };
  return new WebAssembly.Instance(module, { env: { memory, abort } }).exports;
}
