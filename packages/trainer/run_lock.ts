/**
 * One process trains in a run directory at a time: `train.lock` holds the
 * owner's PID, host and process start time. A second process is refused with
 * a sentence naming the holder; a lock whose process is gone (killed with
 * SIGKILL, the machine rebooted) is detected and taken over.
 *
 * ```ts
 * import { RunLock } from "@irforge/trainer/run-lock";
 *
 * const dir = await Deno.makeTempDir();
 * const lock = await RunLock.acquire(dir);
 * // … train in dir …
 * lock.release();
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @module
 */

import { hostname } from "node:os";
import { join } from "node:path";

/** Name of the lock file inside a run directory. */
export const LOCK_FILE = "train.lock";

/** What `train.lock` records. */
export interface LockOwner {
  /** Process id of the holder. */
  pid: number;
  /** Host it runs on (a PID means nothing on another machine). */
  host: string;
  /** The process's start time in clock ticks since boot (Linux), to tell a reused PID apart. */
  start: string | null;
  /** ISO-8601 time the lock was taken. */
  since: string;
}

/** Another live process holds the run directory. */
export class RunLockedError extends Error {
  /** Creates the error naming the holder. */
  constructor(readonly runPath: string, readonly owner: LockOwner) {
    super(
      `${runPath} is in use by process ${owner.pid} on ${owner.host} (training since ` +
        `${owner.since}); wait for it to end or stop it first (its lock is ${
          join(runPath, LOCK_FILE)
        })`,
    );
    this.name = "RunLockedError";
  }
}

/** Start time of process `pid` (field 22 of `/proc/<pid>/stat`), `null` where unknown. */
function processStart(pid: number): string | null {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return fields[19] ?? null;
  } catch {
    return null;
  }
}

/**
 * Whether the process recorded in `owner` still runs. Only decidable on the
 * same host; elsewhere the lock is assumed live (refusing is the safe side).
 */
export function ownerAlive(owner: LockOwner): boolean {
  if (owner.host !== hostname()) return true;
  if (Deno.build.os !== "linux") {
    try {
      Deno.kill(owner.pid, "SIGCONT"); // harmless to a running process; throws when none
      return true;
    } catch {
      return false;
    }
  }
  const start = processStart(owner.pid);
  if (start === null) return false; // no such process
  return owner.start === null || owner.start === start; // a reused PID is another process
}

function parseOwner(text: string): LockOwner | null {
  try {
    const o = JSON.parse(text) as Partial<LockOwner>;
    if (!Number.isInteger(o.pid) || typeof o.host !== "string") return null;
    return {
      pid: o.pid!,
      host: o.host,
      start: typeof o.start === "string" ? o.start : null,
      since: typeof o.since === "string" ? o.since : "an unknown time",
    };
  } catch {
    return null;
  }
}

/** A held run-directory lock. */
export class RunLock {
  #released = false;

  private constructor(
    /** The lock file. */
    readonly path: string,
    /** Set when a stale lock was taken over: its previous holder. */
    readonly tookOverFrom: LockOwner | null,
  ) {}

  /**
   * Takes the lock of `runPath`, or throws {@link RunLockedError} when a live
   * process holds it. A stale lock (its process gone, or unreadable) is
   * replaced; {@link RunLock.tookOverFrom} says from whom.
   */
  static async acquire(runPath: string): Promise<RunLock> {
    const path = join(runPath, LOCK_FILE);
    const me: LockOwner = {
      pid: Deno.pid,
      host: hostname(),
      start: processStart(Deno.pid),
      since: new Date().toISOString(),
    };
    let tookOver: LockOwner | null = null;
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        await Deno.writeTextFile(path, JSON.stringify(me) + "\n", { createNew: true });
        return new RunLock(path, tookOver);
      } catch (error) {
        if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
      }
      let text: string;
      try {
        text = await Deno.readTextFile(path);
      } catch (error) {
        if (error instanceof Deno.errors.NotFound) continue; // released meanwhile
        throw error;
      }
      const owner = parseOwner(text);
      // An empty or half-written lock may be a holder that is writing it right now.
      if (owner === null && attempt < 2) {
        await new Promise((r) => setTimeout(r, 50));
        continue;
      }
      if (owner !== null && ownerAlive(owner)) throw new RunLockedError(runPath, owner);
      // Stale: move it aside atomically, so of two processes taking it over only one wins.
      const aside = `${path}.stale-${Deno.pid}`;
      try {
        await Deno.rename(path, aside);
      } catch (error) {
        if (error instanceof Deno.errors.NotFound) continue; // another process moved it first
        throw error;
      }
      if (await Deno.readTextFile(aside) !== text) {
        // Another process took the stale lock over between our read and rename: give it back.
        await Deno.rename(aside, path);
        continue;
      }
      await Deno.remove(aside);
      tookOver = owner ?? { pid: -1, host: "?", start: null, since: "an unknown time" };
    }
    throw new Error(`${path}: could not take the lock (it keeps changing hands)`);
  }

  /** Removes the lock file (idempotent; synchronous so it also works while exiting). */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    try {
      const owner = parseOwner(Deno.readTextFileSync(this.path));
      if (owner?.pid === Deno.pid) Deno.removeSync(this.path);
    } catch {
      // already gone
    }
  }
}
