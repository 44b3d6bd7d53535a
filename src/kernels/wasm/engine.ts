/**
 * The wasm engine: one shared WebAssembly.Memory, the kernels module (FMA build when the host
 * validates relaxed SIMD, else the mul+add build), the heap over that memory, the worker pool, and
 * the marshalling of typed-array arguments into byte offsets.
 *
 * Arguments that are not views of the shared memory (plain Float32Arrays, say) are accepted: they are
 * copied into temporary blocks before the kernel and outputs copied back after it. That costs a copy,
 * so hot paths should use buffers from alloc().
 */
import { QkdError } from '../../tensor/errors.js';
import { alignUp, Heap } from './heap.js';
import { CTRL_BYTES, instantiateKernels, KERNELS, KID, MAX_THREADS, type KernelFn, type KernelName } from './layout.js';
import type { WasmPlatform } from './platform.js';
import { Pool } from './pool.js';

export interface WasmBackendOptions {
  /** Threads kernels run on, the caller's included (default: all cores). */
  threads?: number;
  /** Upper bound of the shared memory in MiB (default 4096, the wasm32 limit). */
  memoryMB?: number;
  /** Force the FMA (true) or the mul+add (false) build; default: FMA when the host supports it. */
  fma?: boolean;
  /** Host services; default: the Node host (node.ts) in Node, else the browser host (browser.ts). */
  platform?: WasmPlatform;
  /** Tests: run every kernel call on all threads, however small (default: small calls stay on one). */
  forceParallel?: boolean;
}

/** Argument roles for marshalling: read, written (old contents irrelevant), read and written. */
export const Io = { In: 1, Out: 2, InOut: 3 } as const;
export type Io = typeof Io[keyof typeof Io];

type View = Float32Array | Int32Array | Int8Array;
interface CopyBack { view: View; off: number; n: number }

/** A view of the same type as v over n elements at byte offset off of buf. */
function viewLike(v: View, buf: ArrayBufferLike, off: number, n: number): View {
  return v instanceof Int8Array ? new Int8Array(buf, off, n) : v instanceof Int32Array ? new Int32Array(buf, off, n)
    : new Float32Array(buf, off, n);
}

export class WasmEngine {
  private sab: ArrayBufferLike;
  /** Every buffer object the memory has had (one per grow): views made before a grow stay valid. */
  private readonly bufs = new Set<ArrayBufferLike>();
  private readonly temps: number[] = [];
  private readonly backs: CopyBack[] = [];
  /**
   * Byte offsets of views already found to be in the shared memory: on a growable shared buffer the
   * `buffer` and `byteOffset` getters cost ~10 ns each, a WeakMap lookup ~4 ns (small decode-time
   * kernel calls pass 5-10 such views).
   */
  private readonly offsets = new WeakMap<View, number>();
  private disposed = false;
  readonly heap: Heap;
  readonly pool: Pool;
  /** Per-thread GEMM workspace: thread t uses [wsBase + t*wsStride, + wsStride). */
  readonly wsBase: number;
  readonly wsStride: number;
  /** Byte offset of the pool's control block. */
  readonly ctrl: number;

  /** Whether the loaded module is the relaxed-SIMD FMA build (it says so itself). */
  readonly fma: boolean;

  private constructor(readonly memory: WebAssembly.Memory, readonly exports: WebAssembly.Exports,
    readonly threads: number, maxPages: number, canBlock: boolean, private readonly forceParallel: boolean) {
    this.fma = (exports.hasFma as () => number)() === 1;
    this.sab = memory.buffer;
    this.bufs.add(this.sab);
    const base = (exports.heapBase as () => number)();
    this.heap = new Heap(memory, Math.max(base, 4096), maxPages, () => this.onGrow());
    const ctrl = this.ctrl = this.heap.alloc(CTRL_BYTES);
    new Uint8Array(this.sab, ctrl, CTRL_BYTES).fill(0);
    this.wsStride = alignUp((exports.gemmWorkspaceBytes as () => number)());
    this.wsBase = this.heap.alloc(this.wsStride * threads);
    const fns = KERNELS.map((k) => exports[k] as unknown as KernelFn);
    this.pool = new Pool(memory, ctrl, threads, fns, canBlock);
  }

  static async create(opts: WasmBackendOptions = {}): Promise<WasmEngine> {
    const platform = opts.platform ?? await defaultPlatform();
    const threads = Math.max(1, Math.floor(opts.threads ?? Math.min(platform.cpuCount, MAX_THREADS)));
    const maxPages = Math.min(65536, Math.max(64, Math.floor((opts.memoryMB ?? 4096) * 16)));
    let bytes: Uint8Array<ArrayBuffer> | null = null;
    if (opts.fma !== false) {
      platform.enableRelaxedSimd();
      const b = await platform.loadKernels(true);
      if (WebAssembly.validate(b)) bytes = b;
      else if (opts.fma === true) throw new QkdError('E_UNSUPPORTED', 'wasm backend: this host rejects relaxed SIMD (fma: true)');
    }
    bytes ??= await platform.loadKernels(false);
    const module = await WebAssembly.compile(bytes);
    const memory = new WebAssembly.Memory({ initial: Math.min(512, maxPages), maximum: maxPages, shared: true });
    const ex = instantiateKernels(module, memory);
    const engine = new WasmEngine(memory, ex, threads, maxPages, platform.canBlock, opts.forceParallel === true);
    const started = await Promise.allSettled(Array.from({ length: threads - 1 }, (_, i) =>
      platform.spawnWorker({ module, memory, ctrl: engine.ctrl, tid: i + 1 })));
    const workers = started.flatMap((r) => r.status === 'fulfilled' ? [r.value] : []);
    engine.pool.attach(workers);
    const failed = started.find((r) => r.status === 'rejected');
    if (failed) {
      await engine.dispose();
      throw (failed as PromiseRejectedResult).reason;
    }
    return engine;
  }

  private onGrow(): void { this.sab = this.memory.buffer; this.bufs.add(this.sab); }

  /** Whether v is a view of this engine's shared memory. */
  owns(v: ArrayBufferView): boolean { return v.buffer === this.sab || this.bufs.has(v.buffer); }

  allocF32(n: number): Float32Array {
    const off = this.heap.alloc(n * 4);
    const v = new Float32Array(this.sab, off, n);
    v.fill(0);
    return v;
  }

  allocI32(n: number): Int32Array {
    const off = this.heap.alloc(n * 4);
    const v = new Int32Array(this.sab, off, n);
    v.fill(0);
    return v;
  }

  /** n zeroed int8 values (the int8 kernels' weights and quantized activations). */
  allocI8(n: number): Int8Array {
    const off = this.heap.alloc(n);
    const v = new Int8Array(this.sab, off, n);
    v.fill(0);
    return v;
  }

  free(v: View): void {
    if (!this.owns(v)) throw new QkdError('E_INTERNAL', 'wasm backend free: buffer is not from this backend\'s alloc');
    const size = this.heap.sizeOf(v.byteOffset);
    if (size === undefined || v.byteLength > size) {
      throw new QkdError('E_INTERNAL', `wasm backend free: view at byte ${v.byteOffset} is not a whole allocation`);
    }
    this.heap.free(v.byteOffset);
  }

  /** Byte offset at which a kernel finds `n` floats of v (see Io); checks the length. */
  f32(v: Float32Array, n: number, what: string, io: Io): number {
    return this.arg(v, n, what, io);
  }

  i32(v: Int32Array, n: number, what: string, io: Io): number {
    return this.arg(v, n, what, io);
  }

  i8(v: Int8Array, n: number, what: string, io: Io): number {
    return this.arg(v, n, what, io);
  }

  private arg(v: View, n: number, what: string, io: Io): number {
    if (v.length < n) {
      this.abandon();
      throw new QkdError('E_SHAPE', `wasm ${what}: has ${v.length} elements, the shapes need ${n}`);
    }
    const known = this.offsets.get(v);
    if (known !== undefined) return known;
    if (this.owns(v)) {
      const at = v.byteOffset;
      this.offsets.set(v, at);
      return at;
    }
    const off = this.heap.alloc(n * v.BYTES_PER_ELEMENT);
    this.temps.push(off);
    if (io & Io.In) viewLike(v, this.sab, off, n).set(v.subarray(0, n));
    if (io & Io.Out) this.backs.push({ view: v, off, n });
    return off;
  }

  /** Frees temporaries without copying back (a call that failed before running). */
  private abandon(): void {
    for (const off of this.temps) this.heap.free(off);
    this.temps.length = 0; this.backs.length = 0;
  }

  /** Runs a kernel cut into `chunks` chunks, then copies outputs back to foreign arrays and frees temporaries. */
  run(kernel: KernelName, chunks: number, args: number[]): void {
    if (this.disposed) { this.abandon(); throw new QkdError('E_INTERNAL', 'wasm backend used after dispose()'); }
    const kid = KID[kernel];
    if (this.temps.length === 0) { this.pool.run(kid, chunks, args); return; } // nothing to copy back or free
    let ok = false;
    try {
      this.pool.run(kid, chunks, args);
      ok = true;
    } finally {
      if (ok) {
        for (const b of this.backs) {
          b.view.set(viewLike(b.view, this.sab, b.off, b.n));
        }
      }
      this.backs.length = 0;
      this.abandon();
    }
  }

  /**
   * Chunks for a call: 1 (the caller's thread alone) below `minWork`, where a hand-off (~1 µs) would not
   * pay, else `perThread` per thread so that threads finishing early (or not descheduled) take more.
   */
  chunks(work: number, minWork: number, perThread = 4): number {
    if (this.threads === 1 || (work < minWork && !this.forceParallel)) return 1;
    return this.threads * perThread;
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    await this.pool.close();
  }
}

async function defaultPlatform(): Promise<WasmPlatform> {
  const isNode = typeof process !== 'undefined' && typeof process.versions?.node === 'string';
  if (!isNode) {
    // a browser (or another Web host): kernels and workers from their default URLs beside this module
    const { browserPlatform } = await import('./browser.js');
    return browserPlatform();
  }
  const { nodePlatform } = await import('./node.js');
  return nodePlatform();
}
