/**
 * Parameter initialisation (GPT-2 style): matrices and embeddings N(0, 0.02), the residual output
 * projections (o, down) scaled by 1/sqrt(2·nLayer), norm weights 1, biases 0. Seeded.
 */
import { Rng } from '../tensor/random.js';
import type { ParamStore } from './params.js';

export function initParams(store: ParamStore, seed: number, std = 0.02): void {
  const rng = new Rng(seed), nLayer = store.config.nLayer;
  for (const e of store.entries) {
    const v = store.get(e.name);
    if (e.name.endsWith('norm.weight')) { v.fill(1); continue; }
    if (e.name.endsWith('.bias')) { v.fill(0); continue; }
    const s = /\.(o|down)\.weight$/.test(e.name) ? std / Math.sqrt(2 * nLayer) : std;
    for (let i = 0; i < v.length; i++) v[i] = rng.normal() * s;
  }
}
