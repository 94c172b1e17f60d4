import { equal, notEqual, ok } from "node:assert/strict";
import { awaitDawn, SPIN_MS } from "./dawn_wait.ts";

type Immediate = (callback: (...args: unknown[]) => void, ...args: unknown[]) => unknown;
const scope = globalThis as unknown as { setImmediate: Immediate };

// Mimics Dawn's AsyncRunner: re-queues itself through the global setImmediate
// (looked up on every call) until `done()` says the promise has resolved.
function pollLikeDawn(done: () => boolean, onPoll: () => void): void {
  scope.setImmediate(() => {
    onPoll();
    if (!done()) pollLikeDawn(done, onPoll);
  });
}

Deno.test("awaitDawn: Dawn's re-queued polling sleeps after the first milliseconds, and setImmediate is restored", async () => {
  const original = scope.setImmediate;
  let polls = 0;
  let pollsAfterSpin = 0;
  const waitMs = 60;
  const started = performance.now();
  const countPoll = () => {
    polls++;
    // Polls are immediate (unbounded in number) during the first SPIN_MS; allow
    // the same again for timer slack before counting throttled ones.
    if (performance.now() - started > 2 * SPIN_MS) pollsAfterSpin++;
  };
  const value = await awaitDawn("dawn", () =>
    new Promise<string>((resolve) => {
      notEqual(scope.setImmediate, original); // swapped for the wait
      let finished = false;
      setTimeout(() => {
        finished = true;
        resolve("read");
      }, waitMs);
      pollLikeDawn(() => finished, countPoll);
    }));
  const elapsed = performance.now() - started;
  equal(value, "read");
  equal(scope.setImmediate, original);
  // A spinning setImmediate polls thousands of times in 60 ms; after SPIN_MS a
  // 1 ms sleep allows at most about one poll per millisecond.
  ok(
    pollsAfterSpin <= elapsed,
    `${pollsAfterSpin} polls after the spin window (${polls} in all) in ${
      elapsed.toFixed(0)
    } ms (spin ${SPIN_MS} ms)`,
  );
  ok(polls > 0);
});

Deno.test("awaitDawn: other providers leave setImmediate alone; nested waits restore it once", async () => {
  const original = scope.setImmediate;
  await awaitDawn("deno", () => {
    equal(scope.setImmediate, original);
    return Promise.resolve();
  });
  await awaitDawn("dawn", async () => {
    await awaitDawn("dawn", () => Promise.resolve());
    notEqual(scope.setImmediate, original); // the outer wait is still running
  });
  equal(scope.setImmediate, original);
  // A rejected wait restores it too.
  await awaitDawn("dawn", () => Promise.reject(new Error("lost device"))).catch(() => {});
  equal(scope.setImmediate, original);
});
