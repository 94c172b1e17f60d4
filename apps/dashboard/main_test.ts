import assert from "node:assert/strict";
import { resolve } from "node:path";
import { parseDashboardArgs } from "./main.ts";

Deno.test("parseDashboardArgs: defaults bind loopback on 8787 over runs/", () => {
  assert.deepEqual(parseDashboardArgs([]), {
    runs: resolve("runs"),
    port: 8787,
    host: "127.0.0.1",
  });
  assert.deepEqual(parseDashboardArgs(["--runs", "/tmp/r", "--port", "0", "--host", "0.0.0.0"]), {
    runs: "/tmp/r",
    port: 0,
    host: "0.0.0.0",
  });
  assert.equal(parseDashboardArgs(["--help"]), "help");
});

Deno.test("parseDashboardArgs rejects bad values", () => {
  assert.throws(() => parseDashboardArgs(["--port", "http"]), /--port: expected an integer/);
  assert.throws(() => parseDashboardArgs(["--port", "70000"]), /--port/);
  assert.throws(() => parseDashboardArgs(["--bogus"]), /bogus/);
  assert.throws(() => parseDashboardArgs(["extra"]), /extra/);
});

/** Sends a GET exactly as written (no URL normalisation) and returns the raw answer. */
async function rawGet(port: number, path: string, host: string): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const request = `GET ${path} HTTP/1.1\r\nHost: ${host}:${port}\r\nConnection: close\r\n\r\n`;
  await conn.write(new TextEncoder().encode(request));
  return new TextDecoder().decode(await new Response(conn.readable).arrayBuffer());
}

Deno.test("main.ts serves on loopback and prints the URL", async () => {
  const runs = await Deno.makeTempDir();
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL("./main.ts", import.meta.url).pathname,
      "--runs",
      runs,
      "--port",
      "0",
    ],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  try {
    while (!/http:\/\/[^ ]+\//.test(out)) {
      const { value, done } = await reader.read();
      if (done) break;
      out += value;
    }
    const url = /http:\/\/([^ ]+)\//.exec(out)?.[0];
    assert.ok(url, `no URL in ${JSON.stringify(out)}`);
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
    const response = await fetch(`${url}api/runs`);
    assert.deepEqual(await response.json(), { runs: [] });
    const port = Number(new URL(url).port);
    // A page asked for under a foreign Host name (DNS rebinding) is refused.
    assert.match(await rawGet(port, "/api/runs", "evil.example"), /^HTTP\/1\.1 403/);
    // Dot segments sent as is (no client-side URL normalisation) are refused.
    const dotted = [
      "/api/runs/../../etc/passwd",
      "/api/runs/%2e%2e/%2e%2e/etc/passwd",
      "/static/../main.ts",
    ];
    for (const path of dotted) {
      assert.match(await rawGet(port, path, "127.0.0.1"), /^HTTP\/1\.1 400/, path);
    }
  } finally {
    await reader.cancel();
    child.kill("SIGTERM");
    await child.status;
    await child.stderr.cancel();
  }
});

Deno.test("dashboard: a port in use is one sentence and exit 1, not a stack trace", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  try {
    const main = new URL("./main.ts", import.meta.url).pathname;
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", main, "--port", String(port), "--runs", Deno.cwd()],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 1);
    assert.equal(
      stderr,
      `error: port ${port} on 127.0.0.1 is already in use; pick another with --port N ` +
        `(--port 0 picks a free one)\n`,
    );
  } finally {
    listener.close();
  }
});
