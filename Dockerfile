# The image the k8s/ manifests run, CPU and GPU workers alike: `neuromfa worker` and `neuromfa analyze`.
#   docker build -t registry.example.com/neuromfa:0.1.0 .
# Trixie, not bookworm: Dawn (the `webgpu` package gpu.js uses for --backend webgpu) is built
# against glibc 2.38 and GCC 13's libstdc++ (GLIBCXX_3.4.32); bookworm has 2.36 and 3.4.30,
# and dawn.node does not load there. Ubuntu 24.04 bases work too (--build-arg BASE=...).
ARG BASE=node:20-trixie-slim

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
# Dawn reaches an NVIDIA GPU through Vulkan: the loader (libvulkan1) finds the driver through
# an ICD manifest. The NVIDIA container toolkit mounts the driver's Vulkan library
# (libGLX_nvidia.so.0) only when the graphics capability is asked for, and does not always
# mount the manifest, so the image carries it. On a machine without the driver the manifest
# points at nothing, Dawn finds no adapter, and `auto` uses f64.
# fonts-dejavu-core: the report PNGs (resvg) draw their text with the system's fonts.
RUN apt-get update && apt-get install -y --no-install-recommends libvulkan1 fonts-dejavu-core && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /etc/vulkan/icd.d \
 && printf '%s\n' '{' '  "file_format_version": "1.0.0",' '  "ICD": { "library_path": "libGLX_nvidia.so.0", "api_version": "1.3" }' '}' > /etc/vulkan/icd.d/nvidia_icd.json
# Capabilities only: which GPUs a pod sees stays the device plugin's (nvidia.com/gpu limits);
# NVIDIA_VISIBLE_DEVICES=all here would hand every GPU to CPU pods on nodes whose default
# runtime is nvidia.
ENV NVIDIA_DRIVER_CAPABILITIES=compute,utility,graphics
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
