/**
 * Sub-byte storage of quantized integers (browser-safe).
 *
 * int4 layout: value i lives in byte floor(i/2); even i in the LOW nibble (bits 0-3), odd i in the
 * HIGH nibble (bits 4-7); each nibble is the value's 4-bit two's complement (-8..7 -> 0x8..0x7).
 * n values take ceil(n/2) bytes; for odd n the last high nibble is 0. A row-major (rows, cols)
 * matrix is packed as one flat run of rows·cols values (rows are not padded).
 *
 * int2 layout (same idea): value i in byte floor(i/4) at bits 2·(i mod 4) .. 2·(i mod 4)+1, lowest
 * first, 2-bit two's complement (-2..1); unused trailing bits are 0.
 */
import { QkdError } from '../tensor/errors.js';

function pack(q: Int8Array, bits: 2 | 4): Uint8Array {
  const per = 8 / bits, mask = (1 << bits) - 1, lo = -(1 << (bits - 1)), hi = (1 << (bits - 1)) - 1;
  const out = new Uint8Array(Math.ceil(q.length / per));
  for (let i = 0; i < q.length; i++) {
    const v = q[i];
    if (v < lo || v > hi) {
      throw new QkdError('E_INPUT', `quant/pack.ts: value ${v} at index ${i} does not fit int${bits} (${lo}..${hi})`);
    }
    out[(i / per) | 0] |= (v & mask) << (bits * (i % per));
  }
  return out;
}

function unpack(packed: Uint8Array, n: number, bits: 2 | 4, out?: Int8Array): Int8Array {
  const per = 8 / bits, mask = (1 << bits) - 1, shift = 32 - bits;
  if (!Number.isInteger(n) || n < 0 || packed.length < Math.ceil(n / per)) {
    throw new QkdError('E_SHAPE', `quant/pack.ts: ${packed.length} packed bytes cannot hold ${n} int${bits} values`);
  }
  const q = out ?? new Int8Array(n);
  if (q.length < n) throw new QkdError('E_SHAPE', `quant/pack.ts: output has ${q.length} elements, needs ${n}`);
  for (let i = 0; i < n; i++) {
    const u = (packed[(i / per) | 0] >> (bits * (i % per))) & mask;
    q[i] = (u << shift) >> shift; // sign-extend the field
  }
  return q;
}

/** Packs int4 values (-8..7) two per byte, low nibble first. */
export function packInt4(q: Int8Array): Uint8Array { return pack(q, 4); }

/** Inverse of packInt4: the first n values (n is needed because an odd count leaves a spare nibble). */
export function unpackInt4(packed: Uint8Array, n: number, out?: Int8Array): Int8Array { return unpack(packed, n, 4, out); }

/** Packs int2 values (-2..1) four per byte, lowest bits first. */
export function packInt2(q: Int8Array): Uint8Array { return pack(q, 2); }

/** Inverse of packInt2: the first n values. */
export function unpackInt2(packed: Uint8Array, n: number, out?: Int8Array): Int8Array { return unpack(packed, n, 2, out); }
