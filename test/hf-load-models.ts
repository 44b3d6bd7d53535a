/**
 * The small models of the Hugging Face load check (test/fixtures/hf-load), written by qkd's own save
 * path (`saveHfModel`, what `qkd train` / `qkd distill` write as a run's model/). Deterministic:
 * weights come from the integer LCG of `randoms`, so the files are byte-identical on every machine and
 * their sha256 must equal the ones the fixture was made from.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { saveHfModel, type SaveDtype } from '../src/io/hf.js';
import { TsBackend } from '../src/kernels/ts/backend.js';
import { makeModelConfig, type ModelConfigInput } from '../src/model/config.js';
import { StudentModel } from '../src/model/student.js';
import { Transformer } from '../src/model/transformer.js';
import { randoms } from './helpers.js';

const LLAMA = { family: 'llama', vocabSize: 96, dim: 32, nLayer: 2, nHead: 4, nKVHead: 2, headDim: 8, ffnDim: 64,
  maxPos: 32, norm: 'rmsnorm', normEps: 1e-6, pos: 'rope', ropeTheta: 50000, act: 'silu', gated: true, bias: false,
  tieEmbeddings: false, bosTokenId: 1, eosTokenId: 2 } as const;

interface Spec { config: ModelConfigInput; dtype: SaveDtype; compressed?: boolean }

/** Name -> what is saved. */
export const HF_LOAD_MODELS: Record<string, Spec> = {
  // Llama with GQA, an untied head, RoPE theta 50000, RMSNorm eps 1e-6
  'llama': { config: LLAMA, dtype: 'F32' },
  // Llama with attention/MLP biases, head_dim != dim / heads, tied embeddings, tanh-GELU, saved as bfloat16
  'llama-bias-bf16': { config: { ...LLAMA, nHead: 2, nKVHead: 1, headDim: 24, bias: true, tieEmbeddings: true,
    act: 'gelu_tanh', ropeTheta: 10000, normEps: 1e-5 }, dtype: 'BF16' },
  // GPT-2: learned positions, LayerNorm, gelu_new, Conv1D layout, tied head
  'gpt2': { config: { family: 'gpt2', vocabSize: 96, dim: 32, nLayer: 2, nHead: 4, nKVHead: 4, headDim: 8, ffnDim: 128,
    maxPos: 32, norm: 'layernorm', normEps: 1e-5, pos: 'learned', act: 'gelu_tanh', gated: false, bias: true,
    tieEmbeddings: true }, dtype: 'F32' },
  // a distilled student as qkd distill saves it: int8 weights (embedding and head too), 75% unstructured
  // sparsity, qkd_compression in config.json (float activations, which transformers can run)
  'llama-int8-sparse': { config: LLAMA, dtype: 'F32', compressed: true },
};

/** Writes model `name` to `dir` (replaced atomically). */
export function writeHfLoadModel(name: string, dir: string): void {
  const spec = HF_LOAD_MODELS[name];
  const model = new Transformer(new TsBackend(), makeModelConfig(spec.config, name));
  let seed = 1;
  for (const e of model.params.entries) {
    const v = model.params.get(e.name), fan = e.shape.length === 2 ? e.shape[1] : 1;
    // norms around 1, biases small, matrices ~ U(-1.7, 1.7)/sqrt(fan in), embeddings wider
    if (/norm\.weight$/.test(e.name)) v.set(randoms(e.size, seed++, 0.7, 1.3));
    else if (/\.bias$|norm\.bias$/.test(e.name)) v.set(randoms(e.size, seed++, -0.2, 0.2));
    else {
      const a = /embed|lm_head/.test(e.name) ? 0.5 : 1.7 / Math.sqrt(fan);
      v.set(randoms(e.size, seed++, -a, a));
    }
  }
  if (!spec.compressed) {
    saveHfModel(dir, model.config, model.params.toMap(), { dtype: spec.dtype });
    model.dispose();
    return;
  }
  const sparsity = { target: 0.75, granularity: 'unstructured' as const, block: 1, n: 2, m: 4, scope: 'per-matrix' as const };
  const student = new StudentModel(model, { quant: { bits: 8, embedBits: 8, actBits: 0, scheme: 'maxabs' }, sparsity });
  student.updateMasks(sparsity.target);
  saveHfModel(dir, student.savedConfig(0), student.effectiveMap(), { dtype: spec.dtype });
  student.dispose();
  model.dispose();
}

/** sha256 (hex) of every file in a model directory, by file name. */
export function hashModelDir(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of readdirSync(dir).sort()) out[f] = createHash('sha256').update(readFileSync(join(dir, f))).digest('hex');
  return out;
}
