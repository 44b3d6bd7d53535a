/**
 * The pool worker's loop, host-independent (a Node worker_thread or a Web Worker runs the same code):
 * wait for SEQ to change (spin briefly, then Atomics.wait), run this thread's share of the kernel,
 * count DONE, repeat until QUIT.
 */
import type { WorkerInit } from './platform.js';
import {
  ARGC, ARGS_BYTE, CTRL_BYTES, DONE, ERR, instantiateKernels, KERNELS, KIND, MAIN_SLEEP, MAX_ARGS, MSG_BYTE,
  MSG_BYTES, NTH, QUIT, SEQ, SLEEPERS, SPIN, type KernelFn,
} from './layout.js';

/** Instantiates the module; the returned function runs the loop (it only returns after QUIT). */
export function prepareWorker(init: WorkerInit): () => void {
  const ex = instantiateKernels(init.module, init.memory);
  const fns = KERNELS.map((k) => ex[k] as unknown as KernelFn);
  const sab = init.memory.buffer;
  const ctl = new Int32Array(sab, init.ctrl, CTRL_BYTES / 4);
  const args = new Float64Array(sab, init.ctrl + ARGS_BYTE, MAX_ARGS);
  const msg = new Uint8Array(sab, init.ctrl + MSG_BYTE, MSG_BYTES);
  const tid = init.tid;
  // argument arrays by length, reused: [tid, nth, ...args]
  const argv: number[][] = [];
  for (let n = 0; n <= MAX_ARGS; n++) argv.push(new Array<number>(n + 2).fill(0));

  // read before the worker reports ready: the first task may be posted right after that report
  let last = Atomics.load(ctl, SEQ);
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
      const nth = ctl[NTH];
      if (tid < nth) {
        const kid = ctl[KIND], argc = ctl[ARGC], a = argv[argc];
        a[0] = tid; a[1] = nth;
        for (let i = 0; i < argc; i++) a[i + 2] = args[i];
        try {
          fns[kid](...a);
        } catch (e) {
          if (Atomics.add(ctl, ERR, 1) === 0) writeMessage(msg, `thread ${tid}: ${String(e)}`);
        }
      }
      Atomics.add(ctl, DONE, 1);
      if (Atomics.load(ctl, MAIN_SLEEP)) Atomics.notify(ctl, DONE);
    }
  };
}

function writeMessage(dst: Uint8Array, text: string): void {
  // encode into a plain array first: TextEncoder.encodeInto rejects shared buffers in some hosts
  const bytes = new TextEncoder().encode(text).subarray(0, dst.length - 1);
  dst.set(bytes);
  dst[bytes.length] = 0;
}
