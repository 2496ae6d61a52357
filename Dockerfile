# syntax=docker/dockerfile:1
# stepframe server image. One final stage per variant, chosen with --target (the last, cpu, is the default):
#   cpu: slim Node 20, ONNX Runtime's CPU provider (shipped inside onnxruntime-node)
#   gpu: CUDA 12 + cuDNN 9 runtime, ONNX Runtime's CUDA 12 provider installed at build time
#
#   docker build -t stepframe:cpu .                 (or --target cpu; podman/buildah build the same)
#   docker build -t stepframe:gpu --target gpu .
#   docker run -p 50051:50051 -p 9464:9464 stepframe:cpu
#
# Every stage names its base directly: buildah resolves a stage only from a FROM it can see is used,
# so a `FROM runtime-${VARIANT}` indirection fails there ("image not known").

# --- build: compile TypeScript (dev dependencies live only here) ---
FROM node:20-bookworm-slim AS build
WORKDIR /app
# .npmrc sets ignore-scripts: no dependency's install script runs, with npm 10 as with npm 11.
COPY package.json package-lock.json .npmrc ./
RUN npm ci
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY clients/typescript ./clients/typescript
RUN npx tsc -p tsconfig.build.json

# --- production dependencies, with onnxruntime-node's binaries for this image's platform only ---
FROM node:20-bookworm-slim AS deps-cpu
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
COPY docker/prune-onnxruntime-binaries.cjs /tmp/
RUN npm ci --omit=dev && npm cache clean --force && node /tmp/prune-onnxruntime-binaries.cjs

# The GPU variant runs onnxruntime-node's own install script on purpose, asking for the CUDA 12
# provider by name; the build stops if the provider is not there afterwards.
FROM deps-cpu AS deps-gpu
RUN ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules/onnxruntime-node/script/install.js \
 && test -f node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime_providers_cuda.so \
 || { echo "onnxruntime-node did not install the CUDA 12 provider (libonnxruntime_providers_cuda.so): is api.nuget.org reachable?" >&2; exit 1; }

# --- what both variants serve: compiled code, proto, the default bundles ---
FROM node:20-bookworm-slim AS app
WORKDIR /app
COPY package.json ./
COPY proto ./proto
COPY schemas ./schemas
COPY --from=build /app/dist ./dist
# The default bundles are baked in; mount another folder on /app/models (or set STEPFRAME_MODEL_DIR) to serve others.
COPY models ./models

# --- gpu: target it with --target gpu ---
FROM nvidia/cuda:12.6.3-cudnn-runtime-ubuntu24.04 AS gpu
# Node 20 from the official image (glibc 2.36 binary; Ubuntu 24.04 has 2.39).
COPY --from=deps-gpu /usr/local/bin/node /usr/local/bin/node
RUN groupadd --gid 10001 stepframe && useradd --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin stepframe
WORKDIR /app
COPY --from=deps-gpu /app/node_modules ./node_modules
COPY --from=app /app ./
ENV NODE_ENV=production STEPFRAME_MODEL_DIR=/app/models STEPFRAME_PORT=50051 STEPFRAME_METRICS_PORT=9464 \
    STEPFRAME_EXECUTION_PROVIDERS=cuda,cpu
USER 10001:10001
EXPOSE 50051 9464
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 CMD ["node", "dist/src/server/healthcheck.js"]
ENTRYPOINT ["node", "dist/src/server/main.js"]

# --- cpu: the default (last) stage ---
FROM node:20-bookworm-slim AS cpu
RUN groupadd --gid 10001 stepframe && useradd --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin stepframe
WORKDIR /app
COPY --from=deps-cpu /app/node_modules ./node_modules
COPY --from=app /app ./
ENV NODE_ENV=production STEPFRAME_MODEL_DIR=/app/models STEPFRAME_PORT=50051 STEPFRAME_METRICS_PORT=9464 \
    STEPFRAME_EXECUTION_PROVIDERS=cpu
USER 10001:10001
EXPOSE 50051 9464
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 CMD ["node", "dist/src/server/healthcheck.js"]
ENTRYPOINT ["node", "dist/src/server/main.js"]
