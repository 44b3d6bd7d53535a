/**
 * Caller side of the worker pool. A task is the kernel id plus f64 arguments written into the control
 * block; bumping SEQ releases the workers (which spin briefly, then sleep in Atomics.wait). The caller
 * runs share 0 itself and returns when every worker has counted itself DONE: the API stays synchronous.
 * Measured on the 2-core development machine: spin-then-wait costs ~1 µs per task where a plain
 * Atomics.wait/notify round trip costs ~27 µs.
 */
import { QkdError } from '../../tensor/errors.js';
import {
  ARGC, ARGS_BYTE, CTRL_BYTES, DONE, ERR, KERNELS, KIND, MAIN_SLEEP, MAX_ARGS, MAX_THREADS, MSG_BYTE, MSG_BYTES,
  NTH, QUIT, RESULTS_BYTE, SEQ, SLEEPERS, SPIN, type KernelFn,
} from './layout.js';
import type { PoolWorker } from './platform.js';

export class Pool {
  private readonly ctl: Int32Array;
  private readonly args: Float64Array;
  private readonly msg: Uint8Array;
  /** Per-thread f64 results of reduction kernels (sumSquares). */
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
    this.results = new Float64Array(sab, ctrl + RESULTS_BYTE, MAX_THREADS);
    this.msg = new Uint8Array(sab, ctrl + MSG_BYTE, MSG_BYTES);
  }

  attach(workers: PoolWorker[]): void { this.workers = workers; }

  /** Runs kernel `kid` on min(nth, size) threads with the given arguments; returns when all are done. */
  run(kid: number, nth: number, args: number[]): void {
    const fn = this.fns[kid];
    if (nth <= 1 || this.size <= 1) { fn(0, 1, ...args); return; }
    const n = Math.min(nth, this.size), c = this.ctl;
    for (let i = 0; i < args.length; i++) this.args[i] = args[i];
    c[KIND] = kid; c[NTH] = n; c[ARGC] = args.length;
    Atomics.store(c, DONE, 0);
    Atomics.add(c, SEQ, 1);
    if (Atomics.load(c, SLEEPERS) > 0) Atomics.notify(c, SEQ);
    let err: unknown = null;
    try { fn(0, n, ...args); } catch (e) { err = e; }
    // every worker must be out of the kernel before the caller may touch its buffers again
    this.waitDone(this.size - 1);
    if (err !== null) throw err;
    if (Atomics.load(c, ERR) > 0) {
      const end = this.msg.indexOf(0);
      const text = new TextDecoder().decode(this.msg.slice(0, end < 0 ? this.msg.length : end));
      Atomics.store(c, ERR, 0);
      throw new QkdError('E_INTERNAL', `wasm kernel ${KERNELS[kid]} failed in a worker: ${text}`);
    }
  }

  private waitDone(target: number): void {
    const c = this.ctl;
    let spins = 0;
    while (Atomics.load(c, DONE) < target) {
      if (++spins < SPIN || !this.canBlock) continue;
      Atomics.store(c, MAIN_SLEEP, 1);
      const d = Atomics.load(c, DONE);
      if (d < target) Atomics.wait(c, DONE, d, 50);
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
