/**
 * Browser helpers of the runtime: the wasm backend on the browser host, and loading a `qkd export`
 * directory (config.json, model.safetensors, tokenizer.json) from a URL.
 *
 * Where the model runs: on the thread that calls these (the page's main thread or a dedicated Web
 * Worker). Kernel calls are synchronous; on a main thread the UI is blocked for one forward pass at a
 * time, so a page yields to the event loop between tokens (web/main.js does). See
 * kernels/wasm/browser.ts for threads and cross-origin isolation.
 */
import type { Backend } from '../kernels/backend.js';
import { MAX_THREADS } from '../kernels/wasm/layout.js';
import { createWasmBackend, type WasmBackend, type WasmBackendOptions } from '../kernels/wasm/backend.js';
import { browserPlatform, threadsUnavailableReason, type BrowserPlatformOptions } from '../kernels/wasm/browser.js';
import { tokenizerFromJson, type QkdTokenizer } from '../data/tokenizer.js';
import { EXPORT_FILES } from '../io/export-format.js';
import { parseExport } from '../io/export-read.js';
import { int8KernelsFor } from '../kernels/int8.js';
import { TsInt8Kernels } from '../kernels/ts/int8.js';
import { QkdError } from '../tensor/errors.js';
import { Int8Transformer, type Int8ModelOptions } from './int8-model.js';

export { browserPlatform, canShareMemory, threadsUnavailableReason, type BrowserPlatformOptions } from '../kernels/wasm/browser.js';

export interface BrowserBackendOptions extends BrowserPlatformOptions, Omit<WasmBackendOptions, 'platform'> {
  /** Receives notes such as the 1-thread fallback (default: console.warn). */
  onWarning?: (message: string) => void;
}

/**
 * The wasm backend for a browser. threads defaults to navigator.hardwareConcurrency when the page is
 * cross-origin isolated, else 1 (a request for more is lowered to 1 with a warning).
 */
export async function createBrowserWasmBackend(opts: BrowserBackendOptions = {}): Promise<WasmBackend> {
  const warn = opts.onWarning ?? ((m: string) => console.warn(`qkd: ${m}`));
  const platform = browserPlatform(opts);
  const why = threadsUnavailableReason();
  let threads = opts.threads ?? Math.min(platform.cpuCount, MAX_THREADS);
  if (why !== null && (opts.threads ?? 2) > 1) {
    warn(why);
    threads = 1;
  }
  return createWasmBackend({ ...opts, threads, platform });
}

export interface LoadModelOptions extends BrowserBackendOptions, Int8ModelOptions {
  /** A backend to build the model on; default: a new createBrowserWasmBackend(options). */
  backend?: Backend;
  /** Called as the weights download: bytes received so far, and the total when the server says it. */
  onProgress?: (loaded: number, total: number | null) => void;
}

export interface BrowserModel {
  model: Int8Transformer;
  tokenizer: QkdTokenizer;
  backend: Backend;
  /** Loader and backend notes (the 1-thread fallback, config warnings). */
  warnings: string[];
  /** Bytes downloaded (config, weights, tokenizer). */
  bytes: number;
  /** Frees the backend when loadModelFromUrl created it. */
  dispose(): Promise<void>;
}

type Fetch = typeof fetch;

/** GET `url` as bytes; failures name the URL. */
async function fetchBytes(doFetch: Fetch, url: URL, onProgress?: (n: number, total: number | null) => void): Promise<Uint8Array> {
  let res: Response;
  try {
    res = await doFetch(url);
  } catch (e) {
    throw new QkdError('E_MISSING', `${url.href}: fetch failed: ${String(e)}`, { cause: e });
  }
  if (!res.ok) throw new QkdError('E_MISSING', `${url.href}: HTTP ${res.status} ${res.statusText}`.trimEnd());
  const len = Number(res.headers.get('Content-Length'));
  const total = Number.isFinite(len) && len > 0 ? len : null;
  if (!onProgress || !res.body) return new Uint8Array(await res.arrayBuffer());
  const parts: Uint8Array[] = [], reader = res.body.getReader();
  let n = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    parts.push(value); n += value.length;
    onProgress(n, total);
  }
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}

function parseJson(bytes: Uint8Array, url: URL): unknown {
  try {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (e) {
    throw new QkdError('E_FORMAT', `${url.href}: not valid UTF-8 JSON: ${(e as Error).message}`, { cause: e });
  }
}

/** The error of a parser, its message prefixed with where the files came from. */
function atUrl(e: unknown, base: URL): unknown {
  if (!(e instanceof QkdError)) return e;
  const hint = /"quantization" is missing/.test(e.message) ? '; the browser loads `qkd export` directories: export it first' : '';
  return new QkdError(e.code, `${base.href}: ${e.message}${hint}`, { cause: e });
}

/**
 * Fetches a `qkd export` directory at `baseUrl` (relative URLs resolve against the page) and builds
 * the int8 runtime on a browser wasm backend. A float model directory is refused with a message that
 * says to run `qkd export` first.
 */
export async function loadModelFromUrl(baseUrl: string | URL, opts: LoadModelOptions = {}): Promise<BrowserModel> {
  const page = (globalThis as { location?: { href: string } }).location?.href;
  const s = String(baseUrl);
  const base = new URL(s.endsWith('/') ? s : s + '/', page);
  const doFetch: Fetch = opts.fetch ?? globalThis.fetch.bind(globalThis);
  const url = (name: string) => new URL(name, base);
  const [config, tok] = await Promise.all([fetchBytes(doFetch, url(EXPORT_FILES.config)), fetchBytes(doFetch, url(EXPORT_FILES.tokenizer))]);
  const model = await fetchBytes(doFetch, url(EXPORT_FILES.model), opts.onProgress);
  const warnings: string[] = [];
  const tokenizer = tokenizerFromJson(parseJson(tok, url(EXPORT_FILES.tokenizer)), undefined, url(EXPORT_FILES.tokenizer).href);
  const onWarning = (m: string) => { warnings.push(m); opts.onWarning?.(m); };
  const backend = opts.backend ?? await createBrowserWasmBackend({ ...opts, onWarning });
  try {
    // as Int8Transformer.fromFiles, keeping the loader's warnings
    const kernels = opts.kernels ?? int8KernelsFor(backend, () => new TsInt8Kernels());
    const loaded = parseExport({ config, model, tokenizer: tok }, kernels);
    warnings.push(...loaded.warnings);
    return {
      model: new Int8Transformer(backend, loaded, { ...opts, kernels }), tokenizer, backend, warnings,
      bytes: config.length + model.length + tok.length,
      dispose: async () => { if (!opts.backend) await backend.dispose(); },
    };
  } catch (e) {
    if (!opts.backend) await backend.dispose();
    throw atUrl(e, base);
  }
}
