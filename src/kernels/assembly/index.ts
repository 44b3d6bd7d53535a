// Entry of the AssemblyScript kernels module (compiled by scripts/build.mjs into dist/wasm/).
// Every kernel export takes (tid, nth, ...args): the JS worker pool calls it once per thread with
// the same arguments and each call does its own share. Pointers are byte offsets into the shared
// memory; the module allocates nothing (JS owns the heap above heapBase()).
import { matmulShare, gemmWorkspaceBytes as gemmWs, MR as mr, NR as nr } from './gemm';

export { softmaxForward, softmaxBackward, crossEntropy, layerNormForward, layerNormBackward, rmsNormForward,
  rmsNormBackward, logSoftmaxForward, logSoftmaxBackward } from './rows';
export { add, scale, addBias, biasBackward, activationForward, activationBackward, gluForward, gluBackward,
  adamw, sumSquares, rope, embeddingBackward, permute0213 } from './elementwise';

/** First byte JS may use (static data of this module lies below). */
export function heapBase(): usize { return __heap_base; }
export function gemmWorkspaceBytes(): i32 { return gemmWs(); }
/** 1 when compiled with relaxed-SIMD FMA. */
export function hasFma(): i32 { return FMA ? 1 : 0; }
export function tileM(): i32 { return mr; }
export function tileN(): i32 { return nr; }

/** C (M,N) (+)= op(A) · op(B); ws is the workspace of thread 0, each next thread's is wsStride bytes on. */
export function matmul(tid: i32, nth: i32, C: usize, A: usize, B: usize, M: i32, N: i32, K: i32, tA: bool, tB: bool,
  acc: bool, ws: usize, wsStride: i32): void {
  matmulShare(tid, nth, C, A, B, M, N, K, tA, tB, acc, ws + <usize>(tid * wsStride));
}

/**
 * Batched matmul over contiguous (M,K)/(K,N)/(M,N) blocks. Whole batch items go to threads when
 * there are enough of them to balance; otherwise every item is split across the threads.
 */
export function bmm(tid: i32, nth: i32, C: usize, A: usize, B: usize, batch: i32, M: i32, N: i32, K: i32,
  tA: bool, tB: bool, acc: bool, ws: usize, wsStride: i32): void {
  const w = ws + <usize>(tid * wsStride);
  const sa = <usize>M * K << 2, sb = <usize>K * N << 2, sc = <usize>M * N << 2;
  if (nth == 1 || batch % nth == 0 || batch >= 4 * nth) {
    const per = (batch + nth - 1) / nth, b0 = min<i32>(batch, tid * per), b1 = min<i32>(batch, b0 + per);
    for (let b = b0; b < b1; b++) {
      matmulShare(0, 1, C + <usize>b * sc, A + <usize>b * sa, B + <usize>b * sb, M, N, K, tA, tB, acc, w);
    }
  } else {
    for (let b = 0; b < batch; b++) {
      matmulShare(tid, nth, C + <usize>b * sc, A + <usize>b * sa, B + <usize>b * sb, M, N, K, tA, tB, acc, w);
    }
  }
}
