/**
 * `--trace`: the formatting of trace lines, a traced connection's events, and the four roles
 * run as programs with and without `--trace`. Every wait is on a line of output, never a timer.
 *
 * @module
 */
import assert from "node:assert/strict";
import { type CommandSpec, helpText, type OptionSpecs } from "../lib/config.ts";
import { writeAll } from "../lib/io.ts";
import {
  escapeBytes,
  formatElapsed,
  formatPayload,
  formatTransfer,
  TRACE_MAX_BYTES,
  Tracer,
  tracerFrom,
} from "../lib/trace.ts";
import { SERVER_COMMAND } from "../server.ts";
import { CLIENT_COMMAND } from "../client.ts";
import { CHAT_SERVER_COMMAND } from "../chat_server.ts";
import { CHAT_CLIENT_COMMAND } from "../chat_client.ts";
import { LineClient, REPLY, runDeno, Spawned } from "./helpers.ts";

const encoder = new TextEncoder();
const bytes = (text: string): Uint8Array => encoder.encode(text);

/** Any trace line: the timestamp, then a connection's event or the listen line. */
const TRACE_LINE = /^ *\d+\.\d{6} (#\d+ |listen )/;

/** A regular expression matching `text` literally. */
function literal(text: string, suffix = ""): RegExp {
  return new RegExp(text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&") + suffix);
}

// --- Formatting ---------------------------------------------------------------------------

Deno.test('trace format: text as is, \\n \\r \\t \\\\ \\" escaped like a literal', () => {
  assert.equal(escapeBytes(bytes("hello\nworld\r\n")), "hello\\nworld\\r\\n");
  assert.equal(
    escapeBytes(bytes('tab\there "quoted" back\\slash')),
    'tab\\there \\"quoted\\" back\\\\slash',
  );
  assert.equal(escapeBytes(bytes("héllo wörld ✓ 😀")), "héllo wörld ✓ 😀");
  assert.equal(escapeBytes(new Uint8Array()), "");
});

Deno.test("trace format: controls and non-UTF-8 bytes become escapes; \\xNN is always one byte", () => {
  // ESC, NUL, DEL: one byte each.
  assert.equal(escapeBytes(bytes("a\x1b[2Jb\x00\x7f")), "a\\x1b[2Jb\\x00\\x7f");
  // Bytes that are no UTF-8 at all, among text.
  assert.equal(escapeBytes(new Uint8Array([0x68, 0x69, 0xff, 0xfe, 0x0a])), "hi\\xff\\xfe\\n");
  // A character cut by the end of a read: its first two bytes, one escape each.
  assert.equal(escapeBytes(new Uint8Array([0x61, 0xe2, 0x82])), "a\\xe2\\x82");
  // An overlong encoding and an encoded surrogate are not UTF-8 either.
  assert.equal(escapeBytes(new Uint8Array([0xc0, 0xaf])), "\\xc0\\xaf");
  assert.equal(escapeBytes(new Uint8Array([0xed, 0xa0, 0x80])), "\\xed\\xa0\\x80");
  // C1 controls and bidi overrides are characters of several bytes: \u, never \x.
  assert.equal(escapeBytes(bytes("x\u0085y\u202ez")), "x\\u0085y\\u202ez");
  // The slow path (some invalid byte) escapes like the fast one.
  assert.equal(
    escapeBytes(new Uint8Array([...bytes('"\\\n\u0085é'), 0xff])),
    '\\"\\\\\\n\\u0085é\\xff',
  );
  // Nothing raw is left for a terminal to act on.
  const all = escapeBytes(Uint8Array.from({ length: 256 }, (_, i) => i));
  // deno-lint-ignore no-control-regex -- asserting that none are left
  assert.ok(!/[\x00-\x1f\x7f-\x9f]/.test(all), all);
});

Deno.test("trace format: payloads over the limit show head and tail, and how much is left out", () => {
  const exact = "x".repeat(TRACE_MAX_BYTES);
  assert.equal(formatPayload(bytes(exact)), `"${exact}"`);
  const long = "H".repeat(500) + "T".repeat(500);
  assert.equal(
    formatPayload(bytes(long)),
    `"${"H".repeat(160)}" ...(800 B left out)... "${"T".repeat(40)}"`,
  );
  // A cut never splits a character: the one on the cut is left out whole (é is 2 bytes).
  const accents = bytes("a" + "é".repeat(300) + "b");
  const shown = formatPayload(accents);
  assert.ok(!shown.includes("\\x"), shown);
  const [, head, out, tail] = shown.match(/^"(.*)" \.\.\.\((\d+) B left out\)\.\.\. "(.*)"$/) ?? [];
  assert.equal(
    encoder.encode(head).length + Number(out) + encoder.encode(tail).length,
    accents.length,
  );
});

Deno.test("trace format: transfer lines, partial writes, fixed-width timestamps", () => {
  assert.equal(formatTransfer("<", bytes("hello\n")), '<     6 B "hello\\n"');
  assert.equal(
    formatTransfer(">", bytes("hel"), 6),
    '>     3 B (partial write, 6 B asked) "hel"',
  );
  assert.equal(formatElapsed(12345.6789), "  12.345679");
  assert.equal(formatElapsed(0), "   0.000000");
  assert.equal(formatElapsed(98765432.1).length, 12); // past 9999 s the column widens
  assert.equal(tracerFrom(false), null);
  assert.equal(tracerFrom(undefined), null);
  const tracer = new Tracer(() => {});
  assert.equal(tracerFrom(tracer), tracer);
  assert.ok(tracerFrom(true) instanceof Tracer);
});

// --- A traced connection ------------------------------------------------------------------

const ADDR_A: Deno.NetAddr = { transport: "tcp", hostname: "127.0.0.1", port: 50514 };
const ADDR_B: Deno.NetAddr = { transport: "tcp", hostname: "127.0.0.1", port: 8080 };

/** A connection that reads the scripted chunks and takes at most `writeLimit` bytes a write. */
function fakeConn(reads: (string | null | Error)[], writeLimit = Infinity, extra = {}): Deno.Conn {
  return {
    localAddr: ADDR_B,
    remoteAddr: ADDR_A,
    read(p: Uint8Array) {
      const next = reads.shift();
      if (next instanceof Error) return Promise.reject(next);
      if (next === null || next === undefined) return Promise.resolve(null);
      p.set(bytes(next));
      return Promise.resolve(bytes(next).length);
    },
    write: (p: Uint8Array) => Promise.resolve(Math.min(p.length, writeLimit)),
    closeWrite: () => Promise.resolve(),
    close() {},
    ...extra,
  } as unknown as Deno.Conn;
}

/** The events of `lines` without their timestamps. */
function events(lines: string[]): string[] {
  return lines.map((line) => {
    assert.match(line, /^ *\d+\.\d{6} /);
    return line.replace(/^ *\d+\.\d{6} /, "");
  });
}

Deno.test("traced conn: accept, reads, a partial write done in three, FIN both ways, close", async () => {
  const lines: string[] = [];
  const tracer = new Tracer((line) => lines.push(line));
  const conn = tracer.accepted(fakeConn(["one\ntwo\n", "thr", "ee\n", null], 4));
  const buffer = new Uint8Array(64);
  assert.equal(await conn.read(buffer), 8);
  assert.equal(await conn.read(buffer), 3);
  assert.equal(await conn.read(buffer), 3);
  assert.equal(await conn.read(buffer), null);
  await writeAll(conn, bytes("0123456789"));
  await conn.closeWrite();
  conn.close();
  const id = events(lines)[0].match(/^#(\d+) /)?.[1];
  assert.deepEqual(events(lines), [
    `#${id} accept 127.0.0.1:50514 -> 127.0.0.1:8080`,
    `#${id} <     8 B "one\\ntwo\\n"`,
    `#${id} <     3 B "thr"`,
    `#${id} <     3 B "ee\\n"`,
    `#${id} FIN received (read returned end of stream)`,
    `#${id} >     4 B (partial write, 10 B asked) "0123"`,
    `#${id} >     4 B (partial write, 6 B asked) "4567"`,
    `#${id} >     2 B "89"`,
    `#${id} FIN sent (closeWrite)`,
    `#${id} close`,
  ]);
});

Deno.test("traced conn: a reset is named; ids count up; TLS and TCP methods pass through", async () => {
  const lines: string[] = [];
  const tracer = new Tracer((line) => lines.push(line));
  const reset = tracer.connected(fakeConn([new Deno.errors.ConnectionReset("reset by peer")]));
  await assert.rejects(reset.read(new Uint8Array(8)), Deno.errors.ConnectionReset);
  const [connect, failure] = events(lines);
  const id = Number(connect.match(/^#(\d+) connect 127\.0\.0\.1:8080 -> 127\.0\.0\.1:50514$/)?.[1]);
  assert.equal(failure, `#${id} reset (ConnectionReset on read)`);

  let noDelay: boolean | undefined;
  const tcp = tracer.accepted(fakeConn([], Infinity, {
    setNoDelay: (on: boolean) => noDelay = on,
    setKeepAlive: () => {},
  }));
  assert.ok("setNoDelay" in tcp && !("handshake" in tcp));
  (tcp as Deno.TcpConn).setNoDelay(true);
  assert.equal(noDelay, true);

  const tls = tracer.accepted(fakeConn([], Infinity, {
    handshake: () => Promise.resolve({ alpnProtocol: null }),
  }));
  assert.ok("handshake" in tls && !("setNoDelay" in tls));
  await (tls as Deno.TlsConn).handshake();
  assert.deepEqual(events(lines).slice(2), [
    `#${id + 1} accept 127.0.0.1:50514 -> 127.0.0.1:8080`,
    `#${id + 2} accept 127.0.0.1:50514 -> 127.0.0.1:8080 (TLS)`,
    `#${id + 2} TLS handshake done`,
  ]);

  // A read cut short by our own close says so, instead of blaming the peer.
  const closing = tracer.accepted(fakeConn([new Deno.errors.BadResource("closed")]));
  closing.close();
  await assert.rejects(closing.read(new Uint8Array(8)));
  assert.equal(events(lines).at(-1), `#${id + 3} read ended: the connection was closed here`);
  // A second close throws as a raw one does, and traces nothing.
  const real = fakeConn([]);
  let closes = 0;
  real.close = () => {
    if (closes++) throw new Deno.errors.BadResource("closed");
  };
  const twice = tracer.accepted(real);
  twice.close();
  assert.throws(() => twice.close(), Deno.errors.BadResource);
  assert.equal(events(lines).filter((line) => line === `#${id + 4} close`).length, 1);
});

// --- The roles as programs ----------------------------------------------------------------

/** A role started with `--trace` on port 0; the port comes from its `listen` trace line. */
async function traced(script: string, ...args: string[]): Promise<{ proc: Spawned; port: number }> {
  const proc = new Spawned(["run", "-N", script, "--port", "0", "--trace", ...args]);
  const line = await proc.waitFor(/^ *\d+\.\d{6} listen 127\.0\.0\.1:\d+$/);
  return { proc, port: Number(line.match(/:(\d+)$/)?.[1]) };
}

async function stop(proc: Spawned): Promise<void> {
  try {
    proc.child.kill("SIGTERM");
  } catch {
    // already exited
  }
  await proc.exit();
}

/** The id the server gave the connection whose client end is `conn`. */
async function serverId(server: Spawned, conn: Deno.Conn): Promise<string> {
  const port = (conn.localAddr as Deno.NetAddr).port;
  const line = await server.waitFor(new RegExp(`#(\\d+) accept 127\\.0\\.0\\.1:${port} -> `));
  return line.match(/#(\d+) /)?.[1] ?? "";
}

/** The server's trace lines of connection `id`, without timestamps. */
function linesOf(server: Spawned, id: string): string[] {
  const prefix = new RegExp(`^ *\\d+\\.\\d{6} #${id} `);
  return server.stderrLines.filter((line) => prefix.test(line)).map((line) =>
    line.replace(prefix, "")
  );
}

Deno.test("echo --trace --keep-alive: TCP merges two writes into one read and splits one line", async () => {
  // No silence may end the half line: only the newline ends a message.
  const { proc: server, port } = await traced("server.ts", "--keep-alive", "--flush-ms", "60000");
  const addr: Deno.NetAddr = { transport: "tcp", hostname: "127.0.0.1", port };
  try {
    // Two lines in one write: one read of both, and both replies in one write.
    const merged = await LineClient.connect(addr);
    try {
      await merged.send("one\ntwo\n");
      const id = await serverId(server, merged.conn);
      assert.match(await merged.readLine() ?? "", REPLY);
      assert.match(await merged.readLine() ?? "", REPLY);
      const write = await server.waitFor(new RegExp(`#${id} > `));
      assert.deepEqual(linesOf(server, id).filter((l) => l.startsWith("<")), [
        '<     8 B "one\\ntwo\\n"',
      ]);
      assert.match(
        write,
        /> +88 B "Server received at [^"]*: one\\nServer received at [^"]*: two\\n"$/,
      );
    } finally {
      merged.close();
    }

    // One line in two writes, the second sent once the server has read the first: two reads.
    const split = await LineClient.connect(addr);
    try {
      await split.send("hel");
      const id = await serverId(server, split.conn);
      await server.waitFor(literal(`#${id} <     3 B "hel"`, "$"));
      await split.send("lo\n");
      await server.waitFor(literal(`#${id} <     3 B "lo\\n"`, "$"));
      assert.match(await split.readLine() ?? "", /: hello$/);
      const reads = linesOf(server, id).filter((l) => l.startsWith("<"));
      assert.deepEqual(reads, ['<     3 B "hel"', '<     3 B "lo\\n"']);
      assert.match(
        await server.waitFor(new RegExp(`#${id} > `)),
        /> +\d+ B "Server received at [^"]*: hello\\n"$/,
      );
    } finally {
      split.close();
    }

    // A process that exits with the reply unread has its kernel reset the connection (RST, no
    // FIN: Deno's own close() would shut the write side first). It reads one byte to know the
    // reply has arrived, so the rest is surely unread.
    const resetter = new Spawned([
      "eval",
      [
        `const conn = await Deno.connect({ hostname: "127.0.0.1", port: ${port} });`,
        'await conn.write(new TextEncoder().encode("x\\n"));',
        "await conn.read(new Uint8Array(1));",
        'console.log("port " + conn.localAddr.port);',
        "Deno.exit(0);",
      ].join("\n"),
    ]);
    const sent = await resetter.waitFor(/^port \d+$/, "stdout");
    assert.equal((await resetter.exit()).code, 0);
    const line = await server.waitFor(
      new RegExp(`#(\\d+) accept 127\\.0\\.0\\.1:${sent.slice(5)} -> `),
    );
    const id = line.match(/#(\d+) /)?.[1] ?? "";
    await server.waitFor(literal(`#${id} close`, "$"));
    const [, read, reply, ...end] = linesOf(server, id);
    assert.equal(read, '<     2 B "x\\n"');
    assert.match(reply, /^> +\d+ B "Server received at [^"]*: x\\n"$/);
    assert.deepEqual(end, ["reset (ConnectionReset on read)", "close"]);
  } finally {
    await stop(server);
  }
});

Deno.test("echo --trace: a half-close arrives before the reply; the client's own --trace shows its side", async () => {
  const { proc: server, port } = await traced("server.ts", "--flush-ms", "60000");
  try {
    // A message without a newline, ended by closeWrite(): FIN, and only then the reply.
    const client = await LineClient.connect({ transport: "tcp", hostname: "127.0.0.1", port });
    try {
      await client.send("no newline");
      await client.conn.closeWrite();
      assert.deepEqual((await client.readToEnd()).map((l) => l.replace(REPLY, "")), [
        "no newline",
      ]);
      const id = await serverId(server, client.conn);
      await server.waitFor(literal(`#${id} close`, "$"));
      const events = linesOf(server, id);
      assert.equal(events[0].replace(/\d+ ->/, "N ->"), `accept 127.0.0.1:N -> 127.0.0.1:${port}`);
      assert.equal(events[1], '<    10 B "no newline"');
      assert.equal(events[2], "FIN received (read returned end of stream)");
      assert.match(events[3], /^> +\d+ B "Server received at [^"]*: no newline\\n"$/);
      assert.equal(events.at(-1), "close");
    } finally {
      client.close();
    }

    // client.ts --trace: its connect, its write, the reply's read, its close.
    const run = await runDeno([
      "run",
      "-N",
      "client.ts",
      "--port",
      String(port),
      "--trace",
      "hello",
    ]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /^Server received at .*: hello\n$/);
    const lines = events(run.stderr.trimEnd().split("\n"));
    const connect = lines[0].match(/^#1 connect 127\.0\.0\.1:(\d+) -> 127\.0\.0\.1:(\d+)$/);
    assert.ok(connect, lines[0]);
    assert.equal(Number(connect[2]), port);
    assert.equal(lines[1], '#1 >     6 B "hello\\n"');
    assert.match(lines[2], /^#1 < +\d+ B "Server received at [^"]*: hello\\n"$/);
    assert.equal(lines.at(-1), "#1 close");
    // The server traced the same connection from its end.
    await server.waitFor(new RegExp(`accept 127\\.0\\.0\\.1:${connect[1]} -> `));
  } finally {
    await stop(server);
  }
});

Deno.test("chat_server --trace and chat_client --trace: both ends show reads and writes", async () => {
  const { proc: server, port } = await traced("chat_server.ts", "--no-console");
  try {
    const run = await runDeno(
      ["run", "-N", "chat_client.ts", "--port", String(port), "--trace", "--name", "alice"],
      { stdin: "hello room\n" },
    );
    assert.equal(run.code, 0, run.stderr);
    assert.ok(run.stdout.includes("Welcome to the chat"), run.stdout);
    const client = events(run.stderr.trimEnd().split("\n"));
    const connect = client[0].match(/^#1 connect 127\.0\.0\.1:(\d+) -> 127\.0\.0\.1:(\d+)$/);
    assert.ok(connect, client[0]);
    // Our client asks for typed frames first; the welcome comes back as one.
    assert.ok(client.some((l) => /^#1 > +14 B "\/proto json 1\\n"$/.test(l)), run.stderr);
    assert.ok(client.some((l) => /^#1 < +\d+ B "\{\\"type\\":\\"welcome\\"/.test(l)), run.stderr);
    assert.ok(client.some((l) => /^#1 > +\d+ B ".*hello room.*\\n/.test(l)), run.stderr);
    assert.ok(client.includes("#1 FIN received (read returned end of stream)"), run.stderr);
    assert.equal(client.at(-1), "#1 close");

    const line = await server.waitFor(
      new RegExp(`#(\\d+) accept 127\\.0\\.0\\.1:${connect[1]} -> `),
    );
    const id = line.match(/#(\d+) /)?.[1] ?? "";
    await server.waitFor(literal(`#${id} close`, "$"));
    const seen = linesOf(server, id);
    assert.ok(seen.some((l) => /^< +\d+ B ".*hello room.*\\n/.test(l)), seen.join("\n"));
    assert.ok(seen.some((l) => /^> +\d+ B "\{\\"type\\":\\"welcome\\"/.test(l)), seen.join("\n"));
  } finally {
    await stop(server);
  }
});

Deno.test("trace: without --trace no trace line is printed; with --quiet trace lines still are", async () => {
  const plain = new Spawned(["run", "-N", "server.ts", "--port", "0"]);
  try {
    const port = await plain.port();
    const run = await runDeno(["run", "-N", "client.ts", "--port", String(port), "hi"]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stderr, "");
    await plain.waitFor(/Connection closed with/);
  } finally {
    await stop(plain);
  }
  assert.ok(plain.stderrLines.length > 0);
  assert.deepEqual(plain.stderrLines.filter((line) => TRACE_LINE.test(line)), []);

  const { proc: quiet, port } = await traced("server.ts", "--quiet");
  try {
    const client = await LineClient.connect({ transport: "tcp", hostname: "127.0.0.1", port });
    try {
      await client.send("hi\n");
      await client.readToEnd();
      const id = await serverId(quiet, client.conn);
      await quiet.waitFor(literal(`#${id} close`, "$"));
    } finally {
      client.close();
    }
  } finally {
    await stop(quiet);
  }
  // Every line is a trace line: --quiet hid the log, not the trace.
  assert.deepEqual(quiet.stderrLines.filter((line) => line && !TRACE_LINE.test(line)), []);
});

Deno.test("trace: --help of every role lists --trace; the chat server says it covers TCP", () => {
  const helps = [SERVER_COMMAND, CLIENT_COMMAND, CHAT_SERVER_COMMAND, CHAT_CLIENT_COMMAND].map(
    (command: CommandSpec<OptionSpecs>) => helpText(command),
  );
  for (const help of helps) assert.ok(help.includes("    --trace "), help.split("\n")[0]);
  assert.match(
    helpText(CHAT_SERVER_COMMAND),
    /--trace +.*TCP connections \(not the web page's WebSocket\)/,
  );
});
