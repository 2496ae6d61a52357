#!/usr/bin/env bash
# Regenerates the Python stubs from proto/ with Debian's protoc and grpc_python_plugin
# (packages protobuf-compiler and protobuf-compiler-grpc; python3-grpc-tools' bundled protoc is
# too old for proto3 `optional`).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/generated}"
rm -rf "$out" && mkdir -p "$out"
protoc -I"$here/../../proto" --python_out="$out" --grpc_out="$out" --plugin=protoc-gen-grpc="$(command -v grpc_python_plugin)" \
  "$here/../../proto/stepframe/v1/sequence_service.proto"
touch "$out/stepframe/__init__.py" "$out/stepframe/v1/__init__.py"
