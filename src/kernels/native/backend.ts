/**
 * The `native` backend (Node only, opt-in): the wasm backend with its matrix products run by OpenBLAS
 * through a Node-API addon (native/qkd_native.cc, built by scripts/build.mjs into
 * dist/native/qkd_native.node when OpenBLAS and Node's headers are installed). Everything else (rows,
 * elementwise, attention pieces, the optimizer, memory) is the wasm backend's, unchanged.
 *
 * Threads: OpenBLAS runs on the caller's thread plus threads-1 of its own, the wasm pool on the caller's
 * plus threads-1 workers; the two never run kernels at the same time (every call is synchronous).
 * OpenBLAS's idle threads spin-yield for OPENBLAS_THREAD_TIMEOUT before they sleep, which would take
 * cores from the wasm workers between products, so the timeout defaults to its minimum here (see
 * loadNativeAddon).
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { BackendName } from '../backend.js';
import { QkdError } from '../../tensor/errors.js';
import { WasmBackend, type WasmBackendOptions } from '../wasm/backend.js';
import { WasmEngine } from '../wasm/engine.js';

/** What dist/native/qkd_native.node exports (see native/qkd_native.cc). */
export interface NativeAddon {
  /** C (M,N) (+)= op(A) (M,K) · op(B) (K,N), row-major; transA: A stored (K,M); transB: B stored (N,K). */
  sgemm(C: Float32Array, A: Float32Array, B: Float32Array, M: number, N: number, K: number,
    transA?: boolean, transB?: boolean, accumulate?: boolean): void;
  /** `batch` products over contiguous blocks A (batch,M,K), B (batch,K,N), C (batch,M,N). */
  sgemmBatched(C: Float32Array, A: Float32Array, B: Float32Array, batch: number, M: number, N: number, K: number,
    transA?: boolean, transB?: boolean, accumulate?: boolean): void;
  /** OpenBLAS's thread count (process-wide). */
  setThreads(n: number): void;
  getThreads(): number;
  /** OpenBLAS build string, the kernel it picked for this CPU, its thread count. */
  info(): NativeBlasInfo;
}

export interface NativeBlasInfo { config: string; corename: string; threads: number }

/** dist/native/qkd_native.node, from dist/src/kernels/native/backend.js. */
export const NATIVE_ADDON_PATH = fileURLToPath(new URL('../../../native/qkd_native.node', import.meta.url));
const INSTALL = 'install OpenBLAS (Debian/Ubuntu: apt-get install -y libopenblas-dev) and g++, then run npm run build';

let addon: NativeAddon | null = null;
/** OpenBLAS's thread count is process-wide: the last one set, so backends of different sizes can coexist. */
let blasThreads = -1;

/**
 * Loads the addon (once for the default path). OPENBLAS_THREAD_TIMEOUT, read by OpenBLAS when it loads,
 * defaults to 4 here, its minimum (2^4 cycles of spinning before an idle worker sleeps; OpenBLAS's own
 * default is 2^28, ~0.1 s): a worker still spinning after a product can only take a core from the wasm
 * workers that run next. On the loaded 2-core machine the 2-thread training step measured 660-703 ms
 * with 4 against 689-734 ms with 28 (interleaved; within noise). Set it in the environment to override.
 */
export function loadNativeAddon(path = NATIVE_ADDON_PATH): NativeAddon {
  if (addon && path === NATIVE_ADDON_PATH) return addon;
  if (!existsSync(path)) {
    throw new QkdError('E_UNSUPPORTED', `native backend: ${path} is not built; ${INSTALL} (or use --backend wasm)`);
  }
  // set only while OpenBLAS loads (it reads the variable then), so child processes do not inherit it
  const ownTimeout = process.env.OPENBLAS_THREAD_TIMEOUT === undefined;
  if (ownTimeout) process.env.OPENBLAS_THREAD_TIMEOUT = '4';
  let lib: NativeAddon;
  try {
    lib = createRequire(import.meta.url)(path) as NativeAddon;
  } catch (e) {
    throw new QkdError('E_UNSUPPORTED', `native backend: cannot load ${path} (${String(e)}); ${INSTALL}`, { cause: e });
  } finally {
    if (ownTimeout) delete process.env.OPENBLAS_THREAD_TIMEOUT;
  }
  if (path === NATIVE_ADDON_PATH) addon = lib;
  return lib;
}

export async function createNativeBackend(opts: WasmBackendOptions = {}): Promise<NativeBackend> {
  const lib = loadNativeAddon();   // before the engine starts workers: fail fast when it is not built
  return new NativeBackend(await WasmEngine.create(opts), lib);
}

export class NativeBackend extends WasmBackend {
  override readonly name: BackendName = 'native';
  /** The OpenBLAS build and the kernel it chose for this CPU. */
  readonly blas: NativeBlasInfo;

  constructor(engine: WasmEngine, private readonly lib: NativeAddon) {
    super(engine);
    this.useThreads();
    this.blas = lib.info();
  }

  override matmul(C: Float32Array, A: Float32Array, B: Float32Array, M: number, N: number, K: number,
    transA = false, transB = false, accumulate = false): void {
    checkGemm('matmul', C, A, B, 1, M, N, K);
    this.useThreads();
    this.lib.sgemm(C, A, B, M, N, K, transA, transB, accumulate);
  }

  override bmm(C: Float32Array, A: Float32Array, B: Float32Array, batch: number, M: number, N: number, K: number,
    transA = false, transB = false, accumulate = false): void {
    checkGemm('bmm', C, A, B, batch, M, N, K);
    this.useThreads();
    this.lib.sgemmBatched(C, A, B, batch, M, N, K, transA, transB, accumulate);
  }

  private useThreads(): void {
    if (blasThreads === this.threads) return;
    this.lib.setThreads(this.threads);
    blasThreads = this.threads;
  }
}

/** Named shape errors before the addon sees the call (it checks too, with less context). */
function checkGemm(kind: string, C: Float32Array, A: Float32Array, B: Float32Array, batch: number, M: number,
  N: number, K: number): void {
  for (const [k, v] of [['batch', batch], ['M', M], ['N', N], ['K', K]] as const) {
    if (!Number.isInteger(v) || v < 0 || v > 0x7fffffff) {
      throw new QkdError('E_SHAPE', `native ${kind}: ${k} = ${v} is not an integer in [0, 2^31)`);
    }
  }
  for (const [name, buf, n] of [['C', C, batch * M * N], ['A', A, batch * M * K], ['B', B, batch * K * N]] as const) {
    if (!(buf instanceof Float32Array)) throw new QkdError('E_SHAPE', `native ${kind} ${name}: not a Float32Array`);
    if (buf.length < n) throw new QkdError('E_SHAPE', `native ${kind} ${name}: has ${buf.length} elements, the shapes need ${n}`);
  }
}
