/**
 * First-fit allocator with coalescing over a region of the shared WebAssembly.Memory. Offsets and
 * sizes are bytes, every block is 64-byte aligned (a cache line; also v128 alignment). The memory
 * grows when no free block fits, up to its maximum. Blocks are few (hundreds: one per tensor), so
 * sorted arrays and linear scans are enough.
 */
import { QkdError } from '../../tensor/errors.js';

export const ALIGN = 64;
const PAGE = 65536;
/** Grow by at least this many pages at a time (16 MiB) so growth is rare. */
const MIN_GROW_PAGES = 256;

export const alignUp = (n: number, a = ALIGN): number => Math.ceil(n / a) * a;

export class Heap {
  /** Free blocks sorted by offset; never adjacent (coalesced). */
  private readonly freeOff: number[] = [];
  private readonly freeLen: number[] = [];
  private readonly used = new Map<number, number>();
  private end: number;

  /**
   * @param memory the shared memory; bytes [start, memory size) are managed
   * @param onGrow called after every memory.grow (views of the new buffer must be made afresh)
   */
  constructor(private readonly memory: WebAssembly.Memory, start: number, private readonly maxPages: number,
    private readonly onGrow: () => void) {
    const s = alignUp(start);
    this.end = memory.buffer.byteLength;
    if (this.end > s) { this.freeOff.push(s); this.freeLen.push(this.end - s); }
  }

  /** Bytes handed out and not yet freed. */
  get usedBytes(): number { let s = 0; for (const n of this.used.values()) s += n; return s; }
  /** Number of free blocks (tests: coalescing keeps this small). */
  get freeBlocks(): number { return this.freeOff.length; }
  get totalBytes(): number { return this.end; }

  /** A 64-byte aligned block of at least `bytes` bytes (contents unspecified). */
  alloc(bytes: number): number {
    const need = alignUp(Math.max(bytes, 1));
    for (;;) {
      for (let i = 0; i < this.freeOff.length; i++) {
        const len = this.freeLen[i];
        if (len < need) continue;
        const off = this.freeOff[i];
        if (len === need) { this.freeOff.splice(i, 1); this.freeLen.splice(i, 1); }
        else { this.freeOff[i] = off + need; this.freeLen[i] = len - need; }
        this.used.set(off, need);
        return off;
      }
      this.grow(need);
    }
  }

  /** Size in bytes of the block starting at off, or undefined when off is not a live block. */
  sizeOf(off: number): number | undefined { return this.used.get(off); }

  /** Returns the block starting at `off`. */
  free(off: number): void {
    const len = this.used.get(off);
    if (len === undefined) {
      throw new QkdError('E_INTERNAL', `wasm backend free: offset ${off} is not a live allocation (double free or a subarray)`);
    }
    this.used.delete(off);
    this.insertFree(off, len);
  }

  private insertFree(off: number, len: number): void {
    // binary search for the first free block after off
    let lo = 0, hi = this.freeOff.length;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (this.freeOff[mid] < off) lo = mid + 1; else hi = mid; }
    const prev = lo - 1, next = lo;
    const joinPrev = prev >= 0 && this.freeOff[prev] + this.freeLen[prev] === off;
    const joinNext = next < this.freeOff.length && off + len === this.freeOff[next];
    if (joinPrev && joinNext) {
      this.freeLen[prev] += len + this.freeLen[next];
      this.freeOff.splice(next, 1); this.freeLen.splice(next, 1);
    } else if (joinPrev) this.freeLen[prev] += len;
    else if (joinNext) { this.freeOff[next] = off; this.freeLen[next] += len; }
    else { this.freeOff.splice(lo, 0, off); this.freeLen.splice(lo, 0, len); }
  }

  private grow(need: number): void {
    // a free block touching the end is extended, so only the shortfall is requested
    const n = this.freeOff.length;
    const tail = n > 0 && this.freeOff[n - 1] + this.freeLen[n - 1] === this.end ? this.freeLen[n - 1] : 0;
    const curPages = this.end / PAGE;
    const want = Math.max(Math.ceil((need - tail) / PAGE), Math.min(MIN_GROW_PAGES, this.maxPages - curPages));
    if (curPages + want > this.maxPages) {
      throw new QkdError('E_CONFIG', `wasm backend: out of memory allocating ${need} bytes ` +
        `(${this.usedBytes} in use, maximum ${this.maxPages / 16} MiB; raise memoryMB)`);
    }
    this.memory.grow(want);
    const oldEnd = this.end;
    this.end = this.memory.buffer.byteLength;
    this.insertFree(oldEnd, this.end - oldEnd);
    this.onGrow();
  }
}
