/** The chat server with the system `nc` (netcat-openbsd) as a client, as people use it. */
import assert from "node:assert/strict";
import { type ChatServerOptions, startChatServer } from "../chat_server.ts";
import { captureLog, haveTool, LineClient, runTool } from "./helpers.ts";

const hasNc = haveTool("nc");

/** Runs `body` with an in-process chat server and one LineClient already in the room. */
async function withRoom(
  options: ChatServerOptions,
  body: (port: string, watcher: LineClient) => Promise<void>,
): Promise<void> {
  const server = startChatServer({ port: 0, history: 0, ...options, logger: captureLog().logger });
  const watcher = await LineClient.connect(server.addr);
  try {
    assert.match(await watcher.readLine() ?? "", /^\* Welcome to the chat, guest-1!/);
    assert.equal(await watcher.readLine(), "* You are the only one here.");
    await body(String(server.addr.port), watcher);
  } finally {
    watcher.close();
    await server.close();
  }
}

Deno.test({
  name: "chat nc: /nick, a message and bye; nc returns as soon as the server closes",
  ignore: !hasNc,
  async fn() {
    await withRoom({}, async (port, watcher) => {
      const started = performance.now();
      // Plain nc keeps the connection open after its stdin ends, until the server closes it.
      const run = await runTool("nc", ["127.0.0.1", port], "/nick carol\nhello\nbye\n");
      assert.equal(run.code, 0, run.stderr);
      const out = run.stdout.trimEnd().split("\n");
      assert.equal(out.length, 4, run.stdout);
      assert.match(out[0], /^\* Welcome to the chat, guest-2! .*\/help.*bye/);
      assert.deepEqual(out.slice(1), [
        "* 1 other here: guest-1",
        "* you are now known as carol",
        "* Goodbye, carol!",
      ]);
      assert.ok(performance.now() - started < 2000, "nc should return when the server closes");
      assert.deepEqual(await watcher.readUntil(/^\* carol left$/), [
        "* guest-2 joined",
        "* guest-2 is now known as carol",
        "carol: hello",
        "* carol left",
      ]);
    });
  },
});

Deno.test({
  name: "chat nc: -C (CRLF, as telnet sends) works, BYE in capitals too",
  ignore: !hasNc,
  async fn() {
    await withRoom({}, async (port, watcher) => {
      const run = await runTool("nc", ["-C", "127.0.0.1", port], "hello\n/who\nBYE\n");
      assert.equal(run.code, 0, run.stderr);
      const out = run.stdout.trimEnd().split("\n");
      assert.deepEqual(out.slice(2), ["* 2 here: guest-1, guest-2 (you)", "* Goodbye, guest-2!"]);
      assert.deepEqual(await watcher.readUntil(/^\* guest-2 left$/), [
        "* guest-2 joined",
        "guest-2: hello",
        "* guest-2 left",
      ]);
    });
  },
});

Deno.test({
  name: "chat nc: `printf '/who\\n' | nc -N` gets the reply, then the server closes",
  ignore: !hasNc,
  async fn() {
    await withRoom({}, async (port, watcher) => {
      const run = await runTool("nc", ["-N", "127.0.0.1", port], "/who\n");
      assert.equal(run.code, 0, run.stderr);
      assert.equal(run.stdout.trimEnd().split("\n").at(-1), "* 2 here: guest-1, guest-2 (you)");
      assert.deepEqual(await watcher.readUntil(/^\* guest-2 disconnected$/), [
        "* guest-2 joined",
        "* guest-2 disconnected",
      ]);
    });
  },
});

Deno.test({
  name: "chat nc: over --max-clients, nc is told the server is full and returns",
  ignore: !hasNc,
  async fn() {
    await withRoom({ maxClients: 1 }, async (port, watcher) => {
      const run = await runTool("nc", ["127.0.0.1", port], "hello\n");
      assert.equal(run.code, 0, run.stderr);
      assert.equal(run.stdout, "* server full, try again later\n");
      // The one in the room heard nothing and still works.
      await watcher.send("/who\n");
      assert.equal(await watcher.readLine(), "* 1 here: guest-1 (you)");
    });
  },
});
