/** Reference matrix products in plain TypeScript (the oracle for the wasm GEMM). */

/** C (M,N) (+)= op(A) (M,K) · op(B) (K,N); see Backend.matmul. Accumulates in float64 per output row. */
export function matmulRef(C: Float32Array, A: Float32Array, B: Float32Array, M: number, N: number, K: number,
  transA = false, transB = false, accumulate = false): void {
  const row = new Float64Array(N);
  for (let i = 0; i < M; i++) {
    if (accumulate) for (let j = 0; j < N; j++) row[j] = C[i * N + j];
    else row.fill(0);
    if (transB) {
      // B stored (N,K): each output is a dot product of two K-vectors
      for (let j = 0; j < N; j++) {
        let s = 0;
        const bo = j * K;
        if (transA) for (let k = 0; k < K; k++) s += A[k * M + i] * B[bo + k];
        else { const ao = i * K; for (let k = 0; k < K; k++) s += A[ao + k] * B[bo + k]; }
        row[j] += s;
      }
    } else {
      for (let k = 0; k < K; k++) {
        const a = transA ? A[k * M + i] : A[i * K + k];
        if (a === 0) continue;
        const bo = k * N;
        for (let j = 0; j < N; j++) row[j] += a * B[bo + j];
      }
    }
    for (let j = 0; j < N; j++) C[i * N + j] = row[j];
  }
}

/** Batched matmul over contiguous blocks A (batch,M,K), B (batch,K,N), C (batch,M,N). */
export function bmmRef(C: Float32Array, A: Float32Array, B: Float32Array, batch: number, M: number, N: number,
  K: number, transA = false, transB = false, accumulate = false): void {
  for (let b = 0; b < batch; b++) {
    matmulRef(C.subarray(b * M * N, (b + 1) * M * N), A.subarray(b * M * K, (b + 1) * M * K),
      B.subarray(b * K * N, (b + 1) * K * N), M, N, K, transA, transB, accumulate);
  }
}
