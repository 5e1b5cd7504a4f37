import assert from "node:assert/strict";
import { type EchoServerOptions, replyLine, startServer } from "../server.ts";
import { captureLog, LineClient, onIpv6Loopback, REPLY, Spawned, withTimeout } from "./helpers.ts";

/** Runs `body` against a fresh in-process server on port 0, always closing it. */
async function withServer(
  options: EchoServerOptions,
  body: (addr: Deno.NetAddr, log: ReturnType<typeof captureLog>) => Promise<void>,
): Promise<void> {
  const log = captureLog();
  const server = startServer({ port: 0, ...options, logger: log.logger });
  try {
    await body(server.addr, log);
  } finally {
    await server.close();
  }
}

Deno.test("echo: reply format and local time", () => {
  const date = new Date(2025, 9, 1, 14, 30, 25);
  assert.equal(
    replyLine("Hello, World!", date),
    "Server received at 2025-10-01 14:30:25: Hello, World!\n",
  );
});

Deno.test("echo: one message per connection by default, then the server closes", async () => {
  await withServer({}, async (addr, log) => {
    const client = await LineClient.connect(addr);
    try {
      await client.send("Hello, World!\nsecond\n");
      const lines = await client.readToEnd();
      assert.equal(lines.length, 1);
      assert.match(lines[0], REPLY);
      assert.ok(lines[0].endsWith(": Hello, World!"));
    } finally {
      client.close();
    }
    await log.waitFor(/Connection closed with 127\.0\.0\.1:\d+$/);
    for (
      const pattern of [
        /Server bound to 127\.0\.0\.1:\d+/,
        /Connection established with/,
        /Received from 127\.0\.0\.1:\d+: Hello, World!/,
        /Sent response to/,
      ]
    ) {
      assert.ok(log.lines.some((line) => pattern.test(line)), String(pattern));
    }
  });
});

Deno.test("echo: --keep-alive answers every message until the client closes", async () => {
  await withServer({ keepAlive: true }, async (addr) => {
    const client = await LineClient.connect(addr);
    try {
      await client.send("one\r\ntwo\n");
      assert.ok((await client.readLine())?.endsWith(": one"));
      assert.ok((await client.readLine())?.endsWith(": two"));
      await client.send("three\n");
      assert.ok((await client.readLine())?.endsWith(": three"));
      await client.conn.closeWrite();
      assert.equal(await client.readLine(), null);
    } finally {
      client.close();
    }
  });
});

Deno.test("echo: 200 concurrent clients each get their own reply", async () => {
  await withServer({ maxPerAddress: 0 }, async (addr) => {
    const results = await Promise.all(
      Array.from({ length: 200 }, async (_, i) => {
        const client = await LineClient.connect(addr);
        try {
          await client.send(`client ${i} says ${"x".repeat(i)}\n`);
          return await client.readLine(10000);
        } finally {
          client.close();
        }
      }),
    );
    results.forEach((reply, i) => {
      assert.match(reply ?? "", REPLY);
      assert.ok(reply?.endsWith(`: client ${i} says ${"x".repeat(i)}`), `client ${i}: ${reply}`);
    });
  });
});

Deno.test("echo: half-close ends an unterminated message", async () => {
  await withServer({ flushMs: 60000 }, async (addr) => {
    const client = await LineClient.connect(addr);
    try {
      await client.send("no newline");
      await client.conn.closeWrite();
      const lines = await client.readToEnd();
      assert.equal(lines.length, 1);
      assert.ok(lines[0].endsWith(": no newline"));
    } finally {
      client.close();
    }
  });
});

Deno.test("echo: the classic sendall-then-recv client is answered after --flush-ms", async () => {
  await withServer({ flushMs: 50 }, async (addr) => {
    const client = await LineClient.connect(addr);
    try {
      await client.send("Hello");
      const reply = await client.readLine(2000);
      assert.ok(reply?.endsWith(": Hello"), String(reply));
    } finally {
      client.close();
    }
  });
});

Deno.test("echo: a message split across writes and multi-byte text arrive whole", async () => {
  await withServer({ keepAlive: true, flushMs: 60000 }, async (addr) => {
    const client = await LineClient.connect(addr);
    try {
      const bytes = new TextEncoder().encode("naïve café 🎉\n");
      for (const byte of bytes) await client.send(Uint8Array.of(byte));
      assert.ok((await client.readLine())?.endsWith(": naïve café 🎉"));
      await client.send(Uint8Array.of(0x62, 0xff, 0x0a));
      assert.ok((await client.readLine())?.endsWith(": b\ufffd"));
    } finally {
      client.close();
    }
  });
});

Deno.test("echo: an oversize message gets the error line and the connection closes", async () => {
  await withServer({ maxBytes: 1000 }, async (addr, log) => {
    const client = await LineClient.connect(addr);
    try {
      await client.send("a".repeat(1000) + "\n");
      assert.ok((await client.readToEnd())[0].endsWith("a".repeat(1000)));
    } finally {
      client.close();
    }
    const big = await LineClient.connect(addr);
    try {
      // Far more than the limit and no newline: the server must answer without buffering it.
      const sending = big.send("b".repeat(2_000_000)).catch(() => {});
      assert.deepEqual(await big.readToEnd(), ["ERROR message too long (max 1000 bytes)"]);
      await sending;
    } finally {
      big.close();
    }
    await log.waitFor(/longer than 1000 bytes/);
  });
});

Deno.test("echo: the connection over --max-connections is told the server is busy", async () => {
  await withServer({ maxConnections: 2, keepAlive: true }, async (addr, log) => {
    const first = await LineClient.connect(addr);
    const second = await LineClient.connect(addr);
    try {
      await log.waitFor(/established/);
      await first.send("1\n");
      await second.send("2\n");
      await first.readLine();
      await second.readLine();
      const third = await LineClient.connect(addr);
      try {
        assert.deepEqual(await third.readToEnd(), ["ERROR server busy"]);
      } finally {
        third.close();
      }
      // The two served clients are unaffected.
      await first.send("still here\n");
      assert.ok((await first.readLine())?.endsWith(": still here"));
    } finally {
      first.close();
      second.close();
    }
  });
});

Deno.test("echo: idle connections are closed after --idle-timeout", async () => {
  await withServer({ idleTimeout: 0.2, keepAlive: true }, async (addr, log) => {
    const client = await LineClient.connect(addr);
    try {
      const started = Date.now();
      assert.deepEqual(await client.readToEnd(3000), ["ERROR idle timeout"]);
      assert.ok(Date.now() - started >= 150);
    } finally {
      client.close();
    }
    await log.waitFor(/Connection closed with .* \(idle timeout\)/);
  });
});

Deno.test("echo: IPv6 loopback works", async () => {
  const server = onIpv6Loopback(() =>
    startServer({ host: "::1", port: 0, logger: captureLog().logger })
  );
  if (!server) return;
  try {
    assert.equal(server.addr.hostname, "::1");
    const client = await LineClient.connect(server.addr);
    try {
      await client.send("v6\n");
      assert.ok((await client.readLine())?.endsWith(": v6"));
    } finally {
      client.close();
    }
  } finally {
    await server.close();
  }
});

Deno.test("echo: close() lets a waiting client see a clean end and counts served connections", async () => {
  const log = captureLog();
  const server = startServer({ port: 0, keepAlive: true, logger: log.logger });
  const client = await LineClient.connect(server.addr);
  try {
    await client.send("before\n");
    await client.readLine();
    const closing = server.close();
    assert.equal(await client.readLine(), null); // FIN, not a reset
    client.close();
    await withTimeout(closing, 3000, "close()");
    assert.equal(server.served, 1);
    assert.equal(server.active, 0);
  } finally {
    client.close();
    await server.close();
  }
});

Deno.test("echo CLI: SIGTERM with clients connected stops within 2 s, logs the count, exits 0", async () => {
  const server = new Spawned(["run", "-N", "server.ts", "--port", "0", "--keep-alive"]);
  const port = await server.port();
  const clients = await Promise.all(
    [1, 2, 3].map(() => LineClient.connect({ transport: "tcp", hostname: "127.0.0.1", port })),
  );
  try {
    for (const client of clients) await client.send("hi\n");
    for (const client of clients) assert.match(await client.readLine() ?? "", REPLY);
    const started = Date.now();
    server.child.kill("SIGTERM");
    const status = await server.exit(5000);
    assert.equal(status.code, 0);
    assert.ok(Date.now() - started < 3000);
    assert.ok(server.stderrLines.some((l) => /stopped after serving 3 connection/.test(l)));
    for (const client of clients) assert.equal(await client.readLine(), null);
  } finally {
    clients.forEach((c) => c.close());
  }
});

Deno.test("echo CLI: port in use is one line with a hint, exit 1", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const server = new Spawned(["run", "-N", "server.ts", "--port", String(listener.addr.port)]);
    const status = await server.exit();
    assert.equal(status.code, 1);
    assert.equal(server.stderrLines.filter(Boolean).length, 1);
    assert.match(server.stderrLines[0], /already in use.*--port/);
  } finally {
    listener.close();
  }
});

Deno.test("echo CLI: bad flags exit 2 with one line; --help and --version exit 0", async () => {
  for (
    const args of [["--port", "abc"], ["--port", "70000"], ["--nope"], ["--log-level", "loud"]]
  ) {
    const run = new Spawned(["run", "-N", "server.ts", ...args]);
    const status = await run.exit();
    assert.equal(status.code, 2, args.join(" "));
    assert.equal(run.stderrLines.filter(Boolean).length, 1, run.stderrLines.join("\n"));
    assert.match(run.stderrLines[0], /^server\.ts: .*\(see --help\)$/);
  }
  const help = new Spawned(["run", "-N", "server.ts", "--help"]);
  assert.equal((await help.exit()).code, 0);
  assert.ok(help.stdoutLines.some((l) => l.includes("--keep-alive")));
  const version = new Spawned(["run", "-N", "server.ts", "--version"]);
  assert.equal((await version.exit()).code, 0);
  assert.match(version.stdoutLines[0], /^server\.ts \d+\.\d+\.\d+$/);
});

Deno.test("echo CLI: control characters in messages are escaped in the log", async () => {
  const server = new Spawned(["run", "-N", "server.ts", "--port", "0"]);
  try {
    const port = await server.port();
    const client = await LineClient.connect({ transport: "tcp", hostname: "127.0.0.1", port });
    try {
      await client.send("evil \x1b[2J\x1b]0;pwned\x07 \u202e done\n");
      await client.readToEnd();
    } finally {
      client.close();
    }
    const line = await server.waitFor(/Received from/);
    // deno-lint-ignore no-control-regex -- asserting that none are left
    assert.ok(!/[\x00-\x08\x0b-\x1f\x7f]/.test(line), JSON.stringify(line));
    assert.ok(line.includes("\\x1b[2J\\x1b]0;pwned\\x07 \\u202e done"), line);
  } finally {
    server.child.kill("SIGTERM");
    await server.exit();
  }
});

Deno.test("echo CLI: SIGTERM mid-message answers the message before closing", async () => {
  const server = new Spawned(["run", "-N", "server.ts", "--port", "0", "-k", "--flush-ms", "300"]);
  const port = await server.port();
  const client = await LineClient.connect({ transport: "tcp", hostname: "127.0.0.1", port });
  try {
    await client.send("first\npartial");
    assert.ok((await client.readLine())?.endsWith(": first"));
    server.child.kill("SIGTERM");
    assert.ok((await client.readLine())?.endsWith(": partial"));
    assert.equal(await client.readLine(), null);
    assert.equal((await server.exit()).code, 0);
  } finally {
    client.close();
  }
});
