/**
 * Reading and writing the teacher-logit cache (the format: io/teacher-cache-format.ts). The writer
 * appends CRC-checked records and resumes a partial cache; the reader checks every record it hands
 * to distillation.
 */
import { closeSync, fstatSync, fsyncSync, ftruncateSync, mkdirSync, readSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { QkdError } from '../tensor/errors.js';
import { writeFileAtomic } from './atomic.js';
import { f16ToF32Table, f32ToF16 } from './safetensors.js';
import {
  CACHE_MAGIC, canon, checkCacheMatches, crc32, DATA_FILE, HEADER_FILE, isInt, openFile, readHeader,
  readHeaderIfAny, recordLayout, validateHeader, versionFor,
  type Layout, type TeacherCacheHeader, type TeacherCacheSpec, type TeacherDist, type TopkEntries,
} from './teacher-cache-format.js';
import { decodeInt8, encodeInt8, int8TopkLse } from './teacher-cache-int8.js';

// ---- writer

/** Appends windows to a cache directory; resumes a partial one made with the same spec. */
export class TeacherCacheWriter {
  private fd: number;
  private buf: ArrayBuffer;
  private sinceSync = 0;
  private closed = false;

  private constructor(readonly dir: string, private hdr: TeacherCacheHeader, fd: number, private n: number,
    private readonly syncEvery: number) {
    this.fd = fd;
    this.buf = new ArrayBuffer(hdr.recordBytes);
  }

  get header(): TeacherCacheHeader { return this.hdr; }

  /**
   * Opens `dir` for writing. A new directory (or `overwrite`) starts an empty cache whose header
   * says complete = false. An existing cache must have the same spec (else E_CONFIG naming the
   * field); its leading records whose CRC checks are kept and `windows` says where to continue. A
   * complete cache opens finished (`complete` true; append throws).
   */
  static open(dir: string, spec: TeacherCacheSpec, opts: { overwrite?: boolean; syncEvery?: number } = {}): TeacherCacheWriter {
    const header = newHeader(spec, dir);
    mkdirSync(dir, { recursive: true });
    const existing = opts.overwrite ? null : readHeaderIfAny(dir), path = join(dir, DATA_FILE);
    if (existing) checkCacheMatches(existing, spec, `${join(dir, HEADER_FILE)} (resume)`);
    closeSync(openFile(path, existing ? 'a' : 'w')); // a new cache starts from an empty payload
    if (!existing) writeFileAtomic(join(dir, HEADER_FILE), JSON.stringify(header, null, 1) + '\n');
    const fd = openFile(path, 'r+'), w = new TeacherCacheWriter(dir, existing ?? header, fd, 0, opts.syncEvery ?? 32);
    if (existing?.complete) {
      w.n = existing.windows;
      w.closeFd();
    } else {
      w.n = validPrefix(fd, header, path);
      ftruncateSync(fd, w.n * header.recordBytes);
    }
    return w;
  }

  get complete(): boolean { return this.header.complete; }
  /** Complete records on disk: the next window to append is this index. */
  get windows(): number { return this.n; }

  /** Appends the window starting at token `start`: tokens (T+1) and rows row0..row0+T of `e`. */
  append(start: number, tokens: ArrayLike<number>, e: TopkEntries, row0 = 0): void {
    const h = this.header, T = h.T, where = join(this.dir, DATA_FILE);
    if (this.closed) throw new QkdError('E_INTERNAL', `${where}: append after ${h.complete ? 'finalize (the cache is complete)' : 'close'}`);
    if (e.V !== h.V || e.k !== h.k || canon(e.taus) !== canon(h.taus)) {
      throw new QkdError('E_SHAPE', `${where}: entries have V ${e.V}, k ${e.k}, taus ${JSON.stringify(e.taus)}; the cache has V ${h.V}, k ${h.k}, taus ${JSON.stringify(h.taus)}`);
    }
    if (!(row0 >= 0 && row0 + T <= e.N) || tokens.length !== T + 1) {
      throw new QkdError('E_SHAPE', `${where}: window needs rows ${row0}..${row0 + T - 1} of ${e.N} and ${T + 1} tokens (got ${tokens.length})`);
    }
    if (!isInt(start, 0) || start + T + 1 > h.data.tokens) throw new QkdError('E_INPUT', `${where}: window start ${start} is not in 0..${h.data.tokens - T - 1}`);
    const L = recordLayout(h), b = this.buf, k = h.k;
    new Float64Array(b, 0, 1)[0] = start;
    const lg = e.logits.subarray(row0 * k, (row0 + T) * k);
    for (let a = 0; a < L.nTau; a++) {
      const lse = e.lse.subarray(a * e.N + row0, a * e.N + row0 + T);
      if (!lse.every(Number.isFinite)) throw new QkdError('E_INPUT', `${where}: window at ${start}: non-finite teacher lse`);
    }
    if (!lg.every(Number.isFinite)) throw new QkdError('E_INPUT', `${where}: window at ${start}: non-finite teacher logits`);
    writeLogits(b, L, e, row0, T, k);
    if (k !== h.V) (L.ib === 2 ? new Uint16Array(b, L.ids, T * k) : new Int32Array(b, L.ids, T * k)).set(e.ids.subarray(row0 * k, (row0 + T) * k));
    const tok = L.ib === 2 ? new Uint16Array(b, L.tokens, T + 1) : new Int32Array(b, L.tokens, T + 1);
    for (let i = 0; i <= T; i++) {
      if (!(tokens[i] >= 0 && tokens[i] < h.V)) throw new QkdError('E_INPUT', `${where}: token ${tokens[i]} at window position ${i} is not < V = ${h.V}`);
      tok[i] = tokens[i];
    }
    new DataView(b).setUint32(L.crc, crc32(new Uint8Array(b, 0, L.crc)), true);
    writeAllAt(this.fd, new Uint8Array(b), this.n * h.recordBytes);
    this.n++;
    if (++this.sinceSync >= this.syncEvery) { fsyncSync(this.fd); this.sinceSync = 0; }
  }

  /** Syncs the records and atomically marks the cache complete. */
  finalize(): void {
    const path = join(this.dir, HEADER_FILE);
    if (this.header.complete) return;
    const planned = this.header.plannedWindows;
    if (planned !== null && planned !== this.n) {
      throw new QkdError('E_INPUT', `${path}: finalize after ${this.n} windows, the spec plans ${planned}`);
    }
    fsyncSync(this.fd);
    const h: TeacherCacheHeader = { ...this.header, complete: true, windows: this.n };
    writeFileAtomic(path, JSON.stringify(h, null, 1) + '\n');
    this.hdr = h;
    this.closeFd();
  }

  /** Stops writing without finalizing (a later open resumes). */
  close(): void {
    if (this.closed) return;
    fsyncSync(this.fd);
    this.closeFd();
  }

  private closeFd(): void {
    if (!this.closed) closeSync(this.fd);
    this.closed = true;
  }
}

/** The lse and logit sections of a record from rows row0..row0+T of e (checked finite). */
function writeLogits(b: ArrayBuffer, L: Layout, e: TopkEntries, row0: number, T: number, k: number): void {
  const lg = e.logits.subarray(row0 * k, (row0 + T) * k), lse = new Float32Array(b, L.lse, L.nLse);
  if (L.lb !== 1) for (let a = 0; a < L.nTau; a++) lse.set(e.lse.subarray(a * e.N + row0, a * e.N + row0 + T), a * T);
  if (L.lb === 4) new Float32Array(b, L.logits, T * k).set(lg);
  else if (L.lb === 2) new Uint16Array(b, L.logits, T * k).set(f32ToF16(shiftedByMax(lg, new Float32Array(b, L.tmax, T), k)));
  else {
    const codes = new Uint8Array(b, L.logits, T * k), range = new Uint16Array(b, L.range, T);
    const tmax = encodeInt8(lg, k, T, codes, range);
    if (L.nLse === 0) return; // a full int8 cache stores no lse
    const dec = new Float32Array(T * k);
    decodeInt8(codes, range, k, dec);
    int8TopkLse(e.lse, e.N, row0, e.taus, lg, dec, tmax, k, lse);
  }
}

/** The header of a new, empty cache of `spec` (as the writer starts it); E_CONFIG naming the field when the spec is bad. */
export function newHeader(spec: TeacherCacheSpec, dir: string): TeacherCacheHeader {
  try {
    return validateHeader({ ...spec, magic: CACHE_MAGIC, version: versionFor(spec.logitDtype), idDtype: spec.V <= 65536 ? 'u16' : 'i32',
      recordBytes: recordLayout(spec).bytes, complete: false, windows: 0 }, `${dir}: teacher-cache spec`);
  } catch (e) { // a bad spec is the caller's configuration, not a bad file
    throw e instanceof QkdError ? new QkdError('E_CONFIG', e.message) : e;
  }
}

/** (t − max t) per position of lg (T,k), max into tmax (T): float16 then keeps ~11 bits near the top logits. */
function shiftedByMax(lg: Float32Array, tmax: Float32Array, k: number): Float32Array {
  const out = new Float32Array(lg.length);
  for (let p = 0; p < tmax.length; p++) {
    let m = -Infinity;
    for (let j = p * k; j < (p + 1) * k; j++) if (lg[j] > m) m = lg[j];
    tmax[p] = m;
    // a masked logit (say -1e9) would round to -inf: -65504 (the f16 limit) keeps it finite and still exp() = 0
    for (let j = p * k; j < (p + 1) * k; j++) out[j] = Math.max(lg[j] - m, -65504);
  }
  return out;
}

function writeAllAt(fd: number, bytes: Uint8Array, pos: number): void {
  for (let off = 0; off < bytes.length;) off += writeSync(fd, bytes, off, bytes.length - off, pos + off);
}

function readAllAt(fd: number, out: Uint8Array, pos: number, where: string): void {
  for (let got = 0; got < out.length;) {
    const n = readSync(fd, out, got, out.length - got, pos + got);
    if (n === 0) throw new QkdError('E_FORMAT', `${where}: unexpected end of file at byte ${pos + got} (truncated?)`);
    got += n;
  }
}

/** Number of leading whole records whose CRC checks (a torn or lost tail ends the prefix). */
function validPrefix(fd: number, h: TeacherCacheHeader, where: string): number {
  const R = h.recordBytes, whole = Math.floor(fstatSync(fd).size / R), L = recordLayout(h), buf = new Uint8Array(R);
  const dv = new DataView(buf.buffer);
  for (let i = 0; i < whole; i++) {
    readAllAt(fd, buf, i * R, where);
    if (dv.getUint32(L.crc, true) !== crc32(buf.subarray(0, L.crc))) return i;
  }
  return whole;
}


// ---- reader

/** B windows read from the cache: their starts, inputs/targets (B·T) and the teacher for those B·T rows. */
export interface CachedWindows {
  starts: number[];
  x: Int32Array;
  y: Int32Array;
  /** Top-k entries, or the full rows (B·T, V) when the cache has k = V. */
  teacher: TeacherDist;
}

/** Random access to a cache's windows; every record is checked (CRC, ranges, finite values) when read. */
export class TeacherCacheReader {
  private readonly buf: Uint8Array;
  private readonly seen: Int32Array;
  private stampNow = 0;

  private constructor(readonly dir: string, readonly header: TeacherCacheHeader, private readonly fd: number, readonly windows: number) {
    this.buf = new Uint8Array(header.recordBytes);
    this.seen = new Int32Array(header.V);
  }

  /** Opens a finalized cache (a partial one only with allowPartial: its whole records count). */
  static open(dir: string, opts: { allowPartial?: boolean } = {}): TeacherCacheReader {
    const header = readHeader(dir), path = join(dir, DATA_FILE), R = header.recordBytes;
    if (!header.complete && !opts.allowPartial) {
      throw new QkdError('E_FORMAT', `${join(dir, HEADER_FILE)}: field "complete" is false: the teacher-cache run did not finish (run it again to resume)`);
    }
    const fd = openFile(path, 'r'), size = fstatSync(fd).size;
    if (header.complete && size !== header.windows * R) {
      closeSync(fd);
      const why = size < header.windows * R ? 'truncated' : 'trailing bytes';
      throw new QkdError('E_FORMAT', `${path}: ${size} bytes, but the header's ${header.windows} windows of ${R} bytes need ${header.windows * R} (${why})`);
    }
    return new TeacherCacheReader(dir, header, fd, header.complete ? header.windows : Math.floor(size / R));
  }

  /** Whether `read` serves `tau`: any τ from a cache of all logits (the loss applies it), one of header.taus from a top-k cache (its tail mass is per τ). */
  servesTau(tau: number): boolean {
    return this.header.k === this.header.V || this.header.taus.includes(tau);
  }

  /** Windows `indices` (each in 0..windows-1) with the teacher at `tau` (see servesTau). */
  read(indices: readonly number[], tau: number): CachedWindows {
    const h = this.header, T = h.T, k = h.k, B = indices.length, a = h.taus.indexOf(tau);
    if (!this.servesTau(tau)) throw new QkdError('E_CONFIG', `${join(this.dir, HEADER_FILE)}: tau ${tau} is not one of the cached taus ${JSON.stringify(h.taus)}`);
    const teacher: TeacherDist = k === h.V ? { kind: 'full', logits: new Float32Array(B * T * k) } : {
      kind: 'topk', k, tau, ids: h.V <= 65536 ? new Uint16Array(B * T * k) : new Int32Array(B * T * k),
      logits: new Float32Array(B * T * k), lse: new Float32Array(B * T) };
    const out: CachedWindows = { starts: [], x: new Int32Array(B * T), y: new Int32Array(B * T), teacher };
    indices.forEach((i, b) => this.readOne(i, a, b, out));
    return out;
  }

  private readOne(i: number, a: number, b: number, out: CachedWindows): void {
    const h = this.header, T = h.T, k = h.k, L = recordLayout(h), where = join(this.dir, DATA_FILE);
    const bad = (what: string) => new QkdError('E_FORMAT', `${where}: window ${i}: ${what}`);
    if (!(Number.isInteger(i) && i >= 0 && i < this.windows)) throw new QkdError('E_INPUT', `${where}: window ${i} is not in 0..${this.windows - 1}`);
    readAllAt(this.fd, this.buf, i * h.recordBytes, where);
    const buf = this.buf.buffer;
    if (new DataView(buf).getUint32(L.crc, true) !== crc32(this.buf.subarray(0, L.crc))) throw bad('CRC mismatch (corrupt record)');
    const start = new Float64Array(buf, 0, 1)[0];
    if (!(Number.isInteger(start) && start >= 0 && start + T + 1 <= h.data.tokens)) throw bad(`field "start" ${start} is not in 0..${h.data.tokens - T - 1}`);
    const lse = new Float32Array(buf, L.lse, L.nLse);
    for (let j = 0; j < lse.length; j++) if (!Number.isFinite(lse[j])) throw bad(`field "lse" is not finite at tau ${h.taus[Math.floor(j / T)]}, position ${j % T}`);
    // decoded straight into the batch: f16 by table, plus the position's max, checked finite
    const logits = out.teacher.logits.subarray(b * T * k, (b + 1) * T * k);
    if (L.lb === 4) logits.set(new Float32Array(buf, L.logits, T * k));
    else if (L.lb === 1) {
      const p = decodeInt8(new Uint8Array(buf, L.logits, T * k), new Uint16Array(buf, L.range, T), k, logits);
      if (p >= 0) throw bad(`field "range" is not a finite number >= 0 at position ${p}`);
    } else decodeShifted(new Uint16Array(buf, L.logits, T * k), new Float32Array(buf, L.tmax, T), k, logits);
    for (let j = 0; j < logits.length; j++) if (!Number.isFinite(logits[j])) throw bad(`field "logits" is not finite at position ${Math.floor(j / k)}, entry ${j % k}`);
    const tok = L.ib === 2 ? new Uint16Array(buf, L.tokens, T + 1) : new Int32Array(buf, L.tokens, T + 1);
    for (let j = 0; j <= T; j++) if (!(tok[j] >= 0 && tok[j] < h.V)) throw bad(`field "tokens": id ${tok[j]} at ${j} is not < V = ${h.V}`);
    out.starts.push(start);
    out.x.set(tok.subarray(0, T), b * T); out.y.set(tok.subarray(1), b * T);
    if (out.teacher.kind === 'full') return; // a full cache stores no ids: its rows are in vocabulary order
    const ids = L.ib === 2 ? new Uint16Array(buf, L.ids, T * k) : new Int32Array(buf, L.ids, T * k);
    this.checkIds(ids, bad);
    out.teacher.lse.set(lse.subarray(a * T, (a + 1) * T), b * T);
    out.teacher.ids.set(ids, b * T * k);
  }

  /** Every id < V and distinct within its position. */
  private checkIds(ids: Uint16Array | Int32Array, bad: (what: string) => QkdError): void {
    const { V, k } = this.header, seen = this.seen;
    for (let p = 0; p * k < ids.length; p++) {
      if (++this.stampNow === 0x7fffffff) { seen.fill(0); this.stampNow = 1; }
      for (let j = p * k; j < (p + 1) * k; j++) {
        const id = ids[j];
        if (!(id >= 0 && id < V)) throw bad(`field "ids": id ${id} at position ${p} is not < V = ${V}`);
        if (seen[id] === this.stampNow) throw bad(`field "ids": id ${id} appears twice at position ${p}`);
        seen[id] = this.stampNow;
      }
    }
  }

  close(): void { closeSync(this.fd); }
}

/** out[p·k + j] = f16(half[p·k + j]) + tmax[p]: the writer's shiftedByMax undone. */
function decodeShifted(half: Uint16Array, tmax: Float32Array, k: number, out: Float32Array): void {
  const bits = f16ToF32Table(), t = new Float32Array(bits.buffer, bits.byteOffset, bits.length);
  for (let p = 0; p < tmax.length; p++) {
    const m = tmax[p];
    for (let j = p * k, end = j + k; j < end; j++) out[j] = t[half[j]] + m;
  }
}
