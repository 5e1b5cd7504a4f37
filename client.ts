#!/usr/bin/env -S deno run --allow-net --allow-env=SERVER_HOST,SERVER_PORT --allow-read
/**
 * Client for the timestamped echo server.
 *
 * ```sh
 * deno run -N client.ts "Hello, Server!"     # one message, the reply on stdout
 * printf 'a\nb\n' | deno run -N client.ts    # one message per input line
 * deno run -N client.ts                      # interactive, on a terminal
 * ```
 *
 * `--check` only connects and disconnects, for health checks (the Docker image uses it).
 *
 * Each message goes over a connection of its own (the server's default answers one message
 * per connection); `--keep-alive` sends them all over one, for a server run with
 * `--keep-alive`. Only the network permission is needed: the environment and `.env` are read
 * where permitted and silently skipped otherwise.
 *
 * @module
 */
import {
  ADDRESS_OPTIONS,
  type CommandSpec,
  type OptionSpecs,
  TIMEOUT_OPTION,
  TLS_CLIENT_OPTIONS,
} from "./lib/config.ts";
import { FatalError, loadCommand, runMain } from "./lib/cli.ts";
import { decodeLine, LineFramer, readLines } from "./lib/framing.ts";
import { printErr, printOut, writeAll } from "./lib/io.ts";
import { Logger } from "./lib/log.ts";
import { readPem, rejectTlsAnswer } from "./lib/tls.ts";
import { stripControls } from "./lib/terminal.ts";
import { closeQuietly, connectTo, formatAddress, isDisconnect, normalizeHost } from "./lib/net.ts";
import { TRACE_OPTION, type Tracer, tracerFrom } from "./lib/trace.ts";

/** Options of {@linkcode startClient}. */
export interface EchoClientOptions {
  /** Server host. Default `127.0.0.1`. */
  host?: string;
  /** Server port. Default 8080. */
  port?: number;
  /** Seconds to wait for the connection and for each reply. Default 5. */
  timeout?: number;
  /** Send every message over one connection. Default `false` (one connection each). */
  keepAlive?: boolean;
  /** Connect over TLS. Default `false`. */
  tls?: boolean;
  /** A PEM certificate to trust besides the system's (a self-signed server's). */
  ca?: string;
  /** Where the connected/sent/received/closed lines go. Default: nowhere. */
  logger?: Logger;
  /**
   * Trace every read, write, FIN, reset and close of the connections (`true`: on stderr, or
   * through the given tracer). Default `false`: nothing is wrapped.
   */
  trace?: boolean | Tracer;
}

/** A client ready to send messages. */
export interface EchoClient {
  /** The server's address. */
  readonly addr: Deno.NetAddr;
  /** Sends one message and resolves to the server's reply line (without `\n`). */
  send(message: string): Promise<string>;
  /** Connects and disconnects without sending: resolves if the server accepts connections. */
  check(): Promise<void>;
  /** Closes the open connection, if any. */
  close(): void;
}

/** Longest reply line accepted; a reply echoes at most the server's `--max-bytes`. */
const MAX_REPLY_BYTES = 64 * 1024 * 1024 + 256;
const encoder = new TextEncoder();

/** Creates a client. No connection is made until the first {@linkcode EchoClient.send}. */
export function startClient(options: EchoClientOptions = {}): EchoClient {
  const hostname = normalizeHost(options.host ?? "127.0.0.1");
  const port = options.port ?? 8080;
  const timeoutMs = (options.timeout ?? 5) * 1000;
  const log = options.logger ?? new Logger("error");
  const addr: Deno.NetAddr = { transport: "tcp", hostname, port };
  const where = formatAddress(addr);
  const tracer = tracerFrom(options.trace);
  let open: { conn: Deno.Conn; framer: LineFramer } | null = null;
  const buffer = new Uint8Array(16 * 1024);

  async function connection(): Promise<{ conn: Deno.Conn; framer: LineFramer }> {
    if (open) return open;
    const conn = await connectTo({
      host: hostname,
      port,
      timeoutMs,
      startHint: "deno task server",
      tls: options.tls,
      ca: options.ca,
      wrap: tracer ? (conn) => tracer.connected(conn) : undefined,
    });
    log.info(`Connected to server at ${where}`);
    open = { conn, framer: new LineFramer(MAX_REPLY_BYTES) };
    return open;
  }

  function close(): void {
    if (!open) return;
    closeQuietly(open.conn);
    open = null;
    log.info("Connection closed");
  }

  async function readReply(conn: Deno.Conn, framer: LineFramer): Promise<string | null> {
    let reply: string | null = null;
    let first = true;
    while (reply === null) {
      const n = await conn.read(buffer);
      if (n === null) {
        const last = framer.flush();
        return last === null ? null : stripControls(decodeLine(last));
      }
      if (first && !options.tls && !options.ca) rejectTlsAnswer(buffer.subarray(0, n), where);
      first = false;
      framer.push(buffer.subarray(0, n), (line) => {
        // A reply is printed on a terminal: whatever a server sends, no escape reaches it.
        reply = stripControls(decodeLine(line));
        return false;
      }, () => {});
    }
    return reply;
  }

  async function send(message: string): Promise<string> {
    const { conn, framer } = await connection();
    let timer: ReturnType<typeof setTimeout> | undefined;
    let timedOut = false;
    try {
      await writeAll(conn, encoder.encode(message + "\n"));
      log.info(`Sent message: ${message}`);
      timer = setTimeout(() => {
        timedOut = true;
        close();
      }, timeoutMs);
      const reply = await readReply(conn, framer);
      if (reply === null) {
        throw new FatalError(
          `${where} closed the connection without replying` +
            (options.keepAlive ? ": is the server running with --keep-alive?" : ""),
        );
      }
      log.info(`Received response: ${reply}`);
      return reply;
    } catch (error) {
      if (timedOut) {
        throw new FatalError(
          `no reply from ${where} within ${
            timeoutMs / 1000
          } s: is it an echo server? Raise --timeout to wait longer`,
        );
      }
      if (isDisconnect(error)) {
        throw new FatalError(`${where} dropped the connection before replying`);
      }
      throw error;
    } finally {
      clearTimeout(timer);
      if (!options.keepAlive || timedOut) close();
    }
  }

  async function check(): Promise<void> {
    await connection();
    close();
  }

  return { addr, send, check, close };
}

/** The command line of `client.ts`. */
export const CLIENT_COMMAND = {
  name: "client.ts",
  summary: "Client for the timestamped echo server: sends messages, prints the replies.",
  usage: [
    'deno run -N client.ts [OPTIONS] "message"   send one message',
    "printf 'a\\nb\\n' | deno run -N client.ts    send each input line",
    "deno run -N client.ts                       interactive, on a terminal",
  ],
  positionals: true,
  options: {
    ...ADDRESS_OPTIONS,
    timeout: {
      ...TIMEOUT_OPTION,
      description: "give up on connecting or on a reply after this long",
    },
    keepAlive: {
      type: "boolean",
      default: false,
      short: "k",
      description: "send every message over one connection (server needs --keep-alive)",
    },
    verbose: {
      type: "boolean",
      default: false,
      short: "v",
      description: "log connected/sent/received/closed to stderr",
    },
    trace: TRACE_OPTION,
    ...TLS_CLIENT_OPTIONS,
    check: {
      type: "boolean",
      default: false,
      description: "only check that the server accepts connections (exit 0) and send nothing",
    },
  },
  notes: [
    "Interactive mode: type a message and press Enter; quit, exit, q, Ctrl+D or Ctrl+C leave.",
    "Exit status: 0 when every message was answered, 1 when the server could not be reached",
    "or answered with an ERROR line, 2 for a bad flag.",
  ],
  examples: [
    'deno run -N client.ts "Hello, Server!"',
    "deno run -N client.ts --port 9090 --timeout 2 ping",
    "deno run -N client.ts --trace 'one line'    # see the connect, the write, the reply's read",
  ],
} as const satisfies CommandSpec<OptionSpecs>;

const QUIT_WORDS = new Set(["quit", "exit", "q"]);

/** Splits a message argument into the messages it holds (one per line). */
function messagesOf(text: string): string[] {
  const lines = text.split(/\r?\n/);
  if (lines.length > 1 && lines[lines.length - 1] === "") lines.pop();
  return lines;
}

async function sendAll(
  client: EchoClient,
  messages: AsyncIterable<string> | string[],
): Promise<boolean> {
  let allAnswered = true;
  for await (const message of messages) {
    const reply = await client.send(message);
    printOut(reply + "\n");
    if (reply.startsWith("ERROR ")) allAnswered = false;
  }
  return allAnswered;
}

async function interactive(client: EchoClient): Promise<void> {
  Deno.addSignalListener("SIGINT", () => {
    printOut("\n");
    Deno.exit(0);
  });
  printOut("TCP Client - Type 'quit' to exit\n" + "-".repeat(40) + "\n");
  printOut("Enter message to send: ");
  for await (const line of readLines(Deno.stdin, MAX_REPLY_BYTES)) {
    const message = line.trim();
    if (QUIT_WORDS.has(message.toLowerCase())) return;
    if (message !== "") {
      try {
        printOut(`Server response: ${await client.send(line)}\n`);
      } catch (error) {
        if (!(error instanceof FatalError)) throw error;
        printErr(`client.ts: ${error.message}\n`);
      }
    }
    printOut("Enter message to send: ");
  }
  printOut("\n"); // Ctrl+D leaves the cursor after the prompt
}

async function main(): Promise<void> {
  const { values, positionals } = loadCommand(CLIENT_COMMAND);
  const client = startClient({
    ...values,
    ca: values.ca ? readPem(values.ca, "--ca", "CERTIFICATE") : undefined,
    logger: new Logger(values.verbose ? "debug" : "error"),
  });
  try {
    if (values.check) {
      await client.check(); // for health checks: a server that accepts is a server that runs
    } else if (positionals.length > 0) {
      if (!await sendAll(client, messagesOf(positionals.join(" ")))) Deno.exitCode = 1;
    } else if (Deno.stdin.isTerminal()) {
      await interactive(client);
    } else if (!await sendAll(client, readLines(Deno.stdin, MAX_REPLY_BYTES))) {
      Deno.exitCode = 1;
    }
  } finally {
    client.close();
  }
}

if (import.meta.main) await runMain("client.ts", main);
