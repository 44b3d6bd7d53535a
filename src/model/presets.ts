/**
 * Named architectures. A training config names a preset and may override any field; the vocabulary
 * size always comes from the tokenizer.
 */
import type { ModelConfigInput } from './config.js';

export type ModelPreset = Omit<ModelConfigInput, 'vocabSize'>;

const llama = { family: 'llama', norm: 'rmsnorm', normEps: 1e-5, pos: 'rope', ropeTheta: 10000, act: 'silu',
  gated: true, bias: false, tieEmbeddings: true } as const;

export const PRESETS: Record<string, ModelPreset> = {
  /** The fixture teacher's architecture (brown-llama-teacher): 4.9M parameters at vocab 2048. */
  'teacher-fixture': { ...llama, dim: 256, nLayer: 6, nHead: 8, nKVHead: 4, headDim: 32, ffnDim: 688, maxPos: 512 },
  /** The default teacher of the main job: trains on 2 cores in under 15 minutes (docs/training.md). */
  'teacher-small': { ...llama, dim: 192, nLayer: 4, nHead: 6, nKVHead: 3, headDim: 32, ffnDim: 512, maxPos: 512 },
  /** The anchor student of fixtures/anchor-table.json: 1.05M parameters at vocab 2048. */
  'anchor-student': { ...llama, dim: 128, nLayer: 4, nHead: 4, nKVHead: 2, headDim: 32, ffnDim: 384, maxPos: 512 },
  /** The reference student of DESIGN.md: LayerNorm, learned positions, ReLU 4x FFN, biases, tied head. */
  'student': { family: 'student', dim: 128, nLayer: 4, nHead: 4, nKVHead: 4, headDim: 32, ffnDim: 512, maxPos: 512,
    norm: 'layernorm', normEps: 1e-5, pos: 'learned', act: 'relu', gated: false, bias: true, tieEmbeddings: true },
};

export function presetNames(): string[] { return Object.keys(PRESETS); }
