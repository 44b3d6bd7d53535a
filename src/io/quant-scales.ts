/**
 * The per-row scales saved beside a distilled student (model/compression.ts SCALES_FILE): one F32
 * tensor [rows] per quantized matrix, keyed scaleKey(name). Exports and `qkd inspect` read the
 * grid from it (learned LSQ scales cannot be recomputed from the weights).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { SCALES_FILE, SCALES_FORMAT } from '../model/compression.js';
import { encodeSafetensors, readSafetensors } from './safetensors.js';

/** The scales saved in a model directory, or undefined when it has none. */
export function readSavedScales(dir: string): Map<string, Float32Array> | undefined {
  const p = join(dir, SCALES_FILE);
  if (!existsSync(p)) return undefined;
  const f = readSafetensors(p);
  return new Map([...f.tensors.keys()].map((k) => [k, f.getF32(k)]));
}

/** The SCALES_FILE bytes for scales keyed scaleKey(name). */
export function encodeScales(scales: Map<string, Float32Array>): Uint8Array {
  const t = new Map([...scales].map(([k, v]) => [k, { dtype: 'F32' as const, shape: [v.length], data: v }]));
  return encodeSafetensors(t, { format: SCALES_FORMAT }, SCALES_FILE);
}
