// Keeps onnxruntime-node's native binaries for the platform this runs on and deletes the rest
// (Windows, macOS, other CPUs): 288 MB of the package down to its ~45 MB for linux/x64.
// Run in an image's dependency stage, where the platform is the image's own.
const { readdirSync, rmSync, existsSync } = require('node:fs');
const { join } = require('node:path');

const binaries = join('node_modules', 'onnxruntime-node', 'bin', 'napi-v6');
const keep = join(binaries, process.platform, process.arch);
if (!existsSync(keep)) throw new Error(`onnxruntime-node has no binaries for ${process.platform}/${process.arch} under ${binaries}`);
for (const os of readdirSync(binaries)) {
  for (const arch of readdirSync(join(binaries, os))) {
    const folder = join(binaries, os, arch);
    if (folder !== keep) rmSync(folder, { recursive: true });
  }
  if (readdirSync(join(binaries, os)).length === 0) rmSync(join(binaries, os), { recursive: true });
}
console.log(`onnxruntime-node: kept ${keep}`);
