import * as ort from 'onnxruntime-node';

/** One model input, batch-first; int64 inputs are token ids and timesteps. */
export type Feed = { type: 'float32'; data: Float32Array; dims: readonly number[] } | { type: 'int64'; data: BigInt64Array; dims: readonly number[] };

export type Feeds = Record<string, Feed>;

/** Model outputs the engine reads (all float32). */
export type Outputs = Record<string, { data: Float32Array; dims: readonly number[] }>;

/**
 * Stacks each input of several requests along the batch axis. `scalarInputs` are not stacked:
 * requests in one batch agree on them (the batch queue groups by them), so the first one is used.
 */
export function concatFeeds(parts: readonly Feeds[], scalarInputs: ReadonlySet<string>): Record<string, ort.Tensor> {
  const names = Object.keys(parts[0]);
  const feeds: Record<string, ort.Tensor> = {};
  for (const name of names) {
    const first = parts[0][name];
    if (scalarInputs.has(name) || parts.length === 1) {
      feeds[name] = new ort.Tensor(first.type, first.data, first.dims as number[]);
      continue;
    }
    const rows = parts.reduce((sum, p) => sum + p[name].dims[0], 0);
    const length = parts.reduce((sum, p) => sum + p[name].data.length, 0);
    const data = first.type === 'float32' ? new Float32Array(length) : new BigInt64Array(length);
    let offset = 0;
    for (const p of parts) {
      const feed = p[name];
      if (feed.type !== first.type) throw new Error(`input ${name}: cannot batch ${feed.type} with ${first.type}`);
      (data as Float32Array).set(feed.data as Float32Array, offset);
      offset += feed.data.length;
    }
    feeds[name] = new ort.Tensor(first.type, data, [rows, ...first.dims.slice(1)]);
  }
  return feeds;
}

/** Splits each float32 output back into per-request slices of `rows[i]` rows. */
export function splitOutputs(results: ort.InferenceSession.ReturnType, names: readonly string[], rows: readonly number[]): Outputs[] {
  const perRequest: Outputs[] = rows.map(() => ({}));
  for (const name of names) {
    const out = results[name];
    if (!out) continue;
    const data = out.data as Float32Array;
    const rowSize = data.length / out.dims[0];
    let row = 0;
    rows.forEach((count, i) => {
      perRequest[i][name] = { data: data.slice(row * rowSize, (row + count) * rowSize), dims: [count, ...out.dims.slice(1)] };
      row += count;
    });
  }
  return perRequest;
}
