#!/usr/bin/env -S deno run --allow-net --allow-env=SERVER_HOST,SERVER_PORT,LOG_LEVEL,TLS_CERT,TLS_KEY,CHAT_PASSWORD,WEB_PORT,WEB_ORIGIN,CHAT_STORE,REDIS_URL --allow-read --allow-write
/**
 * TCP chat room server. Anyone can join with `chat_client.ts`, `nc` or `telnet`: every line
 * is a message to the room, `/help` lists the commands, `bye` leaves.
 *
 * ```sh
 * deno task chat-server                  # 127.0.0.1:8080, operator console on a terminal
 * nc 127.0.0.1 8080                      # join from anywhere
 * ```
 *
 * When stdin is a terminal, it is the operator console (as in the classic one-to-one chat):
 * typed lines reach everyone as `Server: TEXT`; `/who`, `/kick NAME`; `bye` closes the room.
 * Without a terminal (a service, CI) stdin is not read.
 *
 * Safety: names cannot be faked, control characters and escape sequences are stripped from
 * everything clients send, lines are bounded, each client is rate-limited, and a client that
 * stops reading is dropped once its output queue is full instead of stalling the room.
 *
 * @module
 */
import { ChatRoom } from "./lib/chat_room.ts";
import { type ChatTcpTransport, serveChatTcp } from "./lib/chat_tcp.ts";
import { type ChatWebTransport, serveChatWeb } from "./lib/chat_web.ts";
import { formatIncoming } from "./lib/chat_display.ts";
import { SERVER_NAME } from "./lib/chat_protocol.ts";
import { type Outgoing, renderLine } from "./lib/chat_frames.ts";
import {
  ADDRESS_OPTIONS,
  type CommandSpec,
  type ConfigValues,
  DEFAULT_MAX_PER_ADDRESS,
  LOG_OPTIONS,
  MAX_PER_ADDRESS_OPTION,
  type OptionSpecs,
  RATE_OPTION,
  TLS_SERVER_OPTIONS,
  UsageError,
} from "./lib/config.ts";
import { loadCommand, onShutdownSignal, runMain } from "./lib/cli.ts";
import { printOut } from "./lib/io.ts";
import { effectiveLevel, Logger, type LogSink, stderrSink } from "./lib/log.ts";
import { clearTextWarnings, formatAddress } from "./lib/net.ts";
import { colorWanted, paint, stripControls } from "./lib/terminal.ts";
import { TerminalPrompt } from "./lib/terminal_prompt.ts";
import { certificateWarnings, loadServerTls, type ServerTls } from "./lib/tls.ts";
import { readPasswordFile } from "./lib/chat_auth.ts";
import type { RoomLog } from "./lib/room_log.ts";
import { readStore, SqliteRoomLog } from "./lib/room_log_sqlite.ts";
import { formatTimestamp } from "./lib/time.ts";
import { AddressLimit } from "./lib/address_limit.ts";
import { TRACE_OPTION, Tracer, tracerFrom } from "./lib/trace.ts";

/** Options of {@linkcode startChatServer}; every field has the CLI's default. */
export interface ChatServerOptions {
  /** Address to listen on. Default `127.0.0.1`. */
  host?: string;
  /** Port; 0 picks a free one. Default 8080. */
  port?: number;
  /** Most clients at once; the next is told `* server full`. Default 1000. */
  maxClients?: number;
  /** Longest line, in bytes; longer ones are refused with a notice. Default 4096. */
  maxLine?: number;
  /** Bytes queued for a client that is not reading before it is dropped. Default 1 MiB. */
  maxQueue?: number;
  /** Lines per second per client; 0 = no limit. Default 10. */
  rate?: number;
  /** Lines a client may send at once before the rate applies. Default 20. */
  burst?: number;
  /** Messages replayed to each arrival. Default 20. */
  history?: number;
  /** Seconds of silence before a client is dropped; 0 = never. Default 0. */
  idleTimeout?: number;
  /** Serve over TLS with this certificate and key. Default: plain TCP. */
  tls?: ServerTls | null;
  /** Clients must send `/auth PASSWORD` before they join. Default: no password. */
  password?: string;
  /** Wait before answering a wrong password, in ms. Default 1000 (for tests only). */
  authDelayMs?: number;
  /** Wrong passwords from one address before it is locked out; 0 = no limit. Default 30. */
  maxAuthFailures?: number;
  /** Seconds an address is first locked out for; doubles each time in a row. Default 60. */
  authLockout?: number;
  /** Seconds a client may take to give the password. Default 30. */
  joinTimeout?: number;
  /** Connections at once from one address (IPv4, or IPv6 /64); 0 = no limit. Default 100. */
  maxPerAddress?: number;
  /** Serve the web page and its WebSocket on this port (0 = any free one). Default: off. */
  webPort?: number | null;
  /** Other origins whose pages may open the WebSocket. Default: this server's pages only. */
  webOrigins?: readonly string[];
  /**
   * The room log (SQLite, Redis), closed with the server. Default: in memory. Its history
   * length should be `history`.
   */
  roomLog?: RoomLog;
  /** Log. Default: info level on stderr. */
  logger?: Logger;
  /** Sees every event broadcast to the room (the operator console shows them). */
  observer?: (out: Outgoing) => void;
  /**
   * Trace every read, write, FIN, reset and close of the TCP connections (`true`: on stderr,
   * or through the given tracer), whatever the log level; the web page's WebSocket is not
   * traced. Default `false`: nothing is wrapped.
   */
  trace?: boolean | Tracer;
}

/** A running chat server. */
export interface ChatServer {
  /** The address bound. */
  readonly addr: Deno.NetAddr;
  /** The web page's address, when `webPort` was given. */
  readonly webAddr: Deno.NetAddr | null;
  /** The room, for the operator console (`say`, `kick`, `names`). */
  readonly room: ChatRoom;
  /** Tells every client the server is shutting down, closes them all (within 2 s), stops. */
  close(notice?: string): Promise<void>;
}

/** Longest wait for clients to take their last lines when the server stops. */
export const SHUTDOWN_GRACE_MS = 2000;

/** Starts a chat server and returns at once. */
export function startChatServer(options: ChatServerOptions = {}): ChatServer {
  const log = options.logger ?? new Logger("info");
  const room = new ChatRoom({
    log: options.roomLog,
    maxClients: options.maxClients,
    history: options.history,
    rate: options.rate,
    burst: options.burst,
    idleTimeout: options.idleTimeout,
    logger: log,
    observer: options.observer,
    password: options.password,
    authDelayMs: options.authDelayMs,
    maxAuthFailures: options.maxAuthFailures,
    authLockout: options.authLockout,
    authTimeout: options.joinTimeout,
  });
  const addressLimit = new AddressLimit({
    max: options.maxPerAddress ?? DEFAULT_MAX_PER_ADDRESS,
    log: (message) => log.warn(message),
  });
  const host = options.host ?? "127.0.0.1";
  const maxLine = options.maxLine ?? 4096;
  const maxQueue = options.maxQueue ?? 1024 * 1024;
  const tls = options.tls ?? null;
  let tcp: ChatTcpTransport;
  try {
    tcp = serveChatTcp(room, {
      host,
      port: options.port ?? 8080,
      maxLine,
      maxQueue,
      tls,
      logger: log,
      addressLimit,
      tracer: tracerFrom(options.trace),
    });
  } catch (error) {
    room.close(); // its timers
    throw error;
  }
  let web: ChatWebTransport | null = null;
  if (options.webPort !== undefined && options.webPort !== null) {
    try {
      web = serveChatWeb(room, {
        host,
        port: options.webPort,
        maxLine,
        maxQueue,
        tls,
        origins: options.webOrigins ?? [],
        logger: log,
        addressLimit,
      });
    } catch (error) {
      // Take the TCP side down before saying why the web side failed.
      room.close();
      void tcp.stopAccepting().then(() => tcp.closeAll(0));
      throw error;
    }
  }
  const where = formatAddress(tcp.addr);
  const extras = [tls ? "TLS" : "", options.password ? "password" : ""].filter(Boolean);
  log.info(`Chat server bound to ${where}${extras.length ? ` (${extras.join(", ")})` : ""}`);
  if (web) {
    const page = `${web.scheme}://${formatAddress(web.addr)}/`;
    log.info(`Web page on ${page} (WebSocket ${page.replace(/^http/, "ws")}ws)`);
  }
  const secrets = options.password
    ? "the chat password and account passwords (/register, /login)"
    : "account passwords (/register, /login)";
  for (const warning of clearTextWarnings(host, Boolean(tls), secrets)) {
    log.warn(warning);
  }
  for (const warning of certificateWarnings(tls)) log.warn(warning);
  if (!room.accountsPersist) {
    log.info(
      "Accounts (/register) last as long as this server runs: keep them with --store FILE or --redis URL",
    );
  }
  log.info(`Chat server waiting for connections on ${where}...`);
  let closing: Promise<void> | null = null;
  const transports = web ? [tcp, web] : [tcp];
  return {
    addr: tcp.addr,
    webAddr: web?.addr ?? null,
    room,
    close(notice?: string) {
      closing ??= (async () => {
        await Promise.all(transports.map((t) => t.stopAccepting()));
        room.close(notice);
        await Promise.all(transports.map((t) => t.closeAll(SHUTDOWN_GRACE_MS)));
        await options.roomLog?.close();
      })();
      return closing;
    },
  };
}

/** The options of `chat_server.ts` as parsed from its command line. */
export type ChatServerConfig = ConfigValues<typeof CHAT_SERVER_COMMAND.options>;

/** The command line of `chat_server.ts`. */
export const CHAT_SERVER_COMMAND = {
  name: "chat_server.ts",
  summary: "TCP chat room: many clients (chat_client.ts, nc, telnet) in one room.",
  usage: ["deno task chat-server [OPTIONS]", "deno run -N chat_server.ts [OPTIONS]"],
  options: {
    ...ADDRESS_OPTIONS,
    maxClients: {
      type: "integer",
      default: 1000,
      min: 1,
      max: 1_000_000,
      valueName: "N",
      description: "clients at once; the next gets '* server full' (1 = one-to-one chat)",
    },
    maxLine: {
      type: "integer",
      default: 4096,
      min: 16,
      max: 1024 * 1024,
      valueName: "BYTES",
      description: "longest line; longer lines are refused with a notice",
    },
    maxQueue: {
      type: "integer",
      default: 1024 * 1024,
      min: 1024,
      max: 1024 * 1024 * 1024,
      valueName: "BYTES",
      description: "output queued for a client that is not reading before it is dropped",
    },
    rate: { ...RATE_OPTION, description: "lines per second per client (0 = no flood control)" },
    burst: {
      type: "integer",
      default: 20,
      min: 1,
      max: 1_000_000,
      valueName: "N",
      description: "lines a client may send at once before --rate applies",
    },
    history: {
      type: "integer",
      default: 20,
      min: 0,
      max: 10000,
      valueName: "N",
      description: "messages replayed to each arrival (0 = none)",
    },
    idleTimeout: {
      type: "number",
      default: 0,
      min: 0,
      max: 86400 * 7,
      valueName: "SECONDS",
      description: "drop clients silent this long (0 = never)",
    },
    maxPerAddress: MAX_PER_ADDRESS_OPTION,
    webPort: {
      type: "string",
      default: "",
      env: "WEB_PORT",
      valueName: "PORT",
      description: "also serve the web page and its WebSocket on this port (0 = any free port)",
    },
    webOrigin: {
      type: "string",
      default: "",
      env: "WEB_ORIGIN",
      valueName: "ORIGINS",
      description: "other origins whose pages may join, comma-separated (https://example.org)",
    },
    joinTimeout: {
      type: "number",
      default: 30,
      min: 1,
      max: 3600,
      valueName: "SECONDS",
      description: "time a client has to give the password before it is closed",
    },
    maxAuthFailures: {
      type: "integer",
      default: 30,
      min: 0,
      max: 1_000_000,
      valueName: "N",
      description: "wrong passwords from one address before it is locked out (0 = no limit)",
    },
    authLockout: {
      type: "number",
      default: 60,
      min: 1,
      max: 86400,
      valueName: "SECONDS",
      description: "first lock-out of such an address; each one in a row doubles, to 1 hour",
    },
    store: {
      type: "string",
      default: "",
      env: "CHAT_STORE",
      valueName: "FILE",
      description:
        "keep the room's log in this SQLite file: history and transcript survive restarts",
    },
    redis: {
      type: "string",
      default: "",
      env: "REDIS_URL",
      valueName: "URL",
      description: "share the room with every server on this Redis (redis://127.0.0.1:6379)",
    },
    transcript: {
      type: "boolean",
      default: false,
      description: "print the room's stored log (--store FILE) as text, and exit",
    },
    passwordFile: {
      type: "string",
      default: "",
      valueName: "FILE",
      description: "clients must send the password on this file's first line (/auth PASSWORD)",
    },
    password: {
      type: "string",
      default: "",
      env: "CHAT_PASSWORD",
      envOnly: true,
      description: "the password clients must send (--password-file wins)",
    },
    ...TLS_SERVER_OPTIONS,
    noConsole: {
      type: "boolean",
      default: false,
      description: "do not read an operator console from the terminal",
    },
    ...LOG_OPTIONS,
    trace: {
      ...TRACE_OPTION,
      description:
        "print every accept, read, write, FIN, reset and close of the TCP connections (not the web page's WebSocket) to stderr, bytes escaped (even with --quiet)",
    },
  },
  notes: [
    "Operator console (when stdin is a terminal): type to talk to everyone as Server;",
    "/who lists clients, /kick NAME removes one, bye closes the room. Ctrl+C also stops.",
  ],
  examples: [
    "deno task chat-server --port 9000",
    "deno run -N chat_server.ts --host 0.0.0.0 --max-clients 50 --history 100",
    "nc 127.0.0.1 8080",
  ],
} as const satisfies CommandSpec<OptionSpecs>;

const CONSOLE_HELP = [
  "Console commands:",
  "  TEXT          say TEXT to everyone as Server",
  "  /who          list who is here",
  "  /kick NAME    remove NAME from the room",
  "  /unregister NAME  remove NAME's account (the name is free again)",
  "  bye           tell everyone, close the room and stop",
].join("\n");

/** The operator console: a prompt under the room's traffic. */
function startConsole(server: ChatServer, color: boolean, stop: () => void): TerminalPrompt {
  const prompt: TerminalPrompt = new TerminalPrompt({
    prompt: paint(color, ["red", "bold"], SERVER_NAME) + "> ",
    promptWidth: SERVER_NAME.length + 2,
    onLine(line) {
      const text = line.trim();
      if (text === "") return;
      if (text.toLowerCase() === "bye" || text === "/quit") return stop();
      if (text === "/who") {
        const names = server.room.everyone();
        return prompt.print(`* ${names.length} here${names.length ? ": " + names.join(", ") : ""}`);
      }
      if (text === "/help") return prompt.print(CONSOLE_HELP);
      if (text.startsWith("/unregister")) {
        const name = text.slice(11).trim();
        if (!name) return prompt.print("* usage: /unregister NAME");
        server.room.unregister(name).then(
          (removed) =>
            prompt.print(
              removed ? `* ${name} is no longer registered` : `* no account called ${name}`,
            ),
          (error) => prompt.print(`* could not remove the account: ${error}`),
        );
        return;
      }
      if (text.startsWith("/kick")) {
        const name = text.slice(5).trim();
        if (!name) return prompt.print("* usage: /kick NAME");
        return prompt.print(
          server.room.kick(name) ? `* removed ${name}` : `* no one called ${name} is here`,
        );
      }
      if (text.startsWith("/") && !text.startsWith("//")) {
        return prompt.print(`* unknown console command ${text.split(" ")[0]}; /help lists them`);
      }
      server.room.say(text.startsWith("//") ? text.slice(1) : text);
    },
    onInterrupt: stop,
    onEof: stop,
  });
  return prompt;
}

/** `--web-port`: empty is off; otherwise a port number, or a usage error. */
function parseWebPort(text: string): number | null {
  if (text.trim() === "") return null;
  const port = Number(text);
  if (!/^\d+$/.test(text.trim()) || port > 65535) {
    throw new UsageError(`--web-port must be a port number from 0 to 65535, not '${text}'`);
  }
  return port;
}

/** `--transcript`: the stored log of the room as text, for a teacher; then exit. */
function printTranscript(store: string): void {
  if (!store) {
    throw new UsageError("--transcript needs --store FILE (the file the server used)");
  }
  const lines = readStore(store).map((entry) =>
    renderLine(entry.event).split("\n").map((line) =>
      `${formatTimestamp(new Date(entry.at))}  ${stripControls(line)}`
    ).join("\n")
  );
  printOut(lines.length ? lines.join("\n") + "\n" : "");
}

/** The room log the flags ask for: Redis, a SQLite file, or memory (`undefined`). */
async function openRoomLog(values: ChatServerConfig, log: Logger): Promise<RoomLog | undefined> {
  if (values.redis && values.store) {
    throw new UsageError("--redis and --store exclude each other: the Redis stream is the log");
  }
  if (values.redis) {
    // Loaded only now, so the server runs offline on a bare deno without --redis.
    const { connectRedisRoomLog } = await import("./lib/room_log_redis.ts");
    return await connectRedisRoomLog({ url: values.redis, history: values.history, logger: log });
  }
  if (values.store) {
    return new SqliteRoomLog(values.store, values.history, (message) => log.error(message));
  }
  return undefined;
}

async function main(): Promise<void> {
  const { values } = loadCommand(CHAT_SERVER_COMMAND);
  if (values.transcript) return printTranscript(values.store);
  const useConsole = !values.noConsole && Deno.stdin.isTerminal() && Deno.stdout.isTerminal();
  const color = colorWanted(Deno.stdout);
  let prompt: TerminalPrompt | null = null;
  // With the console on a terminal, log lines pass above the prompt instead of through it.
  const stderrOnTerminal = Deno.stderr.isTerminal();
  const sink: LogSink = (line) =>
    prompt && stderrOnTerminal ? prompt.print(line) : stderrSink(line);
  const log = new Logger(effectiveLevel(values), sink);
  const roomLog = await openRoomLog(values, log);
  const server = startChatServer({
    ...values,
    roomLog,
    webPort: parseWebPort(values.webPort),
    webOrigins: values.webOrigin.split(",").map((o) => o.trim()).filter(Boolean),
    tls: loadServerTls(values.tlsCert, values.tlsKey),
    password: values.passwordFile ? readPasswordFile(values.passwordFile) : values.password,
    logger: log,
    // Through the log's sink: above the operator console's prompt, like the log lines.
    trace: values.trace ? new Tracer(sink) : false,
    observer: useConsole
      ? (out) =>
        prompt?.print(formatIncoming(renderLine(out.event), { color, ownName: SERVER_NAME }))
      : undefined,
  });

  let stopping = false;
  const stop = async (why: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    log.info(`${why}: closing the room...`);
    await server.close();
    prompt?.stop();
    log.info("Chat server stopped");
    Deno.exit(0);
  };
  onShutdownSignal((signal) => stop(`${signal} received`));

  if (useConsole) {
    const where = formatAddress(server.addr);
    printOut(
      [
        "Starting TCP Chat Server...",
        `Server will run on ${where}`,
        "Press Ctrl+C to stop the server",
        "Type a message to talk to everyone, /help for console commands, 'bye' to close the room",
        "-".repeat(40),
        `Server waiting for connections on ${where}...`,
        "",
      ].join("\n"),
    );
    prompt = startConsole(server, color, () => void stop("Operator closed the room"));
    prompt.start();
  }
}

if (import.meta.main) await runMain("chat_server.ts", main);
