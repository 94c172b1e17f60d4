import assert from "node:assert/strict";
import { hostname } from "node:os";
import { join } from "node:path";
import { LOCK_FILE, RunLock, RunLockedError } from "./run_lock.ts";

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("RunLock: a live holder is refused with its PID; release frees the directory", () =>
  withDir(async (dir) => {
    const lock = await RunLock.acquire(dir);
    assert.equal(lock.tookOverFrom, null);
    const owner = JSON.parse(await Deno.readTextFile(join(dir, LOCK_FILE)));
    assert.equal(owner.pid, Deno.pid);
    await assert.rejects(
      RunLock.acquire(dir),
      (e: unknown) =>
        e instanceof RunLockedError &&
        e.message.startsWith(`${dir} is in use by process ${Deno.pid} on ${hostname()}`),
    );
    lock.release();
    lock.release(); // idempotent
    const again = await RunLock.acquire(dir);
    again.release();
    assert.deepEqual([...Deno.readDirSync(dir)], []);
  }));

Deno.test("RunLock: the lock of a SIGKILLed process is taken over", async () => {
  if (Deno.build.os !== "linux") return;
  await withDir(async (dir) => {
    // A child takes the lock, says so, then hangs until killed.
    const url = new URL("./run_lock.ts", import.meta.url).href;
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "eval",
        `import { RunLock } from "${url}"; await RunLock.acquire(${JSON.stringify(dir)}); ` +
        `console.log("locked"); await new Promise(() => setInterval(() => {}, 1000));`,
      ],
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const reader = child.stdout.getReader();
    const { value } = await reader.read();
    assert.match(new TextDecoder().decode(value), /locked/);
    await assert.rejects(
      RunLock.acquire(dir),
      (e: unknown) => e instanceof RunLockedError && e.owner.pid === child.pid,
    );
    child.kill("SIGKILL");
    await child.status;
    reader.releaseLock();
    await child.stdout.cancel();
    const lock = await RunLock.acquire(dir);
    assert.equal(lock.tookOverFrom?.pid, child.pid);
    assert.equal(JSON.parse(await Deno.readTextFile(join(dir, LOCK_FILE))).pid, Deno.pid);
    lock.release();
  });
});

Deno.test("RunLock: a reused PID (another start time) or a garbled lock is stale", () =>
  withDir(async (dir) => {
    const path = join(dir, LOCK_FILE);
    const reused = { pid: Deno.pid, host: hostname(), start: "1", since: "2020-01-01T00:00:00Z" };
    await Deno.writeTextFile(path, JSON.stringify(reused));
    const lock = await RunLock.acquire(dir);
    assert.equal(lock.tookOverFrom?.start, "1");
    lock.release();
    await Deno.writeTextFile(path, "{not json");
    const garbled = await RunLock.acquire(dir);
    assert.equal(garbled.tookOverFrom?.pid, -1);
    garbled.release();
    // On another host the PID cannot be checked: refusing is the safe side.
    await Deno.writeTextFile(path, JSON.stringify({ ...reused, host: "elsewhere", start: null }));
    await assert.rejects(RunLock.acquire(dir), /in use by process \d+ on elsewhere/);
  }));
