/**
 * TCP helpers shared by the roles: listening and connecting with errors a person can act on,
 * address formatting, and closing a connection without losing the last reply.
 *
 * @module
 */
import { FatalError } from "./cli.ts";
import { describeTlsFailure, type ServerTls } from "./tls.ts";
import { writeAll } from "./io.ts";

/** `127.0.0.1:8080`, or `[::1]:8080` for IPv6. */
export function formatAddress(addr: Deno.Addr): string {
  if (addr.transport !== "tcp" && addr.transport !== "udp") return addr.transport;
  return addr.hostname.includes(":")
    ? `[${addr.hostname}]:${addr.port}`
    : `${addr.hostname}:${addr.port}`;
}

/** Accepts `[::1]` as well as `::1`. */
export function normalizeHost(host: string): string {
  return host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
}

/** Whether `host` is a loopback address (used to warn about listening on a network). */
export function isLoopback(host: string): boolean {
  const h = normalizeHost(host).toLowerCase();
  return h === "localhost" || h === "::1" || h.startsWith("127.");
}

/**
 * Warnings for a server about to listen: on an address other than loopback without TLS,
 * messages cross the network in clear text, and so do the `secrets` named (the chat's room
 * password, account passwords), if any.
 */
export function clearTextWarnings(host: string, tls: boolean, secrets = ""): string[] {
  if (tls || isLoopback(host)) return [];
  const warnings = [
    `listening on ${host} without TLS: messages travel in clear text; use --tls-cert and --tls-key (make a pair with \`deno task cert\`)`,
  ];
  if (secrets) warnings.push(`${secrets} travel in clear text too: use TLS`);
  return warnings;
}

/**
 * Listens on TCP, or on TLS over TCP when `tls` is given, or throws a {@linkcode FatalError}
 * that says what to do.
 */
export function listenOn(host: string, port: number, tls: ServerTls | null = null): Deno.Listener {
  const hostname = normalizeHost(host);
  const where = formatAddress({ transport: "tcp", hostname, port });
  try {
    return tls
      ? Deno.listenTls({ hostname, port, transport: "tcp", cert: tls.cert, key: tls.key })
      : Deno.listen({ hostname, port, transport: "tcp" });
  } catch (error) {
    if (error instanceof Deno.errors.AddrInUse) {
      throw new FatalError(
        `${where} is already in use: stop the program using it, or pick another port with --port`,
      );
    }
    if (error instanceof Deno.errors.AddrNotAvailable) {
      throw new FatalError(
        `${hostname} is not an address of this machine: use --host 127.0.0.1, ::1 or 0.0.0.0`,
      );
    }
    if (error instanceof Deno.errors.NotCapable) {
      throw new FatalError(`no permission to listen on ${where}: run with --allow-net (-N)`);
    }
    if (error instanceof Deno.errors.PermissionDenied) {
      throw new FatalError(
        `the system refused port ${port} on ${hostname} (ports below 1024 need privileges): use --port 8080`,
      );
    }
    if (tls && /key|cert|pem/i.test(errorText(error))) {
      throw new FatalError(`the TLS certificate and key do not work together: ${errorText(error)}`);
    }
    throw new FatalError(`cannot listen on ${where}: ${errorText(error)}`);
  }
}

/** Options for {@linkcode connectTo}. */
export interface ConnectOptions {
  /** Host name or address. */
  host: string;
  /** TCP port. */
  port: number;
  /** Give up after this many milliseconds. */
  timeoutMs: number;
  /** How to start the server, for the "refused" hint (e.g. `deno task server`). */
  startHint: string;
  /** Use TLS. */
  tls?: boolean;
  /** A PEM certificate to trust besides the system's (a self-signed server's); implies TLS. */
  ca?: string;
  /**
   * Called with the connection once it is up (TLS handshake included); what it returns is
   * used instead (`--trace` wraps it, see `lib/trace.ts`). Default: the connection as is.
   */
  wrap?: (conn: Deno.Conn) => Deno.Conn;
}

/**
 * Connects over TCP (or TLS, handshake included), or throws a {@linkcode FatalError} that says
 * what happened and what to do.
 */
export async function connectTo(options: ConnectOptions): Promise<Deno.Conn> {
  const hostname = normalizeHost(options.host);
  const where = formatAddress({ transport: "tcp", hostname, port: options.port });
  if (Deno.permissions.querySync({ name: "net", host: hostname }).state !== "granted") {
    throw new FatalError(`no permission to connect to ${where}: run with --allow-net (-N)`);
  }
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), options.timeoutMs);
  const useTls = Boolean(options.tls || options.ca);
  let tlsConn: Deno.TlsConn | null = null;
  try {
    if (!useTls) {
      const conn = await Deno.connect({ hostname, port: options.port, signal: controller.signal });
      sendPromptly(conn);
      return options.wrap ? options.wrap(conn) : conn;
    }
    const caCerts = options.ca ? [options.ca] : undefined;
    tlsConn = await Deno.connectTls({ hostname, port: options.port, caCerts });
    const conn = tlsConn;
    // Handshake now, within the time limit, so a bad certificate is reported here.
    await Promise.race([
      conn.handshake(),
      new Promise((_, reject) =>
        controller.signal.addEventListener("abort", () => reject(new Error("aborted")))
      ),
    ]);
    return options.wrap ? options.wrap(conn) : conn;
  } catch (error) {
    if (tlsConn) closeQuietly(tlsConn);
    const tlsProblem = useTls ? describeTlsFailure(error, where) : null;
    if (tlsProblem && !controller.signal.aborted) throw new FatalError(tlsProblem);
    if (controller.signal.aborted) {
      throw new FatalError(
        `no answer from ${where} within ${
          options.timeoutMs / 1000
        } s: check --host and --port, or raise --timeout`,
      );
    }
    if (error instanceof Deno.errors.ConnectionRefused) {
      throw new FatalError(
        `cannot connect to ${where}: connection refused. Is the server running? Start it with \`${options.startHint}\``,
      );
    }
    if (
      /lookup address|Name or service not known|No such host|nodename nor servname/i.test(
        errorText(error),
      )
    ) {
      throw new FatalError(`unknown host '${hostname}': check the spelling of --host`);
    }
    if (error instanceof Deno.errors.NotCapable) {
      throw new FatalError(`no permission to connect to ${where}: run with --allow-net (-N)`);
    }
    throw new FatalError(`cannot connect to ${where}: ${errorText(error)}`);
  } finally {
    clearTimeout(timer);
  }
}

/** Whether `error` only means the peer went away (reset, closed, or closed by us). */
export function isDisconnect(error: unknown): boolean {
  return error instanceof Deno.errors.ConnectionReset ||
    error instanceof Deno.errors.ConnectionAborted ||
    error instanceof Deno.errors.BrokenPipe ||
    error instanceof Deno.errors.NotConnected ||
    error instanceof Deno.errors.BadResource ||
    error instanceof Deno.errors.Interrupted ||
    error instanceof Deno.errors.TimedOut ||
    error instanceof Deno.errors.UnexpectedEof;
}

/** The message of any thrown value, without the OS error number. */
export function errorText(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.replace(/ \(os error \d+\)$/, "");
}

/** Closes a resource that may already be closed. */
export function closeQuietly(resource: { close(): void }): void {
  try {
    resource.close();
  } catch {
    // Already closed.
  }
}

const drainBuffer = new Uint8Array(16 * 1024);

/**
 * Connections draining in {@linkcode lingeringClose}, with their deadlines. One sweep closes
 * the late ones, rather than a timer per connection (a one-shot server closes thousands a
 * second); it runs only while some connection lingers.
 */
const lingering = new Map<Deno.Conn, number>();
let lingerSweep: ReturnType<typeof setInterval> | undefined;
const LINGER_SWEEP_MS = 50;

function sweepLingering(): void {
  const now = performance.now();
  for (const [conn, deadline] of lingering) {
    if (now >= deadline) closeQuietly(conn); // its pending read fails and lingeringClose ends
  }
}

/**
 * Closes `conn` so that what was written last still arrives. Closing a socket that has unread
 * input makes the kernel send a reset, which can destroy the reply in flight (a client still
 * sending a 100 MB line would never see our error line). So: send FIN, read and discard until
 * the peer closes too or `lingerMs` pass, then close. `pendingRead` is a read the caller
 * already started on `conn`, if any.
 */
export async function lingeringClose(
  conn: Deno.Conn,
  lingerMs: number,
  pendingRead?: Promise<number | null>,
): Promise<void> {
  lingering.set(conn, performance.now() + lingerMs);
  lingerSweep ??= setInterval(sweepLingering, LINGER_SWEEP_MS);
  try {
    await conn.closeWrite();
    // A read already under way must finish first: a connection takes one read at a time.
    // The discarded bytes are never looked at, so every connection shares one buffer.
    let n = await (pendingRead ?? conn.read(drainBuffer));
    while (n !== null) n = await conn.read(drainBuffer);
  } catch {
    // Reset, or closed by the sweep: nothing left to protect.
  } finally {
    lingering.delete(conn);
    if (lingering.size === 0) {
      clearInterval(lingerSweep);
      lingerSweep = undefined;
    }
    closeQuietly(conn);
  }
}

/**
 * Turns a connection away with one line: writes it, then closes as {@linkcode lingeringClose}
 * does, so the line is not lost to a reset. Never throws.
 */
export async function refuseConnection(
  conn: Deno.Conn,
  line: Uint8Array,
  lingerMs: number,
): Promise<void> {
  try {
    await writeAll(conn, line);
    await lingeringClose(conn, lingerMs);
  } catch {
    closeQuietly(conn);
  }
}

/** A running accept loop, from {@linkcode acceptConnections}. */
export interface AcceptLoop {
  /** Resolves when the loop has ended. */
  readonly done: Promise<void>;
  /** Closes the listener and ends the loop (also during a back-off pause). */
  stop(): Promise<void>;
}

/** Where {@linkcode acceptConnections} reports what went wrong (a {@linkcode Logger} fits). */
export interface AcceptLog {
  /** Connections lost before they were accepted (a count per second, never one per reset). */
  debug(message: string): void;
  /** Out of descriptors or memory: at most once a second while it lasts. */
  warn(message: string): void;
  /** Whether debug lines are wanted. */
  enabled(level: "debug"): boolean;
}

const ACCEPT_BACKOFF_MIN_MS = 10;
const ACCEPT_BACKOFF_MAX_MS = 1000;
const ACCEPT_REPORT_MS = 1000;

/**
 * Accept errors that belong to one connection, which was reset or aborted in the backlog
 * before we took it: nothing is wrong with the listener, so accept again at once. Only
 * running out of a resource is worth a pause.
 */
const CONNECTION_ERRORS = new Set([
  "ENOTCONN",
  "ECONNABORTED",
  "ECONNRESET",
  "ECONNREFUSED",
  "EPROTO",
  "EPERM",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENETDOWN",
  "EHOSTDOWN",
  "ENOPROTOOPT",
  "ENONET",
  "EOPNOTSUPP",
  "EPIPE",
]);

/** What went wrong in `accept()`: one connection's problem, or the server's. */
export function acceptErrorKind(error: unknown): "connection" | "resource" {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === "string" && CONNECTION_ERRORS.has(code)) return "connection";
  return error instanceof Deno.errors.NotConnected ||
      error instanceof Deno.errors.ConnectionAborted ||
      error instanceof Deno.errors.ConnectionReset
    ? "connection"
    : "resource";
}

/**
 * Accepts connections until stopped, handing each to `onConnection`, with Nagle's algorithm
 * off unless `noDelay` is false (see {@linkcode sendPromptly}). When `wrap` is given, each
 * connection goes through it first and the callback gets what it returns (`--trace` wraps
 * them, see `lib/trace.ts`); without it the callback gets the connection itself.
 *
 * The policy of mature servers (Go's `net/http`, nginx): a connection reset or aborted in the
 * backlog makes `accept()` throw once for that connection; it is counted and the loop accepts
 * again at once, so a storm of resets costs milliseconds, not seconds. Running out of
 * descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM) pauses with exponential back-off,
 * 10 ms to 1 s, and the back-off ends as soon as an accept succeeds.
 */
export function acceptConnections(
  listener: Deno.Listener,
  onConnection: (conn: Deno.Conn) => void,
  log: AcceptLog,
  noDelay = true,
  wrap?: (conn: Deno.Conn) => Deno.Conn,
): AcceptLoop {
  let stopping = false;
  let wake: (() => void) | null = null;
  let timer: ReturnType<typeof setTimeout> | undefined;
  // Counted, and reported at most once a second: a storm never floods the log.
  let lost = 0;
  let failed = 0;
  let lastLost = -Infinity;
  let lastFailed = -Infinity;

  function reportLost(now: number, force = false): void {
    if (lost === 0 || (!force && now - lastLost < ACCEPT_REPORT_MS)) return;
    if (log.enabled("debug")) {
      log.debug(`${lost} connection(s) reset or aborted before they were accepted`);
    }
    lost = 0;
    lastLost = now;
  }

  async function pause(ms: number): Promise<void> {
    await new Promise<void>((resolve) => {
      wake = resolve;
      timer = setTimeout(resolve, ms);
    });
    wake = null;
  }

  async function loop(): Promise<void> {
    let backoff = ACCEPT_BACKOFF_MIN_MS;
    while (!stopping) {
      let conn: Deno.Conn;
      try {
        conn = await listener.accept();
      } catch (error) {
        if (stopping || error instanceof Deno.errors.BadResource) break;
        const now = performance.now();
        if (acceptErrorKind(error) === "connection") {
          lost++;
          reportLost(now);
          continue;
        }
        failed++;
        if (now - lastFailed >= ACCEPT_REPORT_MS) {
          const times = failed > 1 ? ` (${failed} times since the last report)` : "";
          log.warn(`accept failed: ${errorText(error)}${times}; retrying in ${backoff} ms`);
          failed = 0;
          lastFailed = now;
        }
        await pause(backoff);
        backoff = Math.min(backoff * 2, ACCEPT_BACKOFF_MAX_MS);
        continue;
      }
      backoff = ACCEPT_BACKOFF_MIN_MS;
      if (lost > 0) reportLost(performance.now());
      if (noDelay) sendPromptly(conn);
      onConnection(wrap ? wrap(conn) : conn);
    }
    reportLost(performance.now(), true);
  }

  const done = loop();
  return {
    done,
    async stop() {
      stopping = true;
      clearTimeout(timer);
      wake?.();
      closeQuietly(listener);
      await done;
    },
  };
}

/** What {@linkcode readOrSilence} returns when the peer stayed silent. */
export const SILENCE: unique symbol = Symbol("silence");

/**
 * Waits for a read already under way, or for `ms` of silence, whichever comes first. The read
 * stays under way after a silence: pass the same promise again to keep waiting for it.
 */
export async function readOrSilence(
  pending: Promise<number | null>,
  ms: number,
): Promise<number | null | typeof SILENCE> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const silence = new Promise<typeof SILENCE>((resolve) => {
    timer = setTimeout(() => resolve(SILENCE), ms);
  });
  try {
    return await Promise.race([pending, silence]);
  } finally {
    clearTimeout(timer);
  }
}

/** Longest a TLS client may take to complete its handshake. */
export const HANDSHAKE_TIMEOUT_MS = 10_000;

/**
 * Completes the TLS handshake of an accepted connection (nothing to do for plain TCP), so a
 * client that does not speak TLS, or does not trust us, is turned away before it reaches any
 * room or log of messages. Rejects on failure or after {@linkcode HANDSHAKE_TIMEOUT_MS}.
 */
export async function completeHandshake(conn: Deno.Conn): Promise<void> {
  if (!("handshake" in conn)) return;
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([
      (conn as Deno.TlsConn).handshake(),
      new Promise((_, reject) => {
        timer = setTimeout(
          () => reject(new Error("TLS handshake timed out")),
          HANDSHAKE_TIMEOUT_MS,
        );
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Turns Nagle's algorithm off (`TCP_NODELAY`), which Deno leaves on. A line protocol writes
 * small segments; with Nagle on, each waits for the peer's delayed ACK (up to 40 ms on Linux).
 * Deno offers no such switch for TLS connections, which keep the default.
 */
export function sendPromptly(conn: Deno.Conn): void {
  if ("setNoDelay" in conn) (conn as Deno.TcpConn).setNoDelay(true);
}

/**
 * What to log when serving a connection failed: a TLS handshake explained, or the error; `null`
 * when the peer merely went away (reset, closed), which is no failure of ours.
 */
export function connectionFailure(error: unknown, peer: string): string | null {
  if (isDisconnect(error)) return null;
  return describeTlsFailure(error, peer, "server") ??
    `Connection with ${peer} failed: ${errorText(error)}`;
}
