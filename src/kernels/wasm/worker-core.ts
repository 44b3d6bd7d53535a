/**
 * The pool worker's loop, host-independent (a Node worker_thread or a Web Worker runs the same code):
 * wait for SEQ to change (spin briefly, then Atomics.wait), join the task unless it is already closed,
 * claim and run chunks until none are left, leave; repeat until QUIT. See layout.ts for the protocol.
 */
import type { WorkerInit } from './platform.js';
import {
  ARGC, ARGS_BYTE, CLOSED, CTRL_BYTES, ERR, instantiateKernels, KERNELS, KIND, MAIN_SLEEP, MAX_ARGS, MSG_BYTE,
  MSG_BYTES, NCHUNK, NEXT, QUIT, SEQ, SLEEPERS, SPIN, STATE, type KernelFn,
} from './layout.js';

/** Instantiates the module; the returned function runs the loop (it only returns after QUIT). */
export function prepareWorker(init: WorkerInit): () => void {
  const ex = instantiateKernels(init.module, init.memory);
  const fns = KERNELS.map((k) => ex[k] as unknown as KernelFn);
  const sab = init.memory.buffer;
  const ctl = new Int32Array(sab, init.ctrl, CTRL_BYTES / 4);
  const args = new Float64Array(sab, init.ctrl + ARGS_BYTE, MAX_ARGS);
  const msg = new Uint8Array(sab, init.ctrl + MSG_BYTE, MSG_BYTES);
  const th = init.tid;
  // argument arrays by length, reused: [thread, chunk, chunks, ...args]
  const argv: number[][] = [];
  for (let n = 0; n <= MAX_ARGS; n++) argv.push(new Array<number>(n + 3).fill(0));
  // read before the worker reports ready: the first task may be posted right after that report
  let last = Atomics.load(ctl, SEQ);

  const join = (): boolean => {
    for (;;) {
      const st = Atomics.load(ctl, STATE);
      if (st & CLOSED) return false;
      if (Atomics.compareExchange(ctl, STATE, st, st + 1) === st) return true;
    }
  };

  return () => {
    for (;;) {
      let s = Atomics.load(ctl, SEQ), spins = 0;
      while (s === last) {
        if (++spins < SPIN) { s = Atomics.load(ctl, SEQ); continue; }
        Atomics.add(ctl, SLEEPERS, 1);
        Atomics.wait(ctl, SEQ, last);
        Atomics.sub(ctl, SLEEPERS, 1);
        s = Atomics.load(ctl, SEQ); spins = 0;
      }
      last = s;
      if (Atomics.load(ctl, QUIT)) return;
      if (!join()) continue;
      // the arguments were written before STATE was reset for this task, so they are visible now
      const kid = ctl[KIND], n = ctl[NCHUNK], argc = ctl[ARGC], a = argv[argc], fn = fns[kid];
      a[0] = th; a[2] = n;
      for (let i = 0; i < argc; i++) a[i + 3] = args[i];
      try {
        for (let c = Atomics.add(ctl, NEXT, 1); c < n; c = Atomics.add(ctl, NEXT, 1)) { a[1] = c; fn(...a); }
      } catch (e) {
        Atomics.store(ctl, NEXT, n);
        if (Atomics.add(ctl, ERR, 1) === 0) writeMessage(msg, `thread ${th}: ${String(e)}`);
      }
      if (Atomics.sub(ctl, STATE, 1) - 1 === CLOSED && Atomics.load(ctl, MAIN_SLEEP)) Atomics.notify(ctl, STATE);
    }
  };
}

function writeMessage(dst: Uint8Array, text: string): void {
  // encode into a plain array first: TextEncoder.encodeInto rejects shared buffers in some hosts
  const bytes = new TextEncoder().encode(text).subarray(0, dst.length - 1);
  dst.set(bytes);
  dst[bytes.length] = 0;
}
