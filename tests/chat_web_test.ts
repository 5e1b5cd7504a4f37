/**
 * The web side of the chat, in-process on port 0: the frame codec, the WebSocket member (same
 * room, same rules as TCP), the HTTP routes and their security headers, the Origin check, and
 * a browser that stops reading.
 */
import assert from "node:assert/strict";
import { type ChatServerOptions, startChatServer } from "../chat_server.ts";
import {
  type ChatEvent,
  parseClientFrame,
  PROTOCOL_VERSION,
  renderLine,
} from "../lib/chat_frames.ts";
import { CONTENT_SECURITY_POLICY, originAllowed } from "../lib/chat_web.ts";
import { type CapturedLog, captureLog, haveTool, LineClient, withTimeout } from "./helpers.ts";
import { makeCertificate } from "../tools/cert.ts";
import { WsClient } from "./ws_client.ts";

const encoder = new TextEncoder();

/** A chat server with its web port, a way to open WebSockets, and TCP clients; all closed. */
async function withWeb(
  options: ChatServerOptions,
  body: (ctx: {
    ws: () => Promise<WsClient>;
    tcp: () => Promise<LineClient>;
    base: string;
    server: ReturnType<typeof startChatServer>;
    log: CapturedLog;
  }) => Promise<void>,
): Promise<void> {
  const log = captureLog("debug");
  const server = startChatServer({
    port: 0,
    webPort: 0,
    history: 0,
    ...options,
    logger: log.logger,
  });
  const opened: { close(): unknown }[] = [];
  const base = `http://127.0.0.1:${server.webAddr?.port}`;
  try {
    await body({
      ws: async () => {
        const client = await WsClient.open(`${base.replace("http", "ws")}/ws`);
        opened.push(client);
        return client;
      },
      tcp: async () => {
        const client = await LineClient.connect(server.addr);
        opened.push(client);
        return client;
      },
      base,
      server,
      log,
    });
  } finally {
    await server.close();
    for (const client of opened) await client.close();
  }
}

/** Opens a WebSocket and reads its welcome. */
async function joinWs(open: () => Promise<WsClient>): Promise<{ ws: WsClient; name: string }> {
  const ws = await open();
  const welcome = await ws.next("welcome");
  assert.equal(welcome.version, PROTOCOL_VERSION);
  return { ws, name: String(welcome.name) };
}

// ---------------------------------------------------------------------------------------------
// The codec

Deno.test("frames: client frames become the line a TCP user would type", () => {
  const line = (frame: unknown) => parseClientFrame(JSON.stringify(frame), 4096);
  assert.deepEqual(line({ type: "say", text: "/nick bob" }), { line: "/nick bob" });
  assert.deepEqual(line({ type: "message", text: "hi" }), { line: "hi" });
  assert.deepEqual(line({ type: "message", text: "/not a command" }), { line: "//not a command" });
  assert.deepEqual(line({ type: "action", text: "waves" }), { line: "/me waves" });
  assert.deepEqual(line({ type: "private", to: "bob", text: "psst" }), { line: "/msg bob psst" });
  assert.deepEqual(line({ type: "nick", name: "carol" }), { line: "/nick carol" });
  assert.deepEqual(line({ type: "who" }), { line: "/who" });
  assert.deepEqual(line({ type: "auth", password: "pw " }), { line: "/auth pw " });
  assert.deepEqual(line({ type: "quit" }), { line: "/quit" });
  assert.deepEqual(parseClientFrame(JSON.stringify({ type: "say", text: "x".repeat(20) }), 10), {
    tooLong: true,
  });
});

Deno.test("frames: malformed, unknown and incomplete frames are typed errors", () => {
  for (
    const [data, pattern] of [
      ["{not json", /malformed JSON/],
      ["[1,2]", /JSON object/],
      ["null", /JSON object/],
      ['"text"', /JSON object/],
      ['{"type":"explode"}', /unknown frame type "explode"/],
      ['{"text":"no type"}', /unknown frame type/],
      ['{"type":"say"}', /needs a string "text"/],
      ['{"type":"private","to":"bob"}', /needs a string "text"/],
      ['{"type":"say","text":42}', /needs a string "text"/],
      ['{"type":"__proto__"}', /unknown frame type/],
    ] as const
  ) {
    const parsed = parseClientFrame(data, 4096);
    assert.ok("error" in parsed, data);
    assert.equal(parsed.error.type, "error");
    assert.equal(parsed.error.code, "bad-frame");
    assert.match(parsed.error.text, pattern, data);
  }
});

Deno.test("frames: every event renders as the TCP line protocol says", () => {
  const cases: [ChatEvent, string][] = [
    [{ type: "message", from: "ann", text: "hi" }, "ann: hi"],
    [{ type: "message", from: "Server", text: "hello" }, "Server: hello"],
    [{ type: "action", from: "ann", text: "waves" }, "* ann waves"],
    [{ type: "private", from: "ann", to: "bob", text: "psst" }, "ann (private): psst"],
    [
      { type: "private", from: "ann", to: "bob", text: "psst", sent: true },
      "* (private to bob) psst",
    ],
    [{ type: "join", name: "ann" }, "* ann joined"],
    [
      { type: "leave", name: "ann", reason: "slow" },
      "* ann was disconnected (not reading fast enough)",
    ],
    [{ type: "rename", from: "a", to: "b" }, "* a is now known as b"],
    [{ type: "rename", from: "a", to: "b", you: true }, "* you are now known as b"],
    [{ type: "who", names: ["a", "b"], you: "b" }, "* 2 here: a, b (you)"],
    [{ type: "notice", text: "one\ntwo" }, "* one\n* two"],
    [
      { type: "history", stamp: "10:20", event: { type: "action", from: "a", text: "x" } },
      "[history 10:20] * a x",
    ],
    [
      { type: "welcome", version: 1, name: "g", others: ["a"], count: 3 },
      "* Welcome to the chat, g! Type a message and press Enter to talk to everyone. /help lists " +
      "the commands; type bye to leave.\n* 3 others here: a and 2 more (/who lists everyone)",
    ],
  ];
  for (const [event, line] of cases) assert.equal(renderLine(event), line);
});

Deno.test("web origin: this server's pages, listed origins and non-browsers only", () => {
  assert.ok(originAllowed("http://127.0.0.1:8081", "127.0.0.1:8081", []));
  assert.ok(originAllowed(null, "127.0.0.1:8081", []));
  assert.ok(originAllowed("https://lab.example", "127.0.0.1:8081", ["https://lab.example"]));
  assert.ok(!originAllowed("http://evil.example", "127.0.0.1:8081", []));
  assert.ok(!originAllowed("http://127.0.0.1:9999", "127.0.0.1:8081", []));
  assert.ok(!originAllowed("null", "127.0.0.1:8081", []));
});

// ---------------------------------------------------------------------------------------------
// HTTP

Deno.test("web: GET / is the page with a strict CSP; /healthz; everything else 404 or 405", async () => {
  await withWeb({}, async ({ base }) => {
    const page = await fetch(`${base}/`);
    const html = await page.text();
    assert.equal(page.status, 200);
    assert.match(page.headers.get("content-type") ?? "", /^text\/html/);
    assert.equal(page.headers.get("content-security-policy"), CONTENT_SECURITY_POLICY);
    assert.equal(page.headers.get("x-content-type-options"), "nosniff");
    assert.match(html, /<script type="module" src="\/app\.js"><\/script>/);
    assert.doesNotMatch(html, /\son[a-z]+=|<script>|<style>|style=/i, "nothing inline");
    for (const path of ["/app.js", "/app.css"]) {
      const asset = await fetch(`${base}${path}`);
      await asset.body?.cancel();
      assert.equal(asset.status, 200, path);
      assert.equal(asset.headers.get("x-content-type-options"), "nosniff");
    }
    const health = await fetch(`${base}/healthz`);
    assert.match(await health.text(), /^ok: 0 in the room, 0 on the web\n$/);
    const missing = await fetch(`${base}/etc/passwd`);
    await missing.body?.cancel();
    assert.equal(missing.status, 404);
    const post = await fetch(`${base}/`, { method: "POST", body: "x" });
    await post.body?.cancel();
    assert.equal(post.status, 405);
    const notUpgrade = await fetch(`${base}/ws`);
    await notUpgrade.body?.cancel();
    assert.equal(notUpgrade.status, 426);
  });
});

/** Sends a WebSocket upgrade by hand (with any headers) and returns the status line. */
async function rawUpgrade(port: number, headers: string): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(encoder.encode(
      `GET /ws HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\n` +
        `Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n` +
        `Sec-WebSocket-Version: 13\r\n${headers}\r\n`,
    ));
    const buffer = new Uint8Array(1024);
    const n = await conn.read(buffer) ?? 0;
    return new TextDecoder().decode(buffer.subarray(0, n)).split("\r\n")[0];
  } finally {
    conn.close();
  }
}

Deno.test("web: a WebSocket from another site's page is refused; this server's is accepted", async () => {
  await withWeb({}, async ({ server, log }) => {
    const port = server.webAddr?.port ?? 0;
    assert.match(await rawUpgrade(port, "Origin: http://evil.example\r\n"), / 403 /);
    await log.waitFor(/Refused a WebSocket from .*origin http:\/\/evil\.example/);
    assert.match(await rawUpgrade(port, `Origin: http://127.0.0.1:${port}\r\n`), / 101 /);
  });
  await withWeb({ webOrigins: ["https://lab.example"] }, async ({ server }) => {
    const port = server.webAddr?.port ?? 0;
    assert.match(await rawUpgrade(port, "Origin: https://lab.example\r\n"), / 101 /);
  });
});

// ---------------------------------------------------------------------------------------------
// One room

Deno.test("web: WebSocket and TCP members share one room, both ways, in one order", async () => {
  await withWeb({ rate: 0 }, async ({ ws, tcp }) => {
    const web = await joinWs(ws);
    const nc = await tcp();
    const welcome = await nc.readLine() ?? "";
    const ncName = welcome.match(/Welcome to the chat, (guest-\d+)!/)?.[1] ?? "";
    assert.equal(await nc.readLine(), `* 1 other here: ${web.name}`);
    assert.deepEqual(await web.ws.next("join"), { type: "join", name: ncName });
    // TCP to web and web to TCP, interleaved: one order for everyone.
    for (let i = 0; i < 20; i++) {
      if (i % 2) await nc.send(`from nc ${i}\n`);
      else web.ws.send({ type: "say", text: `from web ${i}` });
    }
    for (let i = 0; i < 20; i++) {
      if (i % 2) {
        assert.deepEqual(await web.ws.next("message"), {
          type: "message",
          from: ncName,
          text: `from nc ${i}`,
        });
      } else assert.equal(await nc.readLine(), `${web.name}: from web ${i}`);
    }
    // Commands from the web: /nick, /me, /msg, /who.
    web.ws.send({ type: "nick", name: "webby" });
    assert.deepEqual(await web.ws.next("rename"), {
      type: "rename",
      from: web.name,
      to: "webby",
      you: true,
    });
    assert.equal(await nc.readLine(), `* ${web.name} is now known as webby`);
    web.ws.send({ type: "action", text: "waves" });
    assert.equal(await nc.readLine(), "* webby waves");
    web.ws.send({ type: "say", text: `/msg ${ncName} just you` });
    assert.equal(await nc.readLine(), "webby (private): just you");
    assert.deepEqual(await web.ws.next("private"), {
      type: "private",
      from: "webby",
      to: ncName,
      text: "just you",
      sent: true,
    });
    await nc.send("/msg webby back at you\n");
    assert.equal(await nc.readLine(), "* (private to webby) back at you");
    assert.deepEqual(await web.ws.next("private"), {
      type: "private",
      from: ncName,
      to: "webby",
      text: "back at you",
    });
    web.ws.send({ type: "who" });
    assert.deepEqual(await web.ws.next("who"), {
      type: "who",
      names: ["webby", ncName],
      you: "webby",
    });
    // The XSS string from nc arrives as plain text in a frame.
    await nc.send("<img src=x onerror=alert(1)>\n");
    assert.equal((await web.ws.next("message")).text, "<img src=x onerror=alert(1)>");
    // bye from the web: goodbye, closed normally, the others told.
    web.ws.send({ type: "say", text: "bye" });
    assert.deepEqual(await web.ws.next("notice"), { type: "notice", text: "Goodbye, webby!" });
    assert.equal((await web.ws.closed).code, 1000);
    assert.equal(await nc.readLine(), "* webby left");
  });
});

Deno.test("web: bad frames get a typed error and nothing reaches the room; oversized closes 1009", async () => {
  await withWeb({ maxLine: 64 }, async ({ ws, tcp }) => {
    const web = await joinWs(ws);
    const nc = await tcp();
    await nc.readUntil(/^\* 1 other here/);
    web.ws.send("{oops");
    assert.match(String((await web.ws.next("error")).text), /malformed JSON/);
    web.ws.send({ type: "teleport" });
    assert.match(String((await web.ws.next("error")).text), /unknown frame type/);
    web.ws.send(new Uint8Array([1, 2, 3]));
    assert.match(String((await web.ws.next("error")).text), /binary frames/);
    web.ws.send({ type: "say", text: "y".repeat(100) });
    assert.deepEqual(await web.ws.next("error"), {
      type: "error",
      code: "too-long",
      text: "line too long (max 64 bytes); it was not sent",
    });
    // Still in the room, and nothing of the above reached it.
    web.ws.send({ type: "say", text: "still here" });
    assert.equal(await nc.readLine(), `${web.name}: still here`);
    web.ws.send("z".repeat(64 * 6 + 2048));
    assert.equal((await web.ws.closed).code, 1009);
    assert.equal(await nc.readLine(), `* ${web.name} disconnected`);
  });
});

Deno.test("web: the room's rules apply: password, max-clients, flood, kick, shutdown", async () => {
  await withWeb(
    { password: "pw", authDelayMs: 1, maxClients: 2, rate: 1, burst: 2 },
    async (ctx) => {
      const first = await ctx.ws();
      assert.equal((await first.next("auth")).state, "required");
      first.send({ type: "auth", password: "nope" });
      assert.equal((await first.next("auth")).state, "wrong");
      first.send({ type: "auth", password: "pw" });
      assert.equal((await first.next("auth")).state, "accepted");
      const welcome = await first.next("welcome");
      const second = await ctx.ws();
      await second.next("auth");
      const third = await ctx.ws();
      assert.deepEqual(await third.next("error"), {
        type: "error",
        code: "full",
        text: "server full, try again later",
      });
      assert.equal((await third.closed).code, 1000);
      // Flood control: a burst of 2, then dropped with one warning.
      for (let i = 0; i < 5; i++) first.send({ type: "say", text: `spam ${i}` });
      assert.equal((await first.next("error")).code, "flood");
      // A kick from the operator.
      assert.ok(ctx.server.room.kick(String(welcome.name)));
      assert.match(String((await first.next("notice")).text), /removed from the room/);
      assert.equal((await first.closed).code, 1000);
      await second.close();
    },
  );
  await withWeb({}, async ({ ws, server }) => {
    const web = await joinWs(ws);
    await server.close();
    assert.deepEqual(await web.ws.next("notice"), {
      type: "notice",
      text: "Server is shutting down. Goodbye!",
    });
    assert.equal((await web.ws.closed).code, 1000);
  });
});

Deno.test("web: a browser that stops reading is dropped as slow; the room goes on", async () => {
  await withWeb({ rate: 0, maxQueue: 64 * 1024 }, async ({ server, tcp, log }) => {
    const port = server.webAddr?.port ?? 0;
    // A WebSocket that completes the handshake and never reads again.
    const stuck = await Deno.connect({ hostname: "127.0.0.1", port });
    try {
      await stuck.write(encoder.encode(
        `GET /ws HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\n` +
          `Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n` +
          `Sec-WebSocket-Version: 13\r\n\r\n`,
      ));
      const talker = await tcp();
      await talker.readUntil(/^\* 1 other here: guest-1/);
      // 1 KB lines until the kernel's buffers are full and Deno's queue passes 64 KiB.
      const line = `${"m".repeat(1023)}\n`;
      const slow = log.waitFor(/stopped reading \(over 65536 bytes queued\)/, 20000);
      let dropped = false;
      slow.then(() => dropped = true, () => {});
      let sent = 0;
      while (!dropped && sent < 50_000) {
        await talker.send(line);
        sent++;
      }
      await withTimeout(slow, 20000, "the stuck browser to be dropped");
      assert.equal(server.room.size, 1, "the stuck browser left");
      console.log(`  dropped after ${sent} KiB`);
      await talker.send("/who\n");
      await talker.readUntil(/^\* 1 here: guest-2 \(you\)$/);
    } finally {
      stuck.close();
    }
  });
});

Deno.test({
  name: "web: with --tls-cert and --tls-key the page is https and the socket wss",
  ignore: !haveTool("openssl", ["version"]),
  async fn() {
    const dir = await Deno.makeTempDir();
    const files = await makeCertificate(dir);
    const cert = await Deno.readTextFile(files.cert);
    const key = await Deno.readTextFile(files.key);
    const server = startChatServer({
      port: 0,
      webPort: 0,
      tls: { cert, key },
      logger: captureLog().logger,
    });
    const client = Deno.createHttpClient({ caCerts: [cert] });
    try {
      const base = `https://localhost:${server.webAddr?.port}`;
      const page = await fetch(`${base}/`, { client });
      await page.body?.cancel();
      assert.equal(page.status, 200);
      assert.equal(page.headers.get("content-security-policy"), CONTENT_SECURITY_POLICY);
      // Plain http to the TLS port gets nothing served.
      const plain = await fetch(`http://127.0.0.1:${server.webAddr?.port}/healthz`).catch(() =>
        null
      );
      if (plain) await plain.body?.cancel();
      assert.ok(!plain || plain.status !== 200, "no plain-text page on the TLS port");
      // The WebSocket over TLS: an upgrade through the same trusted client.
      const upgrade = await fetch(`${base}/ws`, { client });
      await upgrade.body?.cancel();
      assert.equal(upgrade.status, 426, "the wss endpoint is there (and wants an upgrade)");
    } finally {
      client.close();
      await server.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
