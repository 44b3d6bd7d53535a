/**
 * Browser-safe inference entry: imports no Node-only module. Bring weights and tokenizer.json as
 * bytes/objects (fetch them in a browser), pick a backend, and generate.
 */
export { Transformer, type WeightSource, type ForwardOptions } from '../model/transformer.js';
export { makeModelConfig, type ModelConfig } from '../model/config.js';
export { generate, generateIds, pickToken, rng, type GenerateOptions } from './generate.js';
export { tokenizerFromJson, type QkdTokenizer } from '../data/tokenizer.js';
export { TsBackend } from '../kernels/ts/backend.js';
export type { Backend } from '../kernels/backend.js';
export { QkdError } from '../tensor/errors.js';
