/**
 * Table 2's layout: one bundle per (image encoder, text encoder) pair, shown as a grid with image
 * encoders down and text encoders across. Each bundle names its pair in its manifest's
 * provenance.encoders, as training/experiments/encoder_grid.py writes it.
 */
import { readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';

import { METRICS, type MetricName, type RowSummary, summaryCell } from './report.js';

export interface EncoderPair {
  image: string;
  text: string;
}

/** The pair of every named bundle, from BUNDLE_DIR/stepframe.json; an error names a bundle without one. */
export async function readEncoderPairs(bundleDirs: readonly string[], bundles: readonly string[]): Promise<Map<string, EncoderPair>> {
  const pairs = new Map<string, EncoderPair>();
  for (const name of bundles) {
    const dir = bundleDirs.find((d) => basename(d) === name);
    const file = dir === undefined ? undefined : join(dir, 'stepframe.json');
    const raw = file === undefined ? undefined : (JSON.parse(await readFile(file, 'utf8')) as { provenance?: { encoders?: Partial<EncoderPair> } });
    const encoders = raw?.provenance?.encoders;
    if (typeof encoders?.image !== 'string' || typeof encoders.text !== 'string') {
      throw new Error(`--grid: bundle ${name} names no encoder pair (provenance.encoders {image, text} in ${file ?? `${name}/stepframe.json`}); ` +
        'the grid lays out bundles such as training/experiments/encoder_grid.py writes');
    }
    pairs.set(name, { image: encoders.image, text: encoders.text });
  }
  return pairs;
}

/** One metric of one setting's rows as a markdown grid: mean [95% interval] per pair, '–' where a pair is missing. */
export function encoderGridTable(rows: readonly RowSummary[], pairs: ReadonlyMap<string, EncoderPair>, metric: MetricName): string {
  const paired = rows.filter((r) => r.bundle !== null && pairs.has(r.bundle)).map((r) => ({ row: r, pair: pairs.get(r.bundle!)! }));
  const images = [...new Set(paired.map((p) => p.pair.image))];
  const texts = [...new Set(paired.map((p) => p.pair.text))];
  const { digits, label } = METRICS[metric];
  const cell = (image: string, text: string) => summaryCell(paired.find((p) => p.pair.image === image && p.pair.text === text)?.row.metrics[metric], digits);
  return [
    `| ${label}: image ↓ text → | ${texts.join(' | ')} |`,
    `| --- | ${texts.map(() => '---').join(' | ')} |`,
    ...images.map((image) => `| ${image} | ${texts.map((text) => cell(image, text)).join(' | ')} |`),
  ].join('\n');
}
