#!/usr/bin/env bash
# Run HERE (the machine with network) from the repo root, once: packs what a bare
# GPU machine without network needs into ignored folders that travel with `carry`:
#   .deno/deno.xz          the Deno binary (xz: 91 MiB → ~28 MiB)
#   .deno/dir.tar.xz       a DENO_DIR with every npm package the bench imports, npm:webgpu's
#                          linux-x64 Dawn binary included (source maps and other platforms dropped)
#   .gl/*.deb              the Vulkan/EGL loaders (the NVIDIA driver supplies the ICD)
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
mkdir -p .deno .gl
xz -9 -T0 -c "$(command -v deno)" > .deno/deno.xz
tmp=$(mktemp -d)
DENO_DIR="$tmp/dir" deno cache --no-lock bench/main.ts bench/kernels.ts bench/attention.ts bench/model_step.ts \
  bench/lora_step.ts bench/compare.ts bench/peers/irforge.ts bench/peers/tfjs.ts bench/peers/jax.ts
find "$tmp/dir" -name '*.map' -delete
# npm:webgpu ships Dawn for five platforms (~130 MiB); the GPU machine needs linux-x64 (~21 MiB).
for d in "$tmp"/dir/npm/registry.npmjs.org/webgpu/*/dist/*/; do
  case "$d" in */linux-x64/) ;; *) rm -rf "$d" ;; esac
done
[ -n "$(ls "$tmp"/dir/npm/registry.npmjs.org/webgpu/*/dist/linux-x64/dawn.node 2>/dev/null)" ] ||
  { echo "prepare_device: npm:webgpu's linux-x64 dawn.node is missing from the cache" >&2; exit 1; }
tar -C "$tmp" -cf - dir | xz -6 -T0 > .deno/dir.tar.xz
rm -rf "$tmp"
if [ -z "$(ls .gl/*.deb 2>/dev/null)" ]; then
  mkdir -p /tmp/amd64/partial
  o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
  apt-get $o update >/dev/null
  (cd .gl && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
fi
du -ch .deno/deno.xz .deno/dir.tar.xz .gl/*.deb | tail -1
