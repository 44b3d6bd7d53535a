/**
 * Tensor-name maps between Hugging Face layouts and the engine's internal names (paramLayout).
 * One HF tensor feeds one or more internal tensors: GPT-2's fused c_attn (a Conv1D, weight stored
 * (in, out)) splits into q, k, v, each transposed to the engine's (out, in).
 */
import { QkdError } from '../tensor/errors.js';
import { paramLayout, type ModelConfig } from '../model/config.js';

export interface Link {
  /** HF name without its optional prefix (`transformer.` / `model.`). */
  hf: string;
  /** Prefix HF usually puts before `hf` (the loader also accepts the bare name). */
  prefix: string;
  /** Internal tensors stacked along dim 0 of the (un-transposed) HF tensor. */
  parts: { name: string; shape: number[] }[];
  /** Conv1D: the HF tensor is the transpose of the stacked internal (out, in) matrices. */
  transpose: boolean;
  /** Shape the HF tensor must have. */
  hfShape: number[];
  /** Absent in the checkpoint means zeros (Llama biases the config does not declare). */
  optional?: boolean;
}

/** HF tensors that are buffers, not parameters: silently ignored on import. */
export const IGNORED_HF = [/(^|\.)attn\.(bias|masked_bias)$/, /(^|\.)rotary_emb\.inv_freq$/];

function makeLink(hf: string, prefix: string, parts: Link['parts'], transpose: boolean): Link {
  const rows = parts.reduce((s, p) => s + p.shape[0], 0);
  const rest = parts[0].shape.slice(1);
  const hfShape = transpose ? [rest[0], rows] : [rows, ...rest];
  return { hf, prefix, parts, transpose, hfShape };
}

function gpt2Links(c: ModelConfig, shape: (n: string) => number[]): Link[] {
  const P = 'transformer.';
  const one = (hf: string, name: string, transpose = false) => makeLink(hf, P, [{ name, shape: shape(name) }], transpose);
  const links = [one('wte.weight', 'embed.weight'), one('wpe.weight', 'pos_embed.weight')];
  for (let l = 0; l < c.nLayer; l++) {
    const h = `h.${l}`, p = `layers.${l}`;
    const qkv = (kind: string) => ['q', 'k', 'v'].map((x) => ({ name: `${p}.${x}.${kind}`, shape: shape(`${p}.${x}.${kind}`) }));
    links.push(
      one(`${h}.ln_1.weight`, `${p}.attn_norm.weight`), one(`${h}.ln_1.bias`, `${p}.attn_norm.bias`),
      makeLink(`${h}.attn.c_attn.weight`, P, qkv('weight'), true), makeLink(`${h}.attn.c_attn.bias`, P, qkv('bias'), false),
      one(`${h}.attn.c_proj.weight`, `${p}.o.weight`, true), one(`${h}.attn.c_proj.bias`, `${p}.o.bias`),
      one(`${h}.ln_2.weight`, `${p}.mlp_norm.weight`), one(`${h}.ln_2.bias`, `${p}.mlp_norm.bias`),
      one(`${h}.mlp.c_fc.weight`, `${p}.up.weight`, true), one(`${h}.mlp.c_fc.bias`, `${p}.up.bias`),
      one(`${h}.mlp.c_proj.weight`, `${p}.down.weight`, true), one(`${h}.mlp.c_proj.bias`, `${p}.down.bias`),
    );
  }
  links.push(one('ln_f.weight', 'final_norm.weight'), one('ln_f.bias', 'final_norm.bias'));
  return links;
}

function llamaLinks(c: ModelConfig, shape: (n: string) => number[], optional: { attn: boolean; mlp: boolean }): Link[] {
  const P = 'model.';
  const one = (hf: string, name: string, opt = false): Link => ({ ...makeLink(hf, P, [{ name, shape: shape(name) }], false), optional: opt });
  const links = [one('embed_tokens.weight', 'embed.weight')];
  const proj = (hf: string, name: string, opt: boolean) => {
    links.push(one(`${hf}.weight`, `${name}.weight`));
    if (c.bias) links.push(one(`${hf}.bias`, `${name}.bias`, opt));
  };
  for (let l = 0; l < c.nLayer; l++) {
    const h = `layers.${l}`, p = `layers.${l}`;
    links.push(one(`${h}.input_layernorm.weight`, `${p}.attn_norm.weight`));
    for (const x of ['q', 'k', 'v', 'o']) proj(`${h}.self_attn.${x}_proj`, `${p}.${x}`, optional.attn);
    links.push(one(`${h}.post_attention_layernorm.weight`, `${p}.mlp_norm.weight`));
    for (const x of ['gate', 'up', 'down']) proj(`${h}.mlp.${x}_proj`, `${p}.${x}`, optional.mlp);
  }
  links.push(one('norm.weight', 'final_norm.weight'));
  return links;
}

/**
 * The links covering every parameter of `c` exactly once. `optionalBias` marks Llama bias groups
 * that may be absent from the checkpoint (loaded as zeros).
 */
export function hfLinks(c: ModelConfig, optionalBias = { attn: false, mlp: false }): Link[] {
  const layout = paramLayout(c);
  const shapes = new Map(layout.map((p) => [p.name, p.shape]));
  const shape = (n: string) => {
    const s = shapes.get(n);
    if (!s) throw new QkdError('E_INTERNAL', `hf-names: ${c.family} map names "${n}", which paramLayout does not have`);
    return s;
  };
  let links: Link[];
  if (c.family === 'student') links = layout.map((p) => makeLink(p.name, '', [{ name: p.name, shape: p.shape }], false));
  else if (c.family === 'gpt2') links = gpt2Links(c, shape);
  else links = llamaLinks(c, shape, optionalBias);
  if (c.family !== 'student' && !c.tieEmbeddings) links.push(makeLink('lm_head.weight', '', [{ name: 'lm_head.weight', shape: shape('lm_head.weight') }], false));
  const covered = links.flatMap((l) => l.parts.map((p) => p.name));
  if (covered.length !== layout.length || new Set(covered).size !== layout.length) {
    throw new QkdError('E_INTERNAL', `hf-names: the ${c.family} map covers ${covered.length} tensors, paramLayout has ${layout.length}`);
  }
  return links;
}

/** (R, K) row-major -> (K, R). */
function transpose2d(src: Float32Array, R: number, K: number): Float32Array {
  const out = new Float32Array(src.length);
  for (let r = 0; r < R; r++) for (let k = 0; k < K; k++) out[k * R + r] = src[r * K + k];
  return out;
}

/** Splits an HF tensor (already in float32) into the link's internal tensors. */
export function splitHf(link: Link, data: Float32Array): Map<string, Float32Array> {
  const stacked = link.transpose ? transpose2d(data, link.hfShape[0], link.hfShape[1]) : data;
  const out = new Map<string, Float32Array>();
  let off = 0;
  for (const p of link.parts) {
    const n = p.shape.reduce((a, b) => a * b, 1);
    out.set(p.name, stacked.slice(off, off + n));
    off += n;
  }
  return out;
}

/** Inverse of splitHf: stacks internal tensors into the HF tensor. */
export function joinHf(link: Link, get: (name: string) => Float32Array): Float32Array {
  const total = link.hfShape.reduce((a, b) => a * b, 1);
  const stacked = new Float32Array(total);
  let off = 0;
  for (const p of link.parts) {
    const d = get(p.name);
    stacked.set(d, off);
    off += d.length;
  }
  return link.transpose ? transpose2d(stacked, link.hfShape[1], link.hfShape[0]) : stacked;
}
