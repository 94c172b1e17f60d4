#!/usr/bin/env bash
# Run ON THE GPU MACHINE from the repo root (after bench/prepare_device.sh here, carrying
# .deno and .gl): unpacks Deno, its npm cache and the Vulkan loader, then runs the suites
# named in $SUITES (default: all Deno suites at full shape, then the PyTorch references),
# writing results to bench/results and copying them to $OUT when set. The irforge GPU
# suites (kernels, attention, model_step, lora_step) run once per WebGPU provider in
# $PROVIDERS (default "deno dawn": Deno's wgpu, then Dawn from npm:webgpu, whose Linux
# binary prepare_device.sh packs); every result file and header names its provider.
#   SUITES="attention model_step" PROVIDERS=dawn bash bench/run_on_gpu.sh
set -uo pipefail
cd "$(dirname "$0")/.."
for f in .gl/*.deb; do dpkg -x "$f" /; done
ldconfig
export VK_DRIVER_FILES=${VK_DRIVER_FILES:-/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json}
export XDG_RUNTIME_DIR=/tmp PYTHONUNBUFFERED=1
mkdir -p /tmp/deno-bin bench/results
xz -dc .deno/deno.xz > /tmp/deno-bin/deno && chmod +x /tmp/deno-bin/deno
tar -C /tmp -xJf .deno/dir.tar.xz
export DENO_DIR=/tmp/dir PATH=/tmp/deno-bin:$PATH
deno --version | head -1
SUITES=${SUITES:-"kernels attention model_step lora_step peers-irforge peers-tfjs peers-jax torch-matmul torch-attention torch-model_step torch-lora_step"}
PROVIDERS=${PROVIDERS:-"deno dawn"}
status=0
for s in $SUITES; do
  case $s in
    kernels | attention | model_step | lora_step) providers=$PROVIDERS ;;
    *) providers=auto ;;
  esac
  for p in $providers; do
    export IRFORGE_WEBGPU=$p
    echo "== $s (webgpu $p) =="
    case $s in
      kernels) deno run -A --cached-only bench/kernels.ts || status=1 ;;
      torch-*) python3 bench/reference/${s#torch-}.py > bench/results/torch-${s#torch-}.jsonl || status=1
               cat bench/results/torch-${s#torch-}.jsonl ;;
      peers-*) deno run -A --no-lock --cached-only bench/peers/${s#peers-}.ts --full || status=1 ;;
      lora_step) deno run -A --cached-only bench/lora_step.ts --full --compute "${LORA_COMPUTE:-f32,f16}" || status=1 ;;
      # f16 q/k/v (issue 19's fp16 path) beside f32; ATTENTION_DTYPES="f32" for one.
      attention) for d in ${ATTENTION_DTYPES:-f32 f16}; do
                   deno run -A --cached-only bench/attention.ts --full --dtype "$d" || status=1
                 done ;;
      # The whole step in f32 and with training.fp16 (issue 19's two targets).
      model_step) for m in ${MODEL_STEP_MODES:-f32 fp16}; do
                    flag=; [ "$m" = fp16 ] && flag=--fp16
                    deno run -A --cached-only bench/model_step.ts --full $flag || status=1
                  done ;;
      *) deno run -A --cached-only bench/$s.ts --full || status=1 ;;
    esac
  done
done
unset IRFORGE_WEBGPU
deno run -A --cached-only bench/compare.ts | tee bench/results/compare.md
if [ -n "${OUT:-}" ]; then
  # $OUT returns at most 8 files: pack the results into one.
  tar -C bench -czf "$OUT/results.tgz" results
fi
exit $status
