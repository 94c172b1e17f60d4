/**
 * Waiting on Dawn without spinning a CPU core.
 *
 * Dawn's Node-API binding (npm `webgpu`) resolves its promises (`mapAsync`,
 * `onSubmittedWorkDone`, error scopes) from `wgpuInstanceProcessEvents`, which
 * it calls from a `setImmediate` callback that re-queues itself for as long as
 * any promise is pending (`AsyncRunner::ScheduleProcessEvents`). Under Deno
 * that keeps the main thread at 100% CPU for the whole wait — while lavapipe
 * compiles shaders and runs kernels on the same CPUs. Measured on lavapipe
 * (Mesa 25, loaded 2-core machine): a cold matmul test script used 24 s of CPU
 * spinning, 15 s with this throttle.
 *
 * {@link awaitDawn} swaps `globalThis.setImmediate` (the binding looks it up
 * on every re-queue) for one that polls immediately during the first
 * {@link SPIN_MS} of a wait — short readbacks keep their latency — and every
 * millisecond after that through `setTimeout`, which sleeps in the event loop.
 * The original is restored when the last wait ends.
 *
 * @example
 * ```ts ignore
 * import { awaitDawn } from "./dawn_wait.ts";
 * await awaitDawn(device.provider, () => staging.mapAsync(GPUMapMode.READ));
 * ```
 *
 * @module
 */

import type { WebGpuProvider } from "./device.ts";

/** Milliseconds of a wait during which Dawn's events are polled without sleeping. */
export const SPIN_MS = 2;

type Immediate = (callback: (...args: unknown[]) => void, ...args: unknown[]) => unknown;

const scope = globalThis as unknown as { setImmediate?: Immediate };
let waiting = 0;
let original: Immediate | undefined;
let since = 0;

function throttled(callback: (...args: unknown[]) => void, ...args: unknown[]): unknown {
  if (performance.now() - since < SPIN_MS) return original!(callback, ...args);
  return setTimeout(callback, 1, ...args);
}

/**
 * Awaits the promise `start()` returns; under Dawn, with its event polling
 * throttled as the module docs say. Other providers just await it.
 */
export async function awaitDawn<T>(provider: WebGpuProvider, start: () => Promise<T>): Promise<T> {
  if (provider !== "dawn" || typeof scope.setImmediate !== "function") return await start();
  if (waiting++ === 0) {
    original = scope.setImmediate;
    since = performance.now();
    scope.setImmediate = throttled;
  }
  try {
    return await start();
  } finally {
    if (--waiting === 0) {
      scope.setImmediate = original;
      original = undefined;
    }
  }
}
