/**
 * What verifying weights costs at start-up: sha256 over a file of the given size, streamed as the
 * loader streams it, in seconds per GiB. The file is written once and read back warm (page cache),
 * so this is the CPU cost; cold storage adds its own read time.
 *
 *   node dist/bench/hashCost.js [--mib 1024]
 */
import { rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

import { sha256OfFile } from '../src/pipeline/bundle/verifyWeights.js';

const { values } = parseArgs({ options: { mib: { type: 'string', default: '1024' } } });
const mib = Number(values.mib);
const file = join(tmpdir(), `stepframe-hash-${process.pid}.bin`);
const chunk = Buffer.alloc(1 << 20, 7);
writeFileSync(file, Buffer.alloc(0));
for (let i = 0; i < mib; i++) writeFileSync(file, chunk, { flag: 'a' });
try {
  await sha256OfFile(file);
  const t0 = performance.now();
  await sha256OfFile(file);
  const seconds = (performance.now() - t0) / 1000;
  console.log(JSON.stringify({ mib, seconds, secondsPerGiB: seconds / (mib / 1024) }));
} finally {
  rmSync(file, { force: true });
}
