#!/usr/bin/env bash
# Regenerates the grpcio stubs inside the stepframe_client package with Debian's protoc 3.21 and
# grpc_python_plugin (apt-get install protobuf-compiler protobuf-compiler-grpc). protoc writes
# absolute imports (`from stepframe.v1 import ...`); they are made relative so the stubs live in
# the package and need nothing on sys.path.
#   clients/python/generate.sh [OUT_DIR]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/stepframe_client/_generated}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
protoc -I"$here/../../proto" --python_out="$work" --grpc_out="$work" --plugin=protoc-gen-grpc="$(command -v grpc_python_plugin)" \
  "$here/../../proto/stepframe/v1/sequence_service.proto"
rm -rf "$out" && mkdir -p "$out"
for file in sequence_service_pb2.py sequence_service_pb2_grpc.py; do
  sed 's/^from stepframe\.v1 import /from . import /' "$work/stepframe/v1/$file" > "$out/$file"
done
printf '"""protoc output for proto/stepframe/v1/sequence_service.proto (clients/python/generate.sh)."""\n' > "$out/__init__.py"
