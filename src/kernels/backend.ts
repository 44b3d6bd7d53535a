/**
 * The backend interface: every numeric kernel the engine uses, over flat row-major Float32Arrays.
 *
 * Invariants shared by all kernels:
 * - Buffers are Float32Array views obtained from `backend.alloc` (the wasm backend needs them to live
 *   in its shared WebAssembly.Memory; `subarray` of such a view is fine). The ts backend accepts any.
 * - Shapes are passed explicitly; a shape comment names the layout, e.g. `(M,K)`.
 * - `accumulate` means "add into the output" (gradient accumulation); otherwise the output is overwritten.
 * - Kernels are synchronous. The wasm backend runs them on its worker pool and returns when done.
 *
 * The `ts` backend (kernels/ts) is the reference. The `wasm` backend extends it and overrides the hot
 * kernels; every override is tested against the reference. The opt-in `native` backend (Node only) is
 * the wasm backend with its matmul/bmm run by OpenBLAS through a Node-API addon (kernels/native).
 */
export type BackendName = 'ts' | 'wasm' | 'native';

export interface Backend {
  readonly name: BackendName;
  /** Number of threads kernels run on (1 for ts). */
  readonly threads: number;

  /** A zero-filled f32 buffer of n elements that the kernels can read and write. */
  alloc(n: number): Float32Array;
  /** A zero-filled i32 buffer of n elements (token ids, indices). */
  allocI32(n: number): Int32Array;
  /** Give a buffer from alloc/allocI32 back (whole views only). */
  free(buf: Float32Array | Int32Array): void;
  /** Stop worker threads; the backend cannot be used afterwards. */
  dispose(): Promise<void>;

  // ---------------------------------------------------------------- matrix products
  /**
   * C (M,N) = op(A) (M,K) · op(B) (K,N), or C += ... when accumulate.
   * transA: A is stored (K,M). transB: B is stored (N,K). All contiguous, row-major.
   */
  matmul(C: Float32Array, A: Float32Array, B: Float32Array, M: number, N: number, K: number,
    transA?: boolean, transB?: boolean, accumulate?: boolean): void;
  /** `batch` independent matmuls over contiguous blocks: A (batch,M,K), B (batch,K,N), C (batch,M,N). */
  bmm(C: Float32Array, A: Float32Array, B: Float32Array, batch: number, M: number, N: number, K: number,
    transA?: boolean, transB?: boolean, accumulate?: boolean): void;

  // ---------------------------------------------------------------- elementwise / rows
  /** out (N,C) += bias (C) broadcast over rows. */
  addBias(out: Float32Array, bias: Float32Array, N: number, C: number): void;
  /** dBias (C) += sum over rows of dOut (N,C). */
  biasBackward(dBias: Float32Array, dOut: Float32Array, N: number, C: number): void;
  /** out = a + b (n). out may alias a or b. */
  add(out: Float32Array, a: Float32Array, b: Float32Array, n: number): void;
  /** out += a (n). */
  addInPlace(out: Float32Array, a: Float32Array, n: number): void;
  /** out = a * s (n). */
  scale(out: Float32Array, a: Float32Array, s: number, n: number): void;
  /** out (A,C,B,D) = inp (A,B,C,D) with the middle axes swapped: (B,T,H,D) <-> (B,H,T,D). No aliasing. */
  permute0213(out: Float32Array, inp: Float32Array, A: number, B: number, C: number, D: number): void;

  // ---------------------------------------------------------------- embedding
  /** out (N,C) = wte[ids[i]] (+ wpe[pos[i]] when wpe is given). */
  embeddingForward(out: Float32Array, ids: Int32Array, wte: Float32Array, N: number, C: number,
    wpe?: Float32Array, pos?: Int32Array): void;
  /** dWte[ids[i]] += dOut[i] (and dWpe[pos[i]] += dOut[i]). */
  embeddingBackward(dWte: Float32Array, dOut: Float32Array, ids: Int32Array, N: number, C: number,
    dWpe?: Float32Array, pos?: Int32Array): void;

  // ---------------------------------------------------------------- norms
  /** LayerNorm over rows: out (N,C); mean, rstd (N) saved for backward. bias optional. */
  layerNormForward(out: Float32Array, mean: Float32Array, rstd: Float32Array, inp: Float32Array,
    weight: Float32Array, bias: Float32Array | null, N: number, C: number, eps: number): void;
  /** Accumulates dInp, dWeight, dBias. */
  layerNormBackward(dInp: Float32Array, dWeight: Float32Array, dBias: Float32Array | null, dOut: Float32Array,
    inp: Float32Array, weight: Float32Array, mean: Float32Array, rstd: Float32Array, N: number, C: number): void;
  /** RMSNorm over rows: out = inp * rstd * weight; rstd (N) saved. */
  rmsNormForward(out: Float32Array, rstd: Float32Array, inp: Float32Array, weight: Float32Array,
    N: number, C: number, eps: number): void;
  /** Accumulates dInp, dWeight. */
  rmsNormBackward(dInp: Float32Array, dWeight: Float32Array, dOut: Float32Array, inp: Float32Array,
    weight: Float32Array, rstd: Float32Array, N: number, C: number): void;

  // ---------------------------------------------------------------- activations
  /** out = act(inp) (n). */
  activationForward(kind: Activation, out: Float32Array, inp: Float32Array, n: number): void;
  /** dInp (+)= act'(inp) * dOut (n). */
  activationBackward(kind: Activation, dInp: Float32Array, dOut: Float32Array, inp: Float32Array, n: number,
    accumulate?: boolean): void;
  /** Gated unit: out = act(gate) * up (n). */
  gluForward(kind: Activation, out: Float32Array, gate: Float32Array, up: Float32Array, n: number): void;
  /** dGate, dUp (overwritten) from dOut. */
  gluBackward(kind: Activation, dGate: Float32Array, dUp: Float32Array, dOut: Float32Array,
    gate: Float32Array, up: Float32Array, n: number): void;

  // ---------------------------------------------------------------- attention pieces
  /**
   * P = softmax(scale * S + mask) over the last axis, S and P (batch, Tq, Tk), rows = batch * Tq.
   * Query row i (= r % Tq) sees keys j <= i + causalOffset (training: Tq = Tk, offset 0; decoding
   * Tq new queries after `past` cached keys: offset = past); causalOffset null disables the mask.
   * Masked entries of P are exactly 0. topK > 0 keeps only each row's topK largest visible scores
   * (sparse attention). P may alias S.
   */
  softmaxForward(P: Float32Array, S: Float32Array, rows: number, Tq: number, Tk: number, scale: number,
    causalOffset: number | null, topK?: number): void;
  /** dS = scale * P * (dP - sum(P * dP)) per row (rows, Tk). dS may alias dP. */
  softmaxBackward(dS: Float32Array, dP: Float32Array, P: Float32Array, rows: number, Tk: number, scale: number): void;
  /**
   * Rotary embedding (Hugging Face rotate-half) in place on x (B, H, T, D) for positions pos0 + t.
   * cos/sin tables are (maxPos, D/2). inverse=true applies the transpose (for the backward pass).
   */
  rope(x: Float32Array, B: number, H: number, T: number, D: number, pos0: number,
    cos: Float32Array, sin: Float32Array, inverse?: boolean): void;

  // ---------------------------------------------------------------- losses
  /** out (rows,V) = log_softmax(scale * inp) per row. out may alias inp. */
  logSoftmaxForward(out: Float32Array, inp: Float32Array, rows: number, V: number, scale?: number): void;
  /** dInp (+)= scale * (dOut - softmax * rowsum(dOut)), softmax = exp(out) (out from the forward). */
  logSoftmaxBackward(dInp: Float32Array, dOut: Float32Array, out: Float32Array, rows: number, V: number,
    scale?: number, accumulate?: boolean): void;
  /**
   * Cross-entropy of logits (N,V) against targets (N): losses (N) = -log softmax[target].
   * Targets < 0 are ignored (loss 0). When dLogits is given it receives (softmax - onehot) * dScale
   * for each row (the backward pass fused in), overwriting it; dLogits may alias logits.
   */
  crossEntropy(losses: Float32Array, logits: Float32Array, targets: Int32Array, N: number, V: number,
    dLogits?: Float32Array | null, dScale?: number): void;

  // ---------------------------------------------------------------- optimizer
  /** Sum of squares of x (n), in float64. */
  sumSquares(x: Float32Array, n: number): number;
  /**
   * AdamW (decoupled weight decay) over n parameters, step t (1-based):
   * m = b1 m + (1-b1) g; v = b2 v + (1-b2) g²; p -= lr (m̂ / (sqrt(v̂) + eps) + wd p).
   * g is multiplied by gradScale first (gradient clipping). Parameters without decay are updated
   * in a separate call with wd = 0.
   */
  adamw(p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, n: number, t: number,
    lr: number, b1: number, b2: number, eps: number, wd: number, gradScale: number): void;
}

export type Activation = 'relu' | 'gelu' | 'gelu_tanh' | 'silu';
