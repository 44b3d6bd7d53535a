/** Quantization primitives (browser-safe): one implementation for QAT and the int8 runtime. */
export * from './quantize.js';
export * from './lsq.js';
export * from './pack.js';
