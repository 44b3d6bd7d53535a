export * from './model/config.js';
export * from './tensor/errors.js';
export type { Backend, BackendName, Activation } from './kernels/backend.js';
