/**
 * The typed protocol on TCP: a first line `/proto json 1` turns a connection into JSON lines,
 * the same frames as the WebSocket's; `chat_client.ts` asks for it and falls back, silently,
 * on a server that answers in text.
 */
import assert from "node:assert/strict";
import { startChatClient } from "../chat_client.ts";
import type { ChatEvent } from "../lib/chat_frames.ts";
import { withChat } from "./chat_fixture.ts";
import { LineClient, withTimeout } from "./helpers.ts";

Deno.test("proto: /proto json 1 as the first line gets frames; nc users beside it get text", async () => {
  await withChat({}, async ({ connect, join }) => {
    const text = await join();
    const typed = await connect();
    await typed.send('/proto json 1\n{"type":"say","text":"hello from json"}\n');
    const welcome = JSON.parse(await typed.readLine() ?? "");
    assert.equal(welcome.type, "welcome");
    assert.equal(welcome.version, 1);
    assert.deepEqual(welcome.others, [text.name]);
    assert.equal(await text.client.readLine(), `* ${welcome.name} joined`);
    assert.equal(await text.client.readLine(), `${welcome.name}: hello from json`);
    await text.client.send("hello back\n");
    assert.deepEqual(JSON.parse(await typed.readLine() ?? ""), {
      type: "message",
      from: text.name,
      text: "hello back",
    });
    // Bad frames: a typed error, nothing reaches the room, the connection stays.
    await typed.send("{not json\n");
    assert.equal(JSON.parse(await typed.readLine() ?? "").code, "bad-frame");
    await typed.send('{"type":"who"}\n');
    assert.deepEqual(JSON.parse(await typed.readLine() ?? "").names, [text.name, welcome.name]);
    // /proto later, or a version we do not speak, is just an unknown command, in text.
    await text.client.send("/proto json 1\n");
    assert.equal(await text.client.readLine(), "* unknown command /proto; type /help for the list");
  });
});

Deno.test("proto: a version this server does not speak stays text", async () => {
  await withChat({}, async ({ connect }) => {
    const client = await connect();
    await client.send("/proto json 2\n");
    assert.match(await client.readLine() ?? "", /^\* Welcome to the chat, guest-\d+!/);
    await client.readLine();
    assert.equal(await client.readLine(), "* unknown command /proto; type /help for the list");
  });
});

Deno.test("proto: chat_client.ts gets typed events from our server", async () => {
  await withChat({}, async ({ server, join }) => {
    const other = await join();
    const got: [string, ChatEvent | undefined][] = [];
    let seen: (() => void) | null = null;
    const client = await startChatClient({
      port: server.addr.port,
      name: "typed",
      onLine: (line, event) => {
        got.push([line, event]);
        seen?.();
      },
    });
    try {
      await other.client.readUntil(/ is now known as typed$/);
      await other.client.send("hi typed\n");
      await withTimeout(
        (async () => {
          while (!got.some(([line]) => line === `${other.name}: hi typed`)) {
            await new Promise<void>((resolve) => seen = resolve);
          }
        })(),
        5000,
        "the message",
      );
      assert.equal(client.name, "typed");
      const message = got.find(([line]) => line === `${other.name}: hi typed`);
      assert.deepEqual(message?.[1], { type: "message", from: other.name, text: "hi typed" });
      assert.ok(got.every(([, event]) => event !== undefined), "every line came as a frame");
    } finally {
      client.close();
      await client.closed;
    }
  });
});

Deno.test("proto: chat_client.ts falls back to text on a server without /proto, saying nothing", async () => {
  // A text-only server, as ours were before: it greets in text and does not know /proto.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const serving = (async () => {
    const conn = await listener.accept();
    const peer = new LineClient(conn);
    await peer.send(
      "* Welcome to the chat, guest-1! Type a message.\n* You are the only one here.\n",
    );
    assert.equal(await peer.readLine(), "/proto json 1");
    await peer.send("* unknown command /proto; type /help for the list\n");
    assert.equal(await peer.readLine(), "/nick plain");
    await peer.send("* you are now known as plain\nbob: hello plain\n");
    assert.equal(await peer.readLine(), "bye"); // in text, not JSON
    await peer.send("* Goodbye, plain!\n");
    peer.close();
  })();
  const lines: string[] = [];
  const client = await startChatClient({
    port: (listener.addr as Deno.NetAddr).port,
    name: "plain",
    onLine: (line, event) => {
      assert.equal(event, undefined);
      lines.push(line);
      if (line === "bob: hello plain") client.send("bye");
    },
  });
  try {
    await client.closed;
    await serving;
    assert.deepEqual(lines, [
      "* Welcome to the chat, guest-1! Type a message.",
      "* You are the only one here.",
      "* you are now known as plain",
      "bob: hello plain",
      "* Goodbye, plain!",
    ]);
    assert.equal(client.name, "plain");
  } finally {
    client.close();
    listener.close();
  }
});
