/**
 * `--trace`: every read and write of every connection on stderr, as it happens, so a student
 * can watch what TCP really does with their bytes. One line per event:
 *
 * ```text
 *    0.048210 listen 127.0.0.1:8080
 *    1.302518 #1 accept 127.0.0.1:50514 -> 127.0.0.1:8080
 *    1.303102 #1 <     8 B "one\ntwo\n"
 *    1.303622 #1 >    86 B "Server received at 2025-10-01 14:30:25: one\nServer received at ..."
 *    1.410877 #1 FIN received (read returned end of stream)
 *    1.411020 #1 close
 * ```
 *
 * - The time is in seconds since the program started (`performance.now()`, which is monotonic:
 *   a clock change never makes it jump), taken when the event completed.
 * - `#N` is the connection: numbered from 1 in the order this process accepted or opened them.
 * - `<` bytes received: one line per `read()`, with the count it returned. TCP keeps no message
 *   boundaries, so two `send`s of the peer may show as one read, and one line as several.
 * - `>` bytes sent: one line per `write()`, with the count the kernel took, which is what the
 *   line shows. A write that took less than it was given says `(partial write, N B asked)`;
 *   the next line shows the rest going out.
 * - `accept CLIENT -> SERVER` (servers) and `connect CLIENT -> SERVER` (clients): the arrow
 *   always points from the client's address to the server's.
 * - `FIN received (read returned end of stream)`: the peer closed its side (it may still read);
 *   `FIN sent (closeWrite)`: we closed ours; `reset (ConnectionReset on read)`: the peer's
 *   kernel answered with RST (it closed with unread data, or crashed); `close`: we closed the
 *   socket. Other failures say which operation failed and why.
 *
 * Payloads are shown between double quotes: UTF-8 text as it is, `\n`, `\r`, `\t`, `\\` and
 * `\"` as in a string literal, every other control byte and every byte that is not part of
 * valid UTF-8 as `\xNN` (always exactly one byte), and C1 controls and bidirectional overrides
 * (which are several bytes in UTF-8) as `\uNNNN`, through {@linkcode escapeControls}. Nothing
 * raw reaches the terminal. A character cut in two by TCP shows as `\xNN` at the end of one
 * read and the start of the next. A payload over {@linkcode TRACE_MAX_BYTES} bytes shows its
 * head and tail, and how many bytes were left out between them.
 *
 * Over TLS the bytes shown are the plaintext the program reads and writes, not the encrypted
 * records on the wire.
 *
 * Trace lines are written as they are, whatever the log level: `--trace --quiet` shows the
 * traffic without the log. When `--trace` is off, nothing is wrapped: the roles use the raw
 * connection, so no line is formatted and no call is added to any read or write.
 *
 * @module
 */
import { stderrSink } from "./log.ts";
import { errorText, formatAddress } from "./net.ts";
import { escapeControls } from "./terminal.ts";

/** Where trace lines go (one line, without `\n`). */
export type TraceSink = (line: string) => void;

/** Payloads longer than this many bytes are shortened to their head and tail. */
export const TRACE_MAX_BYTES = 200;
const HEAD_BYTES = 160;
const TAIL_BYTES = 40;

/** `--trace` as every role declares it (the chat server says which connections it covers). */
export const TRACE_OPTION = {
  type: "boolean",
  default: false,
  description:
    "print every connect/accept, read, write, FIN, reset and close to stderr, bytes escaped (even with --quiet)",
} as const;

/** Connections are numbered per process, whichever tracer sees them. */
let lastId = 0;

/** Seconds since the program started, fixed width: `   12.345678`. */
export function formatElapsed(ms: number = performance.now()): string {
  return (ms / 1000).toFixed(6).padStart(11);
}

/** How many bytes the UTF-8 sequence at `i` takes, or 0 when it is not valid UTF-8. */
function sequenceLength(bytes: Uint8Array, i: number): number {
  const lead = bytes[i];
  let length: number;
  let low = 0x80;
  let high = 0xbf;
  if (lead >= 0xc2 && lead <= 0xdf) length = 2;
  else if (lead >= 0xe0 && lead <= 0xef) {
    length = 3;
    if (lead === 0xe0) low = 0xa0; // overlong
    if (lead === 0xed) high = 0x9f; // surrogates
  } else if (lead >= 0xf0 && lead <= 0xf4) {
    length = 4;
    if (lead === 0xf0) low = 0x90; // overlong
    if (lead === 0xf4) high = 0x8f; // past U+10FFFF
  } else return 0;
  if (i + length > bytes.length) return 0;
  if (bytes[i + 1] < low || bytes[i + 1] > high) return 0;
  for (let k = 2; k < length; k++) {
    if ((bytes[i + k] & 0xc0) !== 0x80) return 0;
  }
  return length;
}

function codePointAt(bytes: Uint8Array, i: number, length: number): number {
  let cp = bytes[i] & (0xff >> (length + 1));
  for (let k = 1; k < length; k++) cp = (cp << 6) | (bytes[i + k] & 0x3f);
  return cp;
}

/** Escapes decoded text: quotes and backslashes as in a literal, controls made visible. */
function escapeText(text: string): string {
  const quoted = text.replace(
    /[\\"\x80-\x9f]/g,
    (c) => c === "\\" ? "\\\\" : c === '"' ? '\\"' : `\\u00${c.charCodeAt(0).toString(16)}`,
  );
  return escapeControls(quoted);
}

const fatalDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * The bytes as printable text, without quotes: valid UTF-8 as text, escapes for everything
 * else (see the module's documentation). Never shortens.
 */
export function escapeBytes(bytes: Uint8Array): string {
  // Usually the bytes are valid UTF-8 (all of a line protocol's are): decode at once.
  try {
    return escapeText(fatalDecoder.decode(bytes));
  } catch {
    // Some byte is not UTF-8: go through them one sequence at a time.
  }
  let out = "";
  let run = "";
  for (let i = 0; i < bytes.length;) {
    const b = bytes[i];
    if (b < 0x80) {
      run += String.fromCharCode(b);
      i++;
      continue;
    }
    const length = sequenceLength(bytes, i);
    if (length === 0) {
      out += escapeText(run) + `\\x${b.toString(16).padStart(2, "0")}`;
      run = "";
      i++;
      continue;
    }
    run += String.fromCodePoint(codePointAt(bytes, i, length));
    i += length;
  }
  return out + escapeText(run);
}

/**
 * The bytes quoted and escaped; over `max` bytes, only the head and the tail (cut between
 * characters), with the count left out between them:
 * `"head..." ...(1234 B left out)... "...tail"`.
 */
export function formatPayload(bytes: Uint8Array, max = TRACE_MAX_BYTES): string {
  if (bytes.length <= max) return `"${escapeBytes(bytes)}"`;
  const headBytes = Math.round(max * HEAD_BYTES / TRACE_MAX_BYTES);
  const tailBytes = Math.round(max * TAIL_BYTES / TRACE_MAX_BYTES);
  // A character on a cut goes wholly into the part left out.
  let head = headBytes;
  while (head > headBytes - 3 && (bytes[head] & 0xc0) === 0x80) head--;
  let tail = bytes.length - tailBytes;
  const tailLimit = tail + 3;
  while (tail < tailLimit && (bytes[tail] & 0xc0) === 0x80) tail++;
  return `"${escapeBytes(bytes.subarray(0, head))}" ...(${tail - head} B left out)... "${
    escapeBytes(bytes.subarray(tail))
  }"`;
}

/** The text of a read or write event, after the connection id: `<    14 B "hello\n"`. */
export function formatTransfer(
  direction: "<" | ">",
  bytes: Uint8Array,
  asked: number = bytes.length,
): string {
  const partial = bytes.length < asked ? ` (partial write, ${asked} B asked)` : "";
  return `${direction} ${String(bytes.length).padStart(5)} B${partial} ${formatPayload(bytes)}`;
}

/** What a failed operation means, for the trace: a reset named as such. */
function describeFailure(operation: string, error: unknown, closedHere: boolean): string {
  if (closedHere) return `${operation} ended: the connection was closed here`;
  const name = error instanceof Error ? error.name : "Error";
  if (
    error instanceof Deno.errors.ConnectionReset ||
    error instanceof Deno.errors.ConnectionAborted ||
    error instanceof Deno.errors.BrokenPipe
  ) {
    return `reset (${name} on ${operation})`;
  }
  return `${operation} failed (${name}: ${errorText(error)})`;
}

/** Writes trace lines and wraps connections so that their traffic is traced. */
export class Tracer {
  readonly #sink: TraceSink;

  /** @param sink where lines go; default stderr. */
  constructor(sink: TraceSink = stderrSink) {
    this.#sink = sink;
  }

  /** Writes one event: the timestamp, the connection (if any) and `text`. */
  event(id: number | null, text: string): void {
    this.#sink(`${formatElapsed()} ${id === null ? "" : `#${id} `}${text}`);
  }

  /** Traces that a server listens on `addr`. */
  listening(addr: Deno.Addr, tls = false): void {
    this.event(null, `listen ${formatAddress(addr)}${tls ? " (TLS)" : ""}`);
  }

  /** Wraps a connection a server accepted, tracing the accept. */
  accepted<C extends Deno.Conn>(conn: C): C {
    return this.#opened(conn, "accept", conn.remoteAddr, conn.localAddr);
  }

  /** Wraps a connection a client opened, tracing the connect. */
  connected<C extends Deno.Conn>(conn: C): C {
    return this.#opened(conn, "connect", conn.localAddr, conn.remoteAddr);
  }

  /** Wraps `conn` and traces how it began; the arrow points from client to server. */
  #opened<C extends Deno.Conn>(conn: C, verb: string, client: Deno.Addr, server: Deno.Addr): C {
    const traced = this.#wrap(conn);
    const tls = "handshake" in conn ? " (TLS)" : "";
    traced.trace(`${verb} ${formatAddress(client)} -> ${formatAddress(server)}${tls}`);
    return traced as unknown as C;
  }

  #wrap(conn: Deno.Conn): TracedConn {
    const id = ++lastId;
    if ("handshake" in conn) return new TracedTlsConn(conn as Deno.TlsConn, id, this);
    if ("setNoDelay" in conn) return new TracedTcpConn(conn as Deno.TcpConn, id, this);
    return new TracedConn(conn, id, this);
  }
}

/** `--trace`'s value as a tracer: `true` traces to stderr, a {@linkcode Tracer} is used as is. */
export function tracerFrom(trace: boolean | Tracer | null | undefined): Tracer | null {
  if (trace instanceof Tracer) return trace;
  return trace ? new Tracer() : null;
}

const STREAM_CHUNK = 16 * 1024;

/** A connection that traces what goes through it; otherwise it is the connection it wraps. */
class TracedConn<A extends Deno.Addr = Deno.Addr> implements Deno.Conn<A> {
  protected readonly inner: Deno.Conn<A>;
  readonly #id: number;
  readonly #tracer: Tracer;
  #closed = false;
  #readable: ReadableStream<Uint8Array<ArrayBuffer>> | null = null;
  #writable: WritableStream<Uint8Array<ArrayBufferLike>> | null = null;

  constructor(inner: Deno.Conn<A>, id: number, tracer: Tracer) {
    this.inner = inner;
    this.#id = id;
    this.#tracer = tracer;
  }

  /** Writes an event of this connection. */
  trace(text: string): void {
    this.#tracer.event(this.#id, text);
  }

  /** Writes a failure of `operation`, and returns the error to rethrow. */
  protected failed(operation: string, error: unknown): unknown {
    this.trace(describeFailure(operation, error, this.#closed));
    return error;
  }

  get localAddr(): A {
    return this.inner.localAddr;
  }

  get remoteAddr(): A {
    return this.inner.remoteAddr;
  }

  async read(p: Uint8Array): Promise<number | null> {
    let n: number | null;
    try {
      n = await this.inner.read(p);
    } catch (error) {
      throw this.failed("read", error);
    }
    // Formatted now: the caller may reuse the buffer as soon as this resolves.
    this.trace(
      n === null ? "FIN received (read returned end of stream)" : formatTransfer(
        "<",
        p.subarray(0, n),
      ),
    );
    return n;
  }

  async write(p: Uint8Array): Promise<number> {
    let n: number;
    try {
      n = await this.inner.write(p);
    } catch (error) {
      throw this.failed("write", error);
    }
    this.trace(formatTransfer(">", p.subarray(0, n), p.length));
    return n;
  }

  async closeWrite(): Promise<void> {
    try {
      await this.inner.closeWrite();
    } catch (error) {
      throw this.failed("closeWrite", error);
    }
    this.trace("FIN sent (closeWrite)");
  }

  close(): void {
    this.inner.close(); // throws when already closed, and then there is nothing to trace
    this.#closed = true;
    this.trace("close");
  }

  ref(): void {
    this.inner.ref();
  }

  unref(): void {
    this.inner.unref();
  }

  /** The received bytes as a stream, read through the traced `read()`. */
  get readable(): ReadableStream<Uint8Array<ArrayBuffer>> {
    return this.#readable ??= new ReadableStream<Uint8Array<ArrayBuffer>>({
      pull: async (controller) => {
        const buffer = new Uint8Array(STREAM_CHUNK);
        const n = await this.read(buffer);
        if (n === null) controller.close();
        else controller.enqueue(buffer.slice(0, n));
      },
      cancel: () => this[Symbol.dispose](),
    });
  }

  /** A stream of bytes to send, written through the traced `write()`. */
  get writable(): WritableStream<Uint8Array<ArrayBufferLike>> {
    return this.#writable ??= new WritableStream<Uint8Array<ArrayBufferLike>>({
      write: async (chunk) => {
        for (let offset = 0; offset < chunk.length;) {
          offset += await this.write(chunk.subarray(offset));
        }
      },
      close: () => this[Symbol.dispose](),
      abort: () => this[Symbol.dispose](),
    });
  }

  [Symbol.dispose](): void {
    try {
      this.close();
    } catch {
      // Already closed.
    }
  }
}

/** A traced TCP connection: Nagle and keep-alive switches pass through. */
class TracedTcpConn extends TracedConn<Deno.NetAddr> implements Deno.TcpConn {
  declare protected readonly inner: Deno.TcpConn;

  setNoDelay(noDelay?: boolean): void {
    this.inner.setNoDelay(noDelay);
  }

  setKeepAlive(keepAlive?: boolean): void {
    this.inner.setKeepAlive(keepAlive);
  }
}

/** A traced TLS connection: the handshake is traced too. */
class TracedTlsConn extends TracedConn<Deno.NetAddr> implements Deno.TlsConn {
  declare protected readonly inner: Deno.TlsConn;

  async handshake(): Promise<Deno.TlsHandshakeInfo> {
    let info: Deno.TlsHandshakeInfo;
    try {
      info = await this.inner.handshake();
    } catch (error) {
      throw this.failed("TLS handshake", error);
    }
    this.trace(`TLS handshake done${info.alpnProtocol ? ` (ALPN ${info.alpnProtocol})` : ""}`);
    return info;
  }
}
