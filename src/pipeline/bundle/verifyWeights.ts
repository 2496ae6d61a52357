import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';

import { BundleError } from '../errors.js';

/** sha256 of a file, streamed in 1 MiB chunks so a multi-gigabyte UNet never sits in memory whole. */
export async function sha256OfFile(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * Refuses a component whose file does not hash to what the manifest records: flipped bytes can
 * leave a valid ONNX graph of the same size that loads and serves different images.
 */
export async function verifyComponentHash(file: string, expected: string, where: string): Promise<void> {
  const actual = await sha256OfFile(file);
  if (actual !== expected.toLowerCase()) {
    throw new BundleError(
      `${where}: ${file} has sha256 ${actual}, but stepframe.json records ${expected}; the file is corrupt or was replaced (re-export it, or update the manifest if the change is intended)`,
    );
  }
}
