import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

import { BundleError } from './errors.js';
import { cleanText } from './textCleanup.js';

export const CLIP_MAX_LENGTH = 77;
const BOS = '<|startoftext|>';
const EOS = '<|endoftext|>';

// CLIP's pre-tokenisation pattern (openai/CLIP simple_tokenizer.py), case-insensitive.
const PRE_TOKEN = /<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}|[^\s\p{L}\p{N}]+/giu;

/** GPT-2/CLIP's reversible map from the 256 bytes to printable characters. */
function bytesToUnicode(): string[] {
  const printable: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) printable.push(b);
  for (let b = 0xa1; b <= 0xac; b++) printable.push(b);
  for (let b = 0xae; b <= 0xff; b++) printable.push(b);
  const table = new Array<string>(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    table[b] = printable.includes(b) ? String.fromCharCode(b) : String.fromCharCode(256 + extra++);
  }
  return table;
}

/** Special tokens and length from a Hugging Face tokenizer folder's JSON files; SD 1.x's when absent. */
interface SpecialTokens {
  padToken: string;
  maxLength: number;
}

/**
 * CLIP's byte-level BPE tokenizer, reading Hugging Face's `vocab.json` and `merges.txt`, and the pad
 * token and length from `special_tokens_map.json` / `tokenizer_config.json`: SD 1.x pads with
 * <|endoftext|>, SD 2.x with "!" (id 0), and the text encoder was trained on what its tokenizer padded with.
 */
export class ClipTokenizer {
  readonly bosId: number;
  readonly eosId: number;
  readonly padId: number;
  readonly maxLength: number;
  private readonly byteChars = bytesToUnicode();
  private readonly encoder = new TextEncoder();
  private readonly cache = new Map<string, number[]>();

  private constructor(
    private readonly vocab: ReadonlyMap<string, number>,
    private readonly ranks: ReadonlyMap<string, number>,
    special: SpecialTokens = { padToken: EOS, maxLength: CLIP_MAX_LENGTH },
  ) {
    this.bosId = this.idOf(BOS);
    this.eosId = this.idOf(EOS);
    this.padId = this.idOf(special.padToken);
    this.maxLength = special.maxLength;
  }

  static async load(dir: string): Promise<ClipTokenizer> {
    const vocabFile = join(dir, 'vocab.json');
    const mergesFile = join(dir, 'merges.txt');
    let vocabJson: Record<string, number>;
    let mergesText: string;
    try {
      [vocabJson, mergesText] = await Promise.all([
        readFile(vocabFile, 'utf8').then((t) => JSON.parse(t) as Record<string, number>),
        readFile(mergesFile, 'utf8'),
      ]);
    } catch (error) {
      throw new BundleError(`tokenizer in ${dir}: cannot read vocab.json and merges.txt (${(error as Error).message})`, { cause: error });
    }
    const ranks = new Map<string, number>();
    const lines = mergesText.split('\n');
    // The first line is "#version: ..."; the rest are "a b" pairs in rank order.
    for (let i = lines[0]?.startsWith('#') ? 1 : 0, rank = 0; i < lines.length; i++) {
      if (lines[i].trim()) ranks.set(lines[i].trimEnd(), rank++);
    }
    return new ClipTokenizer(new Map(Object.entries(vocabJson)), ranks, await readSpecialTokens(dir));
  }

  /** BOS, the BPE ids of the cleaned text, EOS; at most 77 ids (EOS kept); not padded. */
  encode(text: string): number[] {
    const ids: number[] = [];
    for (const match of cleanText(text).matchAll(PRE_TOKEN)) {
      const word = Array.from(this.encoder.encode(match[0]), (b) => this.byteChars[b]).join('');
      ids.push(...this.bpe(word));
      if (ids.length >= this.maxLength - 2) break;
    }
    return [this.bosId, ...ids.slice(0, this.maxLength - 2), this.eosId];
  }

  /** `encode`, then padded to `maxLength` (77) with the pad token: EOS for SD 1.x, "!" for SD 2.x. */
  encodePadded(text: string): number[] {
    const ids = this.encode(text);
    while (ids.length < this.maxLength) ids.push(this.padId);
    return ids;
  }

  private idOf(token: string): number {
    const id = this.vocab.get(token);
    if (id === undefined) throw new BundleError(`tokenizer vocab.json has no ${token} token`);
    return id;
  }

  private bpe(word: string): number[] {
    const cached = this.cache.get(word);
    if (cached) return cached;
    const chars = Array.from(word);
    let parts = [...chars.slice(0, -1), chars[chars.length - 1] + '</w>'];
    while (parts.length > 1) {
      let best = -1;
      let bestRank = Infinity;
      for (let i = 0; i < parts.length - 1; i++) {
        const rank = this.ranks.get(`${parts[i]} ${parts[i + 1]}`);
        if (rank !== undefined && rank < bestRank) {
          bestRank = rank;
          best = i;
        }
      }
      if (best < 0) break;
      const [first, second] = [parts[best], parts[best + 1]];
      const merged: string[] = [];
      for (let i = 0; i < parts.length; i++) {
        if (i < parts.length - 1 && parts[i] === first && parts[i + 1] === second) {
          merged.push(first + second);
          i++;
        } else {
          merged.push(parts[i]);
        }
      }
      parts = merged;
    }
    const ids = parts.map((p) => {
      const id = this.vocab.get(p);
      if (id === undefined) throw new BundleError(`tokenizer vocab.json lacks the BPE piece ${JSON.stringify(p)}`);
      return id;
    });
    if (this.cache.size < 50_000) this.cache.set(word, ids);
    return ids;
  }
}

/** The pad token and length a tokenizer folder declares; a missing file or key keeps SD 1.x's. */
async function readSpecialTokens(dir: string): Promise<SpecialTokens> {
  const read = async (name: string): Promise<Record<string, unknown>> => {
    let text: string;
    try {
      text = await readFile(join(dir, name), 'utf8');
    } catch {
      return {};
    }
    try {
      return JSON.parse(text) as Record<string, unknown>;
    } catch (error) {
      throw new BundleError(`tokenizer in ${dir}: ${name} is not valid JSON (${(error as Error).message})`, { cause: error });
    }
  };
  const config = await read('tokenizer_config.json');
  const map = await read('special_tokens_map.json');
  const content = (v: unknown) => (typeof v === 'string' ? v : typeof v === 'object' && v !== null && typeof (v as { content?: unknown }).content === 'string' ? (v as { content: string }).content : undefined);
  const padToken = content(map.pad_token) ?? content(config.pad_token) ?? EOS;
  // Hugging Face writes a huge sentinel when no length was set; CLIP's text encoders take 77.
  const declared = config.model_max_length;
  const maxLength = typeof declared === 'number' && Number.isInteger(declared) && declared >= 2 && declared <= 1024 ? declared : CLIP_MAX_LENGTH;
  return { padToken, maxLength };
}
