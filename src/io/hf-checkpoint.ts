/**
 * A Hugging Face checkpoint directory's weights: either one `model.safetensors` or shards listed by
 * `model.safetensors.index.json` (`{"weight_map": {tensor: shardFile}}`).
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { QkdError } from '../tensor/errors.js';
import { MAX_BYTES, readRegularJson } from './read-file.js';
import {
  DTYPE_SIZE, encodeSafetensors, readSafetensors, TensorStore, type SafetensorsFile, type TensorInfo,
  type TensorToWrite,
} from './safetensors.js';

export const SINGLE_FILE = 'model.safetensors';
export const INDEX_FILE = 'model.safetensors.index.json';

export class Checkpoint extends TensorStore {
  constructor(
    readonly dir: string,
    /** The weight files read (paths), in order. */
    readonly files: string[],
    /** The file to name when a tensor is absent: model.safetensors or the index. */
    readonly source: string,
    tensors: Map<string, TensorInfo>,
    /** `__metadata__` of the (first) weight file. */
    readonly metadata: Record<string, string>,
    readonly warnings: string[],
  ) {
    super(tensors, source);
  }
}

/** Reads the weights of a checkpoint directory, single-file or sharded. */
export function readCheckpointDir(dir: string): Checkpoint {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new QkdError('E_MISSING', `${dir}: checkpoint directory not found`);
  }
  const single = join(dir, SINGLE_FILE), index = join(dir, INDEX_FILE);
  if (existsSync(single)) {
    const f = readSafetensors(single);
    const warnings = existsSync(index) ? [`${dir}: both ${SINGLE_FILE} and ${INDEX_FILE} exist; using ${SINGLE_FILE}`] : [];
    return new Checkpoint(dir, [single], single, f.tensors, f.metadata, warnings);
  }
  if (existsSync(index)) return readSharded(dir, index);
  const legacy = ['pytorch_model.bin', 'pytorch_model.bin.index.json', 'model.ckpt.index', 'flax_model.msgpack']
    .find((n) => existsSync(join(dir, n)));
  if (legacy) {
    throw new QkdError('E_UNSUPPORTED', `${dir}: only safetensors weights are supported, found ${legacy} (convert it to ${SINGLE_FILE})`);
  }
  throw new QkdError('E_MISSING', `${dir}: no ${SINGLE_FILE} or ${INDEX_FILE}`);
}

/**
 * Bytes of a checkpoint directory's weight files (one file, or every shard the index names), from
 * stat alone: what bounds the weights a config may claim (model/limits.ts). Undefined when a file is
 * missing or not regular (the reader then says which).
 */
export function checkpointBytes(dir: string): { file: string; bytes: number } | undefined {
  const single = join(dir, SINGLE_FILE), index = join(dir, INDEX_FILE);
  const size = (p: string) => { try { const st = statSync(p); return st.isFile() ? st.size : undefined; } catch { return undefined; } };
  if (existsSync(single)) {
    const b = size(single);
    return b === undefined ? undefined : { file: single, bytes: b };
  }
  if (!existsSync(index)) return undefined;
  let total = 0;
  for (const f of new Set(readWeightMap(index).values())) {
    const b = size(join(dir, f));
    if (b === undefined) return undefined;
    total += b;
  }
  return { file: `the shards of ${index}`, bytes: total };
}

/** weight_map of an index file, validated: tensor -> plain shard file name. */
function readWeightMap(index: string): Map<string, string> {
  const json = readRegularJson(index, INDEX_FILE, MAX_BYTES.index);
  const wm = (json as { weight_map?: unknown } | null)?.weight_map;
  if (typeof wm !== 'object' || wm === null || Array.isArray(wm)) {
    throw new QkdError('E_FORMAT', `${index}: weight_map is missing or not an object`);
  }
  const out = new Map<string, string>();
  for (const [name, file] of Object.entries(wm)) {
    if (typeof file !== 'string' || file === '' || file === '.' || file === '..' || /[/\\]/.test(file)) {
      throw new QkdError('E_FORMAT', `${index}: weight_map["${name}"] = ${JSON.stringify(file)} is not a file name in the same directory`);
    }
    out.set(name, file);
  }
  if (out.size === 0) throw new QkdError('E_FORMAT', `${index}: weight_map is empty`);
  return out;
}

function readSharded(dir: string, index: string): Checkpoint {
  const wm = readWeightMap(index);
  const shards = new Map<string, SafetensorsFile>();
  for (const [name, file] of wm) {
    if (shards.has(file)) continue;
    const p = join(dir, file);
    if (!existsSync(p)) {
      throw new QkdError('E_MISSING', `${index}: shard ${file} (holding tensor "${name}") does not exist in ${dir}`);
    }
    shards.set(file, readSafetensors(p));
  }
  const tensors = new Map<string, TensorInfo>();
  for (const [name, file] of wm) {
    const t = shards.get(file)!.tensors.get(name);
    if (!t) throw new QkdError('E_MISSING', `${join(dir, file)}: tensor "${name}" listed in ${INDEX_FILE} is not in this shard`);
    tensors.set(name, t);
  }
  const extra: string[] = [];
  for (const [file, f] of shards) {
    for (const name of f.tensors.keys()) if (wm.get(name) !== file) extra.push(`${file}:${name}`);
  }
  const warnings = extra.length === 0 ? [] : [
    `${index}: ${extra.length} tensor(s) in shards are not in weight_map and were ignored: ${extra.slice(0, 5).join(', ')}${extra.length > 5 ? ', ...' : ''}`,
  ];
  const first = [...shards.values()][0];
  return new Checkpoint(dir, [...shards.values()].map((f) => f.path), index, tensors, first.metadata, warnings);
}

/**
 * Serialises tensors as a checkpoint: one `model.safetensors` when everything fits in
 * `maxShardBytes`, otherwise `model-0000i-of-0000n.safetensors` shards plus the index (file name ->
 * contents, ready for writeDirAtomic). A tensor larger than the limit gets a shard of its own.
 */
export function encodeCheckpoint(
  tensors: Map<string, TensorToWrite>, opts: { maxShardBytes?: number; metadata?: Record<string, string> } = {},
): Record<string, Uint8Array | string> {
  const max = opts.maxShardBytes ?? Infinity;
  const groups: [string, TensorToWrite][][] = [[]];
  let used = 0, total = 0;
  for (const [name, t] of tensors) {
    const size = DTYPE_SIZE[t.dtype] * t.data.length;
    if (used > 0 && used + size > max) { groups.push([]); used = 0; }
    groups[groups.length - 1].push([name, t]);
    used += size;
    total += size;
  }
  if (groups.length === 1) return { [SINGLE_FILE]: encodeSafetensors(tensors, opts.metadata, SINGLE_FILE) };
  const files: Record<string, Uint8Array | string> = {};
  const weightMap: [string, string][] = [];
  const pad = (i: number) => String(i).padStart(5, '0');
  groups.forEach((g, i) => {
    const file = `model-${pad(i + 1)}-of-${pad(groups.length)}.safetensors`;
    files[file] = encodeSafetensors(new Map(g), opts.metadata, file);
    for (const [name] of g) weightMap.push([name, file]);
  });
  const sorted = Object.fromEntries(weightMap.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  files[INDEX_FILE] = JSON.stringify({ metadata: { total_size: total }, weight_map: sorted }, null, 2) + '\n';
  return files;
}
