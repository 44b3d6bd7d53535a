/**
 * Where one batch-1 decode step of the int8 runtime goes (wasm backend, 1 thread), for an export dir:
 *   composed  the step composed from single kernel calls (Int8Transformer { fused: false }): every
 *             backend and int8-kernel call timed in place over whole generations (µs and calls per
 *             token); "JS rest" is the forward's own JS plus the timers' cost (the step's total is also
 *             measured without timers).
 *   fused     the one-call step of the kernels' decoder (kernels/wasm/int8-decode.ts), and each of its
 *             ops replayed alone, back to back, at the mid position of the generation (µs per token:
 *             an op's time times its count per step). The replay mirrors decodeStepI8's choices (flat
 *             1x16 block lists, 1x4 blocks in sorted row groups, the tiled dense head, transposed keys); each
 *             call includes ~20-50 ns of
 *             JS-to-wasm call that the fused step does not pay.
 *
 *   npm run build && node dist/bench/decode-profile.js [--dir runs/export-int8a8-block16] [--prompt 16]
 *     [--new 128] [--rounds 5]
 * Prints both tables, then one JSON line.
 */
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { Int8Matrix } from '../src/kernels/int8.js';
import { createWasmBackend, type WasmBackend } from '../src/kernels/wasm/backend.js';
import { canGroupBlocks4, groupBlocks4, placeGroupBlocks4 } from '../src/kernels/wasm/group-blocks.js';
import { freeKVCache } from '../src/nn/kv-cache.js';
import { loadInt8Model } from '../src/runtime/int8-node.js';
import type { Int8Transformer } from '../src/runtime/int8-model.js';
import { jsonLine, machineFacts, median, posInt, printTable, round, ROOT } from './common.js';

type Fn = (...a: number[]) => void;

/**
 * µs per decode step (median over rounds, after one untimed round) of prompt + `steps` greedy steps;
 * timing(true / false) is called around each timed round's steps.
 */
function stepUs(m: Int8Transformer, prompt: number[], steps: number, rounds: number, timing?: (on: boolean) => void): number {
  const V = m.config.vocabSize, us: number[] = [];
  for (let r = 0; r <= rounds; r++) {
    const cache = m.newCache(1, prompt.length + steps + 1);
    let l = m.forward(prompt, 1, prompt.length, { cache }), tok = 0;
    if (r > 0) timing?.(true);
    const t0 = performance.now();
    for (let s = 0; s < steps; s++) {
      const off = l.length - V;
      for (let j = 1; j < V; j++) if (l[off + j] > l[off + tok]) tok = j;
      l = m.forward([tok], 1, 1, { cache });
    }
    if (r > 0) { us.push((performance.now() - t0) * 1000 / steps); timing?.(false); }
    freeKVCache(m.backend, cache);
  }
  return median(us);
}

/**
 * The composed step with every backend / int8-kernel method timed in place: [name, calls, µs] per token,
 * and the step's µs per token with the timers.
 */
function composedProfile(m: Int8Transformer, prompt: number[], steps: number, rounds: number) {
  const acc = new Map<string, { n: number; t: number }>();
  let depth = 0, on = false;
  const wrap = (obj: object, prefix: string, skip: RegExp) => {
    const o = obj as Record<string, unknown>;
    for (const name of Object.getOwnPropertyNames(Object.getPrototypeOf(obj))) {
      const f = o[name];
      if (typeof f !== 'function' || name === 'constructor' || skip.test(name)) continue;
      o[name] = function (this: unknown, ...a: unknown[]) {
        if (!on || depth > 0) return (f as (...x: unknown[]) => unknown).apply(this, a);
        depth++;
        const t0 = performance.now();
        try { return (f as (...x: unknown[]) => unknown).apply(this, a); } finally {
          depth--;
          const s = acc.get(prefix + name) ?? { n: 0, t: 0 };
          s.n++; s.t += performance.now() - t0;
          acc.set(prefix + name, s);
        }
      };
    }
  };
  wrap(m.backend, 'backend.', /^(alloc|free|gemm)/);
  wrap(m.kernels, 'int8.', /^(alloc|free|check|validate|decoder)/);
  const withTimers = stepUs(m, prompt, steps, rounds, (t) => { on = t; }), tok = steps * rounds;
  const calls = [...acc].map(([k, s]): [string, number, number] => [k, s.n / tok, s.t * 1000 / tok]).sort((a, b) => b[2] - a[2]);
  return { calls, withTimers };
}

/** Each op of the fused step replayed alone at position P: [op, count per step, µs per step]. */
function fusedProfile(m: Int8Transformer, be: WasmBackend, P: number): [string, number, number][] {
  const c = m.config, e = be.engine, x = e.exports as Record<string, Fn>;
  const { dim: C, nHead: H, nKVHead: KV, headDim: D, ffnDim: F } = c, HD = H * D, big = Math.max(C, HD, F, c.vocabSize);
  const f32 = (n: number) => { const a = e.allocF32(n); for (let i = 0; i < n; i++) a[i] = Math.sin(i * 0.37) * 0.5; return a.byteOffset; };
  const yb = f32(big), xb = f32(big), w1 = f32(big), st = f32(4), xq = e.allocI8(big), x16 = e.allocI8(2 * big), acc = e.allocI32(big);
  for (let i = 0; i < big; i++) xq[i] = ((i * 37) % 255) - 127;
  x.widenI16(xq.byteOffset, x16.byteOffset, big);
  const xs = f32(1), Tmax = P + 1, ldT = Math.ceil(Tmax / 16) * 16, ck = f32(KV * Tmax * D), cv = f32(KV * Tmax * D), kT = f32(KV * D * ldT);
  x.syncKeys(kT, ldT, ck, KV, D, Tmax, 0, Tmax);
  const ids = e.allocI32(1).byteOffset, q8 = m.actBits > 0, rope = c.pos === 'rope' ? [f32(Tmax * D), f32(Tmax * D)] : null;
  const linear = (W: Int8Matrix, head: boolean): Fn => {
    const v = W.values.byteOffset, s = W.scale.byteOffset, { O, I } = W;
    if (W.format === 'dense') {
      if (q8 && head && O % 4 === 0 && I % 16 === 0) {
        const t = e.allocI8(O * I).byteOffset;
        x.tileRows4x16(v, t, O, I);
        return () => x.gemvTiledI8(yb, x16.byteOffset, xs, t, s, 0, O, I);
      }
      return q8 ? () => x.gemmI8(0, 0, 1, yb, xq.byteOffset, xs, v, s, 0, 1, O, I) : () => x.gemmW8A32(0, 0, 1, yb, xb, v, s, 0, 1, O, I);
    }
    const rp = W.rowPtr.byteOffset, nb = W.rowPtr[O];
    if (W.format === 'csr') {
      return q8 ? () => x.gemmCsrI8(0, 0, 1, yb, xq.byteOffset, xs, rp, W.col.byteOffset, v, s, 0, 1, O, I)
        : () => x.gemmCsrW8A32(0, 0, 1, yb, xb, rp, W.col.byteOffset, v, s, 0, 1, O, I);
    }
    if (!q8) return () => x.gemmBlockW8A32(0, 0, 1, yb, xb, rp, W.blockCol.byteOffset, v, s, 0, 1, O, I, W.k);
    if (canGroupBlocks4(W)) {
      const G = placeGroupBlocks4(e, groupBlocks4(W, null));
      return () => x.groupGemv4(yb, x16.byteOffset, xs, G.vals.byteOffset, G.offs.byteOffset, G.steps.byteOffset, G.perm.byteOffset,
        G.scale.byteOffset, 0, O);
    }
    if (W.k !== 16) return () => x.gemmBlockI8(0, 0, 1, yb, xq.byteOffset, xs, rp, W.blockCol.byteOffset, v, s, 0, 1, O, I, W.k);
    const rows = e.allocI32(Math.max(1, nb));
    for (let r = 0; r < O; r++) rows.fill(r, W.rowPtr[r], W.rowPtr[r + 1]);
    return () => x.blockGemv16(yb, x16.byteOffset, xs, v, W.blockCol.byteOffset, rows.byteOffset, nb, s, 0, O, acc.byteOffset);
  };
  const ops: [string, number, Fn][] = [];
  const names = c.gated ? ['q', 'k', 'v', 'o', 'up', 'gate', 'down'] : ['q', 'k', 'v', 'o', 'up', 'down'];
  for (const n of names) {
    const Ws = Array.from({ length: c.nLayer }, (_, l) => m.matrices.get(`layers.${l}.${n}.weight`)!), fns = Ws.map((W) => linear(W, false));
    const W = Ws[0], stored = Ws.reduce((a, w) => a + (w.format === 'dense' ? w.O * w.I : w.values.length), 0);
    ops.push([`${n} (${W.format}${W.format === 'block' ? ` 1x${W.k}` : ''} ${W.O}x${W.I}, ${round(stored / c.nLayer / (W.O * W.I), 2)} stored)`,
      1, () => { for (const f of fns) f(); }]);
  }
  const head = m.matrices.get(c.tieEmbeddings ? 'embed.weight' : 'lm_head.weight');
  if (head) ops.push([`head (${head.format} ${head.O}x${head.I})`, 1, linear(head, true)]);
  ops.push([`attention (Tk = ${Tmax})`, c.nLayer, () => x.attendDecode(yb, w1, xb, ck, cv, H > KV ? kT : 0, H > KV ? ldT : 0, H, KV, D, Tmax,
    Tmax, 1 / Math.sqrt(D), e.wsBase)]);
  if (q8) {
    for (const [n, k] of [[C, 2 * c.nLayer + 1], [HD, c.nLayer], [F, c.nLayer]]) {
      ops.push([`quantize + widen (${n})`, k, () => { x.quantizeRowsI8(0, 0, 1, xq.byteOffset, xs, xb, 1, n, m.actBits); x.widenI16(xq.byteOffset, x16.byteOffset, n); }]);
    }
  }
  ops.push([`${c.norm} (${C})`, 2 * c.nLayer + 1, c.norm === 'rmsnorm' ? () => x.rmsNormForward(0, 0, 1, yb, st, xb, w1, 1, C, 1e-5)
    : () => x.layerNormForward(0, 0, 1, yb, st, st + 4, xb, w1, w1, 1, 1, C, 1e-5)]);
  if (rope) ops.push([`rope q, k`, c.nLayer, () => { x.rope(0, 0, 1, yb, H, 1, D, P, rope[0], rope[1], 0); x.rope(0, 0, 1, yb, KV, 1, D, P, rope[0], rope[1], 0); }]);
  const act = { relu: 0, gelu: 1, gelu_tanh: 2, silu: 3 }[c.act];
  ops.push([c.gated ? `glu ${c.act} (${F})` : `${c.act} (${F})`, c.nLayer, c.gated ? () => x.gluForward(0, 0, 1, act, yb, xb, w1, F)
    : () => x.activationForward(0, 0, 1, act, yb, xb, F)]);
  ops.push([`residual add (${C})`, 2 * c.nLayer, () => x.add(0, 0, 1, yb, yb, xb, C)]);
  if (head) ops.push(['embedding', 1, () => x.embedI8(0, 0, 1, yb, ids, head.values.byteOffset, head.scale.byteOffset, 1, C)]);
  return ops.map(([n, k, fn]): [string, number, number] => [n, k, k * timeUs(fn)]);
}

/** µs per call: the fastest of 7 timed loops of back-to-back calls, after a warm-up. */
function timeUs(fn: Fn, reps = 2000): number {
  for (let i = 0; i < 300; i++) fn();
  let best = Infinity;
  for (let r = 0; r < 7; r++) {
    const t0 = performance.now();
    for (let i = 0; i < reps; i++) fn();
    best = Math.min(best, (performance.now() - t0) * 1000 / reps);
  }
  return best;
}

async function main(): Promise<void> {
  const { values: v } = parseArgs({ options: { dir: { type: 'string' }, prompt: { type: 'string' }, new: { type: 'string' }, rounds: { type: 'string' } } });
  const dir = v.dir ?? join(ROOT, 'runs', 'export-int8a8-block16');
  const promptLen = posInt(v.prompt, 'prompt', 16), steps = posInt(v.new, 'new', 128, 2) - 1, rounds = posInt(v.rounds, 'rounds', 5);
  const be = await createWasmBackend({ threads: 1 });
  const composed = loadInt8Model(dir, be, { fused: false }).model, fused = loadInt8Model(dir, be).model;
  const prompt = Array.from({ length: promptLen }, (_, i) => (i * 131 + 7) % composed.config.vocabSize);
  const total = { composed: stepUs(composed, prompt, steps, rounds), fused: stepUs(fused, prompt, steps, rounds) };
  const { calls: comp, withTimers: timedTotal } = composedProfile(composed, prompt, steps, rounds);
  const timed = comp.reduce((a, r) => a + r[2], 0);
  const fz = fusedProfile(fused, be, promptLen + (steps >> 1)), fsum = fz.reduce((a, r) => a + r[2], 0);
  console.log(`decode step of ${dir} (wasm, 1 thread, prompt ${promptLen}, ${steps} steps, median of ${rounds} rounds)`);
  console.log(`\ncomposed step: ${round(total.composed, 1)} µs/token (${round(timedTotal, 1)} with timers)`);
  printTable(['call', 'calls/token', 'µs/token'], [...comp.map((r) => [r[0], round(r[1], 1), round(r[2], 2)]),
    ['JS rest (forward, argmax, timers)', null, round(timedTotal - timed, 2)]]);
  console.log(`\nfused step: ${round(total.fused, 1)} µs/token; its ops replayed alone (sum ${round(fsum, 1)} µs):`);
  printTable(['op (linear layers: all layers together)', 'per step', 'µs/token'], fz.map((r) => [r[0], r[1], round(r[2], 2)]));
  jsonLine({ bench: 'decode-profile', dir, prompt: promptLen, steps, rounds, stepUs: total, composed: comp, fused: fz, machine: machineFacts() });
  composed.dispose(); fused.dispose();
  await be.dispose();
}

main().catch((e: unknown) => { console.error(e); process.exit(1); });
