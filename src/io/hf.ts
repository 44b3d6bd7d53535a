/**
 * Hugging Face model directory <-> engine: config.json + safetensors weights (single or sharded,
 * f32/f16/bf16) in, internal parameter names and float32 tensors out, and back.
 */
import { existsSync } from 'node:fs';
import { basename, join } from 'node:path';
import { QkdError } from '../tensor/errors.js';
import { makeModelConfig, paramLayout, type ModelConfig } from '../model/config.js';
import { writeDirAtomic } from './atomic.js';
import { readRegularJson } from './read-file.js';
import { checkpointBytes, encodeCheckpoint, INDEX_FILE, readCheckpointDir, SINGLE_FILE, type Checkpoint } from './hf-checkpoint.js';
import { checkModelLimits } from '../model/limits.js';
import { hfConfigFor, parseHfConfig, type ParsedHfConfig, type SaveDtype } from './hf-config.js';
import { hfLinks, IGNORED_HF, joinHf, splitHf, type Link } from './hf-names.js';
import type { TensorToWrite } from './safetensors.js';

export { STUDENT_MODEL_TYPE, type SaveDtype } from './hf-config.js';

export interface LoadedHfModel {
  config: ModelConfig;
  /** Internal name (paramLayout) -> float32 data in the internal shape. */
  tensors: Map<string, Float32Array>;
  /** config.json as read. */
  hfConfig: Record<string, unknown>;
  /** Storage dtype of the weights (that of the largest tensor), e.g. 'F32' or 'BF16'. */
  dtype: string;
  warnings: string[];
}

function readJson(path: string, required: boolean): unknown {
  if (!existsSync(path)) {
    if (required) throw new QkdError('E_MISSING', `${path}: not found`);
    return undefined;
  }
  return readRegularJson(path, basename(path));
}

function sameShape(a: number[], b: number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/** The checkpoint name for a link: prefixed (`model.x`) if present, else bare (`x`), else null. */
function resolveName(ckpt: Checkpoint, link: Link): string | null {
  if (link.prefix && ckpt.has(link.prefix + link.hf)) return link.prefix + link.hf;
  return ckpt.has(link.hf) ? link.hf : null;
}

interface Loaded { tensors: Map<string, Float32Array>; used: Set<string>; dtype: string; warnings: string[] }

/**
 * Every required tensor present with the config's shape and a float dtype, checked before anything
 * is allocated: so every size the config implies for the weights is backed by the file.
 */
function checkLinks(ckpt: Checkpoint, links: Link[]): (string | null)[] {
  return links.map((link) => {
    const name = resolveName(ckpt, link);
    if (name === null) {
      if (!link.optional) {
        throw new QkdError('E_MISSING', `${ckpt.source}: tensor "${link.prefix}${link.hf}" (for ${link.parts.map((p) => p.name).join(', ')}) not found`);
      }
      return null;
    }
    const t = ckpt.get(name);
    if (!sameShape(t.shape, link.hfShape)) {
      throw new QkdError('E_SHAPE', `${t.file}: tensor "${name}" has shape [${t.shape.join(', ')}], config expects [${link.hfShape.join(', ')}]`);
    }
    if (t.dtype !== 'F32' && t.dtype !== 'F16' && t.dtype !== 'BF16') {
      throw new QkdError('E_UNSUPPORTED', `${t.file}: tensor "${name}" has dtype ${t.dtype}; only F32, F16 and BF16 weights can be imported`);
    }
    return name;
  });
}

function loadLinks(ckpt: Checkpoint, links: Link[]): Loaded {
  const tensors = new Map<string, Float32Array>();
  const used = new Set<string>(), warnings: string[] = [];
  const dtypes = new Map<string, number>();
  const names = checkLinks(ckpt, links);
  for (const [i, link] of links.entries()) {
    const name = names[i];
    if (name === null) {
      for (const p of link.parts) tensors.set(p.name, new Float32Array(p.shape.reduce((a, b) => a * b, 1)));
      continue;
    }
    const t = ckpt.get(name);
    const data = ckpt.getF32(name);
    let bad = 0;
    for (let i = 0; i < data.length; i++) if (!Number.isFinite(data[i])) bad++;
    if (bad) warnings.push(`${t.file}: tensor "${name}" has ${bad} non-finite value(s)`);
    for (const [k, v] of splitHf(link, data)) tensors.set(k, v);
    used.add(name);
    dtypes.set(t.dtype, (dtypes.get(t.dtype) ?? 0) + data.length);
  }
  if (dtypes.size > 1) warnings.push(`${ckpt.source}: mixed weight dtypes ${[...dtypes.keys()].join(', ')}`);
  const dtype = [...dtypes].sort((a, b) => b[1] - a[1])[0]?.[0] ?? 'F32';
  return { tensors, used, dtype, warnings };
}

/** Tensors nobody asked for: ignored buffers are silent, a tied lm_head is checked, the rest warned. */
function leftovers(ckpt: Checkpoint, loaded: Loaded, config: ModelConfig): string[] {
  const warnings: string[] = [];
  const extra: string[] = [];
  for (const name of ckpt.tensors.keys()) {
    if (loaded.used.has(name) || IGNORED_HF.some((r) => r.test(name))) continue;
    if (name === 'lm_head.weight' && config.tieEmbeddings && config.family !== 'student') {
      const head = ckpt.getF32(name), embed = loaded.tensors.get('embed.weight')!;
      const differs = head.length !== embed.length || head.some((v, i) => !Object.is(v, embed[i]));
      if (differs) warnings.push(`${ckpt.tensors.get(name)!.file}: lm_head.weight differs from the embedding although tie_word_embeddings is true; using the embedding`);
      continue;
    }
    extra.push(name);
  }
  if (extra.length) {
    warnings.push(`${ckpt.source}: ${extra.length} unused tensor(s): ${extra.slice(0, 8).join(', ')}${extra.length > 8 ? ', ...' : ''}`);
  }
  return warnings;
}

/**
 * Llama with attention_bias/mlp_bias: biases that are all zero are dropped (the model is then
 * exactly bias-free); otherwise they are kept, zeros standing in for a group the config lacks.
 */
function settleLlamaBias(parsed: ParsedHfConfig, config: ModelConfig, loaded: Loaded, file: string): ModelConfig {
  if (config.family !== 'llama' || !config.bias) return config;
  const biasNames = paramLayout(config).filter((p) => p.name.endsWith('.bias')).map((p) => p.name);
  const allZero = biasNames.every((n) => loaded.tensors.get(n)!.every((v) => v === 0));
  if (allZero) {
    for (const n of biasNames) loaded.tensors.delete(n);
    loaded.warnings.push(`${file}: attention_bias/mlp_bias are set but every bias is zero; loaded as a bias-free model`);
    return makeModelConfig({ ...parsed.input, bias: false }, file);
  }
  const { attn, mlp } = parsed.llamaBias;
  if (attn !== mlp) {
    loaded.warnings.push(`${file}: only ${attn ? 'attention' : 'MLP'} biases exist; zero biases were added for the ${attn ? 'MLP' : 'attention'} projections`);
  }
  return config;
}

/** The engine config of a model directory from its config.json alone (no weights read). */
export function loadHfModelConfig(dir: string): ModelConfig {
  const configPath = join(dir, 'config.json');
  const parsed = parseHfConfig(readJson(configPath, true), configPath, undefined);
  const config = makeModelConfig(parsed.input, configPath);
  checkModelLimits(config, configPath, 0);
  return config;
}

/** Loads a Hugging Face (or qkd-student) model directory into engine tensors. */
export function loadHfModel(dir: string): LoadedHfModel {
  const configPath = join(dir, 'config.json');
  const hfConfig = readJson(configPath, true);
  let gen: unknown;
  const warnings: string[] = [];
  try {
    gen = readJson(join(dir, 'generation_config.json'), false);
  } catch (e) {
    warnings.push((e as Error).message + ' (ignored)');
  }
  const parsed = parseHfConfig(hfConfig, configPath, gen);
  warnings.push(...parsed.warnings);
  const config = makeModelConfig(parsed.input, configPath);
  // before any allocation sized by the config: caps and RoPE tables (the weights' shapes: checkLinks)
  checkModelLimits(config, configPath, checkpointBytes(dir)?.bytes ?? 0);
  const ckpt = readCheckpointDir(dir);
  warnings.push(...ckpt.warnings);
  const optional = { attn: !parsed.llamaBias.attn, mlp: !parsed.llamaBias.mlp };
  const loaded = loadLinks(ckpt, hfLinks(config, optional));
  const finalConfig = settleLlamaBias(parsed, config, loaded, configPath);
  warnings.push(...loaded.warnings, ...leftovers(ckpt, loaded, finalConfig));
  return { config: finalConfig, tensors: loaded.tensors, hfConfig: hfConfig as Record<string, unknown>, dtype: loaded.dtype, warnings };
}

export interface SaveHfOptions {
  /** Storage dtype of the weights (default F32). BF16/F16 round to nearest even. */
  dtype?: SaveDtype;
  /** Extra top-level config.json fields (may not overwrite the ones qkd writes). */
  extraConfig?: Record<string, unknown>;
  /** Extra files written in the same atomic step, e.g. `{ 'tokenizer.json': text }`. */
  files?: Record<string, string | Uint8Array>;
  /** Split the weights into shards of at most this many bytes (plus an index); default: one file. */
  maxShardBytes?: number;
}

/** Checks that `tensors` holds exactly the parameters of `config`, each with the right size. */
function checkParams(config: ModelConfig, tensors: Map<string, Float32Array>, dir: string): void {
  const layout = paramLayout(config);
  for (const p of layout) {
    const t = tensors.get(p.name);
    if (!t) throw new QkdError('E_MISSING', `${dir}: cannot save: tensor "${p.name}" is missing`);
    if (!(t instanceof Float32Array) || t.length !== p.size) {
      throw new QkdError('E_SHAPE', `${dir}: cannot save: tensor "${p.name}" has ${t.length} elements, shape [${p.shape.join(', ')}] needs ${p.size}`);
    }
  }
  const names = new Set(layout.map((p) => p.name));
  for (const k of tensors.keys()) {
    if (!names.has(k)) throw new QkdError('E_INPUT', `${dir}: cannot save: tensor "${k}" is not a parameter of this ${config.family} config`);
  }
}

/**
 * Writes `dir` as a Hugging Face model directory (gpt2/llama layouts load in transformers; the
 * student family uses model_type "qkd-student" and internal names). The directory is replaced
 * atomically as a whole. Returns the written files and their sizes in bytes.
 */
export function saveHfModel(
  dir: string, config: ModelConfig, tensors: Map<string, Float32Array>, opts: SaveHfOptions = {},
): { files: Record<string, number> } {
  const dtype = opts.dtype ?? 'F32';
  if (!['F32', 'BF16', 'F16'].includes(dtype)) throw new QkdError('E_CONFIG', `${dir}: cannot save with dtype ${dtype} (F32, BF16, F16)`);
  checkParams(config, tensors, dir);
  const { config: cfgJson, generation } = hfConfigFor(config, dtype, opts.extraConfig);
  const toWrite = new Map<string, TensorToWrite>();
  for (const link of hfLinks(config)) {
    toWrite.set(link.prefix + link.hf, { dtype, shape: link.hfShape, data: joinHf(link, (n) => tensors.get(n)!) });
  }
  const files: Record<string, string | Uint8Array> = {
    'config.json': JSON.stringify(cfgJson, null, 2) + '\n',
    'generation_config.json': JSON.stringify(generation, null, 2) + '\n',
    ...encodeCheckpoint(toWrite, { maxShardBytes: opts.maxShardBytes, metadata: { format: 'pt' } }),
  };
  for (const [name, data] of Object.entries(opts.files ?? {})) {
    if (name in files || name === SINGLE_FILE || name === INDEX_FILE) {
      throw new QkdError('E_INPUT', `${dir}: extra file "${name}" collides with a file saveHfModel writes`);
    }
    files[name] = data;
  }
  writeDirAtomic(dir, files);
  const sizes: Record<string, number> = {};
  for (const [name, data] of Object.entries(files)) sizes[name] = typeof data === 'string' ? Buffer.byteLength(data) : data.length;
  return { files: sizes };
}
