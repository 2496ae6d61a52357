import type { WireFeed, WireOutputs } from '../execution/protocol.js';

/** One model input, batch-first; int64 inputs are token ids and timesteps. */
export type Feed = WireFeed;

export type Feeds = Record<string, Feed>;

/** Model outputs the engine reads, always float32 (executors widen float16). */
export type Outputs = WireOutputs;

/**
 * Stacks each input of several requests along the batch axis into fresh buffers, which are then
 * transferred to the executor: the one copy per input a call needs, and the reason callers may keep
 * reusing their own buffers (the conditioning, for every denoising step). `scalarInputs` are not
 * stacked: requests in one batch agree on them (the batch queue groups by them), so the first is used.
 */
export function concatFeeds(parts: readonly Feeds[], scalarInputs: ReadonlySet<string>): Record<string, WireFeed> {
  const feeds: Record<string, WireFeed> = {};
  for (const name of Object.keys(parts[0])) {
    const first = parts[0][name];
    const stacked = scalarInputs.has(name) ? [first] : parts.map((p) => p[name]);
    const length = stacked.reduce((sum, f) => sum + f.data.length, 0);
    for (const feed of stacked) if (feed.type !== first.type) throw new Error(`input ${name}: cannot batch ${feed.type} with ${first.type}`);
    const dims = scalarInputs.has(name) || first.dims.length === 0 ? first.dims : [stacked.reduce((sum, f) => sum + f.dims[0], 0), ...first.dims.slice(1)];
    if (first.type === 'float32') {
      const data = new Float32Array(length);
      let offset = 0;
      for (const f of stacked) (data.set(f.data as Float32Array, offset), (offset += f.data.length));
      feeds[name] = { type: 'float32', data, dims };
    } else {
      const data = new BigInt64Array(length);
      let offset = 0;
      for (const f of stacked) (data.set(f.data as BigInt64Array, offset), (offset += f.data.length));
      feeds[name] = { type: 'int64', data, dims };
    }
  }
  return feeds;
}

/**
 * Splits each output back into per-request slices of `rows[i]` rows. The slices are views of the
 * buffer the executor transferred back, so splitting copies nothing.
 */
export function splitOutputs(results: WireOutputs, names: readonly string[], rows: readonly number[]): Outputs[] {
  const perRequest: Outputs[] = rows.map(() => ({}));
  for (const name of names) {
    const out = results[name];
    if (!out) continue;
    const rowSize = out.data.length / out.dims[0];
    let row = 0;
    rows.forEach((count, i) => {
      perRequest[i][name] = { data: out.data.subarray(row * rowSize, (row + count) * rowSize), dims: [count, ...out.dims.slice(1)] };
      row += count;
    });
  }
  return perRequest;
}
