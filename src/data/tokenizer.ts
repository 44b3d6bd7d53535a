/**
 * Hugging Face `tokenizer.json` behind a small interface, over @huggingface/tokenizers.
 * Browser-safe: imports no node module (file reading lives in tokenizer-node.ts).
 */
import { Tokenizer } from '@huggingface/tokenizers';
import { QkdError } from '../tensor/errors.js';

/** The parts of tokenizer.json qkd reads itself; the rest is passed through untouched. */
export interface TokenizerJson {
  model: { type?: string; vocab: Record<string, number> | unknown; [k: string]: unknown };
  added_tokens?: { id: number; content: string; special?: boolean; [k: string]: unknown }[];
  [k: string]: unknown;
}

/** tokenizer_config.json (only the fields qkd looks at are typed). */
export interface TokenizerConfig {
  eos_token?: string | { content: string } | null;
  clean_up_tokenization_spaces?: boolean;
  [k: string]: unknown;
}

export interface QkdTokenizer {
  /** Token ids of `text`; no special tokens are added. */
  encode(text: string): number[];
  /** Text of `ids`; special tokens are kept, spaces are not "cleaned up" unless the config asks. */
  decode(ids: readonly number[]): string;
  /** 1 + the largest id of the vocabulary and the added tokens. */
  readonly vocabSize: number;
  idToToken(id: number): string | undefined;
  tokenToId(token: string): number | undefined;
  /** Ids of added tokens marked special, ascending. */
  readonly specialIds: readonly number[];
  /** The config's eos_token, else `<|endoftext|>`, when in the vocabulary. */
  readonly eosId: number | undefined;
  readonly json: TokenizerJson;
  readonly config: TokenizerConfig | undefined;
}

export const ENDOFTEXT = '<|endoftext|>';

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/** Structural check of what the wrapper relies on; `source` names the file in errors. */
export function validateTokenizerJson(json: unknown, source: string): TokenizerJson {
  if (!isObject(json)) throw new QkdError('E_FORMAT', `${source}: tokenizer.json must be a JSON object`);
  const model = json.model;
  if (!isObject(model)) throw new QkdError('E_FORMAT', `${source}: field "model" is missing or not an object`);
  if (model.vocab === undefined || model.vocab === null) {
    throw new QkdError('E_FORMAT', `${source}: field "model.vocab" is missing`);
  }
  const added = json.added_tokens;
  if (added !== undefined && added !== null) {
    if (!Array.isArray(added)) throw new QkdError('E_FORMAT', `${source}: field "added_tokens" must be an array`);
    added.forEach((t, i) => {
      if (!isObject(t) || !Number.isInteger(t.id) || typeof t.content !== 'string') {
        throw new QkdError('E_FORMAT', `${source}: added_tokens[${i}] needs an integer "id" and a string "content"`);
      }
    });
  }
  return json as TokenizerJson;
}

/**
 * The one vocabulary rule of every command that runs a tokenizer with a model (eval, generate,
 * export, distill): every id the tokenizer can produce must be a row of the model's embedding.
 */
export function checkTokenizerFits(tok: Pick<QkdTokenizer, 'vocabSize'>, modelVocab: number, source: string): void {
  if (tok.vocabSize > modelVocab) {
    throw new QkdError('E_VOCAB', `${source}: vocabulary of ${tok.vocabSize} exceeds the model's ${modelVocab}`);
  }
}

function tokenContent(t: TokenizerConfig['eos_token']): string | undefined {
  if (typeof t === 'string') return t;
  if (isObject(t) && typeof t.content === 'string') return t.content;
  return undefined;
}

/** Builds a tokenizer from parsed tokenizer.json (+ optional tokenizer_config.json). */
export function tokenizerFromJson(json: unknown, config?: TokenizerConfig, source = 'tokenizer.json'): QkdTokenizer {
  const tj = validateTokenizerJson(json, source);
  let tok: Tokenizer;
  try {
    tok = new Tokenizer(tj, config ?? {});
  } catch (e) {
    throw new QkdError('E_FORMAT', `${source}: not a tokenizer @huggingface/tokenizers can load (${String(e)})`, { cause: e });
  }
  const vocab = tok.get_vocab(true);
  let maxId = -1;
  for (const id of vocab.values()) if (id > maxId) maxId = id;
  const addedTokens = [...tok.get_added_tokens_decoder().values()];
  for (const t of addedTokens) if (t.id > maxId) maxId = t.id;
  const vocabSize = maxId + 1;
  const specialIds = addedTokens.filter((t) => t.special).map((t) => t.id).sort((a, b) => a - b);
  // The library's lookups only see the model vocabulary; added tokens may live outside it.
  const addedById = new Map(addedTokens.map((t) => [t.id, t.content]));
  const addedByContent = new Map(addedTokens.map((t) => [t.content, t.id]));
  const tokenToId = (token: string): number | undefined => addedByContent.get(token) ?? tok.token_to_id(token);
  const eosName = tokenContent(config?.eos_token);
  const eosId = (eosName !== undefined ? tokenToId(eosName) : undefined) ?? tokenToId(ENDOFTEXT);
  // The JS library cleans up spaces by default, the Python one no longer does; a byte-level BPE must
  // round-trip, so only an explicit config value turns clean-up on.
  const cleanUp = config?.clean_up_tokenization_spaces === true;
  return {
    encode: (text) => tok.encode(text, { add_special_tokens: false }).ids,
    decode: (ids) => {
      if (ids.length === 0) return '';
      for (const id of ids) {
        if (!Number.isInteger(id) || id < 0 || id >= vocabSize) {
          throw new QkdError('E_VOCAB', `${source}: token id ${id} is outside the vocabulary [0, ${vocabSize})`);
        }
      }
      return tok.decode([...ids], { skip_special_tokens: false, clean_up_tokenization_spaces: cleanUp });
    },
    vocabSize,
    idToToken: (id) => addedById.get(id) ?? tok.id_to_token(id),
    tokenToId,
    specialIds,
    eosId,
    json: tj,
    config,
  };
}
