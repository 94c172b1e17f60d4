/**
 * A one-line hint for the slow software path: without Debian's
 * `mesa-vulkan-drivers`, WebGPU falls back to Mesa's llvmpipe through OpenGL,
 * which trains far slower than the same llvmpipe through Vulkan (lavapipe).
 * OpenGL gives no `shader-f16`, lavapipe does: that tells the two apart, since
 * both report the adapter as `llvmpipe (LLVM …)`.
 *
 * @module
 */

import type { Device } from "@irforge/tensor";

/**
 * The default run's throughput on the two paths, measured 2026-12-04 on a
 * shared 2-core machine (`deno task train --set training.max_steps=4 --set
 * training.logging_steps=1`, steps 2–4, `DENO_WEBGPU_BACKEND=gl` then
 * `=vulkan`): 64–83 tokens/s through OpenGL, 430–590 through lavapipe
 * (1,480–2,000 at the default `logging_steps` 10). The hint quotes the
 * ratio of the slowest lavapipe figure to the fastest OpenGL one, a floor.
 */
export const LLVMPIPE_GL_TOKENS_PER_S = 83;
/** See {@link LLVMPIPE_GL_TOKENS_PER_S}. */
export const LAVAPIPE_TOKENS_PER_S = 430;

/** The hint to print for `device`, or `undefined` when it is not llvmpipe through OpenGL. */
export function adapterHint(
  device: Pick<Device, "adapter" | "hasF16" | "isCpuAdapter">,
): string | undefined {
  const llvmpipe = /llvmpipe/i.test(device.adapter.description);
  if (!device.isCpuAdapter || !llvmpipe || device.hasF16) return undefined;
  const times = Math.floor(LAVAPIPE_TOKENS_PER_S / LLVMPIPE_GL_TOKENS_PER_S);
  return `note: WebGPU runs on Mesa's llvmpipe through OpenGL; the same CPU through Vulkan ` +
    `(lavapipe) trains at least ${times}× faster: install it with ` +
    `\`apt-get install mesa-vulkan-drivers\` (Debian/Ubuntu) and run again`;
}
