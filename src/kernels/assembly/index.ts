// Entry of the AssemblyScript kernels module (compiled by scripts/build.mjs into dist/wasm/).
// Every kernel export takes (th, tid, nth, ...args): the work is cut into nth chunks and thread th
// runs chunk tid (the JS pool hands chunks out dynamically, so one thread may run several; per-thread
// resources such as GEMM workspaces are indexed by th). Pointers are byte offsets into the shared
// memory; the module allocates nothing (JS owns the heap above heapBase()).
import { matmulShare, gemmWorkspaceBytes as gemmWs } from './gemm';
import { splitStart } from './simd';

export { softmaxForward, softmaxBackward, crossEntropy, layerNormForward, layerNormBackward, rmsNormForward,
  rmsNormBackward, logSoftmaxForward, logSoftmaxBackward } from './rows';
export { add, scale, addBias, biasBackward, activationForward, activationBackward, gluForward, gluBackward,
  adamw, sumSquares, rope, embeddingForward, embeddingBackward, permute0213 } from './elementwise';
export { gemmI8, gemmW8A32, quantizeRowsI8, embedI8 } from './int8';
export { gemmBlockI8, gemmCsrI8 } from './int8sparse';
export { gemmBlockW8A32, gemmCsrW8A32 } from './int8sparse-f32';
export { decodeStepI8, decodeLayout } from './int8-decode';
export { attendDecode, syncKeys } from './int8-attend';
export { widenI16, tileRows4x16, gemvTiledI8, blockGemv16, groupGemv4 } from './int8-gemv';

/** First byte JS may use (static data of this module lies below). */
export function heapBase(): usize { return __heap_base; }
export function gemmWorkspaceBytes(): i32 { return gemmWs(); }
/** 1 when compiled with relaxed-SIMD FMA. */
export function hasFma(): i32 { return FMA ? 1 : 0; }

/** C (M,N) (+)= op(A) · op(B); ws is the workspace of thread 0, each next thread's is wsStride bytes on. */
export function matmul(th: i32, tid: i32, nth: i32, C: usize, A: usize, B: usize, M: i32, N: i32, K: i32, tA: bool, tB: bool,
  acc: bool, ws: usize, wsStride: i32): void {
  matmulShare(tid, nth, C, A, B, M, N, K, tA, tB, acc, ws + <usize>(th * wsStride));
}

/**
 * Batched matmul over contiguous (M,K)/(K,N)/(M,N) blocks. byItem: chunk tid takes whole batch items
 * (many items); otherwise every item is split into the nth chunks (few, large items).
 */
export function bmm(th: i32, tid: i32, nth: i32, C: usize, A: usize, B: usize, batch: i32, M: i32, N: i32, K: i32,
  tA: bool, tB: bool, acc: bool, ws: usize, wsStride: i32, byItem: bool): void {
  const w = ws + <usize>(th * wsStride);
  const sa = <usize>M * K << 2, sb = <usize>K * N << 2, sc = <usize>M * N << 2;
  if (byItem) {
    const b0 = splitStart(batch, nth, tid, 1), b1 = splitStart(batch, nth, tid + 1, 1);
    for (let b = b0; b < b1; b++) {
      matmulShare(0, 1, C + <usize>b * sc, A + <usize>b * sa, B + <usize>b * sb, M, N, K, tA, tB, acc, w);
    }
  } else {
    for (let b = 0; b < batch; b++) {
      matmulShare(tid, nth, C + <usize>b * sc, A + <usize>b * sa, B + <usize>b * sb, M, N, K, tA, tB, acc, w);
    }
  }
}
