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

/** CLIP's byte-level BPE tokenizer, reading Hugging Face's `vocab.json` and `merges.txt`. */
export class ClipTokenizer {
  readonly bosId: number;
  readonly eosId: number;
  private readonly byteChars = bytesToUnicode();
  private readonly encoder = new TextEncoder();
  private readonly cache = new Map<string, number[]>();

  private constructor(
    private readonly vocab: ReadonlyMap<string, number>,
    private readonly ranks: ReadonlyMap<string, number>,
  ) {
    this.bosId = this.idOf(BOS);
    this.eosId = this.idOf(EOS);
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
    return new ClipTokenizer(new Map(Object.entries(vocabJson)), ranks);
  }

  /** BOS, the BPE ids of the cleaned text, EOS; at most 77 ids (EOS kept); not padded. */
  encode(text: string): number[] {
    const ids: number[] = [];
    for (const match of cleanText(text).matchAll(PRE_TOKEN)) {
      const word = Array.from(this.encoder.encode(match[0]), (b) => this.byteChars[b]).join('');
      ids.push(...this.bpe(word));
      if (ids.length >= CLIP_MAX_LENGTH - 2) break;
    }
    return [this.bosId, ...ids.slice(0, CLIP_MAX_LENGTH - 2), this.eosId];
  }

  /** `encode`, then padded with EOS to 77 ids as SD 1.x's tokenizer does. */
  encodePadded(text: string): number[] {
    const ids = this.encode(text);
    while (ids.length < CLIP_MAX_LENGTH) ids.push(this.eosId);
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
