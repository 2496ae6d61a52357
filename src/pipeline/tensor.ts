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

/** Cosine similarity of two equally long vectors; 0 when either is all zeros. */
export function cosineSimilarity(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) throw new Error(`cosine similarity of ${a.length} and ${b.length} values`);
  let dot = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i];
    aa += a[i] * a[i];
    bb += b[i] * b[i];
  }
  return aa === 0 || bb === 0 ? 0 : dot / Math.sqrt(aa * bb);
}
