/**
 * Plain-TypeScript reference of the int8 kernel interface (kernels/int8.ts): the oracle every faster
 * implementation is tested against, and the runtime's kernels where no faster one exists.
 *
 * Float32 rounding: JS computes in float64; the int8 x int8 kernels round after each of the three
 * steps with Math.fround, exactly as the interface defines them. int32 accumulators stay exact in
 * float64 (|acc| < 2^31 < 2^53).
 */
import type { BlockI8Matrix, CsrI8Matrix, Int8Kernels } from '../int8.js';
import { quantizeTokens } from '../../quant/quantize.js';

const f = Math.fround;

/** y[n,o] from an exact integer sum, in the interface's rounding order. */
function scaleOut(acc: number, xs: number, ws: number, b: number | undefined): number {
  const v = f(f(f(acc) * xs) * ws);
  return b === undefined ? v : f(v + b);
}

function scaleOutF(sum: number, ws: number, b: number | undefined): number {
  const v = f(f(sum) * ws);
  return b === undefined ? v : f(v + b);
}

export class TsInt8Kernels implements Int8Kernels {
  readonly name = 'ts';

  allocI8(n: number): Int8Array { return new Int8Array(n); }
  allocI32(n: number): Int32Array { return new Int32Array(n); }
  free(_buf: Int8Array | Int32Array): void { /* garbage collected */ }

  quantizeRowsI8(xq: Int8Array, xScale: Float32Array, x: Float32Array, N: number, C: number, bits: number): void {
    quantizeTokens(xq, xScale, x, N, C, bits);
  }

  gemmI8(y: Float32Array, xq: Int8Array, xScale: Float32Array, Wq: Int8Array, wScale: Float32Array,
    N: number, O: number, I: number, bias?: Float32Array | null): void {
    for (let n = 0; n < N; n++) {
      const xo = n * I, xs = xScale[n], yo = n * O;
      for (let o = 0; o < O; o++) {
        const wo = o * I;
        let a0 = 0, a1 = 0, a2 = 0, a3 = 0, i = 0;
        for (; i + 4 <= I; i += 4) {
          a0 += xq[xo + i] * Wq[wo + i];
          a1 += xq[xo + i + 1] * Wq[wo + i + 1];
          a2 += xq[xo + i + 2] * Wq[wo + i + 2];
          a3 += xq[xo + i + 3] * Wq[wo + i + 3];
        }
        for (; i < I; i++) a0 += xq[xo + i] * Wq[wo + i];
        y[yo + o] = scaleOut(a0 + a1 + a2 + a3, xs, wScale[o], bias?.[o]);
      }
    }
  }

  gemmW8A32(y: Float32Array, x: Float32Array, Wq: Int8Array, wScale: Float32Array,
    N: number, O: number, I: number, bias?: Float32Array | null): void {
    for (let n = 0; n < N; n++) {
      const xo = n * I, yo = n * O;
      for (let o = 0; o < O; o++) {
        const wo = o * I;
        let a0 = 0, a1 = 0, a2 = 0, a3 = 0, i = 0;
        for (; i + 4 <= I; i += 4) {
          a0 += x[xo + i] * Wq[wo + i];
          a1 += x[xo + i + 1] * Wq[wo + i + 1];
          a2 += x[xo + i + 2] * Wq[wo + i + 2];
          a3 += x[xo + i + 3] * Wq[wo + i + 3];
        }
        for (; i < I; i++) a0 += x[xo + i] * Wq[wo + i];
        y[yo + o] = scaleOutF((a0 + a1) + (a2 + a3), wScale[o], bias?.[o]);
      }
    }
  }

  gemmBlockI8(y: Float32Array, xq: Int8Array, xScale: Float32Array, W: BlockI8Matrix, N: number,
    bias?: Float32Array | null): void {
    const { O, I, k, rowPtr, blockCol, values: v, scale } = W;
    for (let n = 0; n < N; n++) {
      const xo = n * I, xs = xScale[n], yo = n * O;
      for (let o = 0; o < O; o++) {
        let acc = 0;
        for (let b = rowPtr[o], e = rowPtr[o + 1]; b < e; b++) {
          const c = xo + blockCol[b], vo = b * k;
          for (let j = 0; j < k; j++) acc += xq[c + j] * v[vo + j];
        }
        y[yo + o] = scaleOut(acc, xs, scale[o], bias?.[o]);
      }
    }
  }

  gemmBlockW8A32(y: Float32Array, x: Float32Array, W: BlockI8Matrix, N: number, bias?: Float32Array | null): void {
    const { O, I, k, rowPtr, blockCol, values: v, scale } = W;
    for (let n = 0; n < N; n++) {
      const xo = n * I, yo = n * O;
      for (let o = 0; o < O; o++) {
        let acc = 0;
        for (let b = rowPtr[o], e = rowPtr[o + 1]; b < e; b++) {
          const c = xo + blockCol[b], vo = b * k;
          for (let j = 0; j < k; j++) acc += x[c + j] * v[vo + j];
        }
        y[yo + o] = scaleOutF(acc, scale[o], bias?.[o]);
      }
    }
  }

  gemmCsrI8(y: Float32Array, xq: Int8Array, xScale: Float32Array, W: CsrI8Matrix, N: number,
    bias?: Float32Array | null): void {
    const { O, I, rowPtr, col, values: v, scale } = W;
    for (let n = 0; n < N; n++) {
      const xo = n * I, xs = xScale[n], yo = n * O;
      for (let o = 0; o < O; o++) {
        let acc = 0;
        for (let e = rowPtr[o], end = rowPtr[o + 1]; e < end; e++) acc += xq[xo + col[e]] * v[e];
        y[yo + o] = scaleOut(acc, xs, scale[o], bias?.[o]);
      }
    }
  }

  gemmCsrW8A32(y: Float32Array, x: Float32Array, W: CsrI8Matrix, N: number, bias?: Float32Array | null): void {
    const { O, I, rowPtr, col, values: v, scale } = W;
    for (let n = 0; n < N; n++) {
      const xo = n * I, yo = n * O;
      for (let o = 0; o < O; o++) {
        let acc = 0;
        for (let e = rowPtr[o], end = rowPtr[o + 1]; e < end; e++) acc += x[xo + col[e]] * v[e];
        y[yo + o] = scaleOutF(acc, scale[o], bias?.[o]);
      }
    }
  }

  embedI8(out: Float32Array, ids: Int32Array, Wq: Int8Array, wScale: Float32Array, N: number, C: number): void {
    for (let n = 0; n < N; n++) {
      const id = ids[n], s = wScale[id], wo = id * C, oo = n * C;
      for (let c = 0; c < C; c++) out[oo + c] = Wq[wo + c] * s;
    }
  }
}
