/**
 * `deno task dashboard [--runs DIR] [--port 8787] [--host 127.0.0.1]`:
 * serves the training dashboard for the runs in DIR (default `runs/`).
 * Binds loopback unless `--host` names another address.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { resolve } from "node:path";
import { createApp } from "./app.ts";

const USAGE = `Usage: deno task dashboard [--runs DIR] [--port 8787] [--host 127.0.0.1]

  --runs DIR    runs directory to show (default: runs/ in the current directory)
  --port N      TCP port (default 8787; 0 picks a free one)
  --host ADDR   address to bind (default 127.0.0.1, loopback only)
  --help        show this help`;

const LOOPBACK = new Set(["127.0.0.1", "localhost", "::1", "[::1]"]);

/** Parsed command line. */
export interface DashboardArgs {
  /** Runs directory (absolute). */
  runs: string;
  /** Port to listen on. */
  port: number;
  /** Address to bind. */
  host: string;
}

/** Parses the command line; throws an `Error` with a usage hint when it is wrong. */
export function parseDashboardArgs(args: string[]): DashboardArgs | "help" {
  const { values } = parseArgs({
    args,
    options: {
      runs: { type: "string", default: "runs" },
      port: { type: "string", default: "8787" },
      host: { type: "string", default: "127.0.0.1" },
      help: { type: "boolean", default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) return "help";
  const port = Number(values.port);
  if (!/^\d+$/.test(values.port) || port > 65535) {
    throw new Error(
      `--port: expected an integer from 0 to 65535, got ${JSON.stringify(values.port)}`,
    );
  }
  if (values.host === "") throw new Error("--host: expected an address");
  return { runs: resolve(values.runs), port, host: values.host };
}

if (import.meta.main) {
  let parsed: DashboardArgs | "help";
  try {
    parsed = parseDashboardArgs(Deno.args);
  } catch (error) {
    console.error(`error: ${(error as Error).message}\n\n${USAGE}`);
    Deno.exit(2);
  }
  if (parsed === "help") {
    console.log(USAGE);
    Deno.exit(0);
  }
  const { runs, port, host } = parsed;
  const loopback = LOOPBACK.has(host);
  const app = createApp(runs, {
    allowedHosts: loopback ? ["127.0.0.1", "localhost", "[::1]"] : undefined,
  });
  try {
    if (!(await Deno.stat(runs)).isDirectory) {
      console.error(`warning: ${runs} is not a directory; the runs list will stay empty`);
    }
  } catch {
    console.error(`warning: ${runs} does not exist yet; runs will show up once it does`);
  }
  if (!loopback) {
    console.error(
      `warning: binding ${host}: anyone who can reach this address can read the runs`,
    );
  }
  try {
    Deno.serve({
      hostname: host.replace(/^\[|\]$/g, ""),
      port,
      onListen: ({ hostname, port }) => {
        const shown = hostname.includes(":") ? `[${hostname}]` : hostname;
        console.log(`irforge dashboard: http://${shown}:${port}/  (runs: ${runs})`);
      },
    }, app.fetch);
  } catch (error) {
    if (error instanceof Deno.errors.AddrInUse) {
      console.error(
        `error: port ${port} on ${host} is already in use; pick another with --port N ` +
          `(--port 0 picks a free one)`,
      );
    } else if (error instanceof Deno.errors.AddrNotAvailable) {
      console.error(`error: cannot listen on ${host}: no such local address (--host)`);
    } else if (error instanceof Deno.errors.PermissionDenied) {
      console.error(`error: not allowed to listen on port ${port} (ports below 1024 need root)`);
    } else throw error;
    Deno.exit(1);
  }
}
