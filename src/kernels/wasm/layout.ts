/**
 * Kernel ids and the control block through which the caller's thread hands tasks to the pool.
 * Shared by the engine (caller side) and the workers; browser-safe.
 *
 * A task is a kernel cut into NCHUNK chunks. The caller and the workers that join claim chunks with
 * Atomics.add on NEXT until none are left, so a thread the OS has descheduled does not hold the others
 * up. STATE counts the workers inside the task; the caller sets its CLOSED bit once all chunks are
 * claimed (later workers skip the task) and returns when STATE is CLOSED with no worker inside.
 *
 * Control block (CTRL_BYTES, 64-byte aligned in the shared memory), Int32 word indices:
 *   SEQ    task sequence number; workers wake when it changes (own cache line)
 *   STATE  CLOSED bit | number of workers inside the task (own cache line)
 *   NEXT   next unclaimed chunk (own cache line)
 *   KIND.. kernel id, chunk count, argument count, error count, quit flag, sleeping workers,
 *          "caller is sleeping" flag
 * then f64 arguments at ARGS_BYTE, f64 per-chunk results at RESULTS_BYTE, an error message at MSG_BYTE.
 */
export const KERNELS = [
  'matmul', 'bmm', 'softmaxForward', 'softmaxBackward', 'crossEntropy', 'layerNormForward', 'layerNormBackward',
  'rmsNormForward', 'rmsNormBackward', 'add', 'scale', 'addBias', 'biasBackward',
  'activationForward', 'activationBackward', 'gluForward', 'gluBackward', 'adamw', 'sumSquares', 'rope',
  'embeddingForward', 'embeddingBackward', 'logSoftmaxForward', 'logSoftmaxBackward', 'permute0213',
  // int8 interface (kernels/int8.ts, wasm/int8.ts)
  'gemmI8', 'gemmW8A32', 'gemmBlockI8', 'gemmBlockW8A32', 'gemmCsrI8', 'gemmCsrW8A32', 'quantizeRowsI8', 'embedI8',
] as const;
export type KernelName = typeof KERNELS[number];
export const KID: { readonly [K in KernelName]: number } =
  Object.fromEntries(KERNELS.map((k, i) => [k, i])) as { [K in KernelName]: number };

export const SEQ = 0, STATE = 16, NEXT = 32;
export const KIND = 48, NCHUNK = 49, ARGC = 50, ERR = 51, QUIT = 52, SLEEPERS = 53, MAIN_SLEEP = 54;
export const CLOSED = 1 << 30;
export const ARGS_BYTE = 256, MAX_ARGS = 32;
export const MAX_THREADS = 64;
/** Per-chunk f64 results (sumSquares); calls use at most 4 chunks per thread. */
export const RESULTS_BYTE = 512, MAX_CHUNKS = 4 * MAX_THREADS;
export const MSG_BYTE = RESULTS_BYTE + 8 * MAX_CHUNKS, MSG_BYTES = 1024;
export const CTRL_BYTES = 4096;

/** Spin iterations on Atomics.load before sleeping in Atomics.wait (~tens of µs). */
export const SPIN = 20000;

/** A wasm kernel export: (thread, chunk, chunks, ...args). */
export type KernelFn = (...args: number[]) => void;

/** Instantiates the kernels module on the shared memory (the same way on every thread). */
export function instantiateKernels(module: WebAssembly.Module, memory: WebAssembly.Memory): WebAssembly.Exports {
  const abort = (): never => { throw new Error('wasm kernel abort'); };
  return new WebAssembly.Instance(module, { env: { memory, abort } }).exports;
}
