/**
 * Hostile or broken inputs fail fast, with bounded memory:
 * - a FIFO as config.json, tokenizer.json, model.safetensors or --text, and /dev/zero as a tokenizer or
 *   text, fail at once naming the file (they used to hang or grow memory without bound);
 * - hostile config values (head_dim 65536, max_position_embeddings 2^30, RoPE tables far beyond the
 *   weights) in a float model and in a qkd-int8 export (checksum recomputed as an attacker would)
 *   fail with the file and field named, no stack trace, in a child whose peak memory stays small;
 * - text is tokenized in bounded pieces: a 1 MB line without spaces stays far below the ~0.5 GB one
 *   encode() call took, and on ordinary text the pieces give exactly the ids of the whole.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { textPieces } from '../../src/data/chunks.js';
import { loadTokenizer } from '../../src/data/tokenizer-node.js';
import { exportStudent } from '../../src/io/export.js';
import { fixture } from '../helpers.js';
import { rechecksum, tinyModel } from './models.js';
import { MiB, qkd, refused, tmp } from './helpers.js';

const work = tmp('readers');
const good = tinyModel(join(work, 'good'));
const text = join(work, 'text.txt');
writeFileSync(text, 'The jury said that the city was well run.\n'.repeat(50));
const T1 = ['--threads', '1'];

function fifo(path: string): void {
  rmSync(path, { force: true });
  const r = spawnSync('mkfifo', [path]);
  assert.equal(r.status, 0, `mkfifo ${path}: ${r.stderr}`);
}

function withFifo(name: string, file: string): string {
  const dir = join(work, name);
  cpSync(good, dir, { recursive: true });
  fifo(join(dir, file));
  return dir;
}

test('a FIFO as config.json, tokenizer.json, model.safetensors or --text fails at once', () => {
  const cases: [string[], RegExp][] = [
    [['generate', '--model', withFifo('fifo-config', 'config.json'), '--prompt', 'x'], /config\.json: config\.json is a FIFO \(named pipe\), not a regular file/],
    [['generate', '--model', withFifo('fifo-tok', 'tokenizer.json'), '--prompt', 'x'], /tokenizer\.json: tokenizer\.json is a FIFO/],
    [['generate', '--model', withFifo('fifo-st', 'model.safetensors'), '--prompt', 'x'], /model\.safetensors: safetensors file is a FIFO/],
    [['eval', '--model', good, '--text', join(withFifo('fifo-text', 'x'), 'x')], /fifo-text\/x: text file is a FIFO/],
  ];
  for (const [args, pattern] of cases) {
    const r = qkd([...args, ...T1], { timeoutS: 20 });
    refused(r, 2, pattern);
    assert.ok(r.ms < 15_000, `${args.join(' ')} took ${r.ms} ms`);
  }
});

test('/dev/zero as a tokenizer or a text fails at once, memory flat', () => {
  for (const args of [['eval', '--model', good, '--text', text, '--tokenizer', '/dev/zero'], ['eval', '--model', good, '--text', '/dev/zero'],
    ['tokenizer', '--text', '/dev/zero', '--vocab-size', '300', '--out', join(work, 'tok-zero')]]) {
    const r = qkd(args, { timeoutS: 20 });
    refused(r, 2, /\/dev\/zero: (tokenizer\.json|text file) is a character device, not a regular file/);
    assert.ok(r.maxRss < 200 * MiB, `peak memory ${r.maxRss / MiB} MiB`);
  }
});

test('hostile config values in a float model and an export: clear error naming file and field, small peak memory', () => {
  const float = (name: string, edit: Record<string, number>) => {
    const dir = join(work, name);
    cpSync(good, dir, { recursive: true });
    const c = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...c, ...edit }));
    return dir;
  };
  const ex = exportStudent(good, join(work, 'export')).out;
  const hostileExport = (name: string, edit: Record<string, number>, stored?: number) => {
    const dir = join(work, name);
    cpSync(ex, dir, { recursive: true });
    const c = { ...JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')), ...edit };
    if (stored !== undefined) c.quantization.matrices['layers.0.up.weight'].stored = stored;
    writeFileSync(join(dir, 'config.json'), JSON.stringify(c));
    writeFileSync(join(dir, 'model.safetensors'), rechecksum(new Uint8Array(readFileSync(join(dir, 'model.safetensors'))), c));
    return dir;
  };
  const cases: [string, RegExp][] = [
    [float('f-headdim', { head_dim: 65536 }), /config\.json: field "head_dim" = 65536 exceeds qkd's limit of 4096/],
    [float('f-maxpos', { max_position_embeddings: 2 ** 30 }), /config\.json: field "max_position_embeddings" = 1073741824 exceeds/],
    [float('f-rope', { max_position_embeddings: 2 ** 22 }), /fields "max_position_embeddings" 4194304 x "head_dim" 16 need 256\.0 MiB of RoPE tables, over the memory budget of 64\.0 MiB/],
    [float('f-vocab', { vocab_size: 2 ** 22 }), /model\.safetensors: tensor "model\.embed_tokens\.weight" has shape \[2048, 32\], config expects \[4194304, 32\]/],
    [float('f-neg', { num_hidden_layers: -3 }), /field "num_hidden_layers" must be a positive integer, got -3/],
    [float('f-frac', { intermediate_size: 64.5 }), /field "intermediate_size" must be a positive integer, got 64\.5/],
    [hostileExport('x-maxpos', { max_position_embeddings: 2 ** 30 }), /config\.json: field "max_position_embeddings" = 1073741824 exceeds/],
    [hostileExport('x-rope', { max_position_embeddings: 2 ** 22 }), /config\.json: fields "max_position_embeddings" 4194304 x "head_dim" 16 need 256\.0 MiB of RoPE tables/],
    [hostileExport('x-ffn', { intermediate_size: 2 ** 18 }), /config\.json: field "quantization\.matrices\.layers\.0\.gate\.weight": shape 64x32, the architecture has 262144x32/],
    [hostileExport('x-stored', {}, 2 ** 40), /config\.json: describes \d+ bytes of weights \(the largest: quantization\.matrices\.layers\.0\.up\.weight\.stored, 1099511627776 bytes\) but model\.safetensors has \d+/],
  ];
  for (const [dir, pattern] of cases) {
    const r = qkd(['generate', '--model', dir, '--prompt', 'x', ...T1], { timeoutS: 20 });
    refused(r, r.status === 3 ? 3 : 2, pattern);
    assert.ok(r.maxRss < 200 * MiB, `${dir}: peak memory ${(r.maxRss / MiB).toFixed(0)} MiB`);
  }
});

test('a 1 MB line without spaces is tokenized in bounded pieces: peak memory ~100 MB, not ~0.5 GB', () => {
  const long = join(work, 'long.txt');
  writeFileSync(long, 'ab'.repeat(512 * 1024));
  const script = `const { loadTokenizer } = await import(${JSON.stringify(pathToFileURL(resolve('dist/src/data/tokenizer-node.js')).href)});
    const { encodeTextFile } = await import(${JSON.stringify(pathToFileURL(resolve('dist/src/data/text.js')).href)});
    const ids = encodeTextFile(loadTokenizer(${JSON.stringify(fixture('tokenizer'))}), ${JSON.stringify(long)});
    console.log(ids.length, process.resourceUsage().maxRSS * 1024);`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  const [tokens, rss] = r.stdout.trim().split(' ').map(Number);
  assert.ok(tokens > 400_000, `${tokens} tokens`);
  assert.ok(rss < 160 * MiB, `peak memory ${(rss / MiB).toFixed(0)} MiB for ${tokens} tokens`);
});

test('on ordinary text the pieces give exactly the ids of the whole text', () => {
  const tok = loadTokenizer(fixture('tokenizer'));
  const s = readFileSync(fixture('brown-text', 'brown-valid.txt'), 'utf8').slice(0, 120_000);
  const pieces = [...textPieces(s, 2048)];
  assert.ok(pieces.length > 50);
  assert.equal(pieces.join(''), s);
  assert.deepEqual(pieces.flatMap((p) => tok.encode(p)), tok.encode(s));
});
