#!/usr/bin/env -S deno run --allow-net --allow-env=SERVER_HOST,SERVER_PORT,LOG_LEVEL,TLS_CERT,TLS_KEY --allow-read
/**
 * Timestamped TCP echo server.
 *
 * A client sends a line; the server answers
 * `Server received at YYYY-MM-DD HH:MM:SS: <message>` (local time) and, by default, closes
 * the connection, as the classic socket lab does. With `--keep-alive` it answers every line
 * until the client closes. Many clients are served at once.
 *
 * ```sh
 * deno task server                       # 127.0.0.1:8080
 * deno run -N server.ts --port 0         # any free port; the log shows which
 * echo hi | nc 127.0.0.1 8080
 * ```
 *
 * Wire protocol: a message is UTF-8 text ended by `\n` (a `\r` before it is dropped), by the
 * end of the stream, or by `--flush-ms` of silence after an unterminated message. Limits give
 * one-line answers: `ERROR message too long (max N bytes)`, `ERROR server busy`,
 * `ERROR idle timeout`.
 *
 * @module
 */
import {
  ADDRESS_OPTIONS,
  type CommandSpec,
  type ConfigValues,
  DEFAULT_MAX_PER_ADDRESS,
  LOG_OPTIONS,
  MAX_PER_ADDRESS_OPTION,
  type OptionSpecs,
  TLS_SERVER_OPTIONS,
} from "./lib/config.ts";
import { loadCommand, onShutdownSignal, runMain } from "./lib/cli.ts";
import { decodeLine, FIRST_READ_SIZE, LineFramer, nextReadBuffer } from "./lib/framing.ts";
import { writeAll } from "./lib/io.ts";
import { effectiveLevel, Logger, preview } from "./lib/log.ts";
import {
  acceptConnections,
  clearTextWarnings,
  closeQuietly,
  completeHandshake,
  connectionFailure,
  formatAddress,
  lingeringClose,
  listenOn,
  readOrSilence,
  refuseConnection,
  SILENCE,
} from "./lib/net.ts";
import { addressKey, AddressLimit } from "./lib/address_limit.ts";
import { formatTimestamp, settleWithin } from "./lib/time.ts";
import { certificateWarnings, loadServerTls, type ServerTls } from "./lib/tls.ts";
import { TRACE_OPTION, type Tracer, tracerFrom } from "./lib/trace.ts";

/** Options of {@linkcode startServer}; every field has the CLI's default. */
export interface EchoServerOptions {
  /** Address to listen on. Default `127.0.0.1`. */
  host?: string;
  /** Port to listen on; 0 picks a free one. Default 8080. */
  port?: number;
  /** Answer every message until the client closes, instead of one. Default `false`. */
  keepAlive?: boolean;
  /** Silence after an unterminated message that ends it, in ms. Default 100. */
  flushMs?: number;
  /** Longest message accepted, in bytes. Default 65536. */
  maxBytes?: number;
  /** Seconds of silence before a connection is closed; 0 = never. Default 60. */
  idleTimeout?: number;
  /** Connections served at once; the next one is told `ERROR server busy`. Default 1000. */
  maxConnections?: number;
  /** Connections at once from one address (IPv4, or IPv6 /64); 0 = no limit. Default 100. */
  maxPerAddress?: number;
  /** Serve over TLS with this certificate and key. Default: plain TCP. */
  tls?: ServerTls | null;
  /** Where log lines go. Default: info level on stderr. */
  logger?: Logger;
  /**
   * Trace every read, write, FIN, reset and close of every connection (`true`: on stderr, or
   * through the given tracer), whatever the log level. Default `false`: nothing is wrapped.
   */
  trace?: boolean | Tracer;
}

/** A running echo server. */
export interface EchoServer {
  /** The address actually bound (the real port when 0 was asked for). */
  readonly addr: Deno.NetAddr;
  /** Connections accepted and served so far (busy rejections excluded). */
  readonly served: number;
  /** Connections open right now. */
  readonly active: number;
  /**
   * Stops accepting, lets replies in flight finish (at most 2 s), closes every connection.
   * Resolves once all are closed.
   */
  close(): Promise<void>;
}

/** How long replies in flight may take to finish once the server is asked to stop. */
export const SHUTDOWN_GRACE_MS = 2000;
/** How long a closing connection may keep draining input so its last reply is not reset. */
const LINGER_MS = 1000;

const encoder = new TextEncoder();
const BUSY_LINE = encoder.encode("ERROR server busy\n");
const TOO_LONG_TEXT = (maxBytes: number): string =>
  `ERROR message too long (max ${maxBytes} bytes)\n`;
const IDLE_LINE = encoder.encode("ERROR idle timeout\n");
const PER_ADDRESS_LINE = encoder.encode("ERROR too many connections from your address\n");

type Phase = "reading" | "writing" | "closing";

interface Connection {
  readonly conn: Deno.Conn;
  /** `HOST:PORT` of the client (formatted when first needed: mostly for logs). */
  readonly peer: string;
  readonly framer: LineFramer;
  phase: Phase;
  lastActive: number;
  /** Set when the sweeper closed it for silence, for the log line. */
  idle: boolean;
}

/** The reply line for one message. */
export function replyLine(message: string, date?: Date): string {
  return `Server received at ${formatTimestamp(date)}: ${message}\n`;
}

/** Starts an echo server and returns at once; it runs until {@linkcode EchoServer.close}. */
export function startServer(options: EchoServerOptions = {}): EchoServer {
  const host = options.host ?? "127.0.0.1";
  const keepAlive = options.keepAlive ?? false;
  const flushMs = options.flushMs ?? 100;
  const maxBytes = options.maxBytes ?? 65536;
  const idleMs = (options.idleTimeout ?? 60) * 1000;
  const maxConnections = options.maxConnections ?? 1000;
  const log = options.logger ?? new Logger("info");
  const tooLongLine = encoder.encode(TOO_LONG_TEXT(maxBytes));
  const tracer = tracerFrom(options.trace);

  const listener = listenOn(host, options.port ?? 8080, options.tls ?? null);
  const addr = listener.addr as Deno.NetAddr;
  tracer?.listening(addr, Boolean(options.tls));
  const where = formatAddress(addr);
  log.info(`Server bound to ${where}${options.tls ? " (TLS)" : ""}`);
  for (const warning of clearTextWarnings(host, Boolean(options.tls))) log.warn(warning);
  for (const warning of certificateWarnings(options.tls ?? null)) log.warn(warning);
  log.info(
    `Server is listening for connections... (${
      keepAlive ? "keep-alive" : "one message per connection"
    })`,
  );

  const connections = new Set<Connection>();
  const handlers = new Set<Promise<void>>();
  const stragglers = new Set<Deno.Conn>(); // busy rejections still lingering
  const perAddress = new AddressLimit({
    max: options.maxPerAddress ?? DEFAULT_MAX_PER_ADDRESS,
    log: (message) => log.warn(message),
  });
  let served = 0;
  let stopping = false;

  const sweeper = idleMs > 0
    ? setInterval(closeIdleConnections, Math.min(1000, Math.max(10, idleMs / 4)))
    : undefined;

  function closeIdleConnections(): void {
    const now = Date.now();
    for (const c of connections) {
      if (c.phase !== "reading" || now - c.lastActive < idleMs) continue;
      c.idle = true;
      c.phase = "closing";
      // Nothing is unread on a silent connection, so a plain close cannot reset the line.
      writeAll(c.conn, IDLE_LINE).catch(() => {}).finally(() => closeQuietly(c.conn));
    }
  }

  async function serve(c: Connection): Promise<void> {
    const { conn, framer } = c;
    let pending: Promise<number | null> | null = null;
    let buffer = new Uint8Array(FIRST_READ_SIZE);
    let eof = false;
    // The last read ended exactly at the answered message and did not fill the buffer: the
    // client has most likely sent all it will, so there is nothing to drain before closing.
    let readAll = false;
    let overflow = false;
    let outcome = "";
    const replies: string[] = [];
    const onLine = (line: Uint8Array): boolean => {
      replies.push(answer(c, decodeLine(line)));
      return keepAlive; // one-shot: the first message is the only one
    };
    const onOverflow = (): void => {
      overflow = true;
    };
    try {
      if ("handshake" in conn) await completeHandshake(conn);
      pending = conn.read(buffer);
      while (pending) {
        const n = framer.hasPartial ? await readOrSilence(pending, flushMs) : await pending;
        if (n !== SILENCE) pending = null;
        if (n === SILENCE || n === null) {
          // End of stream, or a pause after an unterminated message: the message is complete.
          eof = n === null;
          const last = framer.flush();
          if (last !== null) replies.push(answer(c, decodeLine(last)));
        } else {
          c.lastActive = Date.now();
          readAll = framer.push(buffer.subarray(0, n), onLine, onOverflow) === n &&
            n < buffer.length && !framer.hasPartial;
          if (overflow) {
            log.warn(`Message from ${c.peer} is longer than ${maxBytes} bytes; closing`);
            c.phase = "writing";
            // Messages that arrived before the long one in the same read are answered first.
            const answered = replies.length > 0 ? replies.join("") : "";
            await writeAll(
              conn,
              answered ? encoder.encode(answered + TOO_LONG_TEXT(maxBytes)) : tooLongLine,
            );
            outcome = " (message too long)";
            break;
          }
          // A read that fills the buffer means a fast sender: read more at a time.
          buffer = nextReadBuffer(buffer, n);
        }
        if (replies.length > 0) {
          c.phase = "writing";
          // Pipelined messages answered by one read go out in one write.
          await writeAll(
            conn,
            encoder.encode(replies.length === 1 ? replies[0] : replies.join("")),
          );
          if (log.enabled("info")) log.info(`Sent response to ${c.peer}`);
          replies.length = 0;
          if (!keepAlive) break;
          c.phase = "reading";
        }
        if (eof || stopping) break;
        pending ??= conn.read(buffer);
      }
      c.phase = "closing";
      // Lingering (FIN, then drain) protects the last reply from a reset when the client may
      // still be sending; a one-shot exchange that read everything closes at once.
      if (eof || (readAll && !overflow && !pending)) closeQuietly(conn);
      else await lingeringClose(conn, LINGER_MS, pending ?? undefined);
    } catch (error) {
      const failure = connectionFailure(error, c.peer);
      if (failure) log.warn(failure);
      outcome = c.idle ? " (idle timeout)" : failure ? " (error)" : "";
      closeQuietly(conn);
    }
    if (log.enabled("info")) log.info(`Connection closed with ${c.peer}${outcome}`);
  }

  function answer(c: Connection, message: string): string {
    if (log.enabled("info")) log.info(`Received from ${c.peer}: ${preview(message)}`);
    return replyLine(message);
  }

  /** Turns `conn` away with `line`; the refusal lingers like any close, tracked for `close()`. */
  function refuse(conn: Deno.Conn, line: Uint8Array): void {
    stragglers.add(conn);
    refuseConnection(conn, line, LINGER_MS).finally(() => stragglers.delete(conn));
  }

  function accept(conn: Deno.Conn): void {
    if (connections.size >= maxConnections) {
      log.warn(`Refused ${formatAddress(conn.remoteAddr)}: ${maxConnections} connections open`);
      return refuse(conn, BUSY_LINE);
    }
    const address = addressKey(conn.remoteAddr);
    if (!perAddress.tryAdd(address)) return refuse(conn, PER_ADDRESS_LINE);
    track(conn, address);
  }

  function track(conn: Deno.Conn, address: string): void {
    let peer = "";
    const c: Connection = {
      conn,
      get peer() {
        return peer ||= formatAddress(conn.remoteAddr);
      },
      framer: new LineFramer(maxBytes),
      phase: "reading",
      lastActive: Date.now(),
      idle: false,
    };
    served++;
    connections.add(c);
    if (log.enabled("info")) log.info(`Connection established with ${c.peer}`);
    const handler = serve(c).finally(() => {
      connections.delete(c);
      perAddress.release(address);
      handlers.delete(handler);
    });
    handlers.add(handler);
  }

  const accepting = acceptConnections(
    listener,
    accept,
    log,
    // One reply and a close cannot be held back by Nagle: spare one-shot connections the call.
    keepAlive,
    tracer ? (conn) => tracer.accepted(conn) : undefined,
  );

  async function close(): Promise<void> {
    if (stopping) return;
    stopping = true;
    clearInterval(sweeper);
    await accepting.stop();
    // Connections waiting for a new message are closed now, FIN first so the client sees a
    // clean end of stream. Those in the middle of a message or a reply finish it (the loop
    // checks `stopping` after each reply), within the grace period.
    for (const c of connections) {
      if (c.phase !== "reading" || c.framer.hasPartial) continue;
      c.phase = "closing";
      c.conn.closeWrite().catch(() => {}).finally(() => closeQuietly(c.conn));
    }
    await settleWithin(Promise.all(handlers), SHUTDOWN_GRACE_MS);
    for (const c of connections) closeQuietly(c.conn);
    for (const conn of stragglers) closeQuietly(conn);
    await Promise.all(handlers);
  }

  return {
    addr,
    get served() {
      return served;
    },
    get active() {
      return connections.size;
    },
    close,
  };
}

/** The command line of `server.ts`. */
export const SERVER_COMMAND = {
  name: "server.ts",
  summary:
    "Timestamped TCP echo server: answers each line with 'Server received at <time>: <line>'.",
  usage: ["deno task server [OPTIONS]", "deno run -N server.ts [OPTIONS]"],
  options: {
    ...ADDRESS_OPTIONS,
    keepAlive: {
      type: "boolean",
      default: false,
      short: "k",
      description: "answer every message until the client closes (default: one, then close)",
    },
    flushMs: {
      type: "integer",
      default: 100,
      min: 1,
      max: 60000,
      valueName: "MS",
      description: "silence that ends an unterminated message, in milliseconds",
    },
    maxBytes: {
      type: "integer",
      default: 65536,
      min: 1,
      max: 64 * 1024 * 1024,
      valueName: "N",
      description: "longest message, in bytes; longer ones get an ERROR line",
    },
    idleTimeout: {
      type: "number",
      default: 60,
      min: 0,
      max: 86400,
      valueName: "SECONDS",
      description: "close connections silent this long (0 = never)",
    },
    maxConnections: {
      type: "integer",
      default: 1000,
      min: 1,
      max: 1_000_000,
      valueName: "N",
      description: "connections served at once; the next gets 'ERROR server busy'",
    },
    maxPerAddress: MAX_PER_ADDRESS_OPTION,
    ...TLS_SERVER_OPTIONS,
    ...LOG_OPTIONS,
    trace: TRACE_OPTION,
  },
  examples: [
    "deno task server --port 9090",
    "deno run -N server.ts --host 0.0.0.0 --keep-alive",
    "echo 'Hello, Server!' | nc 127.0.0.1 8080",
    "deno run -N server.ts --keep-alive --trace    # watch every read and write",
  ],
} as const satisfies CommandSpec<OptionSpecs>;

/** The options of `server.ts` as parsed from its command line. */
export type ServerConfig = ConfigValues<typeof SERVER_COMMAND.options>;

function main(): void {
  const { values } = loadCommand(SERVER_COMMAND);
  const log = new Logger(effectiveLevel(values));
  const tls = loadServerTls(values.tlsCert, values.tlsKey);
  const server = startServer({ ...values, tls, logger: log });
  onShutdownSignal(async (signal) => {
    log.info(`${signal} received: closing the server...`);
    await server.close();
    log.info(`Server stopped after serving ${server.served} connection(s)`);
    Deno.exit(0);
  });
}

if (import.meta.main) await runMain("server.ts", main);
