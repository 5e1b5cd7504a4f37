import assert from "node:assert/strict";
import { startServer } from "../server.ts";
import { startClient } from "../client.ts";
import { FatalError } from "../lib/cli.ts";
import { captureLog, REPLY, runDeno } from "./helpers.ts";

/** Runs `body` with an in-process echo server on port 0. */
async function withServer(
  keepAlive: boolean,
  body: (port: number) => Promise<void>,
): Promise<void> {
  const server = startServer({ port: 0, keepAlive, logger: captureLog().logger });
  try {
    await body(server.addr.port);
  } finally {
    await server.close();
  }
}

const client = (...args: string[]) => ["run", "-N", "client.ts", ...args];

Deno.test("client API: send() resolves to the reply; keep-alive reuses one connection", async () => {
  await withServer(true, async (port) => {
    const log = captureLog();
    const echo = startClient({ port, keepAlive: true, logger: log.logger });
    try {
      assert.match(await echo.send("one"), /: one$/);
      assert.match(await echo.send("two"), /: two$/);
      assert.equal(log.lines.filter((l) => l.includes("Connected to server")).length, 1);
    } finally {
      echo.close();
    }
  });
});

Deno.test("client CLI: one message prints the reply on stdout and exits 0", async () => {
  await withServer(false, async (port) => {
    const run = await runDeno(client("--port", String(port), "Hello, Server!"));
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, REPLY);
    assert.ok(run.stdout.endsWith(": Hello, Server!\n"));
    assert.equal(run.stdout.split("\n").length, 2);
    assert.equal(run.stderr, ""); // logs only with -v
  });
});

Deno.test("client CLI: -v logs connected, sent, received, closed to stderr", async () => {
  await withServer(false, async (port) => {
    const run = await runDeno(client("-v", "--port", String(port), "hi"));
    assert.equal(run.code, 0);
    for (
      const word of [
        "Connected to server",
        "Sent message: hi",
        "Received response",
        "Connection closed",
      ]
    ) {
      assert.ok(run.stderr.includes(word), word);
    }
    assert.match(run.stdout, /: hi\n$/);
  });
});

Deno.test("client CLI: piped stdin sends one message per line, one reply per line", async () => {
  for (const keepAlive of [false, true]) {
    await withServer(keepAlive, async (port) => {
      const args = keepAlive ? ["-k", "--port", String(port)] : ["--port", String(port)];
      const run = await runDeno(client(...args), { stdin: "a\nb\r\nc" });
      assert.equal(run.code, 0, run.stderr);
      const lines = run.stdout.trimEnd().split("\n");
      assert.deepEqual(lines.map((l) => l.replace(REPLY, "")), ["a", "b", "c"]);
    });
  }
});

Deno.test("client CLI: environment and .env are used only when permitted", async () => {
  await withServer(false, async (port) => {
    const env = { SERVER_PORT: String(port) };
    const allowed = await runDeno(
      ["run", "-N", "--allow-env=SERVER_HOST,SERVER_PORT", "client.ts", "x"],
      { env },
    );
    assert.equal(allowed.code, 0, allowed.stderr);
    // With -N only, SERVER_PORT is not read (and no prompt): the default port 8080 is used.
    const denied = await runDeno(client("--timeout", "1", "x"), { env: { SERVER_PORT: "1" } });
    assert.doesNotMatch(denied.stderr, /127\.0\.0\.1:1\b/);
    assert.doesNotMatch(denied.stderr, /prompt|Granted|Allow\?/i);
  });
});

Deno.test("client CLI: refused connection is one line with a hint, exit 1", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close(); // a port nobody listens on
  const run = await runDeno(client("--port", String(port), "hi"));
  assert.equal(run.code, 1);
  assert.equal(run.stderr.trim().split("\n").length, 1);
  assert.match(run.stderr, /connection refused.*deno task server/);
  assert.equal(run.stdout, "");
});

Deno.test("client CLI: unknown host is one line, exit 1", async () => {
  const run = await runDeno(client("--host", "no-such-host.invalid", "hi"));
  assert.equal(run.code, 1);
  assert.equal(run.stderr.trim().split("\n").length, 1);
  assert.match(run.stderr, /unknown host 'no-such-host\.invalid'/);
});

Deno.test("client CLI: a server that never answers times out after --timeout", async () => {
  // Accepts (the kernel completes the handshake) but never replies.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepted: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const conn of listener) accepted.push(conn);
  })();
  try {
    const started = Date.now();
    const run = await runDeno(
      client("--port", String(listener.addr.port), "--timeout", "0.5", "hi"),
    );
    assert.equal(run.code, 1);
    assert.match(run.stderr, /no reply from 127\.0\.0\.1:\d+ within 0\.5 s/);
    assert.equal(run.stderr.trim().split("\n").length, 1);
    assert.ok(Date.now() - started < 10000);
  } finally {
    listener.close();
    await accepting;
    accepted.forEach((c) => c.close());
  }
});

Deno.test("client CLI: no net permission is one line, exit 1, never a prompt", async () => {
  const run = await runDeno(["run", "client.ts", "hi"]);
  assert.equal(run.code, 1);
  assert.match(run.stderr, /^client\.ts: no permission to connect to .*--allow-net/);
  assert.equal(run.stderr.trim().split("\n").length, 1);
});

Deno.test("client CLI: an ERROR reply is printed and the exit status is 1", async () => {
  const server = startServer({ port: 0, maxBytes: 4, logger: captureLog().logger });
  try {
    const run = await runDeno(client("--port", String(server.addr.port), "too long"));
    assert.equal(run.code, 1);
    assert.equal(run.stdout, "ERROR message too long (max 4 bytes)\n");
  } finally {
    await server.close();
  }
});

Deno.test("client CLI: bad flags exit 2", async () => {
  for (const args of [["--port", "abc"], ["--timeout", "soon"], ["--what"]]) {
    const run = await runDeno(client(...args, "hi"));
    assert.equal(run.code, 2, args.join(" "));
    assert.match(run.stderr, /^client\.ts: .*\(see --help\)\n$/);
  }
});

Deno.test("client API: a refused connection is a FatalError", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  const echo = startClient({ port });
  await assert.rejects(echo.send("x"), FatalError);
  echo.close();
});
