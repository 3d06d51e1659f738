# The image the k8s/ manifests run: `neuromfa worker` and `neuromfa analyze`.
#   docker build -t registry.example.com/neuromfa:0.1.0 .
# GPU workers (gpu.js over WebGPU/Dawn) need a newer libstdc++ than bookworm's and the Vulkan
# loader: build them with --build-arg BASE=node:20-trixie-slim.
ARG BASE=node:20-bookworm-slim

FROM ${BASE} AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json ./
COPY bin bin
COPY proto proto
COPY worker worker
COPY coordinator coordinator
COPY test test
COPY bench bench
RUN npm ci --no-audit --no-fund && npm prune --omit=dev

FROM ${BASE}
RUN apt-get update && apt-get install -y --no-install-recommends libvulkan1 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules node_modules
COPY --from=build /app/dist dist
COPY --from=build /app/bin bin
# Loaded at run time by the gRPC service.
COPY --from=build /app/proto/neuromfa.proto proto/neuromfa.proto
USER node
EXPOSE 50051 9100
ENTRYPOINT ["node", "/app/bin/neuromfa.js"]
CMD ["--help"]
