/** Reference elementwise, embedding, norm and activation kernels (see Backend for contracts). */
import type { Activation } from '../backend.js';

export function addBias(out: Float32Array, bias: Float32Array, N: number, C: number): void {
  for (let i = 0; i < N; i++) for (let c = 0; c < C; c++) out[i * C + c] += bias[c];
}

export function biasBackward(dBias: Float32Array, dOut: Float32Array, N: number, C: number): void {
  for (let c = 0; c < C; c++) {
    let s = 0;
    for (let i = 0; i < N; i++) s += dOut[i * C + c];
    dBias[c] += s;
  }
}

export function permute0213(out: Float32Array, inp: Float32Array, A: number, B: number, C: number, D: number): void {
  for (let a = 0; a < A; a++) {
    for (let b = 0; b < B; b++) {
      for (let c = 0; c < C; c++) {
        const src = ((a * B + b) * C + c) * D, dst = ((a * C + c) * B + b) * D;
        for (let d = 0; d < D; d++) out[dst + d] = inp[src + d];
      }
    }
  }
}

export function embeddingForward(out: Float32Array, ids: Int32Array, wte: Float32Array, N: number, C: number,
  wpe?: Float32Array, pos?: Int32Array): void {
  for (let i = 0; i < N; i++) {
    const e = ids[i] * C, o = i * C;
    if (wpe && pos) { const p = pos[i] * C; for (let c = 0; c < C; c++) out[o + c] = wte[e + c] + wpe[p + c]; }
    else for (let c = 0; c < C; c++) out[o + c] = wte[e + c];
  }
}

export function embeddingBackward(dWte: Float32Array, dOut: Float32Array, ids: Int32Array, N: number, C: number,
  dWpe?: Float32Array, pos?: Int32Array): void {
  for (let i = 0; i < N; i++) {
    const e = ids[i] * C, o = i * C;
    for (let c = 0; c < C; c++) dWte[e + c] += dOut[o + c];
    if (dWpe && pos) { const p = pos[i] * C; for (let c = 0; c < C; c++) dWpe[p + c] += dOut[o + c]; }
  }
}

export function layerNormForward(out: Float32Array, mean: Float32Array, rstd: Float32Array, inp: Float32Array,
  weight: Float32Array, bias: Float32Array | null, N: number, C: number, eps: number): void {
  for (let i = 0; i < N; i++) {
    const o = i * C;
    let m = 0;
    for (let c = 0; c < C; c++) m += inp[o + c];
    m /= C;
    let v = 0;
    for (let c = 0; c < C; c++) { const d = inp[o + c] - m; v += d * d; }
    const r = 1 / Math.sqrt(v / C + eps);
    for (let c = 0; c < C; c++) out[o + c] = (inp[o + c] - m) * r * weight[c] + (bias ? bias[c] : 0);
    mean[i] = m; rstd[i] = r;
  }
}

export function layerNormBackward(dInp: Float32Array, dWeight: Float32Array, dBias: Float32Array | null,
  dOut: Float32Array, inp: Float32Array, weight: Float32Array, mean: Float32Array, rstd: Float32Array,
  N: number, C: number): void {
  for (let i = 0; i < N; i++) {
    const o = i * C, m = mean[i], r = rstd[i];
    // dnorm = dOut * weight; dx = r * (dnorm - mean(dnorm) - xhat * mean(dnorm * xhat))
    let sumD = 0, sumDX = 0;
    for (let c = 0; c < C; c++) {
      const xhat = (inp[o + c] - m) * r, dn = dOut[o + c] * weight[c];
      sumD += dn; sumDX += dn * xhat;
    }
    sumD /= C; sumDX /= C;
    for (let c = 0; c < C; c++) {
      const xhat = (inp[o + c] - m) * r, dn = dOut[o + c] * weight[c];
      dInp[o + c] += r * (dn - sumD - xhat * sumDX);
      dWeight[c] += dOut[o + c] * xhat;
      if (dBias) dBias[c] += dOut[o + c];
    }
  }
}

export function rmsNormForward(out: Float32Array, rstd: Float32Array, inp: Float32Array, weight: Float32Array,
  N: number, C: number, eps: number): void {
  for (let i = 0; i < N; i++) {
    const o = i * C;
    let ss = 0;
    for (let c = 0; c < C; c++) ss += inp[o + c] * inp[o + c];
    // Hugging Face LlamaRMSNorm rounds the normalized value to float32 before multiplying by the weight.
    const r = 1 / Math.sqrt(ss / C + eps);
    for (let c = 0; c < C; c++) out[o + c] = Math.fround(inp[o + c] * r) * weight[c];
    rstd[i] = r;
  }
}

export function rmsNormBackward(dInp: Float32Array, dWeight: Float32Array, dOut: Float32Array, inp: Float32Array,
  weight: Float32Array, rstd: Float32Array, N: number, C: number): void {
  for (let i = 0; i < N; i++) {
    const o = i * C, r = rstd[i];
    // y = x r w; dx = r (dn - xhat * mean(dn * xhat)) with dn = dy w, xhat = x r
    let s = 0;
    for (let c = 0; c < C; c++) s += dOut[o + c] * weight[c] * inp[o + c] * r;
    s /= C;
    for (let c = 0; c < C; c++) {
      const xhat = inp[o + c] * r;
      dInp[o + c] += r * (dOut[o + c] * weight[c] - xhat * s);
      dWeight[c] += dOut[o + c] * xhat;
    }
  }
}

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

/** erf with |error| < 1.2e-7 (Numerical Recipes' erfc Chebyshev fit), enough for float32 GELU. */
export function erf(x: number): number {
  const z = Math.abs(x), t = 1 / (1 + 0.5 * z);
  const r = t * Math.exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 +
    t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 +
    t * (-0.82215223 + t * 0.17087277)))))))));
  return x >= 0 ? 1 - r : r - 1;
}

export function act(kind: Activation, x: number): number {
  switch (kind) {
    case 'relu': return x > 0 ? x : 0;
    case 'gelu': return 0.5 * x * (1 + erf(x / Math.SQRT2));
    case 'gelu_tanh': return 0.5 * x * (1 + Math.tanh(SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)));
    case 'silu': return x / (1 + Math.exp(-x));
  }
}

export function actGrad(kind: Activation, x: number): number {
  switch (kind) {
    case 'relu': return x > 0 ? 1 : 0;
    case 'gelu': return 0.5 * (1 + erf(x / Math.SQRT2)) + x * Math.exp(-0.5 * x * x) / Math.sqrt(2 * Math.PI);
    case 'gelu_tanh': {
      const u = SQRT_2_OVER_PI * (x + 0.044715 * x * x * x), t = Math.tanh(u);
      return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * SQRT_2_OVER_PI * (1 + 3 * 0.044715 * x * x);
    }
    case 'silu': { const s = 1 / (1 + Math.exp(-x)); return s * (1 + x * (1 - s)); }
  }
}

export function activationForward(kind: Activation, out: Float32Array, inp: Float32Array, n: number): void {
  for (let i = 0; i < n; i++) out[i] = act(kind, inp[i]);
}

export function activationBackward(kind: Activation, dInp: Float32Array, dOut: Float32Array, inp: Float32Array,
  n: number, accumulate = false): void {
  for (let i = 0; i < n; i++) {
    const g = actGrad(kind, inp[i]) * dOut[i];
    dInp[i] = accumulate ? dInp[i] + g : g;
  }
}

export function gluForward(kind: Activation, out: Float32Array, gate: Float32Array, up: Float32Array, n: number): void {
  for (let i = 0; i < n; i++) out[i] = Math.fround(act(kind, gate[i])) * up[i];
}

export function gluBackward(kind: Activation, dGate: Float32Array, dUp: Float32Array, dOut: Float32Array,
  gate: Float32Array, up: Float32Array, n: number): void {
  for (let i = 0; i < n; i++) {
    const g = gate[i], d = dOut[i];
    dUp[i] = act(kind, g) * d;
    dGate[i] = actGrad(kind, g) * up[i] * d;
  }
}
