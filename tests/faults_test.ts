/**
 * Faults, against both servers: clients that reset mid-line, half-close early, go silent, are
 * killed, crowd past the limit, run the server out of file descriptors, vanish by the hundred
 * under load, and servers stopped with SIGTERM under load. Every test checks what the faulty
 * client gets and that a well-behaved client is still served afterwards.
 */
import assert from "node:assert/strict";
import { type EchoServer, type EchoServerOptions, startServer } from "../server.ts";
import { startChatServer } from "../chat_server.ts";
import { ownNameFrom } from "../lib/chat_protocol.ts";
import { ANNOUNCE_LIMIT } from "../lib/chat_room.ts";
import { decodeLine, LineFramer } from "../lib/framing.ts";
import { writeAll } from "../lib/io.ts";
import { formatAddress } from "../lib/net.ts";
import {
  type CapturedLog,
  captureLog,
  LineClient,
  type LineClientOptions,
  REPLY,
  Spawned,
  withTimeout,
} from "./helpers.ts";
import { type ChatContext, type Chatter, withChat } from "./chat_fixture.ts";

const encoder = new TextEncoder();
const SHUTDOWN = "* Server is shutting down. Goodbye!";
const FULL = "* server full, try again later";
const BUSY = "ERROR server busy";

/** The address the server sees for a client: its local address. */
function peerOf(conn: Deno.Conn): string {
  return formatAddress(conn.localAddr);
}

/** `text` as a literal inside a regular expression. */
function literal(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** Asserts the log has no ERROR line, nor a WARN line unless `warnings` allows it. */
function assertNoErrors(lines: string[], warnings: RegExp | null = null): void {
  const bad = lines.filter((line) =>
    /^\S+ \S+ ERROR /.test(line) ||
    (/^\S+ \S+ WARN /.test(line) && !(warnings && warnings.test(line)))
  );
  assert.deepEqual(bad, [], "unexpected ERROR or WARN lines");
}

/** Kills a subprocess if it still runs and waits for it. */
async function killQuietly(process: Spawned): Promise<void> {
  try {
    process.child.kill("SIGKILL");
  } catch {
    // already exited
  }
  await process.exit().catch(() => {});
}

/**
 * For a line client on which a reset is an error, not an end of stream (a plain
 * {@linkcode LineClient} reads a reset as the end): for the tests where a clean end (FIN) is
 * the point.
 */
const STRICT: LineClientOptions = { endsOn: () => false, maxLine: 1 << 20 };

// ---------------------------------------------------------------------------------------------
// Echo server in process

interface EchoContext {
  server: EchoServer;
  log: CapturedLog;
  /** Connects a client that is closed when the test ends. */
  connect(options?: LineClientOptions): Promise<LineClient>;
}

async function withEcho(
  options: EchoServerOptions,
  body: (ctx: EchoContext) => Promise<void>,
): Promise<void> {
  const log = captureLog();
  const server = startServer({ port: 0, ...options, logger: log.logger });
  const clients: LineClient[] = [];
  const connect = async (options: LineClientOptions = {}): Promise<LineClient> => {
    const client = await LineClient.connect(server.addr, options);
    clients.push(client);
    return client;
  };
  try {
    await body({ server, log, connect });
  } finally {
    for (const client of clients) client.close();
    await server.close();
  }
}

/** A new client sends a line and gets its own reply. */
async function assertEchoServes(addr: Deno.NetAddr, text = "well-behaved"): Promise<void> {
  const client = await LineClient.connect(addr);
  try {
    await client.send(`${text}\n`);
    const reply = await client.readLine();
    assert.match(reply ?? "", REPLY);
    assert.ok(reply?.endsWith(`: ${text}`), String(reply));
  } finally {
    client.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Chat server in process

/** A new client joins (everyone in `present` hears it) and talks (everyone hears that). */
async function assertChatServes(ctx: ChatContext, present: Chatter[]): Promise<Chatter> {
  const newcomer = await ctx.join(present);
  await newcomer.client.send("well-behaved\n");
  for (const p of present) {
    assert.equal(await p.client.readLine(), `${newcomer.name}: well-behaved`);
  }
  return newcomer;
}

// ---------------------------------------------------------------------------------------------
// 1. A reset in the middle of a line

/**
 * A client in a `deno eval` subprocess, for the faults a client in this process cannot make.
 * It runs `steps` (`send(text)`, `readByte()`), prints `sent <its port>`, then either exits
 * (`"exit"`) or waits to be killed (`"wait"`). A process that ends with input unread has its
 * socket reset by the kernel: an RST and no FIN. (`conn.close()` in Deno shuts the write side
 * first, so the peer reads a clean end of stream before the reset: no good for these tests.)
 */
function subprocessClient(port: number, steps: string[], then: "exit" | "wait"): Spawned {
  const code = [
    `const conn = await Deno.connect({ hostname: "127.0.0.1", port: ${port} });`,
    "const send = (text) => conn.write(new TextEncoder().encode(text));",
    "const readByte = () => conn.read(new Uint8Array(1));",
    ...steps.map((step) => `await ${step};`),
    'console.log("sent " + conn.localAddr.port);',
    then === "exit" ? "Deno.exit(0);" : "setTimeout(() => {}, 60000);",
  ].join("\n");
  return new Spawned(["eval", code]);
}

/** Waits for a subprocess client's `sent <port>` line; returns the peer the server sees. */
async function sentFrom(client: Spawned): Promise<string> {
  const sent = await client.waitFor(/^sent \d+$/, "stdout");
  return `127.0.0.1:${sent.split(" ")[1]}`;
}

/**
 * Runs `body` with a {@linkcode subprocessClient} that has sent its steps, and the peer the
 * server sees for it; kills the subprocess afterwards if it still runs.
 */
async function withSubprocessClient(
  port: number,
  steps: string[],
  then: "exit" | "wait",
  body: (client: Spawned, peer: string) => Promise<void>,
): Promise<void> {
  const client = subprocessClient(port, steps, then);
  try {
    await body(client, await sentFrom(client));
  } finally {
    await killQuietly(client);
  }
}

Deno.test("faults echo: a client that resets mid-line is dropped quietly; others are served", async () => {
  await withEcho({ keepAlive: true, flushMs: 60000 }, async ({ server, log }) => {
    // It reads one byte of the reply to "a", so it exits with the rest unread: a reset.
    const steps = ['send("a\\n")', "readByte()", 'send("partial")'];
    await withSubprocessClient(server.addr.port, steps, "exit", async (bad, peer) => {
      assert.equal((await bad.exit()).code, 0);
      await log.waitFor(new RegExp(`Connection closed with ${literal(peer)}$`));
      assert.ok(log.lines.some((line) => line.includes(`Received from ${peer}: a`)));
      // The unfinished line died with the connection: never answered.
      assert.ok(!log.lines.some((line) => line.includes(`Received from ${peer}: partial`)));
      assert.equal(server.active, 0);
    });
    await assertEchoServes(server.addr);
    assertNoErrors(log.lines);
  });
});

Deno.test("faults chat: a client that resets mid-line leaves as disconnected; the room goes on", async () => {
  await withChat({}, async (ctx) => {
    const { server, join, log } = ctx;
    const bystander = await join();
    // "partial" joins it at once; it reads one byte of the welcome and exits: a reset.
    await withSubprocessClient(
      server.addr.port,
      ['send("partial")', "readByte()"],
      "exit",
      async (bad, peer) => {
        assert.equal((await bad.exit()).code, 0);
        assert.equal(await bystander.client.readLine(), "* guest-2 joined");
        // The unfinished line is not delivered: the next thing anyone hears is the departure.
        assert.equal(await bystander.client.readLine(), "* guest-2 disconnected");
        await log.waitFor(new RegExp(`guest-2 \\(${literal(peer)}\\) left: disconnected$`));
        assert.equal(server.room.size, 1);
      },
    );
    await assertChatServes(ctx, [bystander]);
    assertNoErrors(log.lines);
  });
});

// ---------------------------------------------------------------------------------------------
// 2. Half-close before sending anything, and after joining

Deno.test("faults echo: a client that half-closes before sending gets a clean end, no reply", async () => {
  await withEcho({}, async ({ server, log, connect }) => {
    const early = await connect(STRICT);
    const peer = peerOf(early.conn);
    await early.conn.closeWrite();
    assert.deepEqual(await early.readToEnd(), []);
    await log.waitFor(new RegExp(`Connection closed with ${literal(peer)}$`));
    assert.ok(!log.lines.some((line) => line.includes(`Received from ${peer}`)));
    await assertEchoServes(server.addr);
    assertNoErrors(log.lines);
  });
});

Deno.test("faults chat: half-close before a word is a probe (never joins); after joining, it leaves with its queue delivered", async () => {
  await withChat({}, async (ctx) => {
    const { connect, join, log } = ctx;
    const bystander = await join(); // guest-1
    const probe = await connect(STRICT);
    const probePeer = peerOf(probe.conn);
    await probe.conn.closeWrite();
    assert.deepEqual(await probe.readToEnd(), []);
    // The probe took no name and made no noise: the next arrival is guest-2 and the bystander's
    // next line is its join notice (join() checks both).
    const next = await join([bystander]);
    assert.equal(next.name, "guest-2");

    const leaver = await join([bystander, next], STRICT); // guest-3
    await leaver.client.send("/who\nlast words");
    await leaver.client.conn.closeWrite();
    // What was queued for it arrives, then a clean end.
    assert.deepEqual(await leaver.client.readToEnd(), [
      "* 3 here: guest-1, guest-2, guest-3 (you)",
    ]);
    for (const p of [bystander, next]) {
      assert.equal(await p.client.readLine(), "guest-3: last words");
      assert.equal(await p.client.readLine(), "* guest-3 disconnected");
    }
    await log.waitFor(/guest-3 \(127\.0\.0\.1:\d+\) left: disconnected$/);
    assert.ok(!log.lines.some((line) => line.includes(`joined from ${probePeer} `)));
    await assertChatServes(ctx, [bystander, next]);
    assertNoErrors(log.lines);
  });
});

// ---------------------------------------------------------------------------------------------
// 3. Silent until the idle timeout

Deno.test("faults echo: a silent client gets 'ERROR idle timeout' and a clean end", async () => {
  await withEcho({ idleTimeout: 0.2 }, async ({ server, log, connect }) => {
    const silent = await connect(STRICT);
    const peer = peerOf(silent.conn);
    const started = performance.now();
    assert.deepEqual(await silent.readToEnd(3000), ["ERROR idle timeout"]);
    assert.ok(performance.now() - started >= 150, "closed before the idle timeout");
    await log.waitFor(new RegExp(`Connection closed with ${literal(peer)} \\(idle timeout\\)$`));
    await assertEchoServes(server.addr);
    assertNoErrors(log.lines);
  });
});

Deno.test("faults chat: a silent member is told and dropped; an active one stays", async () => {
  await withChat({ idleTimeout: 0.2, rate: 0 }, async (ctx) => {
    const { join, log } = ctx;
    const bystander = await join(); // guest-1
    // Load, not synchronisation: an empty line every 30 ms keeps the bystander active (it
    // counts as activity and reaches no one).
    let active = true;
    const keepAlive = (async () => {
      while (active) {
        await bystander.client.send("\n");
        await new Promise((resolve) => setTimeout(resolve, 30));
      }
    })();
    try {
      const silent = await join([bystander], STRICT); // guest-2
      const started = performance.now();
      assert.deepEqual(await silent.client.readToEnd(3000), [
        "* You were disconnected for being idle.",
      ]);
      assert.ok(performance.now() - started >= 100, "dropped long before the idle timeout");
      assert.equal(await bystander.client.readLine(), "* guest-2 was disconnected for being idle");
      await log.waitFor(/guest-2 \(127\.0\.0\.1:\d+\) left: idle$/);
      await assertChatServes(ctx, [bystander]);
      assert.ok(!log.lines.some((line) => /guest-1 .* left/.test(line)), "the active one left");
    } finally {
      active = false;
      await keepAlive;
    }
    assertNoErrors(log.lines);
  });
});

// ---------------------------------------------------------------------------------------------
// 4. A client killed with SIGKILL in the middle of a message

Deno.test("faults echo: a client killed mid-message is closed; its end of stream ends the message", async () => {
  await withEcho({ flushMs: 60000 }, async ({ server, log }) => {
    await withSubprocessClient(
      server.addr.port,
      ['send("partial")'],
      "wait",
      async (killed, peer) => {
        killed.child.kill("SIGKILL");
        assert.equal((await killed.exit()).signal, "SIGKILL");
        // The kernel closes the dead client's socket (FIN): the end of stream completes "partial".
        await log.waitFor(new RegExp(`Connection closed with ${literal(peer)}$`));
        assert.ok(log.lines.some((line) => line.includes(`Received from ${peer}: partial`)));
        assert.equal(server.active, 0);
      },
    );
    await assertEchoServes(server.addr);
    assertNoErrors(log.lines);
  });
});

Deno.test("faults chat: a member killed mid-message leaves as disconnected; the room goes on", async () => {
  await withChat({}, async (ctx) => {
    const { server, join, log } = ctx;
    const bystander = await join();
    // It reads one byte of its welcome, so it dies with input unread: its kernel resets.
    const steps = ['send("partial")', "readByte()"];
    await withSubprocessClient(server.addr.port, steps, "wait", async (killed, peer) => {
      killed.child.kill("SIGKILL");
      assert.equal((await killed.exit()).signal, "SIGKILL");
      assert.equal(await bystander.client.readLine(), "* guest-2 joined");
      assert.equal(await bystander.client.readLine(), "* guest-2 disconnected");
      await log.waitFor(new RegExp(`\\(${literal(peer)}\\) left: disconnected$`));
      assert.equal(server.room.size, 1);
    });
    await assertChatServes(ctx, [bystander]);
    assertNoErrors(log.lines);
  });
});

// ---------------------------------------------------------------------------------------------
// 5. More connections at once than the limit

Deno.test("faults echo: 30 at once over --max-connections 20: 10 busy, 20 served, room again after closes", async () => {
  const options = { maxConnections: 20, keepAlive: true };
  await withEcho(options, async ({ server, log, connect }) => {
    const clients = await Promise.all(Array.from({ length: 30 }, () => connect()));
    const answers: (string | null | undefined)[] = new Array(30).fill(undefined);
    let busy = 0;
    let tenBusy: () => void = () => {};
    const tenBusySeen = new Promise<void>((resolve) => tenBusy = resolve);
    const firsts = clients.map((client, i) =>
      client.readLine(10000).then((line) => {
        answers[i] = line;
        if (line === BUSY && ++busy === 10) tenBusy();
        return line;
      }, (error) => `failed: ${error}`)
    );
    // The busy answers come unasked: once 10 are in, all 30 were accepted or refused.
    await withTimeout(tenBusySeen, 10000, "10 busy answers");
    const served = clients.map((_, i) => i).filter((i) => answers[i] === undefined);
    assert.equal(served.length, 20);
    assert.equal(server.active, 20);
    for (const i of served) await clients[i].send(`client ${i}\n`);
    const got = await Promise.all(firsts);
    for (let i = 0; i < 30; i++) {
      if (served.includes(i)) {
        assert.match(got[i] ?? "", REPLY);
        assert.ok(got[i]?.endsWith(`: client ${i}`), `client ${i}: ${got[i]}`);
      } else {
        assert.equal(got[i], BUSY);
        assert.equal(await clients[i].readLine(), null, "the busy one is closed");
      }
    }
    const refused = log.lines.filter((line) =>
      / WARN .*Refused .*: 20 connections open$/.test(line)
    );
    assert.equal(refused.length, 10);

    // Five served ones leave; five new ones are admitted, the one after them is not.
    for (const i of served.slice(0, 5)) {
      const peer = peerOf(clients[i].conn);
      clients[i].close();
      await log.waitFor(new RegExp(`Connection closed with ${literal(peer)}$`));
    }
    const again = await Promise.all(Array.from({ length: 5 }, () => connect()));
    await Promise.all(again.map((client, i) => client.send(`again ${i}\n`)));
    for (const [i, client] of again.entries()) {
      assert.ok((await client.readLine())?.endsWith(`: again ${i}`));
    }
    const extra = await connect();
    assert.equal(await extra.readLine(), BUSY);
    // The survivors were never disturbed.
    await clients[served[19]].send("still here\n");
    assert.ok((await clients[served[19]].readLine())?.endsWith(": still here"));
    assertNoErrors(log.lines, /Refused /);
  });
});

Deno.test("faults chat: 30 at once over --max-clients 20: 10 told full, 20 welcomed, room again after leaves", async () => {
  await withChat({ maxClients: 20 }, async ({ server, log, connect }) => {
    const clients = await Promise.all(Array.from({ length: 30 }, () => connect()));
    // Nobody sends: each joins after a moment of silence and hears one of the two answers.
    const firsts = await Promise.all(clients.map((client) => client.readLine(10000)));
    const full = clients.filter((_, i) => firsts[i] === FULL);
    const welcomed = clients.filter((_, i) => ownNameFrom(firsts[i] ?? "") !== null);
    assert.equal(full.length, 10, JSON.stringify(firsts));
    assert.equal(welcomed.length, 20, JSON.stringify(firsts));
    const names = new Set(firsts.map((line) => ownNameFrom(line ?? "")).filter(Boolean));
    assert.equal(names.size, 20, "every welcomed client has its own name");
    for (const client of full) assert.equal(await client.readLine(), null);
    assert.equal(server.room.size, 20);
    assert.equal(
      log.lines.filter((line) => / WARN .*Refused .*: room full$/.test(line)).length,
      10,
    );

    // Five leave; five new ones are welcomed, the one after them is not.
    for (const client of welcomed.slice(0, 5)) {
      const peer = peerOf(client.conn);
      client.close();
      await log.waitFor(new RegExp(`\\(${literal(peer)}\\) left: disconnected$`));
    }
    const again = await Promise.all(Array.from({ length: 5 }, () => connect()));
    for (const client of again) assert.ok(ownNameFrom(await client.readLine() ?? ""));
    const extra = await connect();
    assert.equal(await extra.readLine(), FULL);
    // A survivor still talks to the room.
    const survivor = welcomed[19];
    await survivor.send("/who\n");
    const who = await survivor.readUntil(/^\* \d+ here: /);
    assert.match(who.at(-1) ?? "", /^\* 20 here: /);
    assertNoErrors(log.lines, /Refused /);
  });
});

// ---------------------------------------------------------------------------------------------
// 6. Out of file descriptors

/**
 * Runs `script` under `ulimit -n 40`, opens connections until the server's accept fails, frees
 * most of them, and checks that the server recovers: `served(addr)` must succeed within a few
 * seconds, and the few connections kept are still served (`stillServed`).
 */
async function exhaustDescriptors(
  script: string,
  served: (addr: Deno.NetAddr) => Promise<void>,
  stillServed: (client: LineClient) => Promise<void>,
): Promise<void> {
  const server = new Spawned(
    [
      "-c",
      'ulimit -n 40 && exec "$0" "$@"',
      Deno.execPath(),
      "run",
      "-N",
      script,
      "--port",
      "0",
      ...(script === "server.ts" ? ["--keep-alive"] : []),
    ],
    { command: "sh" },
  );
  const clients: LineClient[] = [];
  try {
    const port = await server.port();
    const addr: Deno.NetAddr = { transport: "tcp", hostname: "127.0.0.1", port };
    // More than 40: the kernel completes them all (the backlog); the server cannot take them.
    for (let i = 0; i < 60; i++) clients.push(await LineClient.connect(addr));
    const failure = await server.waitFor(/ WARN +accept failed: .*; retrying in \d+ ms$/);
    assert.match(failure, /Too many open files/);
    const failedAt = performance.now();
    // The first three were accepted before the limit; the rest are freed.
    for (const client of clients.splice(3)) client.close();
    const started = performance.now();
    await withTimeout(served(addr), 5000, "a new client to be served after descriptors were freed");
    const recovered = performance.now() - started;
    console.log(`  served again ${recovered.toFixed(0)} ms after descriptors were freed`);
    assert.ok(recovered < 3000, `recovered after ${recovered.toFixed(0)} ms`);
    for (const client of clients) await stillServed(client);
    for (const client of clients) client.close();
    // Running out is reported at warn, at most once a second however often accept fails.
    const failing = (performance.now() - failedAt) / 1000;
    const reports = server.stderrLines.filter((line) => /accept failed/.test(line));
    assert.ok(reports.length <= Math.ceil(failing) + 1, `${reports.length} in ${failing} s`);
    // The server never exited and stops normally.
    server.child.kill("SIGTERM");
    const status = await server.exit(5000);
    assert.equal(status.code, 0, server.stderrLines.join("\n"));
  } finally {
    for (const client of clients) client.close();
    await killQuietly(server);
  }
}

Deno.test("faults echo CLI: out of file descriptors, accept backs off, then serves again", async () => {
  await exhaustDescriptors(
    "server.ts",
    (addr) => assertEchoServes(addr, "after the drought"),
    async (client) => {
      await client.send("kept\n");
      assert.ok((await client.readLine())?.endsWith(": kept"));
    },
  );
});

Deno.test("faults chat CLI: out of file descriptors, accept backs off, then welcomes again", async () => {
  await exhaustDescriptors(
    "chat_server.ts",
    async (addr) => {
      const client = await LineClient.connect(addr);
      try {
        assert.ok(ownNameFrom(await client.readLine() ?? ""), "welcome");
      } finally {
        client.close();
      }
    },
    async (client) => {
      await client.send("/who\n");
      await client.readUntil(/^\* \d+ here: .*\(you\)/);
    },
  );
});

// ---------------------------------------------------------------------------------------------
// 7. A thousand members, a hundred of them vanishing during a burst

const SENDERS = 5;
const PER_SENDER = 100;
const WRITES = 10;
const MESSAGE = /^guest-\d+: m (\d+) (\d+)$/;

/** Reads one member's stream cheaply (no timer per line) and checks message order per sender. */
class Collector {
  readonly next: number[] = new Array(SENDERS).fill(0);
  readonly problems: string[] = [];
  count = 0;
  lastOther = "";
  readonly #framer = new LineFramer(1 << 16);
  readonly #buffer = new Uint8Array(16 * 1024);

  constructor(readonly conn: Deno.TcpConn, readonly own: number) {}

  /** Messages it must receive: everyone's but its own. */
  get expected(): number {
    return (this.own >= 0 ? SENDERS - 1 : SENDERS) * PER_SENDER;
  }

  /** Reads until `done()` holds; the stream ending first is a failure. */
  async readUntil(done: () => boolean): Promise<void> {
    while (!done()) {
      const n = await this.conn.read(this.#buffer);
      if (n === null) throw new Error(`end of stream after ${this.count} messages`);
      this.#framer.push(
        this.#buffer.subarray(0, n),
        (line) => this.#line(decodeLine(line)),
        () => this.problems.push("over-long line"),
      );
    }
  }

  #line(text: string): void {
    const m = MESSAGE.exec(text);
    if (!m) {
      this.lastOther = text;
      return;
    }
    const sender = Number(m[1]);
    const seq = Number(m[2]);
    this.count++;
    if (sender === this.own) this.problems.push(`own message came back: ${text}`);
    else if (seq !== this.next[sender]) {
      this.problems.push(`sender ${sender}: got ${seq}, expected ${this.next[sender]}`);
    }
    this.next[sender] = seq + 1;
  }
}

/**
 * `count` members in a `deno eval` subprocess that join, read one byte each (so input is
 * waiting unread on every socket), print `ready <ports>`, and exit when a line arrives on
 * stdin: the kernel then resets all their connections at once.
 */
function doomedMembers(port: number, count: number): Spawned {
  const code = `
    const conns = [];
    for (let i = 0; i < ${count}; i++) {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: ${port} });
      await conn.write(new TextEncoder().encode("\\n"));
      conns.push(conn);
    }
    for (const conn of conns) await conn.read(new Uint8Array(1));
    console.log("ready " + conns.map((conn) => conn.localAddr.port).join(" "));
    await Deno.stdin.read(new Uint8Array(1));
    Deno.exit(0);`;
  return new Spawned(["eval", code]);
}

Deno.test("faults chat: 1000 members, 100 reset during a burst: everyone else gets every message once, in order", async () => {
  const started = performance.now();
  const log = captureLog();
  const server = startChatServer({
    port: 0,
    maxClients: 2000,
    maxPerAddress: 0,
    rate: 0,
    history: 0,
    logger: log.logger,
  });
  const port = server.addr.port;
  const total = 1000;
  // The 100 that vanish: 5 processes of 20 members each, so the resets come in 5 waves.
  const doomed = Array.from({ length: 5 }, () => doomedMembers(port, 20));
  const conns: Deno.TcpConn[] = [];
  const extra: LineClient[] = [];
  try {
    for (let batch = 0; batch < 9; batch++) {
      // Bounded concurrency: 100 connections at a time, each joining at once with a blank line.
      const made = await Promise.all(Array.from({ length: 100 }, async () => {
        const conn = await Deno.connect({ hostname: "127.0.0.1", port });
        await writeAll(conn, encoder.encode("\n"));
        return conn;
      }));
      conns.push(...made);
    }
    const doomedPeers: string[] = [];
    for (const d of doomed) {
      const ready = await d.waitFor(/^ready( \d+){20}$/, "stdout", 20000);
      doomedPeers.push(...ready.split(" ").slice(1).map((p) => `127.0.0.1:${p}`));
    }
    await log.waitFor(new RegExp(`\\(${total} online\\)$`), 20000);
    assert.equal(server.room.size, total);
    assert.ok(total > ANNOUNCE_LIMIT); // joins past the limit were not announced

    const senderIndex = [1, 201, 401, 601, 801];
    const stayers = conns.map((conn, i) => new Collector(conn, senderIndex.indexOf(i)));
    const senders = senderIndex.map((i) => conns[i]);
    const observer = stayers[2]; // not a sender

    const reading = stayers
      .filter((c) => c !== observer)
      .map((c) => c.readUntil(() => c.count >= c.expected));
    reading.forEach((p) => p.catch(() => {})); // awaited below; a failure is not lost
    const chunk = (s: number, w: number): Uint8Array => {
      const per = PER_SENDER / WRITES;
      let text = "";
      for (let seq = w * per; seq < (w + 1) * per; seq++) text += `m ${s} ${seq}\n`;
      return encoder.encode(text);
    };
    // First half of the burst.
    for (let w = 0; w < WRITES / 2; w++) {
      await Promise.all(senders.map((conn, s) => writeAll(conn, chunk(s, w))));
    }
    const half = PER_SENDER / 2;
    await withTimeout(
      observer.readUntil(() => observer.next.every((n) => n >= half)),
      15000,
      "the first half of the burst",
    );
    reading.push(observer.readUntil(() => observer.count >= observer.expected));
    // Second half, with a wave of 20 resets before each write.
    for (let w = WRITES / 2; w < WRITES; w++) {
      await doomed[w - WRITES / 2].write("go\n");
      await Promise.all(senders.map((conn, s) => writeAll(conn, chunk(s, w))));
    }
    for (const d of doomed) assert.equal((await d.exit()).code, 0);
    await withTimeout(Promise.all(reading), 20000, "every member to get every message");
    for (const [i, c] of stayers.entries()) {
      assert.deepEqual(c.problems, [], `member ${i}`);
      assert.equal(c.count, c.expected, `member ${i}`);
      assert.deepEqual(
        c.next,
        c.next.map((_, s) => (s === c.own ? 0 : PER_SENDER)),
        `member ${i}`,
      );
    }
    for (const peer of doomedPeers) {
      await log.waitFor(new RegExp(`\\(${literal(peer)}\\) left: disconnected$`), 10000);
    }
    assert.equal(server.room.size, total - 100);

    // A newcomer is welcomed into the room of 900 and heard by all of them, once, after the
    // burst (nothing else, no duplicate, arrived in between).
    const newcomer = await LineClient.connect(server.addr);
    extra.push(newcomer);
    assert.ok(ownNameFrom(await newcomer.readLine() ?? ""));
    assert.match(await newcomer.readLine() ?? "", /^\* 900 others here: .* and 880 more /);
    await newcomer.send("after the storm\n");
    const after = /^guest-\d+: after the storm$/;
    await withTimeout(
      Promise.all(stayers.map((c) => c.readUntil(() => after.test(c.lastOther)))),
      15000,
      "everyone to hear the newcomer",
    );
    for (const [i, c] of stayers.entries()) {
      assert.deepEqual(c.problems, [], `member ${i}`);
      assert.equal(c.count, c.expected, `member ${i} got more messages than sent`);
    }
    assertNoErrors(log.lines);
  } finally {
    for (const conn of conns) conn.close();
    for (const client of extra) client.close();
    await Promise.all(doomed.map(killQuietly));
    await server.close();
  }
  const seconds = (performance.now() - started) / 1000;
  assert.ok(seconds < 30, `took ${seconds.toFixed(1)} s`);
});

// ---------------------------------------------------------------------------------------------
// 8. SIGTERM under load

Deno.test("faults echo CLI: SIGTERM under load: requests are answered or see a clean end, no reset; exit 0 within 3 s", async () => {
  const server = new Spawned(["run", "-N", "server.ts", "--port", "0", "--keep-alive"]);
  const clients: LineClient[] = [];
  try {
    const port = await server.port();
    const addr: Deno.NetAddr = { transport: "tcp", hostname: "127.0.0.1", port };
    for (let i = 0; i < 50; i++) clients.push(await LineClient.connect(addr, STRICT));
    let signalled = false;
    let warmed = 0;
    let allWarm: () => void = () => {};
    const warm = new Promise<void>((resolve) => allWarm = resolve);
    interface Outcome {
      answered: number;
      /** The request in flight when the stream ended, and whether its write had completed before the signal. */
      unanswered: { text: string; writtenBeforeSignal: boolean } | null;
      error: string | null;
      wrong: string[];
    }
    // Load: each client sends a request, waits for its answer, and again, until the signal.
    const loops = clients.map(async (client, i): Promise<Outcome> => {
      const outcome: Outcome = { answered: 0, unanswered: null, error: null, wrong: [] };
      let inFlight: { text: string; writtenBeforeSignal: boolean } | null = null;
      try {
        for (let k = 0; !signalled; k++) {
          const text = `request ${i} ${k}`;
          inFlight = { text, writtenBeforeSignal: false };
          await client.send(text + "\n");
          inFlight.writtenBeforeSignal = !signalled;
          const reply = await client.readLine(10000);
          if (reply === null) {
            outcome.unanswered = inFlight;
            client.close();
            return outcome;
          }
          if (!reply.endsWith(`: ${text}`)) outcome.wrong.push(reply);
          inFlight = null;
          if (++outcome.answered === 5 && ++warmed === clients.length) allWarm();
        }
        // After the signal it sends nothing more: the stream must simply end.
        const rest = await client.readToEnd(10000);
        outcome.wrong.push(...rest);
      } catch (error) {
        outcome.error = `${error instanceof Error ? error.name : ""} ${error}`;
        outcome.unanswered = inFlight;
      }
      client.close();
      return outcome;
    });
    await withTimeout(warm, 15000, "every client to have 5 answers");
    signalled = true;
    const started = performance.now();
    server.child.kill("SIGTERM");
    const outcomes = await withTimeout(Promise.all(loops), 10000, "every client to finish");
    const status = await server.exit(5000);
    const took = performance.now() - started;
    for (const [i, o] of outcomes.entries()) {
      // A request still being written when the signal went out may meet anything; every
      // other connection ends with answers and a clean end of stream, never a reset.
      assert.deepEqual(o.wrong, [], `client ${i}`);
      if (o.unanswered?.writtenBeforeSignal === false) continue;
      assert.equal(o.error, null, `client ${i}: ${JSON.stringify(o)}`);
    }
    assert.equal(status.code, 0, server.stderrLines.join("\n"));
    assert.ok(took < 3000, `exit took ${took.toFixed(0)} ms`);
    assert.ok(server.stderrLines.some((l) => /stopped after serving 50 connection/.test(l)));
    const cut = outcomes.filter((o) => o.unanswered).length;
    console.log(
      `  exited ${took.toFixed(0)} ms after SIGTERM; ${cut} of 50 requests in flight ` +
        "ended by a clean end of stream, the others answered",
    );
  } finally {
    for (const client of clients) client.close();
    await killQuietly(server);
  }
});

Deno.test("faults chat CLI: SIGTERM while 5 of 50 broadcast: all hear the goodbye last, then a clean end; exit 0 within 3 s", async () => {
  const server = new Spawned([
    "run",
    "-N",
    "chat_server.ts",
    "--port",
    "0",
    "--rate",
    "0",
    "--history",
    "0",
  ]);
  const clients: LineClient[] = [];
  try {
    const port = await server.port();
    const addr: Deno.NetAddr = { transport: "tcp", hostname: "127.0.0.1", port };
    for (let i = 0; i < 50; i++) {
      const client = await LineClient.connect(addr, STRICT);
      clients.push(client);
      await client.send("\n"); // joins at once (a blank line reaches no one)
      assert.ok(ownNameFrom(await client.readLine() ?? ""), "welcome");
    }
    let signalled = false;
    let warmed = 0;
    let allWarm: () => void = () => {};
    const warm = new Promise<void>((resolve) => allWarm = resolve);
    const readers = clients.map(async (client) => {
      let last: string | null = null;
      let heard = 0;
      try {
        for (let line = await client.next(); line !== null; line = await client.next()) {
          last = line;
          if (/^guest-\d+: b /.test(line) && ++heard === 20 && ++warmed === clients.length) {
            allWarm();
          }
        }
        return { last, error: null };
      } catch (error) {
        return { last, error: `${error instanceof Error ? error.name : ""} ${error}` };
      } finally {
        client.close(); // at once, so the server's shutdown need not wait out its grace
      }
    });
    // Load: five members broadcast a line every 10 ms each until the signal.
    const talkers = clients.slice(0, 5).map(async (client, s) => {
      for (let k = 0; !signalled; k++) {
        await client.send(`b ${s} ${k}\n`);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    }).map((talker) => talker.catch((error) => `talker: ${error}`));
    await withTimeout(warm, 15000, "every member to hear 20 broadcasts");
    signalled = true;
    const started = performance.now();
    server.child.kill("SIGTERM");
    const ends = await withTimeout(Promise.all(readers), 10000, "every member's stream to end");
    await Promise.allSettled(talkers);
    const status = await server.exit(5000);
    const took = performance.now() - started;
    for (const [i, end] of ends.entries()) {
      assert.deepEqual(end, { last: SHUTDOWN, error: null }, `member ${i}`);
    }
    assert.equal(status.code, 0, server.stderrLines.join("\n"));
    assert.ok(took < 3000, `exit took ${took.toFixed(0)} ms`);
    console.log(`  exited ${took.toFixed(0)} ms after SIGTERM`);
    assert.ok(server.stderrLines.some((l) => /Chat server stopped/.test(l)));
    assert.ok(!server.stderrLines.some((l) => / ERROR /.test(l)), server.stderrLines.join("\n"));
  } finally {
    for (const client of clients) client.close();
    await killQuietly(server);
  }
});
