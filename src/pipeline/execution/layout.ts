import { readdirSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';

import type { ExecutionSettings } from './executionSettings.js';

/**
 * A UNet at least this large (weights included) is "real size". Measured on 2 cores: the
 * miniature's 2 MB UNet runs best as one one-thread executor per core (20 ms calls of small
 * kernels; the roofline in docs/performance.md), while SD 1.5's 3.4 GB UNet reaches a lone
 * request's first image 1.5× sooner as one executor using every core (seconds of large GEMMs that
 * one session spreads over the cores). Memory no longer decides it: external-data weights are held
 * once for all executors (--shared-weights). 256 MiB sits far from both sizes.
 */
export const LARGE_UNET_BYTES = 256 * 2 ** 20;

/** The bytes of the largest `unet/` folder among the bundles (model.onnx with its external data). */
export function largestUnetBytes(bundleDirs: readonly string[]): number {
  let largest = 0;
  for (const dir of bundleDirs) {
    const unet = join(dir, 'unet');
    let bytes = 0;
    try {
      for (const file of readdirSync(unet)) bytes += statSync(join(unet, file)).size;
    } catch {
      continue; // no unet/ folder of its own: its UNet is another bundle's, sized there
    }
    largest = Math.max(largest, bytes);
  }
  return largest;
}

/**
 * The executor layout for models this large, where the flags leave it open (`--executors 0`):
 * large UNets get one executor whose sessions use every core; otherwise the settings stand (one
 * one-thread executor per core on CPU, one per device on CUDA). `--executors N` always wins.
 */
export function layoutFor(settings: ExecutionSettings, unetBytes: number, cores = availableParallelism()): { settings: ExecutionSettings; rule: string } {
  if (settings.executors !== 0 || settings.mode !== 'workers') return { settings, rule: 'as configured (--executors or --execution-mode)' };
  if (unetBytes < LARGE_UNET_BYTES) return { settings, rule: `UNet ${mib(unetBytes)} MiB < ${mib(LARGE_UNET_BYTES)} MiB: one executor per core (one per device on CUDA)` };
  return {
    settings: { ...settings, largeModels: true, intraOpNumThreads: cores },
    rule: `UNet ${mib(unetBytes)} MiB >= ${mib(LARGE_UNET_BYTES)} MiB: one executor with ${cores} intra-op threads on CPU (one per device on CUDA)`,
  };
}

function mib(bytes: number): number {
  return Math.round(bytes / 2 ** 20);
}
