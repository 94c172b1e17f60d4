/**
 * Launching ranks: `deno task train --nproc N` runs `mpiexec -np N` on this
 * machine with the same arguments; on several machines a user calls
 * `mpiexec -f hostfile -np N deno run -A apps/train/main.ts …` directly.
 *
 * Also the per-rank environment: every rank sees the same environment, so
 * a variable `IRFORGE_RANK_<NAME>=v0,v1,…` gives `<NAME>` the entry of this
 * rank's local rank (its index on its machine), before the GPU is opened.
 * That is how each rank picks its own GPU (see the trainer README).
 *
 * @example
 * ```ts
 * import { mpiexecCommand } from "@irforge/trainer/distributed";
 * const { command, args } = mpiexecCommand(2, ["run", "-A", "apps/train/main.ts"])!;
 * ```
 *
 * @module
 */

/** `mpiexec` programs tried in order (MPICH's first: the binding speaks its ABI). */
const LAUNCHERS = ["mpiexec.mpich", "mpiexec.hydra", "mpiexec", "mpirun"];

/** The MPI launcher on PATH (`IRFORGE_MPIEXEC` overrides), or null. */
export function findMpiexec(): string | null {
  const named = Deno.env.get("IRFORGE_MPIEXEC");
  if (named) return named;
  const path = (Deno.env.get("PATH") ?? "").split(":").filter((p) => p !== "");
  for (const name of LAUNCHERS) {
    for (const dir of path) {
      try {
        const info = Deno.statSync(`${dir}/${name}`);
        if (info.isFile && ((info.mode ?? 0o111) & 0o111) !== 0) return `${dir}/${name}`;
      } catch {
        // not in this directory
      }
    }
  }
  return null;
}

/** Whether `launcher` is Open MPI's (it refuses to run as root without a flag). */
function isOpenMpi(launcher: string): boolean {
  try {
    const out = new Deno.Command(launcher, {
      args: ["--version"],
      stdout: "piped",
      stderr: "piped",
    })
      .outputSync();
    return /open mpi|open-mpi|openrte/i.test(new TextDecoder().decode(out.stdout));
  } catch {
    return false;
  }
}

/**
 * The command that runs `deno <denoArgs>` on `nproc` local ranks, or null
 * when no launcher is installed. As root, Open MPI needs
 * `--allow-run-as-root` (MPICH's Hydra does not).
 */
export function mpiexecCommand(
  nproc: number,
  denoArgs: readonly string[],
): { command: string; args: string[] } | null {
  const launcher = findMpiexec();
  if (!launcher) return null;
  const extra: string[] = [];
  if (Deno.uid?.() === 0 && isOpenMpi(launcher)) extra.push("--allow-run-as-root");
  return {
    command: launcher,
    args: [...extra, "-np", String(nproc), Deno.execPath(), ...denoArgs],
  };
}

/** This rank's index on its machine, from the launcher's environment (0 when unknown). */
export function localRank(env: (name: string) => string | undefined = Deno.env.get): number {
  for (const name of ["MPI_LOCALRANKID", "OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID"]) {
    const value = env(name);
    if (value !== undefined && /^\d+$/.test(value)) return Number(value);
  }
  return 0;
}

/**
 * The variables `IRFORGE_RANK_<NAME>=v0,v1,…` assign for local rank `rank`:
 * `<NAME>` gets entry `rank` (an error names the variable when the list is
 * shorter than the ranks on the machine).
 */
export function rankEnvironment(
  variables: Record<string, string>,
  rank: number,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(variables)) {
    const match = /^IRFORGE_RANK_(.+)$/.exec(key);
    if (!match) continue;
    const entries = value.split(",");
    if (rank >= entries.length) {
      throw new Error(
        `${key} has ${entries.length} entries (${value}); local rank ${rank} needs one each`,
      );
    }
    out[match[1]!] = entries[rank]!.trim();
  }
  return out;
}

/** Applies {@link rankEnvironment} to this process for its local rank; returns what it set. */
export function applyRankEnvironment(): Record<string, string> {
  const set = rankEnvironment(Deno.env.toObject(), localRank());
  for (const [name, value] of Object.entries(set)) Deno.env.set(name, value);
  return set;
}

/** `args` without `--nproc N` / `--nproc=N` (what each rank is given). */
export function withoutNproc(args: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "--nproc") i++;
    else if (!args[i]!.startsWith("--nproc=")) out.push(args[i]!);
  }
  return out;
}

/**
 * Runs `deno run -A script ...args` on `nproc` ranks of this machine with
 * `mpiexec` (output goes to this terminal) and returns its exit code; 2 with
 * a sentence on `error` when MPI is not installed. Ctrl-C reaches the ranks
 * (they share the terminal's process group), which checkpoint together.
 */
export async function launchRanks(
  nproc: number,
  script: string,
  args: readonly string[],
  error: (line: string) => void = console.error,
): Promise<number> {
  const command = mpiexecCommand(nproc, ["run", "-A", script, ...args]);
  if (!command) {
    error(
      `--nproc ${nproc}: no MPI launcher (mpiexec) on PATH; install MPICH ` +
        `(Debian: apt-get install mpich)`,
    );
    return 2;
  }
  // The ranks handle Ctrl-C (checkpoint, then stop); this parent only waits for them.
  const ignore = () => {};
  const signals: Deno.Signal[] = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGINT", "SIGTERM"];
  for (const signal of signals) Deno.addSignalListener(signal, ignore);
  try {
    const child = new Deno.Command(command.command, {
      args: command.args,
      stdin: "null",
      stdout: "inherit",
      stderr: "inherit",
    }).spawn();
    return (await child.status).code;
  } finally {
    for (const signal of signals) Deno.removeSignalListener(signal, ignore);
  }
}
