#!/bin/bash
# The GPU checks as one run on the lent machine (see pack.sh): Dawn's adapter, the GPU tests,
# the CLI on webgpu, whole runs against f64, `bench -- gpu`. Writes $OUT/log.
exec > >(tee -a "$OUT/log") 2>&1
step() { echo; echo "=== $(date +%T) $*"; }
step unpack
for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig
tar xJf .dev/bundle.tar.xz && tar xJf .dev/shared.tar.xz -C ..
export PATH=$PWD/.dev/bin:$PATH
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
[ -f $icd ] && export VK_DRIVER_FILES=$icd
nvidia-smi -L; node --version; nproc
step worker --describe
timeout -k 5 60 node bin/neuromfa.js worker --describe; echo "rc=$?"
step GPU tests
timeout -k 5 180 node node_modules/ava/entrypoints/cli.mjs --verbose --timeout=200s dist/test/gpu-backends.test.js \
  dist/test/gpu-partition-sums.test.js dist/test/backend-flag.test.js dist/test/hosted-runner.test.js; echo "rc=$?"
step whole runs
timeout -k 5 150 node bench/gpu-machine/whole-runs.mjs; echo "rc=$?"
step bench gpu
timeout -k 5 100 node dist/bench/run.js gpu; echo "rc=$?"
