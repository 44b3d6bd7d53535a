/** Node-only loading of a Hugging Face tokenizer (tokenizer.json + optional tokenizer_config.json). */
import { existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { MAX_BYTES, readRegularJson } from '../io/read-file.js';
import { QkdError } from '../tensor/errors.js';
import { tokenizerFromJson, type QkdTokenizer, type TokenizerConfig } from './tokenizer.js';

function readJson(path: string, what: string): unknown {
  return readRegularJson(path, what, MAX_BYTES.tokenizer);
}

/** `pathOrDir` is a tokenizer.json file or a directory holding one. */
export function resolveTokenizerPath(pathOrDir: string): string {
  if (!existsSync(pathOrDir)) throw new QkdError('E_MISSING', `${pathOrDir}: tokenizer path does not exist`);
  const file = statSync(pathOrDir).isDirectory() ? join(pathOrDir, 'tokenizer.json') : pathOrDir;
  if (!existsSync(file)) throw new QkdError('E_MISSING', `${file}: tokenizer.json not found`);
  return file;
}

/** Loads tokenizer.json, plus tokenizer_config.json when it sits beside it. */
export function loadTokenizer(pathOrDir: string): QkdTokenizer {
  const file = resolveTokenizerPath(pathOrDir);
  const json = readJson(file, 'tokenizer.json');
  const cfgPath = join(dirname(file), 'tokenizer_config.json');
  let config: TokenizerConfig | undefined;
  if (existsSync(cfgPath)) {
    const c = readJson(cfgPath, 'tokenizer_config.json');
    if (typeof c !== 'object' || c === null || Array.isArray(c)) {
      throw new QkdError('E_FORMAT', `${cfgPath}: tokenizer_config.json must be a JSON object`);
    }
    config = c as TokenizerConfig;
  }
  return tokenizerFromJson(json, config, file);
}
