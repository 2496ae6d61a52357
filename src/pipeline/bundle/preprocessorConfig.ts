import { BundleError } from '../errors.js';

/** CLIPImageProcessor's `preprocessor_config.json`, reduced to what preprocessing needs. */
export interface ImagePreprocessConfig {
  shortestEdge: number;
  cropHeight: number;
  cropWidth: number;
  rescaleFactor: number;
  mean: [number, number, number];
  std: [number, number, number];
  doResize: boolean;
  doCenterCrop: boolean;
  doNormalize: boolean;
}

export function parsePreprocessorConfig(raw: unknown, file: string): ImagePreprocessConfig {
  const r = (raw ?? {}) as Record<string, unknown>;
  const size = r.size as Record<string, number> | number | undefined;
  const crop = r.crop_size as Record<string, number> | number | undefined;
  const shortestEdge = typeof size === 'number' ? size : size?.shortest_edge;
  const cropHeight = typeof crop === 'number' ? crop : crop?.height;
  const cropWidth = typeof crop === 'number' ? crop : crop?.width;
  const triple = (v: unknown, name: string): [number, number, number] => {
    if (!Array.isArray(v) || v.length !== 3 || !v.every((x) => typeof x === 'number')) {
      throw new BundleError(`${file}: ${name} must be three numbers`);
    }
    return v as [number, number, number];
  };
  for (const [name, value] of [['size.shortest_edge', shortestEdge], ['crop_size.height', cropHeight], ['crop_size.width', cropWidth]] as const) {
    if (!Number.isInteger(value) || (value as number) <= 0) throw new BundleError(`${file}: ${name} must be a positive integer`);
  }
  return {
    shortestEdge: shortestEdge!,
    cropHeight: cropHeight!,
    cropWidth: cropWidth!,
    rescaleFactor: typeof r.rescale_factor === 'number' ? r.rescale_factor : 1 / 255,
    mean: triple(r.image_mean, 'image_mean'),
    std: triple(r.image_std, 'image_std'),
    doResize: r.do_resize !== false,
    doCenterCrop: r.do_center_crop !== false,
    doNormalize: r.do_normalize !== false,
  };
}
