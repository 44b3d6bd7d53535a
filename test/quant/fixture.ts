/** PyTorch-made quantization/sparsity fixtures (test/fixtures/quant, made by make_quant.py). */
import { readSafetensors } from '../../src/io/safetensors.js';
import { readJson } from '../helpers.js';

const DIR = 'test/fixtures/quant';
// Both throw (the test fails) when the fixture files are missing.
const file = readSafetensors(`${DIR}/quant.safetensors`);
export const manifest = readJson(`${DIR}/manifest.json`);

export function tensor(caseName: string, name: string): Float32Array {
  return file.getF32(`${caseName}.${name}`);
}

export function attrs(caseName: string): Record<string, any> {
  const c = manifest.cases[caseName];
  if (!c) throw new Error(`fixture case ${caseName} missing from ${DIR}/manifest.json`);
  return c.attrs;
}

/** Index of the first element where a and b differ bitwise (Object.is), or -1. */
export function firstBitDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return 0;
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return i;
  return -1;
}
