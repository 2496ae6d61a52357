/** A model that ONNX Runtime cannot load on any provider: the file, not the provider, is at fault. */
export class ModelLoadError extends Error {
  override name = 'ModelLoadError';
}
