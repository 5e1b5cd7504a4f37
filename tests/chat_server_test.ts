/**
 * The chat server over real TCP (in-process, port 0), the `chat_server.ts` and
 * `chat_client.ts` command lines as subprocesses.
 */
import assert from "node:assert/strict";
import { writeAll } from "../lib/io.ts";
import { LineClient, runDeno, Spawned, withTimeout } from "./helpers.ts";
import { type Chatter, withChat } from "./chat_fixture.ts";

const encoder = new TextEncoder();
const SHUTDOWN = "* Server is shutting down. Goodbye!";

/** Reads `n` lines. */
async function readLines(client: LineClient, n: number, timeoutMs = 5000): Promise<string[]> {
  const lines: string[] = [];
  for (let i = 0; i < n; i++) {
    const line = await client.readLine(timeoutMs);
    if (line === null) throw new Error(`end of stream after ${JSON.stringify(lines)}`);
    lines.push(line);
  }
  return lines;
}

Deno.test("chat TCP: welcome, join/leave notices, messages reach the others only, bye closes", async () => {
  await withChat({}, async ({ connect, join }) => {
    const first = await connect();
    const welcome = await first.readLine() ?? "";
    assert.match(welcome, /^\* Welcome to the chat, guest-1!/);
    assert.ok(welcome.includes("/help") && /\bbye\b/.test(welcome), welcome);
    assert.equal(await first.readLine(), "* You are the only one here.");
    const a: Chatter = { client: first, name: "guest-1" };

    const b = await join([a]);
    const c = await join([a, b]);
    assert.deepEqual([b.name, c.name], ["guest-2", "guest-3"]);

    await a.client.send("hello, room\n");
    assert.equal(await b.client.readLine(), "guest-1: hello, room");
    assert.equal(await c.client.readLine(), "guest-1: hello, room");
    // The sender is not echoed: the next thing it reads is the reply to its next command.
    await a.client.send("/who\n");
    assert.equal(await a.client.readLine(), "* 3 here: guest-1 (you), guest-2, guest-3");

    await c.client.send("bye\n");
    assert.deepEqual(await c.client.readToEnd(), ["* Goodbye, guest-3!"]);
    assert.equal(await a.client.readLine(), "* guest-3 left");
    assert.equal(await b.client.readLine(), "* guest-3 left");

    // Dropping the connection without a word.
    b.client.close();
    assert.equal(await a.client.readLine(), "* guest-2 disconnected");
    await a.client.send("/who\n");
    assert.equal(await a.client.readLine(), "* 1 here: guest-1 (you)");
  });
});

Deno.test("chat TCP: lines from several clients reach everyone in one global order", async () => {
  await withChat({ rate: 0 }, async ({ join }) => {
    const listener = await join();
    const senders: Chatter[] = [];
    for (let i = 0; i < 3; i++) senders.push(await join([listener, ...senders]));
    const perSender = 50;
    // Each sender writes its lines one write at a time, all three at once.
    await Promise.all(senders.map(async (s) => {
      for (let i = 0; i < perSender; i++) await s.client.send(`${s.name} line ${i}\n`);
    }));
    const order = await readLines(listener.client, senders.length * perSender);
    // Each sender's own lines are in its order.
    for (const s of senders) {
      const own = order.filter((line) => line.startsWith(`${s.name}: `));
      assert.deepEqual(
        own,
        Array.from({ length: perSender }, (_, i) => `${s.name}: ${s.name} line ${i}`),
      );
    }
    // Everyone else saw exactly the listener's order, minus their own lines.
    for (const s of senders) {
      const got = await readLines(s.client, (senders.length - 1) * perSender);
      assert.deepEqual(got, order.filter((line) => !line.startsWith(`${s.name}: `)), s.name);
    }
  });
});

Deno.test("chat TCP: with --max-clients 1 the second client is told the server is full", async () => {
  await withChat({ maxClients: 1 }, async ({ connect, join, log }) => {
    const a = await join();
    const second = await connect();
    assert.deepEqual(await second.readToEnd(), ["* server full, try again later"]);
    await log.waitFor(/WARN .*Refused 127\.0\.0\.1:\d+: room full/);
    // The first is unaffected and heard nothing about it.
    await a.client.send("/who\n");
    assert.equal(await a.client.readLine(), "* 1 here: guest-1 (you)");
  });
});

Deno.test("chat TCP: an over-long line is refused with a notice; the connection stays usable", async () => {
  await withChat({ maxLine: 64 }, async ({ join, log }) => {
    const a = await join();
    const b = await join([a]);
    await a.client.send("x".repeat(100) + "\nshort one\n");
    assert.equal(await a.client.readLine(), "* line too long (max 64 bytes); it was not sent");
    assert.equal(await b.client.readLine(), "guest-1: short one");
    // Long lines arriving in pieces, with and without a newline in the same write.
    await a.client.send("y".repeat(50));
    await a.client.send("y".repeat(50));
    await a.client.send("y".repeat(50) + "\n" + "z".repeat(64) + "\n");
    assert.equal(await a.client.readLine(), "* line too long (max 64 bytes); it was not sent");
    assert.equal(await b.client.readLine(), `guest-1: ${"z".repeat(64)}`);
    await log.waitFor(/WARN .*Over-long line from guest-1/);
  });
});

Deno.test("chat TCP: escape sequences and control characters arrive stripped", async () => {
  await withChat({}, async ({ join }) => {
    const a = await join();
    const b = await join([a]);
    const evil = "a\x1b[31mred\x1b[0m b\x1b]52;c;ZXZpbA==\x07c \x1b]0;title\x1b\\d \u009b31me " +
      "f\x00g h\ri j\x07k \u202eevil\ttab é 中文 🎉\n";
    await a.client.send(evil);
    const got = await b.client.readLine() ?? "";
    assert.equal(got, "guest-1: ared bc d e fg hi jk evil\ttab é 中文 🎉");
    // deno-lint-ignore no-control-regex -- asserting that none are left
    assert.ok(!/[\x00-\x08\x0a-\x1f\x7f-\x9f\u202a-\u202e]/.test(got), JSON.stringify(got));
    // Raw bytes that are not UTF-8 (a bare 8-bit CSI, 0x9b) become U+FFFD, not a control.
    await a.client.send(Uint8Array.of(0x68, 0x9b, 0x32, 0x4a, 0x69, 0x0a));
    assert.equal(await b.client.readLine(), "guest-1: h\ufffd2Ji");
  });
});

Deno.test("chat TCP: telnet-style \\r\\n line endings work", async () => {
  await withChat({}, async ({ join }) => {
    const a = await join();
    const b = await join([a]);
    await a.client.send("hello\r\n/nick tel\r\n/who\r\n");
    assert.equal(await b.client.readLine(), "guest-1: hello");
    assert.equal(await b.client.readLine(), "* guest-1 is now known as tel");
    assert.equal(await a.client.readLine(), "* you are now known as tel");
    assert.equal(await a.client.readLine(), "* 2 here: tel (you), guest-2");
    await a.client.send("BYE \r\n");
    assert.deepEqual(await a.client.readToEnd(), ["* Goodbye, tel!"]);
    assert.equal(await b.client.readLine(), "* tel left");
  });
});

Deno.test("chat TCP: a flood of 100 lines in one write delivers the burst of 20", async () => {
  await withChat({ rate: 10, burst: 20 }, async ({ join, log }) => {
    const receiver = await join();
    const flooder = await join([receiver]);
    const marker = await join([receiver, flooder]);
    const flood = Array.from({ length: 100 }, (_, i) => `f${String(i).padStart(2, "0")}\n`);
    await flooder.client.send(flood.join(""));
    const warned = await flooder.client.readLine();
    assert.match(warned ?? "", /^\* slow down: at most 10 lines per second/);
    // Everything the flood delivered is ahead of a line sent after it.
    await marker.client.send("marker\n");
    const got = await receiver.client.readUntil(/^guest-3: marker$/);
    assert.deepEqual(
      got.slice(0, -1),
      flood.slice(0, 20).map((line) => `guest-2: ${line.trimEnd()}`),
    );
    // Warned once only.
    assert.equal(await flooder.client.readLine(), "guest-3: marker");
    await log.waitFor(/WARN .*Flood from guest-2/);
  });
});

Deno.test("chat TCP: a client that stops reading is dropped; the others keep up", async () => {
  const started = performance.now();
  // Lines near --max-line and a small --max-queue, so the non-reader overflows soon even
  // though the kernel's socket buffers take a few MB first.
  const maxLine = 16 * 1024;
  await withChat(
    { rate: 0, maxLine, maxQueue: 64 * 1024 },
    async ({ connect, join, log }) => {
      const reader = await join();
      const talker = await join([reader]);
      // The non-reader never reads a byte (until the end of the test), not even its welcome.
      const nonReader = await connect();
      assert.equal(await reader.client.readLine(), "* guest-3 joined");
      assert.equal(await talker.client.readLine(), "* guest-3 joined");

      const padding = "x".repeat(maxLine - 100);
      let sent = 0;
      let stop = false;
      // Load, not synchronisation: about 200 lines per second.
      const sending = (async () => {
        while (!stop) {
          await talker.client.send(`${sent++} ${performance.now().toFixed(1)} ${padding}\n`);
          await new Promise((resolve) => setTimeout(resolve, 5));
        }
      })();
      let received = 0;
      let worst = 0;
      const reading = (async () => {
        while (true) {
          const line = await reader.client.readLine(10000);
          assert.ok(line !== null, "the reader's connection ended");
          const m = line.match(/^guest-2: (\d+) ([\d.]+) x+$/);
          if (!m) return line;
          assert.equal(Number(m[1]), received++, "lines in order, none lost");
          worst = Math.max(worst, performance.now() - Number(m[2]));
        }
      })();
      reading.catch(() => {}); // awaited below; this only keeps an early failure handled
      let notice: string;
      try {
        notice = await withTimeout(reading, 25000, "the others to hear the non-reader was dropped");
      } finally {
        stop = true;
        await sending;
      }
      assert.equal(notice, "* guest-3 was disconnected (not reading fast enough)");
      await log.waitFor(/WARN .*stopped reading \(over 65536 bytes queued\); disconnected/, 1000);
      assert.ok(received > 0 && sent >= received);
      assert.ok(worst < 1000, `a line took ${worst.toFixed(0)} ms to reach a reader`);
      // The room goes on.
      await talker.client.send("still here\n");
      const rest = await reader.client.readUntil(/^guest-2: still here$/);
      for (const line of rest.slice(0, -1)) assert.match(line, /^guest-2: \d+ [\d.]+ x+$/);
      // The non-reader's connection was ended (after what the kernel had buffered).
      const backlog = await nonReader.readToEnd(10000);
      assert.match(backlog[0], /^\* Welcome to the chat, guest-3!/);
      assert.ok(!backlog.includes("guest-2: still here"));
    },
  );
  const seconds = (performance.now() - started) / 1000;
  assert.ok(seconds < 30, `took ${seconds.toFixed(1)} s`);
});

Deno.test("chat TCP: close() tells every client, then ends each connection", async () => {
  await withChat({}, async ({ server, join }) => {
    const people: Chatter[] = [];
    for (let i = 0; i < 3; i++) people.push(await join(people));
    const started = performance.now();
    const closing = server.close();
    for (const p of people) assert.deepEqual(await p.client.readToEnd(3000), [SHUTDOWN]);
    for (const p of people) p.client.close();
    await withTimeout(closing, 3000, "server.close()");
    assert.ok(performance.now() - started < 2000, "close() should not wait out its grace");
    // No one is let in any more.
    await assert.rejects(Deno.connect({ hostname: server.addr.hostname, port: server.addr.port }));
  });
});

// Regression: a client that half-closes (`nc -N`) used to be closed at once, losing what was
// still queued for it (here most of the history replay and the /who reply).
Deno.test({
  name: "chat TCP: a client that half-closes still gets everything queued for it",
  async fn() {
    const options = { rate: 0, history: 2000, maxQueue: 64 * 1024 * 1024 };
    await withChat(options, async ({ server, join }) => {
      const a = await join();
      const padding = "h".repeat(4000);
      let history = "";
      for (let i = 0; i < 2000; i++) history += `${i} ${padding}\n`;
      await a.client.send(history);
      await a.client.send("/who\n");
      await a.client.readUntil(/^\* 1 here/);
      const b = await LineClient.connect(server.addr);
      try {
        await b.send("/who\n");
        await b.conn.closeWrite();
        const lines = await b.readToEnd(10000);
        assert.equal(lines.length, 2 + 2000 + 1, `got ${lines.length} lines`);
        assert.equal(lines.at(-1), "* 2 here: guest-1, guest-2 (you)");
      } finally {
        b.close();
      }
    });
  },
});

// Regression: a welcome plus history replay larger than --max-queue used to count as a backlog,
// so every arrival was dropped as "stopped reading" before it could read a byte.
Deno.test({
  name: "chat TCP: an arrival is not dropped as slow because the history replay is large",
  async fn() {
    await withChat({ rate: 0, history: 100, maxQueue: 64 * 1024 }, async ({ server, join }) => {
      const a = await join();
      for (let i = 0; i < 100; i++) await a.client.send(`${i} ${"m".repeat(1000)}\n`);
      await a.client.send("/who\n");
      await a.client.readUntil(/^\* 1 here/);
      const b = await LineClient.connect(server.addr);
      try {
        const welcome = await b.readLine();
        assert.match(welcome ?? "", /^\* Welcome to the chat, guest-2!/);
        assert.equal(await a.client.readLine(), "* guest-2 joined");
        await a.client.send("/who\n");
        assert.equal(await a.client.readLine(), "* 2 here: guest-1 (you), guest-2");
      } finally {
        b.close();
      }
    });
  },
});

Deno.test("chat CLI: SIGTERM tells every client, closes them, exits 0 within 3 s", async () => {
  const server = new Spawned(["run", "-N", "chat_server.ts", "--port", "0"]);
  const clients: LineClient[] = [];
  try {
    const port = await server.port();
    const addr: Deno.NetAddr = { transport: "tcp", hostname: "127.0.0.1", port };
    for (let i = 0; i < 2; i++) {
      const client = await LineClient.connect(addr);
      clients.push(client);
      assert.match(await client.readLine() ?? "", /^\* Welcome to the chat, guest-\d+!/);
      await client.readLine();
    }
    await clients[0].readUntil(/^\* guest-2 joined$/);
    const started = performance.now();
    server.child.kill("SIGTERM");
    for (const client of clients) assert.deepEqual(await client.readToEnd(3000), [SHUTDOWN]);
    for (const client of clients) client.close();
    const status = await server.exit(3000);
    assert.equal(status.code, 0);
    assert.ok(performance.now() - started < 3000);
    assert.ok(server.stderrLines.some((line) => /Chat server stopped/.test(line)));
  } finally {
    for (const client of clients) client.close();
    try {
      server.child.kill("SIGKILL");
    } catch {
      // already exited
    }
    await server.exit().catch(() => {});
  }
});

Deno.test("chat CLI: a bad --port exits 2 with one line; a port in use exits 1 with one line", async () => {
  const bad = new Spawned(["run", "-N", "chat_server.ts", "--port", "abc"]);
  assert.equal((await bad.exit()).code, 2);
  assert.equal(bad.stderrLines.filter(Boolean).length, 1, bad.stderrLines.join("\n"));
  assert.match(bad.stderrLines[0], /^chat_server\.ts: .*port.*\(see --help\)$/);

  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const busy = new Spawned([
      "run",
      "-N",
      "chat_server.ts",
      "--port",
      String(listener.addr.port),
    ]);
    assert.equal((await busy.exit()).code, 1);
    assert.equal(busy.stderrLines.filter(Boolean).length, 1, busy.stderrLines.join("\n"));
    assert.match(busy.stderrLines[0], /already in use.*--port/);
  } finally {
    listener.close();
  }
});

Deno.test("chat client CLI: piped lines are sent, the welcome and goodbye printed, exit 0", async () => {
  await withChat({}, async ({ server, join }) => {
    const watcher = await join();
    const run = await runDeno(
      ["run", "-N", "chat_client.ts", "--port", String(server.addr.port), "--name", "bob"],
      { stdin: "hi\nbye\n", timeoutMs: 10000 },
    );
    assert.equal(run.code, 0, run.stderr);
    const out = run.stdout.trimEnd().split("\n");
    assert.match(out[0], /^\* Welcome to the chat, guest-2!/);
    assert.ok(out.includes("* you are now known as bob"), run.stdout);
    assert.equal(out.at(-1), "* Goodbye, bob!");
    assert.equal(run.stderr, "");
    assert.deepEqual(await readLines(watcher.client, 4), [
      "* guest-2 joined",
      "* guest-2 is now known as bob",
      "bob: hi",
      "* bob left",
    ]);
  });
});

Deno.test("chat client CLI: piped lines are paced under the flood limit; end of input leaves", async () => {
  // The server's default flood control (10 lines/s, burst 20) would drop most of 30 lines
  // sent at once; the client paces them. No "bye": the end of stdin leaves with /quit.
  await withChat({}, async ({ server, join }) => {
    const watcher = await join();
    const lines = Array.from({ length: 30 }, (_, i) => `piped ${i}`);
    const run = await runDeno(
      ["run", "-N", "chat_client.ts", "--port", String(server.addr.port)],
      { stdin: lines.join("\n") + "\n", timeoutMs: 15000 },
    );
    assert.equal(run.code, 0, run.stderr);
    assert.ok(!run.stdout.includes("slow down"), run.stdout);
    assert.equal(run.stdout.trimEnd().split("\n").at(-1), "* Goodbye, guest-2!");
    assert.deepEqual(await readLines(watcher.client, 32), [
      "* guest-2 joined",
      ...lines.map((line) => `guest-2: ${line}`),
      "* guest-2 left",
    ]);
  });
});

// Regression: a piped client used to wait forever for the server to close after its "/quit"
// when flood control dropped lines; it now waits a bounded time after its lines are sent.
Deno.test({
  name: "chat client CLI: piped input without bye ends even when flood control drops lines",
  async fn() {
    await withChat({ rate: 1, burst: 2 }, async ({ server, join }) => {
      const watcher = await join();
      const run = await runDeno(
        ["run", "-N", "chat_client.ts", "--port", String(server.addr.port)],
        { stdin: "one\ntwo\nthree\nfour\n", timeoutMs: 8000 },
      );
      assert.equal(run.code, 0, run.stderr);
      assert.equal(run.stdout.trimEnd().split("\n").at(-1), "* Goodbye, guest-2!");
      await watcher.client.readUntil(/^\* guest-2 left$/);
    });
  },
});

Deno.test("chat client CLI: exits 0 when kicked, even with stdin still open", async () => {
  await withChat({}, async ({ server, join }) => {
    const watcher = await join();
    const client = new Spawned(["run", "-N", "chat_client.ts", "--port", String(server.addr.port)]);
    try {
      await client.waitFor(/^\* Welcome to the chat, guest-2!/, "stdout");
      assert.equal(await watcher.client.readLine(), "* guest-2 joined");
      assert.equal(server.room.kick("guest-2"), true);
      // stdin is still open: the client must notice the server closing by itself.
      const status = await withTimeout(client.child.status, 5000, "the client to exit");
      assert.equal(status.code, 0);
      await client.exit();
      assert.equal(client.stdoutLines.at(-1), "* You were removed from the room by Server.");
      assert.equal(await watcher.client.readLine(), "* guest-2 was removed by Server");
    } finally {
      try {
        client.child.kill("SIGKILL");
      } catch {
        // already exited
      }
      await client.exit().catch(() => {});
    }
  });
});

Deno.test("chat client CLI: a refused connection is one line with a hint, exit 1", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  const run = await runDeno(["run", "-N", "chat_client.ts", "--port", String(port)]);
  assert.equal(run.code, 1);
  const lines = run.stderr.split("\n").filter(Boolean);
  assert.equal(lines.length, 1, run.stderr);
  assert.match(lines[0], /^chat_client\.ts: .*refused.*deno task chat-server/);
});

Deno.test("chat client CLI: --name Server exits 2 with one line", async () => {
  const run = await runDeno(["run", "-N", "chat_client.ts", "--port", "9", "--name", "Server"]);
  assert.equal(run.code, 2);
  const lines = run.stderr.split("\n").filter(Boolean);
  assert.equal(lines.length, 1, run.stderr);
  assert.match(lines[0], /^chat_client\.ts: --name: Server is reserved/);
});

Deno.test("chat client CLI: escapes from a hostile server never reach stdout; exit 0 at close", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const lines = [
    "\x1b[31mred\x1b[0m alert",
    "mallory: \x1b]52;c;ZXZpbA==\x07clipboard",
    "* \x1b]0;pwned\x1b\\title",
    "eve: \u009b2J\u202eclear",
    "Server: bell\x07\x07 \x1bcreset",
    "\x1b[2J\x1b[H",
  ];
  const serving = (async () => {
    const conn = await listener.accept();
    try {
      await writeAll(conn, encoder.encode(lines.join("\n") + "\n"));
      await conn.closeWrite();
      // Read what the client says (its /quit) until it closes, so nothing is reset.
      const buffer = new Uint8Array(1024);
      while (await conn.read(buffer) !== null) {
        // discard
      }
    } finally {
      conn.close();
    }
  })();
  try {
    const run = await runDeno(
      ["run", "-N", "chat_client.ts", "--port", String(listener.addr.port)],
      { stdin: "", timeoutMs: 10000 },
    );
    assert.equal(run.code, 0, run.stderr);
    // Nothing but printable text and newlines: no ESC, no C1, no BEL, no bidi override.
    // deno-lint-ignore no-control-regex -- asserting that none are left
    const controls = /[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e]/;
    assert.ok(!controls.test(run.stdout), JSON.stringify(run.stdout));
    assert.ok(!run.stdout.includes("\x1b"));
    assert.deepEqual(run.stdout.split("\n"), [
      "red alert",
      "mallory: clipboard",
      "* title",
      "eve: clear",
      "Server: bell reset",
      "",
      "",
    ]);
    await withTimeout(serving, 5000, "the fake server to finish");
  } finally {
    listener.close();
    await serving.catch(() => {});
  }
});
