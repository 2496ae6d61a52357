#!/usr/bin/env bash
# Builds the CPU image with podman and runs it as a user would, checking that the container
#   1. serves on its defaults (gRPC :50051, metrics :9464) with the baked-in bundles,
#   2. streams a GenerateSequence (the project's CLI, from this machine),
#   3. passes the image's own HEALTHCHECK command,
#   4. runs as the non-root uid 10001,
#   5. exits 0 on SIGTERM after draining;
# then that the GPU variant's dependency stage asks for the CUDA 12 provider by name and stops the
# build loudly when it cannot install it (here NuGet is unreachable, so it must fail, with our message).
# Prints the sizes of the image and of its node_modules.
#
# Needs root, podman, buildah, runc and debootstrap (.ci/run installs them). On these machines podman
# runs with `--runtime runc --network host` and `default_ulimits = []` in containers.conf (crun fails
# on the cgroup setup here); the base image is a local stand-in (docker/make-local-base.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

PODMAN=(podman --runtime runc)
IMAGE="${IMAGE:-localhost/stepframe:cpu-test}"
NAME="stepframe-image-test-$$"
out="$(mktemp -d)"
cleanup() { "${PODMAN[@]}" rm -f "$NAME" >/dev/null 2>&1 || true; rm -rf "$out"; }
trap cleanup EXIT
fail() { echo "test-image: FAIL: $*" >&2; "${PODMAN[@]}" logs --tail 30 "$NAME" >&2 2>/dev/null || true; exit 1; }

for port in 50051 9464; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then fail "port $port is in use: the container serves on its defaults with --network host"; fi
done

docker/make-local-base.sh
start=$SECONDS
"${PODMAN[@]}" build --network host --format docker -t "$IMAGE" . >"$out/build.log" 2>&1 || { tail -40 "$out/build.log" >&2; fail "podman build"; }
echo "test-image: built $IMAGE in $((SECONDS - start)) s"

# podman logs that it cannot schedule the HEALTHCHECK through systemd (none runs here); the check runs below.
"${PODMAN[@]}" run -d --name "$NAME" --network host "$IMAGE" >/dev/null 2>"$out/run.log"
healthcheck="$("${PODMAN[@]}" image inspect --format '{{json .Config.Healthcheck.Test}}' "$IMAGE")"
echo "test-image: HEALTHCHECK $healthcheck"
# The HEALTHCHECK's CMD form, run inside the container as the engine would run it.
mapfile -t health_cmd < <(node -e 'const t = JSON.parse(process.argv[1]); if (t[0] !== "CMD") throw new Error(`HEALTHCHECK is ${t[0]}, expected CMD`); for (const a of t.slice(1)) console.log(a)' "$healthcheck")
healthy=""
for _ in $(seq 1 120); do
  [ "$("${PODMAN[@]}" inspect --format '{{.State.Running}}' "$NAME")" = true ] || fail "the container exited before it was healthy"
  if "${PODMAN[@]}" exec "$NAME" "${health_cmd[@]}" >"$out/health.txt" 2>&1; then healthy=1; break; fi
  sleep 1
done
[ -n "$healthy" ] || fail "the HEALTHCHECK command never passed: $(cat "$out/health.txt")"
echo "test-image: HEALTHCHECK passes: $(cat "$out/health.txt")"

uid="$("${PODMAN[@]}" exec "$NAME" sh -c 'awk "/^Uid:/ {print \$2}" /proc/1/status')"
[ "$uid" = 10001 ] || fail "the server runs as uid $uid, expected 10001"
echo "test-image: the server runs as uid $uid"

[ -f dist/clients/typescript/cli.js ] || npm run build --silent
node dist/clients/typescript/cli.js generate "chop the onions" "fry the onions" --inference-steps 2 --seed 7 \
  --address 127.0.0.1:50051 --out "$out/frames" --timeout-s 120 >"$out/cli.txt" 2>&1 || { cat "$out/cli.txt" >&2; fail "GenerateSequence"; }
for f in step-01.png step-02.png; do [ -s "$out/frames/$f" ] || fail "GenerateSequence wrote no $f"; done
echo "test-image: streamed 2 images over gRPC"
curl -sf "http://127.0.0.1:9464/metrics" | grep -q '^stepframe_images_generated_total' || fail "no stepframe_ metrics on :9464"

"${PODMAN[@]}" kill --signal TERM "$NAME" >/dev/null
code="$("${PODMAN[@]}" wait "$NAME")"
[ "$code" = 0 ] || fail "exit code $code after SIGTERM, expected 0"
"${PODMAN[@]}" logs "$NAME" 2>&1 | grep -q "\"stopped\".*\"drained\":true" || fail "no \"stopped\" log line with drained: true after SIGTERM"
echo "test-image: exits 0 on SIGTERM after draining"

image_mb=$(( $("${PODMAN[@]}" image inspect --format '{{.Size}}' "$IMAGE") / 1000000 ))
modules="$("${PODMAN[@]}" run --rm --network host --entrypoint du "$IMAGE" -sm /app/node_modules | cut -f1)"
echo "test-image: image $image_mb MB, node_modules $modules MB"

# GPU variant: its stages resolve and its install step runs onnxruntime-node's script for cuda12;
# with NuGet unreachable the build must stop, saying so.
if "${PODMAN[@]}" build --network host --format docker --target deps-gpu . >"$out/gpu.log" 2>&1; then
  if grep -q 'libonnxruntime_providers_cuda.so' "$out/gpu.log" || "${PODMAN[@]}" run --rm --entrypoint test "$(tail -1 "$out/gpu.log")" -f /app/node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime_providers_cuda.so; then
    echo "test-image: the GPU dependency stage installed the CUDA 12 provider (NuGet reachable here)"
  else
    fail "the GPU dependency stage built without the CUDA provider"
  fi
else
  grep -v 'STEP' "$out/gpu.log" | grep -q 'did not install the CUDA 12 provider' || { tail -20 "$out/gpu.log" >&2; fail "the GPU dependency stage failed without naming the provider"; }
  echo "test-image: the GPU dependency stage fails loudly without NuGet: $(grep -v STEP "$out/gpu.log" | grep -m1 'did not install')"
fi
echo "test-image: OK"
