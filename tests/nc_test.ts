/** The echo server driven by the system `nc` (netcat-openbsd), as people use it. */
import assert from "node:assert/strict";
import { startServer } from "../server.ts";
import { captureLog, haveTool, onIpv6Loopback, REPLY, runTool } from "./helpers.ts";

const hasNc = haveTool("nc");

Deno.test({
  name: "nc: `echo hi | nc` gets the reply and returns at once",
  ignore: !hasNc,
  async fn() {
    const server = startServer({ port: 0, logger: captureLog().logger });
    try {
      const started = Date.now();
      const run = await runTool("nc", ["127.0.0.1", String(server.addr.port)], "hi\n");
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stdout, REPLY);
      assert.ok(run.stdout.endsWith(": hi\n"));
      assert.ok(Date.now() - started < 2000, "nc should return as soon as the server closes");
    } finally {
      await server.close();
    }
  },
});

Deno.test({
  name: "nc: keep-alive answers every line, then closes when nc shuts down (-N)",
  ignore: !hasNc,
  async fn() {
    const server = startServer({ port: 0, keepAlive: true, logger: captureLog().logger });
    try {
      const run = await runTool("nc", ["-N", "127.0.0.1", String(server.addr.port)], "a\nb\nc\n");
      assert.equal(run.code, 0, run.stderr);
      assert.deepEqual(
        run.stdout.trimEnd().split("\n").map((l) => l.replace(REPLY, "")),
        ["a", "b", "c"],
      );
    } finally {
      await server.close();
    }
  },
});

Deno.test({
  name: "nc: a message without a newline is answered (end of stream)",
  ignore: !hasNc,
  async fn() {
    const server = startServer({ port: 0, flushMs: 60000, logger: captureLog().logger });
    try {
      const run = await runTool("nc", ["-N", "127.0.0.1", String(server.addr.port)], "no newline");
      assert.ok(run.stdout.endsWith(": no newline\n"), run.stdout);
    } finally {
      await server.close();
    }
  },
});

Deno.test({
  name: "nc: over IPv6",
  ignore: !hasNc,
  async fn() {
    const server = onIpv6Loopback(() =>
      startServer({ host: "::1", port: 0, logger: captureLog().logger })
    );
    if (!server) return;
    try {
      const run = await runTool("nc", ["-6", "::1", String(server.addr.port)], "v6\n");
      assert.ok(run.stdout.endsWith(": v6\n"), run.stdout);
    } finally {
      await server.close();
    }
  },
});
