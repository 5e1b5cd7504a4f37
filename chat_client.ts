#!/usr/bin/env -S deno run --allow-net --allow-env=SERVER_HOST,SERVER_PORT --allow-read
/**
 * Client for the chat room: shows what others say while you type.
 *
 * ```sh
 * deno run -N chat_client.ts --name alice          # interactive, on a terminal
 * printf 'hi\nbye\n' | deno run -N chat_client.ts  # send lines, print what arrives
 * ```
 *
 * On a terminal, incoming lines appear above the prompt and what you were typing stays, cursor
 * included. Names are coloured (a stable colour per person), `Server` is red, notices are
 * dimmed and your own lines bold; `NO_COLOR` or `--no-color` turn colour off, and it is off
 * when stdout is not a terminal. Everything shown is stripped of control characters and
 * escape sequences first, so no server can paint on your terminal. `bye`, `/quit`, Ctrl+D and
 * Ctrl+C leave.
 *
 * @module
 */
import { nameProblem, ownNameFrom } from "./lib/chat_protocol.ts";
import { type DisplayOptions, formatEvent, formatIncoming, formatOwn } from "./lib/chat_display.ts";
import { type ChatEvent, PROTO_LINE, renderLine } from "./lib/chat_frames.ts";
import {
  ADDRESS_OPTIONS,
  type CommandSpec,
  type OptionSpecs,
  RATE_OPTION,
  TIMEOUT_OPTION,
  TLS_CLIENT_OPTIONS,
  UsageError,
} from "./lib/config.ts";
import { loadCommand, runMain } from "./lib/cli.ts";
import { decodeLine, LineFramer, readLines } from "./lib/framing.ts";
import { printOut } from "./lib/io.ts";
import { closeQuietly, connectTo, formatAddress, isDisconnect } from "./lib/net.ts";
import { FatalError } from "./lib/cli.ts";
import { readPem, rejectTlsAnswer } from "./lib/tls.ts";
import {
  PASSWORD_REQUIRED,
  readPasswordFile,
  TOO_MANY_FAILURES,
  WRONG_PASSWORD,
} from "./lib/chat_auth.ts";
import { OutputQueue } from "./lib/output_queue.ts";
import { TokenBucket } from "./lib/rate_limit.ts";
import { colorWanted, paint } from "./lib/terminal.ts";
import { TerminalPrompt } from "./lib/terminal_prompt.ts";
import { settleWithin } from "./lib/time.ts";
import { stderrSink } from "./lib/log.ts";
import { TRACE_OPTION, Tracer, tracerFrom } from "./lib/trace.ts";

/** Options of {@linkcode startChatClient}. */
export interface ChatClientOptions {
  /** Server host. Default `127.0.0.1`. */
  host?: string;
  /** Server port. Default 8080. */
  port?: number;
  /** Seconds to wait for the connection. Default 5. */
  timeout?: number;
  /** A name to ask for on arrival (`/nick NAME`). */
  name?: string;
  /**
   * Lines per second to send at most, so pasted or piped text is not cut by the server's
   * flood control (0 = no pacing). Default 10, the server's default.
   */
  rate?: number;
  /** Lines sent at once before pacing starts. Default 20, the server's default. */
  burst?: number;
  /** Connect over TLS. Default `false`. */
  tls?: boolean;
  /** A PEM certificate to trust besides the system's (a self-signed server's); implies TLS. */
  ca?: string;
  /**
   * Called when the room asks for a password (`retry` after a wrong one); resolves to the
   * password, or `null` to give up (the client then closes). Default: give up.
   */
  password?: (retry: boolean) => Promise<string | null>;
  /**
   * Called with every line from the server, as received; from a server that speaks typed
   * frames, with the event too (the line is then its text rendering).
   */
  onLine: (line: string, event?: ChatEvent) => void;
  /**
   * Trace every read, write, FIN, reset and close of the connection (`true`: on stderr, or
   * through the given tracer). Default `false`: nothing is wrapped.
   */
  trace?: boolean | Tracer;
}

/** A connected chat client. */
export interface ChatClient {
  /** The server's address. */
  readonly addr: Deno.NetAddr;
  /** Your current name, as the server last told it (null until the welcome arrives). */
  readonly name: string | null;
  /** Queues a line to send (paced by the rate). */
  send(line: string): void;
  /** Resolves once every line queued so far has been written (or the connection ended). */
  flushed(): Promise<void>;
  /** Resolves when the server has closed the connection. */
  readonly closed: Promise<void>;
  /** Whether the room turned us away for want of the right password. */
  readonly denied: boolean;
  /** Closes the connection. */
  close(): void;
}

const encoder = new TextEncoder();
const MAX_INCOMING_LINE = 1024 * 1024;
/** How long to hold our lines for a welcome from a server that may not send one. */
const ADMIT_WAIT_MS = 1000;

/** Connects to a chat server; throws a `FatalError` with a hint when it cannot. */
export async function startChatClient(options: ChatClientOptions): Promise<ChatClient> {
  const tracer = tracerFrom(options.trace);
  const conn = await connectTo({
    host: options.host ?? "127.0.0.1",
    port: options.port ?? 8080,
    timeoutMs: (options.timeout ?? 5) * 1000,
    startHint: "deno task chat-server",
    tls: options.tls,
    ca: options.ca,
    wrap: tracer ? (c) => tracer.connected(c) : undefined,
  });
  const where = formatAddress({
    transport: "tcp",
    hostname: options.host ?? "127.0.0.1",
    port: options.port ?? 8080,
  });
  const rate = options.rate ?? 10;
  // Pace a little under the server's limit so timing jitter never trips it.
  const bucket = new TokenBucket(rate * 0.9, Math.max(1, (options.burst ?? 20) - 2));
  const outgoing: string[] = [];
  const queue = new OutputQueue(conn, 16 * 1024 * 1024, {
    onOverflow: () => closeQuietly(conn),
    onError: () => closeQuietly(conn),
  });
  let name: string | null = null;
  let denied = false;
  let pumpTimer: ReturnType<typeof setTimeout> | undefined;
  let done = false;
  let emptied: (() => void)[] = [];
  // Lines wait until we are in the room (the welcome), so they go out under our chosen name
  // and never to a password prompt; a server that never greets us gets them after a second.
  let admitted = false;
  let admitTimer: ReturnType<typeof setTimeout> | undefined = setTimeout(onAdmitted, ADMIT_WAIT_MS);

  function onAdmitted(): void {
    clearTimeout(admitTimer);
    admitTimer = undefined;
    if (admitted) return;
    admitted = true;
    if (options.name) outgoing.unshift(`/nick ${options.name}`);
    pump();
  }

  /** Typed frames (`/proto json 1`) once the server answered with a welcome frame. */
  let typed = false;
  /** A text-only server will answer our `/proto` with this, once: it is not shown. */
  let protoRefusal = true;
  const encodeLine = (line: string): Uint8Array =>
    encoder.encode((typed ? JSON.stringify({ type: "say", text: line }) : line) + "\n");
  // Ask for typed frames first thing: a server that knows them answers with a welcome frame;
  // one that does not sees an unknown command, and we go on in text.
  queue.send(encoder.encode(PROTO_LINE + "\n"));

  function pump(): void {
    pumpTimer = undefined;
    if (!admitted) return;
    while (outgoing.length > 0 && !done) {
      const wait = bucket.waitMs();
      if (wait > 0) {
        pumpTimer = setTimeout(pump, wait);
        return;
      }
      bucket.take();
      queue.send(encodeLine(outgoing.shift() ?? ""));
    }
    for (const resolve of emptied) resolve();
    emptied = [];
  }

  async function receive(): Promise<void> {
    const framer = new LineFramer(MAX_INCOMING_LINE);
    const buffer = new Uint8Array(16 * 1024);
    let firstLine = true;
    const onLine = (bytes: Uint8Array): void => {
      const line = decodeLine(bytes);
      const event = typed || firstLine ? parseEvent(line) : null;
      if (firstLine) {
        firstLine = false;
        // A welcome, a password prompt or a refusal, as a frame: the server speaks them.
        typed = event !== null;
      }
      if (typed && event) return onEvent(event);
      if (protoRefusal && line.startsWith(`* unknown command /proto`)) {
        protoRefusal = false; // our own question, answered by a text-only server
        return;
      }
      const given = ownNameFrom(line);
      if (given) {
        name = given;
        onAdmitted();
      }
      options.onLine(line);
      if (line.startsWith(PASSWORD_REQUIRED)) {
        clearTimeout(admitTimer); // wait for the password as long as it takes
        authenticate(false);
      } else if (line === WRONG_PASSWORD) authenticate(true);
      else if (line === TOO_MANY_FAILURES) denied = true;
    };
    let first = true;
    try {
      while (true) {
        const n = await conn.read(buffer);
        if (n === null) break;
        if (first && !options.tls && !options.ca) rejectTlsAnswer(buffer.subarray(0, n), where);
        first = false;
        framer.push(
          buffer.subarray(0, n),
          onLine,
          () => options.onLine("* (an over-long line was skipped)"),
        );
      }
      const last = framer.flush();
      if (last !== null) onLine(last);
    } catch (error) {
      if (!isDisconnect(error)) throw error;
    } finally {
      done = true;
      clearTimeout(pumpTimer);
      clearTimeout(admitTimer);
      closeQuietly(conn);
      for (const resolve of emptied) resolve();
      emptied = [];
    }
  }

  /** An event from a server speaking typed frames. */
  function onEvent(event: ChatEvent): void {
    if (event.type === "welcome" || (event.type === "rename" && event.you)) {
      name = event.type === "welcome" ? event.name : event.to;
      onAdmitted();
    }
    for (const line of renderLine(event).split("\n")) options.onLine(line, event);
    if (event.type !== "auth") return;
    if (event.state === "required" && !authAsked) {
      authAsked = true;
      clearTimeout(admitTimer); // wait for the password as long as it takes
      authenticate(false);
    } else if (event.state === "wrong") authenticate(true);
    else if (event.state === "denied" || event.state === "locked") denied = true;
  }
  let authAsked = false;

  function authenticate(retry: boolean): void {
    const ask = options.password ?? (() => Promise.resolve(null));
    ask(retry).then((password) => {
      if (password === null) {
        denied = true;
        closeQuietly(conn);
      } else {
        // Not through the paced queue, which waits for admission.
        queue.send(
          typed
            ? encoder.encode(JSON.stringify({ type: "auth", password }) + "\n")
            : encoder.encode(`/auth ${password}\n`),
        );
      }
    });
  }

  function send(line: string): void {
    if (done) return;
    outgoing.push(line);
    if (pumpTimer === undefined) pump();
  }

  const closed = receive();
  return {
    addr: { transport: "tcp", hostname: options.host ?? "127.0.0.1", port: options.port ?? 8080 },
    get name() {
      return name;
    },
    get denied() {
      return denied;
    },
    send,
    async flushed() {
      if (outgoing.length > 0 && !done) await new Promise<void>((resolve) => emptied.push(resolve));
      await queue.drained();
    },
    closed,
    close() {
      done = true;
      clearTimeout(pumpTimer);
      clearTimeout(admitTimer);
      closeQuietly(conn);
    },
  };
}

/** The command line of `chat_client.ts`. */
export const CHAT_CLIENT_COMMAND = {
  name: "chat_client.ts",
  summary: "Client for the chat room: see what others say while you type.",
  usage: [
    "deno run -N chat_client.ts [OPTIONS]                 interactive, on a terminal",
    "printf 'hi\\nbye\\n' | deno run -N chat_client.ts     send lines, print what arrives",
  ],
  options: {
    ...ADDRESS_OPTIONS,
    name: {
      type: "string",
      default: "",
      short: "n",
      valueName: "NAME",
      description: "the name to use (1-24 letters, digits, _ or -); default: a guest name",
    },
    timeout: { ...TIMEOUT_OPTION, description: "give up connecting after this long" },
    rate: {
      ...RATE_OPTION,
      description: "send at most N lines per second (match the server's --rate; 0 = unpaced)",
    },
    noColor: {
      type: "boolean",
      default: false,
      description: "no colours (also: NO_COLOR set, or stdout not a terminal)",
    },
    ...TLS_CLIENT_OPTIONS,
    passwordFile: {
      type: "string",
      default: "",
      valueName: "FILE",
      description: "the room's password, from this file's first line (else you are asked)",
    },
    trace: TRACE_OPTION,
  },
  notes: [
    "Type a line and press Enter to talk; /help asks the server for its commands.",
    "bye, /quit, Ctrl+D or Ctrl+C leave. Exit status: 0 when the chat ends, 1 when the",
    "server cannot be reached, 2 for a bad flag.",
  ],
  examples: [
    "deno run -N chat_client.ts --name alice",
    "deno run -N chat_client.ts --host ::1 --port 9000 --no-color",
  ],
} as const satisfies CommandSpec<OptionSpecs>;

/** A typed frame from the server, or `null` for a text line. */
function parseEvent(line: string): ChatEvent | null {
  if (!line.startsWith("{")) return null;
  try {
    const value = JSON.parse(line);
    return typeof value === "object" && value !== null && typeof value.type === "string"
      ? value as ChatEvent
      : null;
  } catch {
    return null;
  }
}

const LEAVE_WORDS = new Set(["bye", "/quit"]);
/** How long to wait for the server's goodbye before closing ourselves. */
const GOODBYE_WAIT_MS = 2000;

function isLeave(line: string): boolean {
  return LEAVE_WORDS.has(line.trim().toLowerCase());
}

/**
 * After saying goodbye: waits for our lines to go out, then for the server to close, at most a
 * couple of seconds (a server may drop the goodbye, e.g. under flood control), then closes.
 */
async function waitForClose(client: ChatClient): Promise<void> {
  await Promise.race([client.flushed(), client.closed]);
  await settleWithin(client.closed, GOODBYE_WAIT_MS);
  client.close();
}

/**
 * The terminal UI. `attach` receives the function that shows incoming lines, once the prompt
 * is up (lines that arrived before are shown then); `onPrompt` the prompt while it is up, and
 * `null` once it is gone.
 */
async function interactive(
  client: ChatClient,
  color: boolean,
  attach: (show: (line: string, event?: ChatEvent) => void) => void,
  attachAsker: (ask: (retry: boolean) => Promise<string>) => void,
  onPrompt: (prompt: TerminalPrompt | null) => void,
): Promise<void> {
  const promptFor = (name: string | null): string => `${name ?? "you"}> `;
  let leaving = false;
  const leave = (line: string): void => {
    if (leaving) return;
    leaving = true;
    client.send(line);
    void waitForClose(client);
  };
  const prompt = new TerminalPrompt({
    prompt: promptFor(client.name),
    onLine(line) {
      if (isLeave(line)) return leave(line);
      if (line.trim() === "") return;
      client.send(line);
      // The server does not echo your own messages back: show them here.
      const own = client.name ?? "you";
      if (line.startsWith("/me ")) prompt.print(paint(color, "dim", `* ${own} ${line.slice(4)}`));
      else if (!line.startsWith("/") || line.startsWith("//")) {
        prompt.print(formatOwn(own, line.startsWith("//") ? line.slice(1) : line, { color }));
      }
    },
    onInterrupt: () => leave("/quit"),
    onEof: () => leave("/quit"),
  });
  let shownName = client.name;
  prompt.start();
  onPrompt(prompt);
  attachAsker((retry) => prompt.askSecret(retry ? "Wrong password, try again: " : "Password: "));
  attach((line, event) => {
    prompt.print(display(line, event, { color, ownName: client.name }));
    if (client.name !== shownName) {
      shownName = client.name;
      prompt.setPrompt(promptFor(shownName));
    }
  });
  try {
    await client.closed;
  } finally {
    prompt.stop(); // never leave the terminal in raw mode, whatever went wrong
    onPrompt(null);
  }
  printOut(paint(color, "dim", "* disconnected from the server") + "\n");
}

/**
 * How a line from the server looks: styled from its event's type when the server speaks typed
 * frames (a multi-line event shows its lines once, on its first), else from its text.
 */
function display(line: string, event: ChatEvent | undefined, options: DisplayOptions): string {
  if (!event) return formatIncoming(line, options);
  const lines = formatEvent(event, options).split("\n");
  const at = renderLine(event).split("\n").indexOf(line);
  return lines[at] ?? lines[0];
}

/** Sends each line of stdin; at its end (Ctrl+D in a pipe) leaves the room. */
async function sendInput(client: ChatClient): Promise<void> {
  for await (const line of readLines(Deno.stdin, MAX_INCOMING_LINE)) {
    client.send(line);
    if (isLeave(line)) return await waitForClose(client);
  }
  client.send("/quit");
  await waitForClose(client);
}

async function main(): Promise<void> {
  const { values } = loadCommand(CHAT_CLIENT_COMMAND);
  if (values.name) {
    const problem = nameProblem(values.name);
    if (problem) throw new UsageError(`--name: ${problem}`);
  }
  const color = colorWanted(Deno.stdout, values.noColor);
  const early: [string, ChatEvent | undefined][] = [];
  let show: (line: string, event?: ChatEvent) => void = (line, event) => early.push([line, event]);
  // The password comes from a file (tried once), or is asked for on the terminal.
  const fromFile = values.passwordFile ? readPasswordFile(values.passwordFile) : null;
  let askPassword = (retry: boolean): Promise<string | null> =>
    Promise.resolve(fromFile !== null && !retry ? fromFile : null);
  // Trace lines pass above the prompt when both share the terminal, as incoming lines do.
  let traceOut = stderrSink;
  const client = await startChatClient({
    ...values,
    trace: values.trace ? new Tracer((line) => traceOut(line)) : false,
    name: values.name || undefined,
    ca: values.ca ? readPem(values.ca, "--ca", "CERTIFICATE") : undefined,
    password: (retry) => askPassword(retry),
    onLine: (line, event) => show(line, event),
  });
  const attach = (printer: (line: string, event?: ChatEvent) => void): void => {
    show = printer;
    for (const [line, event] of early.splice(0)) printer(line, event);
  };
  const terminal = Deno.stdin.isTerminal() && Deno.stdout.isTerminal();
  if (terminal) {
    await interactive(client, color, attach, (ask) => {
      if (fromFile === null) askPassword = ask;
    }, (prompt) => {
      traceOut = prompt && Deno.stderr.isTerminal() ? (line) => prompt.print(line) : stderrSink;
    });
  } else {
    attach((line, event) => printOut(display(line, event, { color, ownName: client.name }) + "\n"));
    // Print until the server closes, even if stdin is still open (kicked, server stopped).
    await Promise.race([sendInput(client), client.closed]);
    await client.closed;
  }
  client.close();
  if (client.denied) {
    throw new FatalError(
      fromFile !== null
        ? `the room refused the password in ${values.passwordFile}`
        : terminal
        ? "too many wrong passwords"
        : "this room needs a password: pass it with --password-file FILE",
    );
  }
  Deno.exit(0); // a read of stdin may still be pending
}

if (import.meta.main) await runMain("chat_client.ts", main);
