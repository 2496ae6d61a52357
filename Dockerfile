# syntax=docker/dockerfile:1
# stepframe server image. Two variants, chosen with --build-arg VARIANT:
#   cpu (default): slim Node 20, ONNX Runtime's CPU provider (shipped inside onnxruntime-node)
#   gpu:           CUDA 12 + cuDNN 9 runtime, ONNX Runtime's CUDA provider fetched at build time
#
#   docker build -t stepframe:cpu .
#   docker build -t stepframe:gpu --build-arg VARIANT=gpu .
#   docker run -p 50051:50051 -p 9464:9464 stepframe:cpu
ARG VARIANT=cpu

# --- build: compile TypeScript (dev dependencies live only here) ---
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY clients/typescript ./clients/typescript
RUN npx tsc -p tsconfig.build.json

# --- production dependencies from the lockfile; install scripts stay denied (package.json allowScripts) ---
FROM node:20-bookworm-slim AS deps-cpu
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev && npm cache clean --force

# The GPU variant runs onnxruntime-node's install script, which downloads the CUDA 12 provider.
FROM node:20-bookworm-slim AS deps-gpu
WORKDIR /app
COPY package.json package-lock.json ./
ENV ONNXRUNTIME_NODE_INSTALL=cuda12
RUN npm ci --omit=dev --allow-scripts=onnxruntime-node && npm cache clean --force

# --- runtimes ---
FROM node:20-bookworm-slim AS runtime-cpu
RUN groupadd --gid 10001 stepframe && useradd --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin stepframe
WORKDIR /app
COPY --from=deps-cpu /app/node_modules ./node_modules
ENV STEPFRAME_EXECUTION_PROVIDERS=cpu

FROM nvidia/cuda:12.6.3-cudnn-runtime-ubuntu24.04 AS runtime-gpu
# Node 20 from the official image (glibc 2.36 binary; Ubuntu 24.04 has 2.39).
COPY --from=node:20-bookworm-slim /usr/local/bin/node /usr/local/bin/node
RUN groupadd --gid 10001 stepframe && useradd --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin stepframe
WORKDIR /app
COPY --from=deps-gpu /app/node_modules ./node_modules
ENV STEPFRAME_EXECUTION_PROVIDERS=cuda,cpu

# --- the image ---
FROM runtime-${VARIANT}
ENV NODE_ENV=production \
    STEPFRAME_MODEL_DIR=/app/models \
    STEPFRAME_PORT=50051 \
    STEPFRAME_METRICS_PORT=9464
COPY package.json ./
COPY proto ./proto
COPY --from=build /app/dist ./dist
# The default bundles are baked in; mount another folder on /app/models (or set STEPFRAME_MODEL_DIR) to serve others.
COPY models ./models
USER 10001:10001
EXPOSE 50051 9464
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 CMD ["node", "dist/src/server/healthcheck.js"]
ENTRYPOINT ["node", "dist/src/server/main.js"]
