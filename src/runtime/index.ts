/**
 * Browser-safe inference entry: imports no Node-only module. In a browser, loadModelFromUrl fetches a
 * `qkd export` directory and builds the int8 runtime on the wasm backend (docs/browser.md); or bring
 * weights and tokenizer.json as bytes yourself, pick a backend, and generate.
 */
export { Transformer, type ForwardOptions } from '../model/transformer.js';
export type { LinearProducts, WeightSource } from '../model/products.js';
export { makeModelConfig, type ModelConfig } from '../model/config.js';
export {
  generate, generateIds, pickToken, rng, stream, type CausalLM, type GenerateOptions, type StreamOptions, type StreamToken,
  type StreamTokenizer,
} from './generate.js';
export { Int8Transformer, type Int8ModelOptions } from './int8-model.js';
export { parseExport, type ExportFiles, type LoadedExport } from '../io/export-read.js';
export { EXPORT_FORMAT, EXPORT_VERSION, EXPORT_FILES } from '../io/export-format.js';
export { TsInt8Kernels } from '../kernels/ts/int8.js';
export type { Int8Kernels, Int8Matrix, FormatRule } from '../kernels/int8.js';
export { tokenizerFromJson, type QkdTokenizer } from '../data/tokenizer.js';
export { TsBackend } from '../kernels/ts/backend.js';
export type { Backend } from '../kernels/backend.js';
export { QkdError } from '../tensor/errors.js';
export {
  loadModelFromUrl, createBrowserWasmBackend, browserPlatform, canShareMemory, threadsUnavailableReason,
  type BrowserModel, type LoadModelOptions, type BrowserBackendOptions, type BrowserPlatformOptions,
} from './browser.js';
export type { WasmBackend } from '../kernels/wasm/backend.js';
