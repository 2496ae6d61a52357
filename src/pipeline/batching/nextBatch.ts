/** What the batch picker needs to know about a queued request. */
export interface Queued {
  rows: number;
  signal?: AbortSignal;
  /** Requests with a key only share a batch with the same key (a UNet that takes one timestep per call). */
  groupKey?: string | number;
}

export interface BatchPick<E> {
  batch: E[];
  /** Cancelled requests, to be rejected and forgotten. */
  dropped: E[];
  /** Everything else, in arrival order. */
  rest: E[];
}

/**
 * Picks the next batch: oldest first, up to `maxRows` rows, never splitting a request's rows. A
 * request larger than `maxRows` runs alone rather than starving. `maxEntries` caps the requests
 * taken, so queued work can be split between executors by requests rather than by rows. Aborted requests are dropped here,
 * so a cancelled sequence never occupies a batch slot.
 */
export function nextBatch<E extends Queued>(queue: readonly E[], maxRows: number, maxEntries = Infinity): BatchPick<E> {
  const batch: E[] = [];
  const dropped: E[] = [];
  const rest: E[] = [];
  let rows = 0;
  let key: string | number | undefined;
  for (const entry of queue) {
    if (entry.signal?.aborted) {
      dropped.push(entry);
      continue;
    }
    if (batch.length === 0) {
      key = entry.groupKey;
      batch.push(entry);
      rows += entry.rows;
    } else if (rows + entry.rows <= maxRows && batch.length < maxEntries && entry.groupKey === key) {
      batch.push(entry);
      rows += entry.rows;
    } else {
      rest.push(entry);
    }
  }
  return { batch, dropped, rest };
}
