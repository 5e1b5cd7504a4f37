/**
 * Test helpers: in-process servers on port 0, raw TCP clients that read lines, CLI
 * subprocesses that are waited on by their output (never by sleeping), and external tools
 * that skip visibly when missing (and fail under `CI=true`).
 *
 * @module
 */
import { Logger } from "../lib/log.ts";
import { decodeLine, LineFramer } from "../lib/framing.ts";
import { writeAll } from "../lib/io.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The project root (where `deno.json` is). */
export const ROOT: string = new URL("..", import.meta.url).pathname;

/** A logger whose lines are kept, with a way to wait for one. */
export interface CapturedLog {
  /** Pass to a server. */
  logger: Logger;
  /** Every line so far. */
  lines: string[];
  /** Resolves with the first line (past or future) matching `pattern`. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<string>;
}

/** Makes a {@linkcode CapturedLog} at `level`. */
export function captureLog(level: "debug" | "info" = "info"): CapturedLog {
  const lines: string[] = [];
  const waiters: { pattern: RegExp; resolve: (line: string) => void }[] = [];
  const logger = new Logger(level, (line) => {
    lines.push(line);
    for (const w of [...waiters]) {
      if (w.pattern.test(line)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(line);
      }
    }
  });
  return {
    logger,
    lines,
    waitFor(pattern, timeoutMs = 5000) {
      const seen = lines.find((line) => pattern.test(line));
      if (seen) return Promise.resolve(seen);
      return withTimeout(
        new Promise<string>((resolve) => waiters.push({ pattern, resolve })),
        timeoutMs,
        `log line ${pattern}; have:\n${lines.join("\n")}`,
      );
    },
  };
}

/** Rejects if `promise` takes longer than `ms`; clears its timer either way. */
export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** How a {@linkcode LineClient} reads. */
export interface LineClientOptions {
  /** The longest line kept; longer ones are dropped. Default 16 MiB. */
  maxLine?: number;
  /**
   * Which read errors count as the end of the stream (others reject). Default: a reset; pass
   * `() => false` for a client on which a reset is an error, not an end.
   */
  endsOn?: (error: unknown) => boolean;
}

/** A client for tests that reads whole lines, over TCP by default (or any connection). */
export class LineClient<C extends Deno.Conn = Deno.TcpConn> {
  readonly conn: C;
  readonly #framer: LineFramer;
  readonly #endsOn: (error: unknown) => boolean;
  readonly #lines: Uint8Array[] = [];
  readonly #buffer = new Uint8Array(64 * 1024);
  #eof = false;

  /** Reads `conn` (a connection the static methods cannot make). */
  constructor(conn: C, options: LineClientOptions = {}) {
    this.conn = conn;
    this.#framer = new LineFramer(options.maxLine ?? 16 * 1024 * 1024);
    this.#endsOn = options.endsOn ?? ((error) => error instanceof Deno.errors.ConnectionReset);
  }

  /** Connects to `addr`. */
  static async connect(addr: Deno.NetAddr, options: LineClientOptions = {}): Promise<LineClient> {
    return new LineClient(
      await Deno.connect({ hostname: addr.hostname, port: addr.port }),
      options,
    );
  }

  /** Connects over TLS to 127.0.0.1:`port`, trusting `ca`. */
  static async connectTls(
    port: number,
    ca: string,
    options: LineClientOptions = {},
  ): Promise<LineClient<Deno.TlsConn>> {
    return new LineClient(
      await Deno.connectTls({ hostname: "127.0.0.1", port, caCerts: [ca] }),
      options,
    );
  }

  /** Sends text as is. */
  async send(text: string | Uint8Array): Promise<void> {
    await writeAll(this.conn, typeof text === "string" ? encoder.encode(text) : text);
  }

  /** The next line's bytes (no decoding), or `null` at end of stream. */
  async readBytes(timeoutMs = 5000): Promise<Uint8Array | null> {
    return await withTimeout(this.#nextBytes(), timeoutMs, "a line");
  }

  /** The next line, or `null` at end of stream. */
  async readLine(timeoutMs = 5000): Promise<string | null> {
    return await withTimeout(this.next(), timeoutMs, "a line");
  }

  /** Reads lines until one matches `pattern`; returns all read, the match last. */
  async readUntil(pattern: RegExp, timeoutMs = 5000): Promise<string[]> {
    const seen: string[] = [];
    return await withTimeout(
      (async () => {
        while (true) {
          const line = await this.next();
          if (line === null) {
            throw new Error(`closed before ${pattern}; got ${JSON.stringify(seen)}`);
          }
          seen.push(line);
          if (pattern.test(line)) return seen;
        }
      })(),
      timeoutMs,
      `${pattern}; got ${JSON.stringify(seen)}`,
    );
  }

  /** Every remaining line until the server closes. */
  async readToEnd(timeoutMs = 5000): Promise<string[]> {
    const all: string[] = [];
    await withTimeout(
      (async () => {
        for (let line = await this.next(); line !== null; line = await this.next()) {
          all.push(line);
        }
      })(),
      timeoutMs,
      `end of stream; got ${JSON.stringify(all)}`,
    );
    return all;
  }

  /** The next line without a time limit (for loops that have one overall). */
  async next(): Promise<string | null> {
    const line = await this.#nextBytes();
    return line === null ? null : decodeLine(line);
  }

  async #nextBytes(): Promise<Uint8Array | null> {
    while (this.#lines.length === 0) {
      if (this.#eof) return null;
      let n: number | null;
      try {
        n = await this.conn.read(this.#buffer);
      } catch (error) {
        if (this.#endsOn(error)) n = null;
        else throw error;
      }
      if (n === null) {
        this.#eof = true;
        const last = this.#framer.flush();
        if (last !== null) this.#lines.push(last);
        continue;
      }
      this.#framer.push(this.#buffer.subarray(0, n), (line) => {
        this.#lines.push(line.slice());
      }, () => {});
    }
    return this.#lines.shift() ?? null;
  }

  /** Closes the connection (safe to call twice). */
  close(): void {
    try {
      this.conn.close();
    } catch {
      // already closed
    }
  }
}

/** Result of a finished CLI run. */
export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Options for running a script as a subprocess. */
export interface CliOptions {
  /** Text fed to stdin (stdin is closed after it); none means stdin is `/dev/null`. */
  stdin?: string;
  /** Extra environment variables. */
  env?: Record<string, string>;
  /** Working directory. Default: the project root. */
  cwd?: string;
  /** Kill after this long. Default 20 s. */
  timeoutMs?: number;
}

/** Runs `deno <args>` to completion, with `NO_COLOR` set and the project root as cwd. */
export function runDeno(args: string[], options: CliOptions = {}): Promise<CliResult> {
  return runCommand(Deno.execPath(), args, {
    ...options,
    cwd: options.cwd ?? ROOT,
    env: { NO_COLOR: "1", ...options.env },
  });
}

/** Runs a command to completion, feeding it `options.stdin`; kills it after the time-out. */
export async function runCommand(
  command: string,
  args: string[],
  options: CliOptions = {},
): Promise<CliResult> {
  const child = new Deno.Command(command, {
    args,
    cwd: options.cwd,
    env: options.env,
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (options.stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(encoder.encode(options.stdin));
    await writer.close();
  }
  const what = `${command} ${args.join(" ")}`;
  const output = await withTimeout(child.output(), options.timeoutMs ?? 20000, what)
    .catch((error) => {
      child.kill("SIGKILL");
      throw error;
    });
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

/** A long-running subprocess whose stderr is watched line by line. */
export class Spawned {
  readonly child: Deno.ChildProcess;
  readonly stderrLines: string[] = [];
  readonly stdoutLines: string[] = [];
  readonly #done: Promise<void>;
  #waiters: { pattern: RegExp; stream: "stdout" | "stderr"; resolve: (l: string) => void }[] = [];

  /** Starts `deno <args>` (or `options.command <args>`) with piped stdio. */
  constructor(
    args: string[],
    options: Omit<CliOptions, "stdin" | "timeoutMs"> & { command?: string } = {},
  ) {
    this.child = new Deno.Command(options.command ?? Deno.execPath(), {
      args,
      cwd: options.cwd ?? ROOT,
      env: { NO_COLOR: "1", ...options.env },
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#done = Promise.all([
      this.#pump(this.child.stdout, "stdout"),
      this.#pump(this.child.stderr, "stderr"),
    ]).then(() => {});
  }

  async #pump(stream: ReadableStream<Uint8Array>, name: "stdout" | "stderr"): Promise<void> {
    const sink = name === "stdout" ? this.stdoutLines : this.stderrLines;
    let partial = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      const parts = (partial + chunk).split("\n");
      partial = parts.pop() ?? "";
      for (const line of parts) this.#add(sink, name, line);
    }
    if (partial) this.#add(sink, name, partial);
  }

  #add(sink: string[], stream: "stdout" | "stderr", line: string): void {
    sink.push(line);
    for (const w of [...this.#waiters]) {
      if (w.stream === stream && w.pattern.test(line)) {
        this.#waiters.splice(this.#waiters.indexOf(w), 1);
        w.resolve(line);
      }
    }
  }

  /** Resolves with the first line of `stream` matching `pattern`. */
  waitFor(
    pattern: RegExp,
    stream: "stdout" | "stderr" = "stderr",
    timeoutMs = 10000,
  ): Promise<string> {
    const sink = stream === "stdout" ? this.stdoutLines : this.stderrLines;
    const seen = sink.find((line) => pattern.test(line));
    if (seen) return Promise.resolve(seen);
    return withTimeout(
      new Promise<string>((resolve) => this.#waiters.push({ pattern, stream, resolve })),
      timeoutMs,
      `${stream} ${pattern}; stderr so far:\n${this.stderrLines.join("\n")}\nstdout:\n${
        this.stdoutLines.join("\n")
      }`,
    );
  }

  /** Waits for the port in a `... bound to HOST:PORT` log line. */
  async port(): Promise<number> {
    const line = await this.waitFor(/(bound to|listening on) \S+:\d+/i);
    return Number(line.match(/:(\d+)\b(?!.*:\d+)/)?.[1]);
  }

  /** Writes to stdin. */
  async write(text: string): Promise<void> {
    const writer = this.child.stdin.getWriter();
    try {
      await writer.write(encoder.encode(text));
    } finally {
      writer.releaseLock();
    }
  }

  /** Waits for exit (killing after `timeoutMs`) and for all output. */
  async exit(timeoutMs = 10000): Promise<Deno.CommandStatus> {
    try {
      await this.child.stdin.close();
    } catch {
      // already closed
    }
    const status = await withTimeout(this.child.status, timeoutMs, "process exit").catch((e) => {
      this.child.kill("SIGKILL");
      throw e;
    });
    await this.#done;
    return status;
  }
}

/**
 * Whether an external tool can be run. When it cannot: under `CI=true` this throws (CI must
 * install it); elsewhere it prints why the tests that need it are skipped.
 */
export function haveTool(name: string, probeArgs: string[] = ["-h"]): boolean {
  let found = false;
  try {
    new Deno.Command(name, { args: probeArgs, stdout: "null", stderr: "null", stdin: "null" })
      .outputSync();
    found = true;
  } catch {
    found = false;
  }
  if (!found) {
    if (Deno.env.get("CI") === "true") {
      throw new Error(`${name} is required under CI=true: .ci/run installs it`);
    }
    console.log(`SKIP: ${name} not found; its tests are skipped (apt-get install ${name})`);
  }
  return found;
}

/** Runs an external tool to completion with `stdin` text; kills it after `timeoutMs`. */
export function runTool(
  name: string,
  args: string[],
  stdin: string,
  timeoutMs = 10000,
): Promise<CliResult> {
  return runCommand(name, args, { stdin, timeoutMs });
}

/**
 * Starts a server on the IPv6 loopback, or returns `null` (saying so) where this machine has
 * none, so IPv6 tests skip visibly instead of failing.
 */
export function onIpv6Loopback<T>(start: () => T): T | null {
  try {
    return start();
  } catch {
    console.log("SKIP: no IPv6 loopback (::1) on this machine");
    return null;
  }
}

/** The reply format, for assertions. */
export const REPLY = /^Server received at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d: /;
