/**
 * The TCP transport of the chat: accepts connections, frames each client's bytes into lines
 * for the {@linkcode ChatRoom}, and gives the room a {@linkcode MemberLink} per client backed
 * by a bounded {@linkcode OutputQueue}, so a client that stops reading is dropped instead of
 * stalling the room.
 *
 * @module
 */
import type { ChatRoom, Member, MemberLink } from "./chat_room.ts";
import { decodeLine, FIRST_READ_SIZE, LineFramer, nextReadBuffer } from "./framing.ts";
import type { Logger } from "./log.ts";
import {
  acceptConnections,
  closeQuietly,
  completeHandshake,
  connectionFailure,
  formatAddress,
  listenOn,
  readOrSilence,
  refuseConnection,
  SILENCE,
} from "./net.ts";
import { concat, OutputQueue, PacedFlusher } from "./output_queue.ts";
import type { ServerTls } from "./tls.ts";
import { settleWithin } from "./time.ts";
import { addressKey, type AddressLimit, tooManyText } from "./address_limit.ts";
import { maxFrameBytes, Outgoing, parseClientFrame, PROTO_LINE } from "./chat_frames.ts";
import type { Tracer } from "./trace.ts";

/** Settings of {@linkcode serveChatTcp}. */
export interface ChatTcpOptions {
  /** Address to listen on. */
  host: string;
  /** Port; 0 picks a free one. */
  port: number;
  /** Longest line accepted, in bytes. */
  maxLine: number;
  /** Most bytes queued for a client that is not reading before it is dropped. */
  maxQueue: number;
  /** Serve over TLS with this certificate and key. Default: plain TCP. */
  tls?: ServerTls | null;
  /** Connection log. */
  logger: Logger;
  /** Connections per address, shared with the server's other transports. */
  addressLimit: AddressLimit;
  /** Trace every connection's traffic (`--trace`). Default: none, nothing is wrapped. */
  tracer?: Tracer | null;
}

/** The running transport. */
export interface ChatTcpTransport {
  /** The address bound. */
  readonly addr: Deno.NetAddr;
  /** Connections open now (members and ones being turned away). */
  readonly connections: number;
  /** Stops accepting new connections. */
  stopAccepting(): Promise<void>;
  /** Waits up to `ms` for every connection to close, then closes the rest. */
  closeAll(ms: number): Promise<void>;
}

/** Time a closing connection gets to deliver its last lines and see the peer close. */
const LINGER_MS = 1000;
/** Silence after which a new connection joins the room without having sent anything. */
const JOIN_AFTER_MS = 50;

const tooManyLine = (max: number): Uint8Array =>
  new Outgoing({ type: "error", code: "busy", text: tooManyText(max) }).line;

const PROTO_BYTES = new TextEncoder().encode(PROTO_LINE);

/**
 * When `bytes` (a connection's first read) start with the line `/proto json 1`, the bytes
 * after that line; otherwise `null` (a text client: everything goes to the room as it is).
 */
function protoPreface(bytes: Uint8Array): Uint8Array | null {
  if (bytes.length <= PROTO_BYTES.length) return null;
  for (let i = 0; i < PROTO_BYTES.length; i++) if (bytes[i] !== PROTO_BYTES[i]) return null;
  let end = PROTO_BYTES.length;
  if (bytes[end] === 0x0d) end++;
  if (bytes[end] !== 0x0a) return null;
  return bytes.slice(end + 1);
}

/** The text lines of several events, as one buffer. */
function linesOf(outs: readonly Outgoing[]): Uint8Array {
  return outs.length === 1 ? outs[0].line : concat(outs.map((out) => out.line));
}

/** Listens on TCP and joins every connection to `room`. */
export function serveChatTcp(room: ChatRoom, options: ChatTcpOptions): ChatTcpTransport {
  const log = options.logger;
  const listener = listenOn(options.host, options.port, options.tls ?? null);
  const tracer = options.tracer ?? null;
  tracer?.listening(listener.addr, Boolean(options.tls));
  const open = new Map<Deno.Conn, Promise<void>>();
  // One flusher for every client: writes coalesce in time under load (see PacedFlusher).
  const flusher = new PacedFlusher();

  function track(conn: Deno.Conn): void {
    const address = addressKey(conn.remoteAddr);
    const limit = options.addressLimit;
    if (!limit.tryAdd(address)) {
      const refusal = refuseConnection(conn, tooManyLine(limit.max), LINGER_MS)
        .finally(() => open.delete(conn));
      open.set(conn, refusal);
      return;
    }
    const handler = handle(conn, address).finally(() => {
      open.delete(conn);
      limit.release(address);
    });
    open.set(conn, handler);
  }

  async function handle(conn: Deno.Conn, address: string): Promise<void> {
    const peer = formatAddress(conn.remoteAddr);
    if (log.enabled("debug")) log.debug(`Connection from ${peer}`);
    let member: Member | null = null;
    let lingerTimer: ReturnType<typeof setTimeout> | undefined;
    let closing = false;
    /** Speaking typed frames (`/proto json 1`) instead of text lines. */
    let typed = false;

    const queue = new OutputQueue(conn, options.maxQueue, {
      onOverflow() {
        log.warn(`${peer} stopped reading (over ${options.maxQueue} bytes queued); disconnected`);
        if (member) room.leave(member, "slow");
        closeQuietly(conn);
      },
      onError() {
        closeQuietly(conn); // the read loop sees it and the member leaves as disconnected
      },
    }, flusher);

    const link: MemberLink = {
      peer,
      address,
      send(out) {
        const outs = Array.isArray(out) ? out : null;
        if (typed) {
          return queue.send(
            outs ? concat(outs.map((o) => o.jsonLine)) : (out as Outgoing).jsonLine,
          );
        }
        queue.send(outs ? linesOf(outs) : (out as Outgoing).line);
      },
      close() {
        if (closing) return;
        closing = true;
        // Deliver what is queued, then FIN; a peer that neither reads nor closes is cut off.
        lingerTimer = setTimeout(() => closeQuietly(conn), LINGER_MS);
        queue.drained().then(() => conn.closeWrite()).catch(() => {});
      },
    };

    let ended = false;
    try {
      await completeHandshake(conn);
      // Join on the first byte, or after a moment of silence (nc, telnet wait to be greeted).
      // A connection that closes before then is a port probe and never disturbs the room.
      const buffer = new Uint8Array(FIRST_READ_SIZE);
      const first = conn.read(buffer);
      const early = await readOrSilence(first, JOIN_AFTER_MS);
      if (early === null) {
        log.debug(`Probe from ${peer} (closed before joining)`);
        return;
      }
      // A typed client says so on its first line, before it is greeted.
      let preface: Uint8Array | null = null;
      if (early !== SILENCE) {
        const after = protoPreface(buffer.subarray(0, early));
        if (after !== null) {
          typed = true;
          preface = after;
        }
      }
      member = room.join(link);
      const start = preface ? null : early === SILENCE ? first : early;
      await readLines(conn, member, buffer, start, preface, typed, (bytes) => queue.send(bytes));
      ended = true;
    } catch (error) {
      const failure = connectionFailure(error, peer);
      if (failure) log.warn(failure);
    } finally {
      if (member && !member.gone) room.leave(member, "disconnected");
      // A client that only half-closed (`nc -N`) still reads: let its replies go out first.
      if (ended) await settleWithin(queue.drained(), LINGER_MS);
      clearTimeout(lingerTimer);
      closeQuietly(conn);
      if (log.enabled("debug")) log.debug(`Connection from ${peer} closed`);
    }
  }

  /** Feeds the room every line from `conn`; `first` is the first read (done or under way). */
  async function readLines(
    conn: Deno.Conn,
    member: Member | null,
    firstBuffer: Uint8Array,
    first: number | Promise<number | null> | null,
    preface: Uint8Array | null,
    typed: boolean,
    reply: (bytes: Uint8Array) => void,
  ): Promise<void> {
    const framer = new LineFramer(typed ? maxFrameBytes(options.maxLine) : options.maxLine);
    let buffer = firstBuffer;
    const onLine = typed
      ? (line: Uint8Array): void => {
        if (!member || member.gone) return;
        const parsed = parseClientFrame(decodeLine(line), options.maxLine);
        if ("line" in parsed) room.receive(member, parsed.line);
        else if ("tooLong" in parsed) room.lineTooLong(member, options.maxLine);
        else reply(new Outgoing(parsed.error).jsonLine);
      }
      : (line: Uint8Array): void => {
        if (member) room.receive(member, decodeLine(line));
      };
    const onOverflow = (): void => {
      if (member) room.lineTooLong(member, options.maxLine);
    };
    if (preface && preface.length > 0) framer.push(preface, onLine, onOverflow);
    let next: number | Promise<number | null> | null = first;
    while (true) {
      const n = await (next ?? conn.read(buffer));
      next = null;
      if (n === null) {
        const last = framer.flush();
        if (last !== null) onLine(last);
        return;
      }
      framer.push(buffer.subarray(0, n), onLine, onOverflow);
      buffer = nextReadBuffer(buffer, n);
    }
  }

  const accepting = acceptConnections(
    listener,
    track,
    log,
    true,
    tracer ? (conn) => tracer.accepted(conn) : undefined,
  );

  return {
    addr: listener.addr as Deno.NetAddr,
    get connections() {
      return open.size;
    },
    stopAccepting: () => accepting.stop(),
    async closeAll(ms: number) {
      await settleWithin(Promise.all(open.values()), ms);
      for (const conn of open.keys()) closeQuietly(conn);
      await Promise.all(open.values());
      flusher.close();
    },
  };
}
