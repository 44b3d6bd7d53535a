/**
 * The fused single-token decoder of the wasm int8 kernels (kernels/int8.ts Int8Decoder): the model is
 * written once into a table of words in the shared memory (layout of assembly/int8-decode.ts), and a
 * step is one call of decodeStepI8 on the caller's thread, with no per-kernel marshalling and no
 * pool hand-offs (a decode step's kernels are 0.1-3 µs each: a hand-off would cost as much).
 *
 * Only for the plain 'wasm' backend of the same engine: the step reuses that backend's kernels (norms,
 * RoPE, softmax, the float GEMM's summation order in attention), which is what makes its logits
 * bit-identical to the composed step. Anything the table cannot describe gives null (the runtime
 * then composes the step).
 */
import type { Backend } from '../backend.js';
import type {
  Int8DecodeLinear, Int8DecodeModel, Int8DecodeNorm, Int8Decoder, Int8Matrix,
} from '../int8.js';
import { QkdError } from '../../tensor/errors.js';
import type { WasmEngine } from './engine.js';
import { canGroupBlocks4, groupBlocks4, placeGroupBlocks4 } from './group-blocks.js';

// Table layout (words); assembly/int8-decode.ts is the reference and reports its sizes (decodeLayout).
const MAT = 10, HEADER = 54, LAYER = 7 + 7 * MAT;
const H = {
  nLayer: 0, C: 1, H: 2, KV: 3, D: 4, F: 5, norm: 6, eps: 7, act: 8, gated: 9, actBits: 10, cos: 11, sin: 12, wpe: 13,
  eFloat: 14, eVal: 15, eScale: 16, fnW: 17, fnB: 18, Tmax: 19, scale: 20, ws: 21, ids: 22, pos: 23, x: 24, x2: 25,
  n: 26, tmp: 27, mean: 28, rstd: 29, q: 30, k: 31, v: 32, heads: 33, att: 34, up: 35, gate: 36, hid: 37, logits: 38,
  xq: 39, xs: 40, ldT: 41, x16: 42, acc: 43, head: 44,
} as const;
const L = { anw: 0, anb: 1, mnw: 2, mnb: 3, ck: 4, cv: 5, kT: 6, q: 7, k: 7 + MAT, v: 7 + 2 * MAT, o: 7 + 3 * MAT,
  up: 7 + 4 * MAT, gate: 7 + 5 * MAT, down: 7 + 6 * MAT } as const;
const ACT = { relu: 0, gelu: 1, gelu_tanh: 2, silu: 3 } as const;
const FORMAT = { dense: 0, block: 1, csr: 2 } as const, FLAT16 = 3, GROUP4 = 4;

type Step = (table: number, id: number, P: number, synced: number) => void;
type View = Float32Array | Int32Array | Int8Array;

/** Thrown inside the builder when the model is outside what the table describes (caught: null). */
class Unsupported extends Error {}

/**
 * A decoder for `model` on `backend`, or null when the backend is not this engine's plain wasm one, the
 * module predates the decoder, or the model has a buffer outside the shared memory.
 * `validate` checks a matrix's sizes and indices (the kernels read activations at its indices).
 */
export function wasmDecoder(engine: WasmEngine, backend: Backend, model: Int8DecodeModel,
  validate: (W: Int8Matrix, what: string) => void): Int8Decoder | null {
  if (backend.name !== 'wasm' || (backend as { engine?: unknown }).engine !== engine) return null;
  const step = engine.exports.decodeStepI8 as Step | undefined, layout = engine.exports.decodeLayout as ((i: number) => number) | undefined;
  if (!step || !layout) return null;
  if (layout(0) !== MAT || layout(1) !== HEADER || layout(2) !== LAYER) {
    throw new QkdError('E_INTERNAL', 'wasm decoder: the kernels module\'s table layout differs from wasm/int8-decode.ts');
  }
  try {
    return new WasmDecoder(engine, model, step, validate);
  } catch (e) {
    if (e instanceof Unsupported) return null;
    throw e;
  }
}

class WasmDecoder implements Int8Decoder {
  private readonly words: Int32Array;
  private readonly floats: Float32Array;
  private readonly owned: View[] = [];
  private readonly logits: Float32Array;
  /** The cache buffers whose offsets the table holds (per layer), and its Tmax. */
  private readonly ck: (Float32Array | null)[];
  private readonly cv: (Float32Array | null)[];
  /**
   * Positions of the current cache whose keys the transposed copies hold (each layer's kT, used by the
   * attention scores: no transposes per step). Only step() and invalidate() move it.
   */
  private synced = 0;
  /** Each layer's transposed keys (KV, D, ldT), ldT the cache length rounded up to 16; none before a step. */
  private kT: Float32Array[] = [];
  private disposed = false;

  constructor(private readonly engine: WasmEngine, private readonly m: Int8DecodeModel, private readonly run: Step,
    private readonly validate: (W: Int8Matrix, what: string) => void) {
    const n = HEADER + m.layers.length * LAYER;
    this.words = this.keep(engine.allocI32(n));
    this.floats = new Float32Array(this.words.buffer, this.words.byteOffset, n);
    this.ck = m.layers.map(() => null); this.cv = m.layers.map(() => null);
    try {
      this.logits = this.header();
      m.layers.forEach((layer, l) => this.layer(l, layer));
    } catch (e) {
      this.dispose();
      throw e;
    }
  }

  step(id: number, P: number, cacheK: readonly Float32Array[], cacheV: readonly Float32Array[], Tmax: number): Float32Array {
    const m = this.m, w = this.words;
    if (this.disposed) throw new QkdError('E_INTERNAL', 'wasm decoder used after dispose()');
    if (!(Number.isInteger(id) && id >= 0 && id < m.V)) throw new QkdError('E_INPUT', `wasm decoder: token id ${id} is outside [0, ${m.V})`);
    if (!(Number.isInteger(P) && P >= 0 && P < Tmax && P < m.maxPos)) {
      throw new QkdError('E_SHAPE', `wasm decoder: position ${P} outside the cache (${Tmax}) or the model (${m.maxPos})`);
    }
    if (w[H.Tmax] !== Tmax) { w[H.Tmax] = Tmax; this.ck.fill(null); this.cv.fill(null); }
    if (m.H > m.KV && w[H.ldT] < Tmax) this.sizeKeys(Tmax);
    const need = m.KV * Tmax * m.D;
    for (let l = 0; l < m.layers.length; l++) {
      if (cacheK[l] !== this.ck[l]) {
        this.ck[l] = null; // until checked
        w[HEADER + l * LAYER + L.ck] = this.at(cacheK[l], need, `cache k[${l}]`, true);
        this.ck[l] = cacheK[l];
        this.synced = 0; // another cache: its keys are not in kT
      }
      if (cacheV[l] !== this.cv[l]) {
        this.cv[l] = null;
        w[HEADER + l * LAYER + L.cv] = this.at(cacheV[l], need, `cache v[${l}]`, true);
        this.cv[l] = cacheV[l];
      }
    }
    const synced = Math.min(this.synced, P);
    this.synced = 0; // should the call fail
    this.run(w.byteOffset, id, P, synced);
    this.synced = P + 1;
    return this.logits;
  }

  invalidate(from: number): void { this.synced = Math.min(this.synced, Math.max(0, from)); }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const v of [...this.owned, ...this.kT]) this.engine.free(v);
    this.owned.length = 0; this.kT = [];
  }

  /**
   * (Re)allocates the transposed keys for caches of up to Tmax positions, rows padded to 16 (the score
   * kernel reads 16 keys at a time). Only with GQA groups (r >= 2): at r = 1 the scores are a
   * matrix-vector product that reads the cache itself.
   */
  private sizeKeys(Tmax: number): void {
    const m = this.m, w = this.words, ldT = Math.ceil(Tmax / 16) * 16;
    for (const v of this.kT) this.engine.free(v);
    this.kT = [];
    w[H.ldT] = 0;
    m.layers.forEach((_, l) => { w[HEADER + l * LAYER + L.kT] = 0; });
    this.kT = m.layers.map(() => this.engine.allocF32(m.KV * m.D * ldT));
    this.kT.forEach((v, l) => { w[HEADER + l * LAYER + L.kT] = v.byteOffset; });
    w[H.ldT] = ldT;
    this.synced = 0;
  }

  private keep<T extends View>(v: T): T { this.owned.push(v); return v; }

  /** Byte offset of v after checking it lies in the shared memory with >= n elements (cache: a user error). */
  private at(v: View | null | undefined, n: number, what: string, cache = false): number {
    if (!v) throw new Unsupported(what);
    if (!this.engine.owns(v)) {
      if (cache) throw new QkdError('E_INPUT', `wasm decoder: ${what} is not a buffer of this backend (backend.alloc)`);
      throw new Unsupported(what);
    }
    if (v.length < n) throw new QkdError('E_SHAPE', `wasm decoder: ${what} has ${v.length} elements, needs ${n}`);
    return v.byteOffset;
  }

  /** Writes the header (shapes, tables, scratch) and returns the logits buffer. */
  private header(): Float32Array {
    const m = this.m, w = this.words, f = this.floats, e = this.engine, { C, D, F, V } = m, HD = m.H * m.D;
    if (!(m.KV > 0 && m.H % m.KV === 0) || !(m.actBits >= 0 && m.actBits <= 8) || m.actBits === 1) throw new Unsupported('shape');
    w[H.nLayer] = m.layers.length; w[H.C] = C; w[H.H] = m.H; w[H.KV] = m.KV; w[H.D] = D; w[H.F] = F;
    w[H.norm] = m.norm === 'layernorm' ? 0 : 1; f[H.eps] = m.normEps; w[H.act] = ACT[m.act]; w[H.gated] = +m.gated;
    w[H.actBits] = m.actBits;
    w[H.cos] = m.rope ? this.at(m.rope.cos, m.maxPos * (D >> 1), 'rope cos') : 0;
    w[H.sin] = m.rope ? this.at(m.rope.sin, m.maxPos * (D >> 1), 'rope sin') : 0;
    if (m.rope && D % 2 !== 0) throw new Unsupported('rope with odd head dim');
    w[H.wpe] = m.wpe ? this.at(m.wpe, m.maxPos * C, 'pos_embed') : 0;
    if ('int8' in m.embed) {
      const E = m.embed.int8;
      this.validate(E, 'embed');
      if (E.O !== V || E.I !== C) throw new Unsupported('embed shape');
      w[H.eFloat] = 0; w[H.eVal] = this.at(E.values, V * C, 'embed'); w[H.eScale] = this.at(E.scale, V, 'embed scale');
    } else { w[H.eFloat] = 1; w[H.eVal] = this.at(m.embed.float, V * C, 'embed'); }
    this.norm(H.fnW, H.fnB, m.finalNorm, 'final_norm');
    f[H.scale] = 1 / Math.sqrt(D); // as nn/attention.ts computes it (rounded to float32 as a kernel argument)
    w[H.ws] = e.wsBase;
    const s = (n: number) => this.keep(e.allocF32(n)).byteOffset;
    w[H.ids] = this.keep(e.allocI32(1)).byteOffset; w[H.pos] = this.keep(e.allocI32(1)).byteOffset;
    for (const k of [H.x, H.x2, H.n, H.tmp]) w[k] = s(C);
    w[H.mean] = s(1); w[H.rstd] = s(1); w[H.q] = s(HD); w[H.k] = s(m.KV * D); w[H.v] = s(m.KV * D); w[H.heads] = s(HD);
    w[H.att] = s(m.H * m.maxPos); w[H.up] = s(F); w[H.gate] = s(F); w[H.hid] = s(F); w[H.xs] = s(1);
    w[H.xq] = this.keep(e.allocI8(Math.max(C, HD, F))).byteOffset;
    w[H.x16] = this.keep(e.allocI8(2 * Math.max(C, HD, F))).byteOffset; // xq widened to int16
    w[H.acc] = this.keep(e.allocI32(Math.max(C, HD, F))).byteOffset;   // row sums of the flat block kernel
    w[H.ldT] = 0; // transposed keys: sized by step() for the cache at hand
    const logits = this.keep(e.allocF32(V));
    w[H.logits] = logits.byteOffset;
    this.mat(H.head, { W: m.head, bias: null }, V, C, 'head', true);
    return logits;
  }

  private layer(l: number, x: Int8DecodeModel['layers'][number]): void {
    const m = this.m, b = HEADER + l * LAYER, p = `layers.${l}`, HD = m.H * m.D, KD = m.KV * m.D;
    this.words[b + L.kT] = 0;
    this.norm(b + L.anw, b + L.anb, x.attnNorm, `${p}.attn_norm`);
    this.norm(b + L.mnw, b + L.mnb, x.mlpNorm, `${p}.mlp_norm`);
    this.mat(b + L.q, x.q, HD, m.C, `${p}.q`); this.mat(b + L.k, x.k, KD, m.C, `${p}.k`); this.mat(b + L.v, x.v, KD, m.C, `${p}.v`);
    this.mat(b + L.o, x.o, m.C, HD, `${p}.o`); this.mat(b + L.up, x.up, m.F, m.C, `${p}.up`);
    if (m.gated !== (x.gate !== null)) throw new Unsupported('gate');
    if (x.gate) this.mat(b + L.gate, x.gate, m.F, m.C, `${p}.gate`);
    else this.words[b + L.gate] = -1;
    this.mat(b + L.down, x.down, m.C, m.F, `${p}.down`);
  }

  private norm(wAt: number, bAt: number, n: Int8DecodeNorm, what: string): void {
    this.words[wAt] = this.at(n.w, this.m.C, `${what} weight`);
    // the composed layernorm always adds its bias
    if (this.m.norm === 'layernorm' && !n.b) throw new Unsupported(`${what} bias`);
    this.words[bAt] = n.b ? this.at(n.b, this.m.C, `${what} bias`) : 0;
  }

  /**
   * Matrix words at `o`: format, O, I, k, values, scale, rowPtr, indices, bias, aux. With int8
   * activations, 1 x 16 block matrices become flat block lists (their rows listed once here), 1 x 4
   * block matrices groups of 4 rows sorted by block count (group-blocks.ts), and the
   * dense head (`tile`) gets a copy tiled 4 x 16 (O·I bytes more, for a ~1.3x faster head: int8-gemv.ts).
   */
  private mat(o: number, { W, bias }: Int8DecodeLinear, O: number, I: number, what: string, tile = false): void {
    if (W.O !== O || W.I !== I) throw new Unsupported(`${what}: ${W.O} x ${W.I}, expected ${O} x ${I}`);
    this.validate(W, what);
    const w = this.words, e = this.engine, q = this.m.actBits > 0;
    w[o] = FORMAT[W.format]; w[o + 1] = O; w[o + 2] = I; w[o + 3] = W.format === 'block' ? W.k : 0;
    w[o + 4] = this.at(W.values, W.format === 'dense' ? O * I : W.values.length, what);
    w[o + 5] = this.at(W.scale, O, `${what} scale`);
    w[o + 6] = W.format === 'dense' ? 0 : this.at(W.rowPtr, O + 1, `${what} rowPtr`);
    w[o + 7] = W.format === 'dense' ? 0 : this.at(W.format === 'block' ? W.blockCol : W.col, W.rowPtr[O], `${what} indices`);
    w[o + 8] = bias ? this.at(bias, O, `${what} bias`) : 0;
    w[o + 9] = 0;
    if (q && W.format === 'block' && W.k === 16) {
      const nb = W.rowPtr[O], rows = this.keep(e.allocI32(Math.max(1, nb)));
      for (let r = 0; r < O; r++) rows.fill(r, W.rowPtr[r], W.rowPtr[r + 1]);
      w[o] = FLAT16; w[o + 3] = nb; w[o + 9] = rows.byteOffset;
    } else if (q && W.format === 'block' && canGroupBlocks4(W)) {
      const G = placeGroupBlocks4(e, groupBlocks4(W, bias), (v) => this.keep(v));
      w[o] = GROUP4; w[o + 4] = G.vals.byteOffset; w[o + 5] = G.scale.byteOffset; w[o + 6] = G.steps.byteOffset;
      w[o + 7] = G.offs.byteOffset; w[o + 8] = G.bias ? G.bias.byteOffset : 0; w[o + 9] = G.perm.byteOffset;
    } else if (q && tile && W.format === 'dense' && O % 4 === 0 && I % 16 === 0) {
      const tiled = this.keep(e.allocI8(O * I));
      (e.exports.tileRows4x16 as (...a: number[]) => void)(W.values.byteOffset, tiled.byteOffset, O, I);
      w[o + 9] = tiled.byteOffset;
    }
  }
}
