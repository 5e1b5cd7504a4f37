/**
 * A fresh in-process chat server on port 0 for a test, with clients that join it and are all
 * closed (then the server) when the test ends.
 *
 * @module
 */
import assert from "node:assert/strict";
import { type ChatServer, type ChatServerOptions, startChatServer } from "../chat_server.ts";
import { ownNameFrom } from "../lib/chat_protocol.ts";
import { type CapturedLog, captureLog, LineClient, type LineClientOptions } from "./helpers.ts";

/** A connected client and the name the server gave it. */
export interface Chatter {
  client: LineClient;
  name: string;
}

/** What a chat test gets. */
export interface ChatContext {
  server: ChatServer;
  log: CapturedLog;
  /** Connects a raw client (closed when the test ends). */
  connect(options?: LineClientOptions): Promise<LineClient>;
  /**
   * Connects and reads the welcome and the who-else line; waits until each of `present` has
   * read the join notice, so what everyone reads next is known.
   */
  join(present?: Chatter[], options?: LineClientOptions): Promise<Chatter>;
  /** Tracks a client connected by hand, so it is closed at the end. */
  track<C extends { close(): void }>(client: C): C;
}

/**
 * Runs `body` against a fresh in-process chat server (no history unless asked, so greetings
 * are two lines) logging at `logLevel`, always closing every client and then the server.
 */
export async function withChat(
  options: ChatServerOptions,
  body: (ctx: ChatContext) => Promise<void>,
  logLevel: "debug" | "info" = "info",
): Promise<void> {
  const log = captureLog(logLevel);
  const server = startChatServer({ port: 0, history: 0, ...options, logger: log.logger });
  const clients: { close(): void }[] = [];
  const track = <C extends { close(): void }>(client: C): C => {
    clients.push(client);
    return client;
  };
  const connect = async (options: LineClientOptions = {}): Promise<LineClient> =>
    track(await LineClient.connect(server.addr, options));
  const join = async (
    present: Chatter[] = [],
    options: LineClientOptions = {},
  ): Promise<Chatter> => {
    const client = await connect(options);
    const welcome = await client.readLine() ?? "";
    const name = ownNameFrom(welcome);
    assert.ok(name, `welcome: ${JSON.stringify(welcome)}`);
    assert.match(
      await client.readLine() ?? "",
      /^\* (You are the only one here\.|\d+ others? here: )/,
    );
    for (const p of present) assert.equal(await p.client.readLine(), `* ${name} joined`);
    return { client, name };
  };
  try {
    await body({ server, log, connect, join, track });
  } finally {
    for (const client of clients) client.close();
    await server.close();
  }
}
