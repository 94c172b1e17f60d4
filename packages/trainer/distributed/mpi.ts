/**
 * MPI from Deno through `Deno.dlopen`: the few collectives data-parallel
 * training needs (all-reduce, all-gather, broadcast, barrier, abort) on
 * `MPI_COMM_WORLD`.
 *
 * The binding speaks MPICH's ABI (Debian's `mpich`, `libmpich.so.12`; Intel
 * MPI and MVAPICH share it), where communicators, datatypes and operations
 * are plain integers. Open MPI's handles are addresses of library globals,
 * which FFI cannot name portably, so an Open MPI library is refused with a
 * sentence saying what to install.
 *
 * Collectives run as non-blocking FFI calls (on a helper thread, hence
 * `MPI_THREAD_MULTIPLE`), so the JavaScript event loop keeps running while a
 * rank waits: a watchdog can then abort a job whose peer hangs or died.
 *
 * @example
 * ```ts
 * import { Mpi } from "@irforge/trainer/distributed";
 * const mpi = Mpi.init();
 * const sum = await mpi.allreduceSum(Float32Array.of(mpi.rank));
 * ```
 *
 * @module
 */

import type { Collective } from "./collective.ts";

// MPICH's handle values (mpi.h).
const MPI_COMM_WORLD = 0x44000000;
const MPI_BYTE = 0x4c00010d;
const MPI_INT = 0x4c000405;
const MPI_FLOAT = 0x4c00040a;
const MPI_DOUBLE = 0x4c00080b;
const MPI_SUM = 0x58000003;
const MPI_ERRORS_RETURN = 0x54000001;
const MPI_THREAD_MULTIPLE = 3;
const MPI_MAX_ERROR_STRING = 512;
const MPI_ANY_SOURCE = -2;
/** Tag of the point-to-point notices ranks send rank 0 (failures), apart from collectives. */
const NOTICE_TAG = 7321;
const NOTICE_BYTES = 65536;

const SYMBOLS = {
  MPI_Initialized: { parameters: ["buffer"], result: "i32" },
  MPI_Finalized: { parameters: ["buffer"], result: "i32" },
  MPI_Init_thread: { parameters: ["pointer", "pointer", "i32", "buffer"], result: "i32" },
  MPI_Comm_rank: { parameters: ["i32", "buffer"], result: "i32" },
  MPI_Comm_size: { parameters: ["i32", "buffer"], result: "i32" },
  MPI_Comm_set_errhandler: { parameters: ["i32", "i32"], result: "i32" },
  MPI_Error_string: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  MPI_Get_library_version: { parameters: ["buffer", "buffer"], result: "i32" },
  MPI_Abort: { parameters: ["i32", "i32"], result: "i32" },
  MPI_Finalize: { parameters: [], result: "i32" },
  MPI_Allreduce: {
    parameters: ["buffer", "buffer", "i32", "i32", "i32", "i32"],
    result: "i32",
    nonblocking: true,
  },
  MPI_Allgather: {
    parameters: ["buffer", "i32", "i32", "buffer", "i32", "i32", "i32"],
    result: "i32",
    nonblocking: true,
  },
  MPI_Allgatherv: {
    parameters: ["buffer", "i32", "i32", "buffer", "buffer", "buffer", "i32", "i32"],
    result: "i32",
    nonblocking: true,
  },
  MPI_Bcast: {
    parameters: ["buffer", "i32", "i32", "i32", "i32"],
    result: "i32",
    nonblocking: true,
  },
  MPI_Barrier: { parameters: ["i32"], result: "i32", nonblocking: true },
  MPI_Send: { parameters: ["buffer", "i32", "i32", "i32", "i32", "i32"], result: "i32" },
  MPI_Recv: {
    parameters: ["buffer", "i32", "i32", "i32", "i32", "i32", "buffer"],
    result: "i32",
    nonblocking: true,
  },
} as const satisfies Deno.ForeignLibraryInterface;

type MpiLibrary = Deno.DynamicLibrary<typeof SYMBOLS>;

/** Libraries tried in order when `IRFORGE_MPI_LIB` is unset (MPICH ABI). */
export const MPI_LIBRARY_CANDIDATES: readonly string[] = [
  "libmpich.so.12",
  "libmpi.so.12",
  "/usr/lib/x86_64-linux-gnu/libmpich.so.12",
  "/usr/lib/aarch64-linux-gnu/libmpich.so.12",
];

/** No usable MPI library; the message says what to install. */
export class MpiUnavailableError extends Error {
  /** `detail` says what was tried. */
  constructor(detail: string) {
    super(
      `MPI is not available (${detail}); install MPICH (Debian: apt-get install mpich) ` +
        `or point IRFORGE_MPI_LIB at an MPICH-ABI libmpi`,
    );
    this.name = "MpiUnavailableError";
  }
}

/** A collective that failed or did not finish within the watchdog's time. */
export class CollectiveError extends Error {
  /** Names the collective and the rank. */
  constructor(message: string) {
    super(message);
    this.name = "CollectiveError";
  }
}

let library: MpiLibrary | null = null;
let libraryPath = "";

function openLibrary(): MpiLibrary {
  if (library) return library;
  const named = Deno.env.get("IRFORGE_MPI_LIB");
  const candidates = named ? [named] : MPI_LIBRARY_CANDIDATES;
  const failures: string[] = [];
  for (const path of candidates) {
    let lib: MpiLibrary;
    try {
      lib = Deno.dlopen(path, SYMBOLS);
    } catch (e) {
      failures.push(`${path}: ${(e as Error).message.split("\n")[0]}`);
      continue;
    }
    const version = libraryVersion(lib);
    if (/open mpi/i.test(version)) {
      lib.close();
      throw new MpiUnavailableError(
        `${path} is Open MPI ("${version.split("\n")[0]}"), whose handles this binding cannot ` +
          `name`,
      );
    }
    library = lib;
    libraryPath = path;
    return lib;
  }
  throw new MpiUnavailableError(`tried ${failures.join("; ")}`);
}

function libraryVersion(lib: MpiLibrary): string {
  const text = new Uint8Array(8192);
  const length = new Int32Array(1);
  if (lib.symbols.MPI_Get_library_version(text, length) !== 0) return "";
  return new TextDecoder().decode(text.subarray(0, length[0]!)).trim();
}

/** Whether an MPI library this binding can use is installed (never initialises MPI). */
export function mpiAvailable(): boolean {
  try {
    openLibrary();
    return true;
  } catch {
    return false;
  }
}

/**
 * Whether this process was started by an MPI launcher (`mpirun`/`mpiexec`):
 * MPICH's Hydra sets `PMI_RANK`, Open MPI `OMPI_COMM_WORLD_RANK`, Slurm
 * `PMI_RANK`/`PMIX_RANK`.
 */
export function launchedByMpi(): boolean {
  return ["PMI_RANK", "PMIX_RANK", "OMPI_COMM_WORLD_RANK", "PMI_SIZE"].some((name) =>
    Deno.env.get(name) !== undefined
  );
}

/** Options of {@link Mpi.init}. */
export interface MpiOptions {
  /**
   * Seconds a collective may wait for the other ranks before this rank
   * reports the stall and aborts the whole job (default 1800, HF's
   * `ddp_timeout`). A rank computing a long step is "waited for" too, so
   * this bounds the slowest step, not the network.
   */
  timeoutSeconds?: number;
  /** Where a rank reports a stall or its own failure before aborting (default stderr). */
  report?: (line: string) => void;
}

/** `MPI_COMM_WORLD` of an initialised MPI process. */
export class Mpi implements Collective {
  /** This process's rank in `MPI_COMM_WORLD`. */
  readonly rank: number;
  /** Number of ranks. */
  readonly size: number;
  /** The MPI library that was opened. */
  readonly libraryPath: string;
  /** Seconds a collective may wait (see {@link MpiOptions.timeoutSeconds}). */
  timeoutSeconds: number;
  #lib: MpiLibrary;
  #report: (line: string) => void;
  #inFlight = false;
  #notices: Promise<void> | null = null;

  private constructor(lib: MpiLibrary, options: MpiOptions) {
    this.#lib = lib;
    this.libraryPath = libraryPath;
    this.timeoutSeconds = options.timeoutSeconds ?? 1800;
    this.#report = options.report ?? ((line) => console.error(line));
    const out = new Int32Array(1);
    this.#check(lib.symbols.MPI_Comm_rank(MPI_COMM_WORLD, out), "MPI_Comm_rank");
    this.rank = out[0]!;
    this.#check(lib.symbols.MPI_Comm_size(MPI_COMM_WORLD, out), "MPI_Comm_size");
    this.size = out[0]!;
  }

  /**
   * Initialises MPI once per process (`MPI_Init_thread` with
   * `MPI_THREAD_MULTIPLE`) and returns `MPI_COMM_WORLD`; later calls return
   * the same object. Errors are returned, not fatal (`MPI_ERRORS_RETURN`).
   *
   * @throws {MpiUnavailableError} when no MPICH-ABI library is installed.
   */
  static init(options: MpiOptions = {}): Mpi {
    if (world) {
      if (options.timeoutSeconds !== undefined) world.timeoutSeconds = options.timeoutSeconds;
      return world;
    }
    const lib = openLibrary();
    const flag = new Int32Array(1);
    lib.symbols.MPI_Initialized(flag);
    if (!flag[0]) {
      const provided = new Int32Array(1);
      const code = lib.symbols.MPI_Init_thread(null, null, MPI_THREAD_MULTIPLE, provided);
      if (code !== 0) throw new CollectiveError(`MPI_Init_thread failed (code ${code})`);
      if (provided[0]! < MPI_THREAD_MULTIPLE) {
        throw new CollectiveError(
          `MPI provides thread level ${provided[0]}, the binding needs MPI_THREAD_MULTIPLE (3)`,
        );
      }
    }
    lib.symbols.MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    world = new Mpi(lib, options);
    return world;
  }

  /** Element-wise sum of `values` over all ranks (a new array; `values` is unchanged). */
  async allreduceSum<T extends Float32Array | Float64Array>(values: T): Promise<T> {
    const out = new (values.constructor as { new (n: number): T })(values.length);
    const type = values instanceof Float64Array ? MPI_DOUBLE : MPI_FLOAT;
    await this.#collective(
      "MPI_Allreduce",
      this.#lib.symbols.MPI_Allreduce(values, out, values.length, type, MPI_SUM, MPI_COMM_WORLD),
    );
    return out;
  }

  /**
   * Concatenation over ranks (in rank order) of each rank's `values`; the
   * lengths may differ. Also returns where each rank's part starts.
   */
  async allgather(values: Float32Array): Promise<{ data: Float32Array; offsets: number[] }> {
    const mine = Int32Array.of(values.length);
    const counts = new Int32Array(this.size);
    await this.#collective(
      "MPI_Allgather",
      this.#lib.symbols.MPI_Allgather(mine, 1, MPI_INT, counts, 1, MPI_INT, MPI_COMM_WORLD),
    );
    const displs = new Int32Array(this.size);
    for (let r = 1; r < this.size; r++) displs[r] = displs[r - 1]! + counts[r - 1]!;
    const total = displs[this.size - 1]! + counts[this.size - 1]!;
    const data = new Float32Array(total);
    await this.#collective(
      "MPI_Allgatherv",
      this.#lib.symbols.MPI_Allgatherv(
        values,
        values.length,
        MPI_FLOAT,
        data,
        counts,
        displs,
        MPI_FLOAT,
        MPI_COMM_WORLD,
      ),
    );
    return { data, offsets: [...displs, total] };
  }

  /** `text` as rank `root` has it, on every rank. */
  async broadcastText(text: string, root = 0): Promise<string> {
    const bytes = new TextEncoder().encode(text);
    const length = Int32Array.of(bytes.length);
    await this.#collective(
      "MPI_Bcast",
      this.#lib.symbols.MPI_Bcast(length, 1, MPI_INT, root, MPI_COMM_WORLD),
    );
    const buffer = new Uint8Array(length[0]!);
    if (this.rank === root) buffer.set(bytes);
    await this.#collective(
      "MPI_Bcast",
      this.#lib.symbols.MPI_Bcast(buffer, buffer.length, MPI_BYTE, root, MPI_COMM_WORLD),
    );
    return new TextDecoder().decode(buffer);
  }

  /** Every rank's `text`, in rank order. */
  async allgatherText(text: string): Promise<string[]> {
    const bytes = new TextEncoder().encode(text);
    // Bytes travel as f32 values 0..255 (exact), so one allgather carries any length.
    const { data, offsets } = await this.allgather(Float32Array.from(bytes));
    const decoder = new TextDecoder();
    return Array.from(
      { length: this.size },
      (_, r) => decoder.decode(Uint8Array.from(data.subarray(offsets[r]!, offsets[r + 1]!))),
    );
  }

  /** Waits until every rank arrives. */
  async barrier(): Promise<void> {
    await this.#collective("MPI_Barrier", this.#lib.symbols.MPI_Barrier(MPI_COMM_WORLD));
  }

  /**
   * Receives notices (short texts other ranks send with {@link sendNotice})
   * on a helper thread while this rank computes or waits in collectives,
   * calling `onNotice(sourceRank, text)` for each, until {@link stopNotices}.
   */
  listenForNotices(onNotice: (rank: number, text: string) => void): void {
    if (this.#notices) return;
    const lib = this.#lib;
    const self = this.rank;
    this.#notices = (async () => {
      while (true) {
        const buffer = new Uint8Array(NOTICE_BYTES);
        const status = new Int32Array(5); // MPICH's MPI_Status: count_lo, …, MPI_SOURCE, …
        const code = await lib.symbols.MPI_Recv(
          buffer,
          NOTICE_BYTES,
          MPI_BYTE,
          MPI_ANY_SOURCE,
          NOTICE_TAG,
          MPI_COMM_WORLD,
          status,
        );
        if (code !== 0) return;
        const source = status[2]!, length = status[0]!;
        if (source === self && length === 0) return; // stopNotices
        onNotice(source, new TextDecoder().decode(buffer.subarray(0, length)));
      }
    })();
  }

  /** Sends `text` (≤ 64 KiB as UTF-8) to rank `dest`'s {@link listenForNotices}. */
  sendNotice(text: string, dest = 0): void {
    const bytes = new TextEncoder().encode(text).subarray(0, NOTICE_BYTES);
    this.#check(
      this.#lib.symbols.MPI_Send(bytes, bytes.length, MPI_BYTE, dest, NOTICE_TAG, MPI_COMM_WORLD),
      "MPI_Send",
    );
  }

  /** Ends {@link listenForNotices} (an empty notice to itself) and waits for its thread. */
  async stopNotices(): Promise<void> {
    if (!this.#notices) return;
    this.sendNotice("", this.rank);
    await this.#notices;
    this.#notices = null;
  }

  /**
   * Ends every rank of the job now (`MPI_Abort`): the launcher kills the
   * other processes. Prints `message` first, prefixed with this rank.
   */
  abort(message: string, code = 1): never {
    this.#report(`rank ${this.rank}/${this.size}: ${message}`);
    this.#lib.symbols.MPI_Abort(MPI_COMM_WORLD, code);
    // MPI_Abort does not return; if it did, leave anyway.
    Deno.exit(code);
  }

  /** Finalizes MPI if this process initialised it (no-op otherwise). */
  static finalizeIfInitialized(): void {
    world?.finalize();
  }

  /** `MPI_Finalize` (once, after the last collective). */
  finalize(): void {
    const flag = new Int32Array(1);
    this.#lib.symbols.MPI_Finalized(flag);
    if (!flag[0]) this.#lib.symbols.MPI_Finalize();
  }

  async #collective(name: string, call: Promise<number>): Promise<void> {
    if (this.#inFlight) {
      throw new CollectiveError(`rank ${this.rank}: ${name} started while another collective runs`);
    }
    this.#inFlight = true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const seconds = this.timeoutSeconds;
    const stalled = new Promise<never>(() => {
      timer = setTimeout(() => {
        this.abort(
          `${name} did not complete within ${seconds} s: another rank died, hung or is ` +
            `still computing (ddp_timeout); aborting the job`,
        );
      }, seconds * 1000);
    });
    try {
      const code = await Promise.race([call, stalled]);
      this.#check(code, name);
    } finally {
      clearTimeout(timer);
      this.#inFlight = false;
    }
  }

  #check(code: number, name: string): void {
    if (code === 0) return;
    const text = new Uint8Array(MPI_MAX_ERROR_STRING);
    const length = new Int32Array(1);
    this.#lib.symbols.MPI_Error_string(code, text, length);
    const message = new TextDecoder().decode(text.subarray(0, length[0]!));
    throw new CollectiveError(`rank ${this.rank}: ${name} failed: ${message} (code ${code})`);
  }
}

let world: Mpi | null = null;
