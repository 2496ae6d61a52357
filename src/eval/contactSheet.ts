import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

import sharp, { type OverlayOptions } from 'sharp';

import type { RowResult } from './runEvaluation.js';
import type { EvalSplit } from './testSplit.js';

const TILE = 96;
const LABEL = 210;
const CAPTION = 44;
const escapeXml = (s: string) => s.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!);

function text(lines: string[], width: number, height: number, size = 12): Buffer {
  const body = lines.map((l, k) => `<text x="2" y="${size + 2 + k * (size + 3)}" font-family="DejaVu Sans, sans-serif" font-size="${size}" fill="#222">${escapeXml(l)}</text>`).join('');
  return Buffer.from(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">${body}</svg>`);
}

function wrap(caption: string, chars: number): string[] {
  const lines: string[] = [];
  for (const word of caption.split(/\s+/)) {
    const last = lines.at(-1);
    if (last !== undefined && (last + ' ' + word).length <= chars) lines[lines.length - 1] = `${last} ${word}`;
    else lines.push(word);
  }
  return lines.slice(0, 3);
}

/**
 * The same recipes under every row: per recipe, the reference frames with their step texts, then
 * one line per row (its generated frames after the given first frame).
 */
export async function contactSheet(split: EvalSplit, rows: readonly RowResult[], recipes: number): Promise<Buffer> {
  const chosen = split.recipes.slice(0, recipes);
  const columns = Math.max(...chosen.map((r) => r.steps.length));
  const blockHeight = CAPTION + TILE + rows.length * (TILE + 4) + 16;
  const width = LABEL + columns * (TILE + 4);
  const layers: OverlayOptions[] = [];
  const tile = async (file: string) => sharp(await readFile(file)).resize(TILE, TILE, { kernel: 'nearest' }).png().toBuffer();
  for (const [b, recipe] of chosen.entries()) {
    const top = b * blockHeight;
    layers.push({ input: text([`recipe ${recipe.id}: reference`], LABEL, TILE), left: 0, top: top + CAPTION + TILE / 2 - 8 });
    for (const [i, step] of recipe.steps.entries()) {
      const left = LABEL + i * (TILE + 4);
      layers.push({ input: text(wrap(`${i + 1}. ${step.text}`, 15), TILE, CAPTION, 10), left, top });
      layers.push({ input: await tile(join(split.dir, step.image)), left, top: top + CAPTION });
    }
    for (const [r, row] of rows.entries()) {
      const y = top + CAPTION + TILE + 4 + r * (TILE + 4);
      layers.push({ input: text(wrap(row.row, 30), LABEL, TILE), left: 0, top: y + TILE / 2 - 12 });
      for (const [i, step] of recipe.steps.entries()) {
        if (i === 0) continue; // the first frame is the given reference
        layers.push({ input: await tile(join(row.framesDir, step.image)), left: LABEL + i * (TILE + 4), top: y });
      }
    }
  }
  return sharp({ create: { width, height: chosen.length * blockHeight, channels: 3, background: '#ffffff' } }).composite(layers).png({ palette: true, compressionLevel: 9 }).toBuffer();
}
