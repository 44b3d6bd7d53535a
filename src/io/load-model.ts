/** Loading a model directory (Hugging Face layout) into a Transformer on a backend. */
import type { Backend } from '../kernels/backend.js';
import { Transformer } from '../model/transformer.js';
import { loadHfModel } from './hf.js';

export interface LoadedModel {
  model: Transformer;
  /** Warnings from the loader (e.g. special token ids outside the vocabulary). */
  warnings: string[];
  /** Storage dtype of the checkpoint. */
  dtype: string;
}

export function loadModel(dir: string, backend: Backend): LoadedModel {
  const hf = loadHfModel(dir);
  const model = new Transformer(backend, hf.config);
  model.params.load(hf.tensors, dir);
  return { model, warnings: hf.warnings, dtype: hf.dtype };
}
