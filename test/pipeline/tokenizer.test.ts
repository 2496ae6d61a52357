import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';

import { ClipTokenizer } from '../../src/pipeline/tokenizer.js';
import { REPO_ROOT, SHARED_DIR } from '../helpers/paths.js';

const SHARED_TOKENIZER = join(SHARED_DIR, 'clip-tokenizer');
const BUNDLED_TOKENIZER = join(REPO_ROOT, 'models', 'shared', 'tokenizer');

/** The README beside the shared vocab lists openai/CLIP ids as `| "text" | ids |` rows. */
function sharedExamples(): { text: string; ids: number[] }[] {
  const readme = readFileSync(join(SHARED_TOKENIZER, 'README.md'), 'utf8');
  return [...readme.matchAll(/^\| `(".*")` \| `([\d ]+)` \|$/gm)].map((m) => ({
    text: JSON.parse(m[1]) as string,
    ids: m[2].split(' ').map(Number),
  }));
}

describe('ClipTokenizer', () => {
  const sharedAbsent = existsSync(SHARED_TOKENIZER) ? false : 'skipped: ../shared/clip-tokenizer is not present (it exists in CI, not in a clone)';

  test('matches openai/CLIP on the examples shipped with the shared vocab', { skip: sharedAbsent }, async () => {
    const tokenizer = await ClipTokenizer.load(SHARED_TOKENIZER);
    const examples = sharedExamples();
    assert.ok(examples.length >= 5, `found only ${examples.length} examples in the shared README`);
    for (const { text, ids } of examples) assert.deepEqual(tokenizer.encode(text), ids, text);
  });

  test('the bundled copy of the vocab is byte-identical to the shared one', { skip: sharedAbsent }, () => {
    for (const file of ['vocab.json', 'merges.txt']) {
      assert.ok(readFileSync(join(SHARED_TOKENIZER, file)).equals(readFileSync(join(BUNDLED_TOKENIZER, file))), file);
    }
  });

  test('cleans text the way CLIP does before BPE', async () => {
    const tokenizer = await ClipTokenizer.load(BUNDLED_TOKENIZER);
    const plain = tokenizer.encode("don't add the cafe\u0301 fish & chips");
    // curly apostrophe, HTML entity, full-width letters, composed accent, stray whitespace, upper case
    assert.deepEqual(tokenizer.encode('  Don\u2019t   ａｄｄ the CAF\u00c9 fish &amp; chips '), plain);
    assert.deepEqual(tokenizer.encode('the \ufb01sh'), tokenizer.encode('the fish'));
    assert.deepEqual(tokenizer.encode('&#x31;/2 cup'), tokenizer.encode('1/2 cup'));
  });

  test('truncates to 77 ids and keeps EOS; padding uses EOS', async () => {
    const tokenizer = await ClipTokenizer.load(BUNDLED_TOKENIZER);
    const ids = tokenizer.encode('stir the soup '.repeat(60));
    assert.equal(ids.length, 77);
    assert.equal(ids[0], 49406);
    assert.equal(ids[76], 49407);
    const padded = tokenizer.encodePadded('chop the onions');
    assert.equal(padded.length, 77);
    assert.deepEqual(padded.slice(0, 5), [49406, 16663, 518, 15255, 49407]);
    assert.ok(padded.slice(5).every((id) => id === 49407));
  });

  test('a folder without vocab.json fails with a message naming it', async () => {
    await assert.rejects(ClipTokenizer.load(join(REPO_ROOT, 'docs')), /tokenizer in .*docs: cannot read vocab.json and merges.txt/);
  });

  test("pads with the tokenizer folder's pad token and length: SD 2.x's \"!\" (id 0), SD 1.x's EOS by default", async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'stepframe-tokenizer-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    for (const name of ['vocab.json', 'merges.txt']) cpSync(join(BUNDLED_TOKENIZER, name), join(dir, name));
    const sd1 = await ClipTokenizer.load(dir);
    assert.equal(sd1.padId, sd1.eosId);
    writeFileSync(join(dir, 'special_tokens_map.json'), JSON.stringify({ pad_token: { content: '!', lstrip: false } }));
    writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({ model_max_length: 77, pad_token: '<|endoftext|>' }));
    const sd2 = await ClipTokenizer.load(dir);
    assert.equal(sd2.padId, 0);
    const ids = sd2.encodePadded('stir');
    assert.equal(ids.length, 77);
    assert.deepEqual(ids.slice(0, 3), sd1.encode('stir'));
    assert.ok(ids.slice(3).every((id) => id === 0));
    // Hugging Face's "no limit" sentinel keeps CLIP's 77.
    writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({ model_max_length: 1e30 }));
    assert.equal((await ClipTokenizer.load(dir)).maxLength, 77);
  });
});
