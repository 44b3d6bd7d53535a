/**
 * Hugging Face `config.json` <-> ModelConfig, for model_type "gpt2", "llama" and our own
 * "qkd-student". Field names, defaults and spellings follow transformers' GPT2Config/LlamaConfig;
 * errors name the file and the HF field.
 */
import { QkdError } from '../tensor/errors.js';
import { ModelConfigSchema, type ModelConfig, type ModelConfigInput } from '../model/config.js';

export const STUDENT_MODEL_TYPE = 'qkd-student';
/** Version of the qkd-student config layout (bumped on incompatible changes). */
export const STUDENT_CONFIG_VERSION = 1;

type Act = ModelConfig['act'];
type Json = Record<string, unknown>;

export interface ParsedHfConfig {
  /** Not yet validated by makeModelConfig: the loader may still drop all-zero Llama biases. */
  input: ModelConfigInput & { bias: boolean; tieEmbeddings: boolean };
  /** Llama only: which projection groups carry biases in the checkpoint. */
  llamaBias: { attn: boolean; mlp: boolean };
  warnings: string[];
}

const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Typed field access with errors that name the file and the field. */
class Fields {
  constructor(readonly json: Json, readonly file: string) {}

  private err(name: string, want: string): never {
    throw new QkdError('E_CONFIG', `${this.file}: field "${name}" must be ${want}, got ${JSON.stringify(this.json[name])}`);
  }

  has(name: string): boolean { return this.json[name] !== undefined && this.json[name] !== null; }

  /** A positive integer; required unless a default is given. */
  int(name: string, def?: number): number {
    const v = this.json[name];
    if (v === undefined || v === null) {
      if (def !== undefined) return def;
      throw new QkdError('E_MISSING', `${this.file}: required field "${name}" is missing`);
    }
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) this.err(name, 'a positive integer');
    return v;
  }

  num(name: string, def: number): number {
    const v = this.json[name];
    if (v === undefined || v === null) return def;
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) this.err(name, 'a positive number');
    return v;
  }

  bool(name: string, def: boolean): boolean {
    const v = this.json[name];
    if (v === undefined || v === null) return def;
    if (typeof v !== 'boolean') this.err(name, 'true or false');
    return v;
  }

  str(name: string, def: string): string {
    const v = this.json[name];
    if (v === undefined || v === null) return def;
    if (typeof v !== 'string') this.err(name, 'a string');
    return v;
  }
}

const ACT_FROM_HF: Record<string, Act> = {
  gelu_new: 'gelu_tanh', gelu_pytorch_tanh: 'gelu_tanh', gelu_fast: 'gelu_tanh',
  gelu: 'gelu', relu: 'relu', silu: 'silu', swish: 'silu',
};

function activation(f: Fields, name: string, def: string): Act {
  const v = f.str(name, def);
  const act = ACT_FROM_HF[v];
  if (!act) {
    throw new QkdError('E_UNSUPPORTED', `${f.file}: field "${name}": activation "${v}" is not supported (${Object.keys(ACT_FROM_HF).join(', ')})`);
  }
  return act;
}

/**
 * A special token id: out-of-vocabulary ids (leftovers such as GPT-2's 50256 in a 2048 vocab)
 * become null with a warning; a list takes its first id inside the vocabulary.
 */
function tokenId(f: Fields, name: string, raw: unknown, vocab: number, warnings: string[]): number | null {
  if (raw === undefined || raw === null) return null;
  const list = Array.isArray(raw) ? raw : [raw];
  for (const v of list) {
    if (typeof v !== 'number' || !Number.isSafeInteger(v)) {
      throw new QkdError('E_CONFIG', `${f.file}: field "${name}" must be a token id or a list of ids, got ${JSON.stringify(raw)}`);
    }
  }
  const ok = (list as number[]).find((v) => v >= 0 && v < vocab);
  if (ok === undefined) {
    warnings.push(`${f.file}: ${name} ${JSON.stringify(raw)} is outside the vocabulary of ${vocab}; treated as absent`);
    return null;
  }
  if (Array.isArray(raw) && raw.length > 1) warnings.push(`${f.file}: ${name} is a list ${JSON.stringify(raw)}; using ${ok}`);
  return ok;
}

/** bos/eos from config.json, falling back to generation_config.json where config.json has none. */
function specialIds(f: Fields, gen: Json | undefined, vocab: number, warnings: string[]) {
  const pick = (name: string) => f.json[name] ?? gen?.[name];
  return {
    bosTokenId: tokenId(f, 'bos_token_id', pick('bos_token_id'), vocab, warnings),
    eosTokenId: tokenId(f, 'eos_token_id', pick('eos_token_id'), vocab, warnings),
  };
}

function unsupportedIf(f: Fields, cond: boolean, name: string, why: string): void {
  if (cond) throw new QkdError('E_UNSUPPORTED', `${f.file}: field "${name}" = ${JSON.stringify(f.json[name])}: ${why}`);
}

function parseGpt2(f: Fields, gen: Json | undefined, warnings: string[]): ParsedHfConfig {
  const C = f.int('n_embd'), nHead = f.int('n_head'), vocab = f.int('vocab_size');
  if (C % nHead !== 0) throw new QkdError('E_CONFIG', `${f.file}: field "n_embd" ${C} is not divisible by "n_head" ${nHead}`);
  const maxPos = !f.has('n_positions') && f.has('n_ctx') ? f.int('n_ctx') : f.int('n_positions');
  unsupportedIf(f, f.bool('scale_attn_by_inverse_layer_idx', false), 'scale_attn_by_inverse_layer_idx', 'per-layer attention scaling is not supported');
  unsupportedIf(f, !f.bool('scale_attn_weights', true), 'scale_attn_weights', 'unscaled attention is not supported');
  unsupportedIf(f, f.bool('add_cross_attention', false), 'add_cross_attention', 'cross-attention is not supported');
  const input = {
    family: 'gpt2' as const, vocabSize: vocab, dim: C, nLayer: f.int('n_layer'), nHead, nKVHead: nHead,
    headDim: C / nHead, ffnDim: f.int('n_inner', 4 * C), maxPos, norm: 'layernorm' as const,
    normEps: f.num('layer_norm_epsilon', 1e-5), pos: 'learned' as const,
    act: activation(f, 'activation_function', 'gelu_new'), gated: false, bias: true,
    tieEmbeddings: f.bool('tie_word_embeddings', true), ...specialIds(f, gen, vocab, warnings),
  };
  return { input, llamaBias: { attn: false, mlp: false }, warnings };
}

/** RoPE theta from `rope_theta` (older spelling) or `rope_parameters.rope_theta` (newer). */
function ropeTheta(f: Fields): number {
  const j = f.json;
  if (j.rope_scaling !== undefined && j.rope_scaling !== null) {
    const rs = j.rope_scaling as Json;
    const type = isObj(rs) ? rs.rope_type ?? rs.type : rs;
    if (type !== 'default') unsupportedIf(f, true, 'rope_scaling', `RoPE scaling ${JSON.stringify(type)} is not supported (only plain RoPE)`);
  }
  let fromParams: number | undefined;
  if (j.rope_parameters !== undefined && j.rope_parameters !== null) {
    const rp = j.rope_parameters;
    if (!isObj(rp)) throw new QkdError('E_CONFIG', `${f.file}: field "rope_parameters" must be an object`);
    const type = rp.rope_type ?? 'default';
    if (type !== 'default') unsupportedIf(f, true, 'rope_parameters', `rope_type ${JSON.stringify(type)} is not supported (only "default")`);
    if (rp.partial_rotary_factor !== undefined && rp.partial_rotary_factor !== 1) {
      unsupportedIf(f, true, 'rope_parameters', 'partial_rotary_factor other than 1 is not supported');
    }
    if (rp.rope_theta !== undefined) fromParams = new Fields(rp, `${f.file} rope_parameters`).num('rope_theta', 10000);
  }
  const top = f.has('rope_theta') ? f.num('rope_theta', 10000) : undefined;
  if (top !== undefined && fromParams !== undefined && top !== fromParams) {
    throw new QkdError('E_CONFIG', `${f.file}: field "rope_theta" ${top} disagrees with "rope_parameters.rope_theta" ${fromParams}`);
  }
  return fromParams ?? top ?? 10000;
}

function parseLlama(f: Fields, gen: Json | undefined, warnings: string[]): ParsedHfConfig {
  const C = f.int('hidden_size'), nHead = f.int('num_attention_heads'), vocab = f.int('vocab_size');
  const nKVHead = f.int('num_key_value_heads', nHead);
  if (nHead % nKVHead !== 0) {
    throw new QkdError('E_CONFIG', `${f.file}: field "num_key_value_heads" ${nKVHead} does not divide "num_attention_heads" ${nHead}`);
  }
  if (!f.has('head_dim') && C % nHead !== 0) {
    throw new QkdError('E_CONFIG', `${f.file}: field "hidden_size" ${C} is not divisible by "num_attention_heads" ${nHead} and "head_dim" is absent`);
  }
  const headDim = f.int('head_dim', C / nHead);
  if (headDim % 2 !== 0) throw new QkdError('E_CONFIG', `${f.file}: field "head_dim" ${headDim} must be even for RoPE`);
  const llamaBias = { attn: f.bool('attention_bias', false), mlp: f.bool('mlp_bias', false) };
  const input = {
    family: 'llama' as const, vocabSize: vocab, dim: C, nLayer: f.int('num_hidden_layers'), nHead, nKVHead, headDim,
    ffnDim: f.int('intermediate_size'), maxPos: f.int('max_position_embeddings'), norm: 'rmsnorm' as const,
    normEps: f.num('rms_norm_eps', 1e-6), pos: 'rope' as const, ropeTheta: ropeTheta(f),
    act: activation(f, 'hidden_act', 'silu'), gated: true, bias: llamaBias.attn || llamaBias.mlp,
    tieEmbeddings: f.bool('tie_word_embeddings', false), ...specialIds(f, gen, vocab, warnings),
  };
  return { input, llamaBias, warnings };
}

function parseStudent(f: Fields, warnings: string[]): ParsedHfConfig {
  const version = f.int('qkd_version');
  if (version !== STUDENT_CONFIG_VERSION) {
    throw new QkdError('E_UNSUPPORTED', `${f.file}: field "qkd_version" ${version} is not supported (expected ${STUDENT_CONFIG_VERSION})`);
  }
  const keys = Object.keys(ModelConfigSchema.shape) as (keyof ModelConfigInput)[];
  const input: Json = {};
  for (const k of keys) if (f.json[k] !== undefined) input[k] = f.json[k];
  if (input.family !== 'student') {
    throw new QkdError('E_CONFIG', `${f.file}: field "family" must be "student" for model_type "${STUDENT_MODEL_TYPE}", got ${JSON.stringify(input.family)}`);
  }
  const vocab = f.int('vocabSize');
  input.bosTokenId = tokenId(f, 'bosTokenId', f.json.bosTokenId, vocab, warnings);
  input.eosTokenId = tokenId(f, 'eosTokenId', f.json.eosTokenId, vocab, warnings);
  return {
    input: input as ParsedHfConfig['input'], llamaBias: { attn: false, mlp: false }, warnings,
  };
}

/** Parses a config.json object (plus generation_config.json, if any, for bos/eos fallbacks). */
export function parseHfConfig(json: unknown, file: string, gen?: unknown): ParsedHfConfig {
  if (!isObj(json)) throw new QkdError('E_FORMAT', `${file}: not a JSON object`);
  const f = new Fields(json, file);
  const warnings: string[] = [];
  const g = isObj(gen) ? gen : undefined;
  if (json.model_type === undefined) throw new QkdError('E_MISSING', `${file}: required field "model_type" is missing`);
  switch (json.model_type) {
    case 'gpt2': return withCompression(parseGpt2(f, g, warnings), json, file);
    case 'llama': return withCompression(parseLlama(f, g, warnings), json, file);
    case STUDENT_MODEL_TYPE: return parseStudent(f, warnings);
    default:
      throw new QkdError('E_UNSUPPORTED', `${file}: field "model_type" = ${JSON.stringify(json.model_type)} is not supported (gpt2, llama, ${STUDENT_MODEL_TYPE})`);
  }
}

/** The `qkd_compression` block qkd adds to gpt2/llama configs of compressed students. */
export const COMPRESSION_FIELD = 'qkd_compression';

function withCompression(p: ParsedHfConfig, json: Record<string, unknown>, file: string): ParsedHfConfig {
  const c = json[COMPRESSION_FIELD];
  if (c === undefined || c === null) return p;
  if (!isObj(c)) throw new QkdError('E_FORMAT', `${file}: field "${COMPRESSION_FIELD}" must be an object`);
  const { quant, sparsity, attnTopK } = c as Record<string, unknown>;
  return { ...p, input: { ...p.input, quant, sparsity, attnTopK } as ParsedHfConfig['input'] };
}

function compressionJson(c: ModelConfig): Json {
  if (!c.quant && !c.sparsity && !c.attnTopK) return {};
  return { [COMPRESSION_FIELD]: { quant: c.quant, sparsity: c.sparsity, attnTopK: c.attnTopK } };
}

// ---- writing ----

const ACT_TO_GPT2: Record<Act, string> = { gelu_tanh: 'gelu_new', gelu: 'gelu', relu: 'relu', silu: 'silu' };
const ACT_TO_LLAMA: Record<Act, string> = { gelu_tanh: 'gelu_pytorch_tanh', gelu: 'gelu', relu: 'relu', silu: 'silu' };
const TORCH_DTYPE = { F32: 'float32', F16: 'float16', BF16: 'bfloat16' } as const;
export type SaveDtype = keyof typeof TORCH_DTYPE;

function requireLayout(c: ModelConfig, family: string, checks: [boolean, string][]): void {
  const bad = checks.filter(([ok]) => !ok).map(([, why]) => why);
  if (bad.length) throw new QkdError('E_UNSUPPORTED', `${family} export: config cannot be expressed in the Hugging Face ${family} layout: ${bad.join('; ')}`);
}

function gpt2Json(c: ModelConfig): Json {
  requireLayout(c, 'gpt2', [
    [c.norm === 'layernorm', 'needs layernorm'], [c.pos === 'learned', 'needs learned positions'],
    [!c.gated, 'needs an ungated MLP'], [c.bias, 'needs biases'], [c.nKVHead === c.nHead, 'needs nKVHead == nHead'],
    [c.nHead * c.headDim === c.dim, 'needs nHead * headDim == dim'],
  ]);
  return {
    architectures: ['GPT2LMHeadModel'], model_type: 'gpt2', vocab_size: c.vocabSize, n_embd: c.dim, n_head: c.nHead,
    n_layer: c.nLayer, n_positions: c.maxPos, n_ctx: c.maxPos, n_inner: c.ffnDim, activation_function: ACT_TO_GPT2[c.act],
    layer_norm_epsilon: c.normEps, tie_word_embeddings: c.tieEmbeddings, bos_token_id: c.bosTokenId, eos_token_id: c.eosTokenId,
    attn_pdrop: 0, embd_pdrop: 0, resid_pdrop: 0, scale_attn_weights: true, scale_attn_by_inverse_layer_idx: false,
    reorder_and_upcast_attn: false, initializer_range: 0.02, use_cache: true,
  };
}

function llamaJson(c: ModelConfig): Json {
  requireLayout(c, 'llama', [
    [c.norm === 'rmsnorm', 'needs rmsnorm'], [c.pos === 'rope', 'needs RoPE'], [c.gated, 'needs a gated MLP'],
  ]);
  return {
    architectures: ['LlamaForCausalLM'], model_type: 'llama', vocab_size: c.vocabSize, hidden_size: c.dim,
    intermediate_size: c.ffnDim, num_hidden_layers: c.nLayer, num_attention_heads: c.nHead,
    num_key_value_heads: c.nKVHead, head_dim: c.headDim, hidden_act: ACT_TO_LLAMA[c.act],
    max_position_embeddings: c.maxPos, rms_norm_eps: c.normEps, rope_theta: c.ropeTheta,
    rope_parameters: { rope_type: 'default', rope_theta: c.ropeTheta }, attention_bias: c.bias, mlp_bias: c.bias,
    attention_dropout: 0, pretraining_tp: 1, tie_word_embeddings: c.tieEmbeddings, bos_token_id: c.bosTokenId,
    eos_token_id: c.eosTokenId, initializer_range: 0.02, use_cache: true,
  };
}

/** config.json and generation_config.json contents for a model saved in its family's layout. */
export function hfConfigFor(c: ModelConfig, dtype: SaveDtype, extra: Json = {}): { config: Json; generation: Json } {
  const base: Json = c.family === 'gpt2' ? { ...gpt2Json(c), ...compressionJson(c) }
    : c.family === 'llama' ? { ...llamaJson(c), ...compressionJson(c) }
    : { architectures: ['QkdStudent'], model_type: STUDENT_MODEL_TYPE, qkd_version: STUDENT_CONFIG_VERSION, ...c };
  base.dtype = TORCH_DTYPE[dtype];
  base.torch_dtype = TORCH_DTYPE[dtype]; // transformers < 5 spelling
  for (const k of Object.keys(extra)) {
    if (k in base) throw new QkdError('E_CONFIG', `extraConfig: field "${k}" would overwrite a config.json field qkd writes`);
  }
  const generation: Json = { _from_model_config: true };
  if (c.bosTokenId !== null) generation.bos_token_id = c.bosTokenId;
  if (c.eosTokenId !== null) generation.eos_token_id = c.eosTokenId;
  return { config: { ...base, ...extra }, generation };
}
