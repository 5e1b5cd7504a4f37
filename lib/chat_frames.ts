/**
 * The chat's typed protocol, defined once: every event the room sends is a {@linkcode ChatEvent}
 * object, and every way of showing it derives from that object. A TCP client (`nc`, telnet,
 * `chat_client.ts`) gets {@linkcode renderLine}'s text; a WebSocket client gets the object as
 * JSON, one per frame. So a TCP line and a WebSocket frame can never disagree.
 *
 * Clients of the typed protocol send {@linkcode ClientFrame} objects, which
 * {@linkcode parseClientFrame} turns into the very line a TCP user would have typed: the room
 * then applies one set of rules, whatever the client.
 *
 * @module
 */
import { SERVER_NAME } from "./chat_protocol.ts";

/** The protocol's version, sent in every `welcome`. Raised when a frame changes incompatibly. */
export const PROTOCOL_VERSION = 1;

/** Why a member left, as the `leave` event says. */
export type LeaveReason =
  | "bye"
  | "disconnected"
  | "slow"
  | "kicked"
  | "idle"
  | "shutdown"
  | "denied";

/** Where a client is in logging in to a room with a password. */
export type AuthState = "required" | "accepted" | "wrong" | "denied" | "locked";

/** What an `error` event is about. */
export type ErrorCode =
  | "usage"
  | "unknown-command"
  | "bad-name"
  | "name-taken"
  | "no-such-member"
  | "too-long"
  | "flood"
  | "full"
  | "busy"
  | "bad-frame";

/** An event that may be kept in history and replayed. */
export type RoomEvent =
  | { type: "message"; from: string; text: string }
  | { type: "action"; from: string; text: string };

/** Everything a chat server sends. */
export type ChatEvent =
  | RoomEvent
  | {
    type: "welcome";
    version: number;
    /** Your name. */
    name: string;
    /** Some of the others here (at most 20). */
    others: string[];
    /** How many others are here in all. */
    count: number;
  }
  | { type: "history"; stamp: string; event: RoomEvent }
  | { type: "private"; from: string; to: string; text: string; sent?: boolean }
  | { type: "join"; name: string }
  | { type: "leave"; name: string; reason: LeaveReason }
  | { type: "rename"; from: string; to: string; you?: boolean }
  | { type: "who"; names: string[]; you: string }
  | { type: "notice"; text: string }
  | { type: "error"; code: ErrorCode; text: string }
  | { type: "auth"; state: AuthState; text: string };

/** What the others see when someone leaves, by reason. */
const LEFT: Record<LeaveReason, string> = {
  bye: "left",
  disconnected: "disconnected",
  slow: "was disconnected (not reading fast enough)",
  kicked: `was removed by ${SERVER_NAME}`,
  idle: "was disconnected for being idle",
  shutdown: "left",
  denied: "left",
};

/** The welcome notice; the client learns its own name from it. */
export function welcomeNotice(name: string): string {
  return `* Welcome to the chat, ${name}! Type a message and press Enter to talk to everyone. ` +
    `/help lists the commands; type bye to leave.`;
}

/** The notice sent to someone whose `/nick` succeeded. */
export function renamedNotice(name: string): string {
  return `* you are now known as ${name}`;
}

/** Who else is here, as a welcome's second line. */
function othersLine(others: string[], count: number): string {
  if (count === 0) return "* You are the only one here.";
  const more = count > others.length
    ? ` and ${count - others.length} more (/who lists everyone)`
    : "";
  return `* ${count} other${count === 1 ? "" : "s"} here: ${others.join(", ")}${more}`;
}

/**
 * The text a line-based client sees for `event`: one line, or several joined by `\n` (a
 * welcome, a multi-line notice), without the final newline.
 */
export function renderLine(event: ChatEvent): string {
  switch (event.type) {
    case "message":
      return `${event.from}: ${event.text}`;
    case "action":
      return `* ${event.from} ${event.text}`;
    case "welcome":
      return `${welcomeNotice(event.name)}\n${othersLine(event.others, event.count)}`;
    case "history":
      return `[history ${event.stamp}] ${renderLine(event.event)}`;
    case "private":
      return event.sent
        ? `* (private to ${event.to}) ${event.text}`
        : `${event.from} (private): ${event.text}`;
    case "join":
      return `* ${event.name} joined`;
    case "leave":
      return `* ${event.name} ${LEFT[event.reason]}`;
    case "rename":
      return event.you ? renamedNotice(event.to) : `* ${event.from} is now known as ${event.to}`;
    case "who":
      return `* ${event.names.length} here: ${
        event.names.map((n) => n === event.you ? `${n} (you)` : n).join(", ")
      }`;
    case "notice":
    case "error":
    case "auth":
      return event.text.split("\n").map((line) => `* ${line}`).join("\n");
  }
}

const encoder = new TextEncoder();

/**
 * An event on its way to members, encoded at most once per form however many members get it:
 * the text line for TCP clients, the JSON for typed clients.
 */
export class Outgoing {
  /** The event. */
  readonly event: ChatEvent;
  #line: Uint8Array | undefined;
  #json: string | undefined;
  #jsonLine: Uint8Array | undefined;

  /** Wraps `event`; nothing is encoded until a form is asked for. */
  constructor(event: ChatEvent) {
    this.event = event;
  }

  /** The UTF-8 text line(s), ending with `\n`. */
  get line(): Uint8Array {
    return this.#line ??= encoder.encode(renderLine(this.event) + "\n");
  }

  /** The event as one JSON object. */
  get json(): string {
    return this.#json ??= JSON.stringify(this.event);
  }

  /** The JSON object as one UTF-8 line, for typed TCP clients (`/proto json 1`). */
  get jsonLine(): Uint8Array {
    return this.#jsonLine ??= encoder.encode(this.json + "\n");
  }
}

/** The first line a TCP client sends to speak typed frames (JSON lines) instead of text. */
export const PROTO_LINE = `/proto json ${PROTOCOL_VERSION}`;

/**
 * The longest frame worth reading for a line limit of `maxLine` bytes: JSON quoting can at
 * most sextuple a line (`\u0000` for each byte), plus room for the other fields.
 */
export function maxFrameBytes(maxLine: number): number {
  return maxLine * 6 + 1024;
}

/** Everything a typed client may send. */
export type ClientFrame =
  | { type: "say"; text: string }
  | { type: "message"; text: string }
  | { type: "action"; text: string }
  | { type: "private"; to: string; text: string }
  | { type: "nick"; name: string }
  | { type: "who" }
  | { type: "help" }
  | { type: "auth"; password: string }
  | { type: "quit" };

/** A frame that was not understood: what to answer (nothing of it reaches the room). */
export interface FrameProblem {
  /** The `error` event to send back. */
  error: ChatEvent & { type: "error" };
}

function problem(text: string): FrameProblem {
  return { error: { type: "error", code: "bad-frame", text } };
}

/** The string fields each client frame type must have. */
const FIELDS: Record<ClientFrame["type"], readonly string[]> = {
  say: ["text"],
  message: ["text"],
  action: ["text"],
  private: ["to", "text"],
  nick: ["name"],
  who: [],
  help: [],
  auth: ["password"],
  quit: [],
};

/**
 * Reads one frame from a typed client and gives the line a TCP user would have typed for it,
 * or the problem. `data` is the frame's text; `maxBytes` bounds the line it becomes (longer is
 * the room's "line too long", so it is reported as `{ tooLong: true }`).
 */
export function parseClientFrame(
  data: string,
  maxBytes: number,
): { line: string } | { tooLong: true } | FrameProblem {
  let value: unknown;
  try {
    value = JSON.parse(data);
  } catch {
    return problem(
      'malformed JSON: send one JSON object per frame, such as {"type":"say","text":"hi"}',
    );
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return problem('a frame is a JSON object with a "type" field');
  }
  const frame = value as Record<string, unknown>;
  const type = frame.type;
  if (typeof type !== "string" || !Object.hasOwn(FIELDS, type)) {
    return problem(
      `unknown frame type ${JSON.stringify(String(type)).slice(0, 40)}; known: ${
        Object.keys(FIELDS).join(", ")
      }`,
    );
  }
  for (const field of FIELDS[type as ClientFrame["type"]]) {
    if (typeof frame[field] !== "string") {
      return problem(`a "${type}" frame needs a string "${field}"`);
    }
  }
  const line = lineOf(frame as ClientFrame);
  if (encoder.encode(line).length > maxBytes) return { tooLong: true };
  return { line };
}

/** The line a TCP user would type for `frame`. */
function lineOf(frame: ClientFrame): string {
  switch (frame.type) {
    case "say":
      return frame.text;
    case "message":
      // A message that starts with "/" is sent as "//...": never a command.
      return frame.text.startsWith("/") ? `/${frame.text}` : frame.text;
    case "action":
      return `/me ${frame.text}`;
    case "private":
      return `/msg ${frame.to} ${frame.text}`;
    case "nick":
      return `/nick ${frame.name}`;
    case "who":
      return "/who";
    case "help":
      return "/help";
    case "auth":
      return `/auth ${frame.password}`;
    case "quit":
      return "/quit";
  }
}
