#!/usr/bin/env bash
# Makes a local stand-in for node:20-bookworm-slim and tags it with that name, for machines that
# reach no image registry (podman then finds the base locally and pulls nothing). It is built as
# the official image is, in what matters to stepframe's Dockerfile:
#   - Debian 12 (bookworm) from debootstrap's minbase variant (the official -slim is also minimal
#     Debian, with a few more packages: ca-certificates, and no apt lists);
#   - this machine's Node 20 binary at /usr/local/bin/node (the official image builds its own);
#   - npm 10.8.2 from the npm registry, as Node 20 ships it, at /usr/local/lib/node_modules/npm;
#   - this machine's CA bundle, and NODE_EXTRA_CA_CERTS pointing at it: the registry is reached
#     through a TLS proxy whose CA only that bundle holds, and Node reads its own CA list otherwise.
# No yarn, no corepack, and the `node` user (uid 1000) is absent; the Dockerfile uses neither.
set -euo pipefail

TAG="${BASE_TAG:-docker.io/library/node:20-bookworm-slim}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
NPM_VERSION="${BASE_NPM_VERSION:-10.8.2}"

if podman image exists "$TAG" && [ -z "${REBUILD_BASE:-}" ]; then
  echo "make-local-base: $TAG exists (REBUILD_BASE=1 to rebuild)"
  exit 0
fi
node_major="$(node -p 'process.versions.node.split(".")[0]')"
[ "$node_major" = 20 ] || { echo "make-local-base: this machine's node is $(node --version); the stand-in needs Node 20" >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
rootfs="$work/rootfs"
echo "make-local-base: debootstrap bookworm (minbase) from $MIRROR"
debootstrap --variant=minbase bookworm "$rootfs" "$MIRROR" >"$work/debootstrap.log" 2>&1 || { tail -20 "$work/debootstrap.log" >&2; exit 1; }
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin

install -D -m 0755 "$(command -v node)" "$rootfs/usr/local/bin/node"
(cd "$work" && npm pack --silent "npm@$NPM_VERSION" >/dev/null)
mkdir -p "$rootfs/usr/local/lib/node_modules/npm"
tar -xzf "$work/npm-$NPM_VERSION.tgz" -C "$rootfs/usr/local/lib/node_modules/npm" --strip-components=1
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"
install -D -m 0644 /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"

tar -C "$rootfs" -c . | podman import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt' \
  --change "ENV NODE_VERSION=$(node -p process.versions.node)" \
  --change 'CMD ["node"]' - "$TAG" >/dev/null
echo "make-local-base: tagged $TAG (node $(node --version), npm $NPM_VERSION)"
