# qualm worker image. Build: docker build -t qualm:0.1.0 .   (or: docker compose build)
#
# Two stages: "build" compiles the TypeScript and hnswlib-node's native addon with the full
# Debian toolchain; the runtime stage copies only the compiled output and the production
# node_modules onto the slim image. glibc (Debian), not Alpine: onnxruntime-node ships no
# musl binaries. Both stages use the same Node release so the native addon's ABI matches.
ARG NODE_VERSION=20.20.2

FROM node:${NODE_VERSION}-bookworm AS build
WORKDIR /app
# .npmrc (onnxruntime-node-install=skip) must be in place before npm ci, and the postinstall
# script that rebuilds hnswlib-node for AVX2 (QUALM_HNSW_MARCH: see scripts/build-hnswlib.sh;
# the image then needs an AVX2 CPU, or build it with --build-arg QUALM_HNSW_MARCH=off).
ARG QUALM_HNSW_MARCH=auto
COPY package.json package-lock.json .npmrc ./
COPY scripts/build-hnswlib.sh ./scripts/
RUN QUALM_HNSW_MARCH=${QUALM_HNSW_MARCH} npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
RUN npm run build \
 && npm prune --omit=dev --no-audit --no-fund \
 && npm cache clean --force

FROM node:${NODE_VERSION}-bookworm-slim AS runtime
# Without the Debian dataset package, build-index and produce use the committed slice in data/.
ENV NODE_ENV=production \
    QUALM_BUNDLE_DIR=/var/lib/qualm/bundles
WORKDIR /app
# The bundle directory is the only place the worker writes; a named volume mounted there
# inherits this ownership on first use.
RUN mkdir -p /var/lib/qualm/bundles && chown -R node:node /var/lib/qualm
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY bin ./bin
COPY models ./models
COPY data ./data
USER node
EXPOSE 9464
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:${QUALM_METRICS_PORT:-9464}/healthz', { signal: AbortSignal.timeout(4000) }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"
ENTRYPOINT ["node", "bin/qualm.js"]
CMD ["worker"]
