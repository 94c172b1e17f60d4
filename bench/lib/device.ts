/**
 * Opening the WebGPU device for a benchmark: `--provider deno|dawn|auto`
 * (or `IRFORGE_WEBGPU`) picks the WebGPU provider, one line names provider,
 * adapter and features, and without an adapter it prints the one-sentence
 * advice and exits with status 1.
 *
 * @module
 */

import {
  describeDevice,
  describeNoGpu,
  type Device,
  getDevice,
  providerChoice,
} from "@irforge/tensor";

/** The value of `--provider X` / `--provider=X` in `args`, if given. */
export function providerFlag(args: readonly string[]): string | undefined {
  for (const [i, arg] of args.entries()) {
    if (arg === "--provider") return args[i + 1] ?? "";
    if (arg.startsWith("--provider=")) return arg.slice("--provider=".length);
  }
  return undefined;
}

/** `await getDevice()` on the provider asked for, or exit(1) with the installation advice. */
export async function openDevice(args: readonly string[] = Deno.args): Promise<Device> {
  const flag = providerFlag(args);
  try {
    if (flag !== undefined) Deno.env.set("IRFORGE_WEBGPU", providerChoice(flag));
    const device = await getDevice();
    console.log(describeDevice(device));
    return device;
  } catch (e) {
    console.error(describeNoGpu(e) ?? (e instanceof Error ? e.message : String(e)));
    Deno.exit(1);
  }
}
