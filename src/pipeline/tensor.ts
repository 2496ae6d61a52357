/** A dense float32 tensor in row-major order; the first axis is the batch axis. */
export interface Tensor {
  data: Float32Array;
  dims: readonly number[];
}

/** Concatenates along the batch axis; every part must have the same row shape. */
export function concatBatch(parts: readonly Tensor[]): Tensor {
  if (parts.length === 0) throw new Error('concatBatch needs at least one tensor');
  const rowDims = parts[0].dims.slice(1);
  let rows = 0;
  for (const p of parts) {
    if (p.dims.length !== parts[0].dims.length || p.dims.slice(1).some((d, i) => d !== rowDims[i])) {
      throw new Error(`cannot concatenate [${p.dims.join(', ')}] with [${parts[0].dims.join(', ')}] along the batch axis`);
    }
    rows += p.dims[0];
  }
  const data = new Float32Array(rows * rowDims.reduce((a, b) => a * b, 1));
  let offset = 0;
  for (const p of parts) {
    data.set(p.data, offset);
    offset += p.data.length;
  }
  return { data, dims: [rows, ...rowDims] };
}

/** Repeats a batch-1 tensor `count` times (one row per guidance branch). */
export function repeatBatch(t: Tensor, count: number): Tensor {
  return concatBatch(Array.from({ length: count }, () => t));
}
