import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';

import type { RowResult } from './runEvaluation.js';
import type { EvalSplit } from './testSplit.js';

const run = promisify(execFile);

interface WorldRow {
  image: string;
  probe: boolean | null;
  showable: boolean | null;
  style: number;
}

/**
 * The recipe world's own scores (training/stepframe_train/world/metrics.py): the text probe (does
 * the step's new ingredient show, counted against the autoencoder's reconstruction) and the style
 * error (table and vessel-rim colour against the reference). They need the world's ground truth,
 * so they run in Python over the frames the evaluation wrote, and apply only to the world's split.
 */
export async function addWorldScores(split: EvalSplit, rows: RowResult[], reconstructedDir: string, python: string, trainingDir: string): Promise<void> {
  for (const row of rows) {
    let stdout: string;
    try {
      ({ stdout } = await run(python, ['-m', 'stepframe_train.world.score', '--test-split', split.dir, '--generated', row.framesDir, '--reconstructed', reconstructedDir, '--rows'], {
        cwd: trainingDir,
        maxBuffer: 64 * 1024 * 1024,
      }));
    } catch (error) {
      const stderr = (error as { stderr?: string }).stderr ?? '';
      throw new Error(`the world's scorer failed for ${row.row} (${python} -m stepframe_train.world.score in ${trainingDir}): ${stderr.trim().split('\n').slice(-1)[0] ?? (error as Error).message}; pass --no-world-scores to skip them`);
    }
    const byImage = new Map((JSON.parse(stdout) as WorldRow[]).map((r) => [r.image, r]));
    for (const frame of row.frames) {
      const world = byImage.get(frame.image);
      if (!world) throw new Error(`the world's scorer returned no row for ${join(row.framesDir, frame.image)}`);
      frame.styleError = world.style;
      frame.textProbe = world.probe;
      frame.textProbeShowable = world.showable ? world.probe : null;
    }
  }
}
