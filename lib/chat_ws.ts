/**
 * A WebSocket as a chat member: the browser's way into the same room as TCP clients, through
 * the same {@linkcode MemberLink} seam. It speaks the typed frames of `chat_frames.ts`, one
 * JSON object per WebSocket message, both ways.
 *
 * Backpressure: Deno's server-side `WebSocket.bufferedAmount` counts the bytes sent but not
 * yet handed to the kernel, as in browsers. A browser that stops reading makes it grow, and
 * past `maxQueue` bytes the member is dropped as slow, exactly like a TCP client whose output
 * queue is full.
 *
 * @module
 */
import type { ChatRoom, Member, MemberLink } from "./chat_room.ts";
import { type ChatEvent, maxFrameBytes, type Outgoing, parseClientFrame } from "./chat_frames.ts";
import type { Logger } from "./log.ts";

/** Settings of {@linkcode joinWebSocket}. */
export interface WebSocketMemberOptions {
  /** Longest line a frame may become, in bytes (the room's `--max-line`). */
  maxLine: number;
  /** Bytes sent but not yet taken by the browser before it is dropped as slow. */
  maxQueue: number;
  /** `HOST:PORT` of the browser, for logs. */
  peer: string;
  /** Its address key, for budgets per address. */
  address: string;
  /** Connection log. */
  logger: Logger;
}

/** Close codes we use (RFC 6455 section 7.4.1). */
export const CLOSE = {
  normal: 1000,
  goingAway: 1001,
  policy: 1008,
  tooBig: 1009,
} as const;

/**
 * Joins `socket` to `room` once it opens. Resolves when the socket has closed and the member
 * has left.
 */
export function joinWebSocket(
  room: ChatRoom,
  socket: WebSocket,
  options: WebSocketMemberOptions,
): Promise<void> {
  const log = options.logger;
  const { peer } = options;
  let member: Member | null = null;
  let dropped = false;
  const { promise: closed, resolve: onClosed } = Promise.withResolvers<void>();

  function sendFrame(event: ChatEvent | string): void {
    if (socket.readyState !== WebSocket.OPEN) return;
    socket.send(typeof event === "string" ? event : JSON.stringify(event));
  }

  function drop(): void {
    if (dropped) return;
    dropped = true;
    log.warn(`${peer} stopped reading (over ${options.maxQueue} bytes queued); disconnected`);
    // Later, not inside the room's send: the room is mid-broadcast.
    queueMicrotask(() => {
      if (member) room.leave(member, "slow");
      socket.close(CLOSE.policy, "not reading fast enough");
    });
  }

  const link: MemberLink = {
    peer,
    address: options.address,
    send(out: Outgoing | readonly Outgoing[]) {
      if (dropped) return;
      const outs = Array.isArray(out) ? out : [out as Outgoing];
      let size = 0;
      for (const one of outs) size += one.json.length;
      // Whatever is sent while nothing waits is taken (a long welcome is never "slow"); behind
      // unsent bytes, the backlog is bounded.
      const waiting = socket.bufferedAmount;
      if (waiting > 0 && waiting + size > options.maxQueue) return drop();
      for (const one of outs) sendFrame(one.json);
    },
    close(reason?: string) {
      // Queued frames go out before the close frame; the reason tells the page whether to
      // reconnect (not after bye, a kick or a refusal).
      if (socket.readyState === WebSocket.OPEN) socket.close(CLOSE.normal, reason ?? "");
    },
  };

  socket.onopen = () => {
    if (log.enabled("debug")) log.debug(`WebSocket from ${peer}`);
    member = room.join(link);
  };
  socket.onmessage = (message: MessageEvent) => {
    if (!member || member.gone) return;
    if (typeof message.data !== "string") {
      return sendFrame({
        type: "error",
        code: "bad-frame",
        text: "binary frames are not accepted: send JSON text frames",
      });
    }
    if (message.data.length > maxFrameBytes(options.maxLine)) {
      log.warn(`Oversized frame from ${peer} (${message.data.length} bytes); closed`);
      return socket.close(CLOSE.tooBig, "frame too big");
    }
    const parsed = parseClientFrame(message.data, options.maxLine);
    if ("line" in parsed) room.receive(member, parsed.line);
    else if ("tooLong" in parsed) room.lineTooLong(member, options.maxLine);
    else sendFrame(parsed.error);
  };
  socket.onerror = () => {}; // the close event follows
  socket.onclose = () => {
    if (member && !member.gone) room.leave(member, "disconnected");
    if (log.enabled("debug")) log.debug(`WebSocket from ${peer} closed`);
    onClosed();
  };
  return closed;
}
