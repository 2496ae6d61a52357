import { type Summary, summarise } from './bootstrap.js';
import type { FrameScores, RowResult } from './runEvaluation.js';

/** The metrics of a row, each a per-frame value (booleans count as 0 or 1; null and absent values are left out). */
export const METRICS = {
  clipScore: { label: 'CLIP comparison ↓', digits: 3, read: (f: FrameScores) => f.clipScore },
  psnr: { label: 'PSNR (dB) ↑', digits: 2, read: (f: FrameScores) => f.psnr },
  ssim: { label: 'SSIM ↑', digits: 3, read: (f: FrameScores) => f.ssim },
  clipI: { label: 'CLIP-I ↑', digits: 3, read: (f: FrameScores) => f.clipI },
  styleError: { label: 'style error ↓', digits: 1, read: (f: FrameScores) => f.styleError },
  textProbe: { label: 'text probe ↑', digits: 3, read: (f: FrameScores) => bool(f.textProbe) },
} as const;

export type MetricName = keyof typeof METRICS;

function bool(value: boolean | null | undefined): number | undefined {
  return value === null || value === undefined ? undefined : value ? 1 : 0;
}

export interface RowSummary {
  row: string;
  bundle: string | null;
  setting: string | null;
  sampling: Record<string, unknown> | null;
  imagesPerSecond: number | null;
  metrics: Partial<Record<MetricName, Summary>>;
  /** Per generated-step position (1, 2, ...): the mean of each metric and the frames behind it. */
  byPosition: Record<number, Partial<Record<MetricName, { mean: number; frames: number }>>>;
}

/** Means, spreads and recipe-bootstrapped 95% intervals of every metric, overall and by step position. */
export function summariseRow(row: RowResult, resamples: number, seed: number): RowSummary {
  const recipes = [...new Set(row.frames.map((f) => f.recipe))];
  const metrics: RowSummary['metrics'] = {};
  const byPosition: RowSummary['byPosition'] = {};
  for (const [name, metric] of Object.entries(METRICS) as [MetricName, (typeof METRICS)[MetricName]][]) {
    const values = recipes.map((r) => row.frames.filter((f) => f.recipe === r).map(metric.read).filter((v): v is number => v !== undefined));
    const summary = summarise(values, resamples, seed);
    if (summary) metrics[name] = summary;
    for (const frame of row.frames) {
      const value = metric.read(frame);
      if (value === undefined) continue;
      const at = (byPosition[frame.position] ??= {});
      const cell = (at[name] ??= { mean: 0, frames: 0 });
      cell.mean += (value - cell.mean) / ++cell.frames;
    }
  }
  return { row: row.row, bundle: row.bundle, setting: row.setting, sampling: row.sampling, imagesPerSecond: row.imagesPerSecond, metrics, byPosition };
}

/** A summary as a table cell: mean [95% interval over recipes], or '–' where there is none. */
export function summaryCell(summary: Summary | undefined, digits: number): string {
  if (!summary) return '–';
  return `${summary.mean.toFixed(digits)} [${summary.ci95[0].toFixed(digits)}, ${summary.ci95[1].toFixed(digits)}]`;
}

/** One markdown table: a row per summary, each metric as mean [95% interval over recipes], then images/s. */
export function markdownTable(rows: readonly RowSummary[], metrics: readonly MetricName[] = Object.keys(METRICS) as MetricName[]): string {
  const present = metrics.filter((m) => rows.some((r) => r.metrics[m]));
  const header = `| row | ${present.map((m) => METRICS[m].label).join(' | ')} | images/s |`;
  const rule = `| --- | ${present.map(() => '---').join(' | ')} | --- |`;
  const lines = rows.map((r) => `| ${r.row} | ${present.map((m) => summaryCell(r.metrics[m], METRICS[m].digits)).join(' | ')} | ${r.imagesPerSecond === null ? '–' : r.imagesPerSecond.toFixed(2)} |`);
  return [header, rule, ...lines].join('\n');
}

/** Each metric by step position for one row: does consistency decay along a sequence? */
export function positionTable(rows: readonly RowSummary[], metric: MetricName): string {
  const positions = [...new Set(rows.flatMap((r) => Object.keys(r.byPosition).map(Number)))].sort((a, b) => a - b);
  const header = `| row (${METRICS[metric].label}) | ${positions.map((p) => `step ${p + 1}`).join(' | ')} |`;
  const rule = `| --- | ${positions.map(() => '---').join(' | ')} |`;
  const lines = rows.map((r) => `| ${r.row} | ${positions.map((p) => {
    const c = r.byPosition[p]?.[metric];
    return c ? `${c.mean.toFixed(METRICS[metric].digits)} (${c.frames})` : '–';
  }).join(' | ')} |`);
  return [header, rule, ...lines].join('\n');
}
