#!/bin/bash
# Packs what a lent GPU machine needs and lacks (run here, from the repository root): Node,
# node_modules without what the GPU checks never load, the conformance inputs, Vulkan's
# loader. Everything lands in .dev/ and .gl/, which git ignores through .git/info/exclude;
# the device call then carries [".dev", ".gl", "dist"] and runs bench/gpu-machine/check.sh.
set -euo pipefail
grep -qx '/.dev/' .git/info/exclude 2>/dev/null || printf '/.dev/\n/.gl/\n' >> .git/info/exclude
npx tsc -p tsconfig.json
rm -rf .dev .gl && mkdir -p .dev .gl /tmp/gpu-pack/.dev/bin /tmp/amd64/partial
cp "$(command -v node)" /tmp/gpu-pack/.dev/bin/node
tar cf - --exclude='node_modules/typescript' --exclude='node_modules/kubernetes-models' \
  --exclude='node_modules/@kubernetes-models' --exclude='node_modules/playwright-core' \
  --exclude='node_modules/webgpu/dist/darwin*' --exclude='node_modules/webgpu/dist/win32*' \
  node_modules -C /tmp/gpu-pack .dev/bin | xz -T2 -6 > .dev/bundle.tar.xz
mkdir -p /tmp/gpu-pack/shared/conformance/gptneox
cp -r ../shared/conformance/cases /tmp/gpu-pack/shared/conformance/
cp -r ../shared/conformance/gptneox/neox-f16-trained /tmp/gpu-pack/shared/conformance/gptneox/
tar cJf .dev/shared.tar.xz -C /tmp/gpu-pack shared
o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
apt-get $o update >/dev/null
(cd .gl && apt-get $o download libvulkan1 2>/dev/null)
rm -rf /tmp/gpu-pack
du -sh .dev .gl dist
