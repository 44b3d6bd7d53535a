import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { loadHfModel } from '../../src/io/hf.js';
import { QkdError } from '../../src/tensor/errors.js';
import { rng } from '../../src/runtime/generate.js';

const FIX = resolve(process.cwd(), '..', 'shared', 'fixtures', 'tiny-llama');
if (!existsSync(join(FIX, 'model.safetensors'))) throw new Error(`fixture not found: ${FIX}`);

/** One corrupted copy: byte flips concentrated in the header, truncations, or length-prefix edits. */
function mutate(orig: Uint8Array, headerEnd: number, r: () => number): Uint8Array {
  const kind = Math.floor(r() * 4);
  if (kind === 0) return orig.slice(0, Math.floor(r() * orig.length)); // truncation
  const b = orig.slice();
  if (kind === 1) { // length prefix: random byte of the u64
    b[Math.floor(r() * 8)] = Math.floor(r() * 256);
    return b;
  }
  const flips = 1 + Math.floor(r() * 4);
  for (let i = 0; i < flips; i++) {
    const pos = kind === 2 ? 8 + Math.floor(r() * (headerEnd - 8)) : Math.floor(r() * b.length);
    b[pos] = r() < 0.5 ? b[pos] ^ (1 << Math.floor(r() * 8)) : Math.floor(r() * 256);
  }
  return b;
}

test('300 corrupted copies of tiny-llama: each loads or throws QkdError, quickly', () => {
  const orig = new Uint8Array(readFileSync(join(FIX, 'model.safetensors')));
  const headerEnd = 8 + Number(Buffer.from(orig).readBigUInt64LE(0));
  const dir = mkdtempSync(join(tmpdir(), 'qkd-fuzz-'));
  try {
    copyFileSync(join(FIX, 'config.json'), join(dir, 'config.json'));
    const r = rng(12345);
    const counts = { loaded: 0, rejected: 0 };
    const t0 = Date.now();
    for (let i = 0; i < 300; i++) {
      const bytes = mutate(orig, headerEnd, r);
      writeFileSync(join(dir, 'model.safetensors'), bytes);
      const start = Date.now();
      try {
        loadHfModel(dir);
        counts.loaded++;
      } catch (e) {
        if (!(e instanceof QkdError)) assert.fail(`case ${i}: ${String(e)} is not a QkdError`);
        assert.ok(e.message.length > 0);
        counts.rejected++;
      }
      assert.ok(Date.now() - start < 2000, `case ${i} took ${Date.now() - start} ms`);
    }
    // Both outcomes must occur, or the fuzzer is not exercising anything.
    assert.ok(counts.loaded > 10 && counts.rejected > 100, JSON.stringify(counts));
    console.log(`fuzz: ${JSON.stringify(counts)} in ${Date.now() - t0} ms`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
