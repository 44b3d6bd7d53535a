/**
 * Caller side of the worker pool (protocol in layout.ts). The caller writes the task, wakes the
 * workers (they spin briefly, then sleep in Atomics.wait), claims chunks like any worker, closes the
 * task and returns when no worker is inside it: the API stays synchronous. Measured on the 2-core
 * development machine: spin-then-wait costs ~1 µs per task where a plain Atomics.wait/notify round
 * trip costs ~27 µs.
 */
import { QkdError } from '../../tensor/errors.js';
import {
  ARGC, ARGS_BYTE, CLOSED, CTRL_BYTES, ERR, KERNELS, KIND, MAIN_SLEEP, MAX_ARGS, MAX_CHUNKS, MAX_THREADS, MSG_BYTE, MSG_BYTES,
  NCHUNK, NEXT, QUIT, RESULTS_BYTE, SEQ, SLEEPERS, SPIN, STATE, type KernelFn,
} from './layout.js';
import type { PoolWorker } from './platform.js';

export class Pool {
  private readonly ctl: Int32Array;
  private readonly args: Float64Array;
  private readonly msg: Uint8Array;
  /** Per-chunk f64 results of reduction kernels (sumSquares). */
  readonly results: Float64Array;
  private workers: PoolWorker[] = [];

  /**
   * @param size threads including the caller's
   * @param fns the caller's instance of every kernel, indexed by kernel id
   */
  constructor(memory: WebAssembly.Memory, ctrl: number, readonly size: number, private readonly fns: KernelFn[],
    private readonly canBlock: boolean) {
    if (size > MAX_THREADS) throw new QkdError('E_CONFIG', `wasm backend: threads=${size} exceeds ${MAX_THREADS}`);
    const sab = memory.buffer;
    this.ctl = new Int32Array(sab, ctrl, CTRL_BYTES / 4);
    this.args = new Float64Array(sab, ctrl + ARGS_BYTE, MAX_ARGS);
    this.results = new Float64Array(sab, ctrl + RESULTS_BYTE, MAX_CHUNKS);
    this.msg = new Uint8Array(sab, ctrl + MSG_BYTE, MSG_BYTES);
  }

  attach(workers: PoolWorker[]): void { this.workers = workers; }

  /**
   * Runs kernel `kid` cut into `chunks` chunks on all threads (on the caller's alone when chunks is 1
   * or there are no workers, as one chunk); returns when every chunk is done.
   */
  run(kid: number, chunks: number, args: number[]): void {
    const fn = this.fns[kid];
    if (chunks > MAX_CHUNKS) throw new QkdError('E_INTERNAL', `wasm pool: ${chunks} chunks exceed ${MAX_CHUNKS}`);
    if (chunks <= 1 || this.size <= 1) { fn(0, 0, 1, ...args); return; }
    const c = this.ctl;
    for (let i = 0; i < args.length; i++) this.args[i] = args[i];
    c[KIND] = kid; c[NCHUNK] = chunks; c[ARGC] = args.length;
    Atomics.store(c, NEXT, 0);
    Atomics.store(c, STATE, 0); // opens the task: workers may join from here on
    Atomics.add(c, SEQ, 1);
    if (Atomics.load(c, SLEEPERS) > 0) Atomics.notify(c, SEQ);
    let err: unknown = null;
    try {
      for (let k = Atomics.add(c, NEXT, 1); k < chunks; k = Atomics.add(c, NEXT, 1)) fn(0, k, chunks, ...args);
    } catch (e) {
      err = e;
      Atomics.store(c, NEXT, chunks);
    }
    Atomics.or(c, STATE, CLOSED);
    // every worker inside must be out of the kernel before the caller may touch its buffers again
    this.waitIdle();
    // a worker's failure is cleared here whether or not the caller failed too (it must not leak into
    // the next task)
    const workerFailed = Atomics.exchange(c, ERR, 0) > 0;
    if (err !== null) throw err;
    if (workerFailed) {
      const end = this.msg.indexOf(0);
      const text = new TextDecoder().decode(this.msg.slice(0, end < 0 ? this.msg.length : end));
      throw new QkdError('E_INTERNAL', `wasm kernel ${KERNELS[kid]} failed in a worker: ${text}`);
    }
  }

  private waitIdle(): void {
    const c = this.ctl;
    let spins = 0;
    while (Atomics.load(c, STATE) !== CLOSED) {
      if (++spins < SPIN || !this.canBlock) continue;
      Atomics.store(c, MAIN_SLEEP, 1);
      const st = Atomics.load(c, STATE);
      if (st !== CLOSED) Atomics.wait(c, STATE, st, 50);
      Atomics.store(c, MAIN_SLEEP, 0);
      spins = 0;
    }
  }

  /** Tells the workers to leave their loop and ends them. */
  async close(): Promise<void> {
    const c = this.ctl;
    Atomics.store(c, QUIT, 1);
    Atomics.add(c, SEQ, 1);
    Atomics.notify(c, SEQ);
    const ws = this.workers;
    this.workers = [];
    await Promise.all(ws.map((w) => w.terminate()));
  }
}
