/**
 * How chat lines look on a terminal: each person's name in a stable colour of its own,
 * `Server` in red, notices dimmed, your own lines bold. Used by the chat client and by the
 * server's operator console. Text is stripped of controls and escapes before it is styled,
 * so whatever a server sends, only our own colour codes reach the terminal.
 *
 * @module
 */
import { type ParsedLine, parseLine, SERVER_NAME } from "./chat_protocol.ts";
import { type ChatEvent, renderLine } from "./chat_frames.ts";
import { paint, stripControls, type Style } from "./terminal.ts";

/** Colours for other people's names; red is kept for `Server`. */
const PALETTE: Style[] = [
  "cyan",
  "green",
  "yellow",
  "blue",
  "magenta",
  "cyanBright",
  "greenBright",
  "yellowBright",
  "blueBright",
  "magentaBright",
];

/** The colour of a name: the same name always gets the same colour (FNV-1a hash). */
export function nameColor(name: string): Style {
  let hash = 0x811c9dc5;
  for (const char of name.toLowerCase()) {
    hash ^= char.codePointAt(0) ?? 0;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return PALETTE[hash % PALETTE.length];
}

/** How to display lines. */
export interface DisplayOptions {
  /** Whether to use colour at all. */
  color: boolean;
  /** Your own name, to make your lines distinct. */
  ownName?: string | null;
}

/** Formats one line received from a chat server for display. */
export function formatIncoming(line: string, options: DisplayOptions): string {
  return formatParsed(parseLine(stripControls(line)), options);
}

/**
 * Formats one typed event (`/proto json 1`) for display: the style comes from its type, not
 * from parsing text, and looks exactly like the same event's text line would. Several lines
 * (a welcome, a notice) come back joined by `\n`.
 */
export function formatEvent(event: ChatEvent, options: DisplayOptions): string {
  const c = options.color;
  const clean = (text: string): string => stripControls(text);
  switch (event.type) {
    case "message":
      return event.from === SERVER_NAME
        ? `${paint(c, ["red", "bold"], SERVER_NAME)}: ${clean(event.text)}`
        : `${name(clean(event.from), options)}: ${clean(event.text)}`;
    case "private":
      if (event.sent) break;
      return `${name(clean(event.from), options)} ${paint(c, "magenta", "(private)")}: ${
        clean(event.text)
      }`;
    case "history":
      return `${paint(c, "dim", `[${clean(event.stamp)}]`)} ${formatEvent(event.event, options)}`;
  }
  // Everything else is a notice: `* ...`, dimmed, a line at a time.
  return renderLine(event).split("\n").map((line) => paint(c, "dim", clean(line))).join("\n");
}

/** Formats a line you sent yourself (shown locally; the server does not echo it). */
export function formatOwn(name: string, text: string, options: DisplayOptions): string {
  return `${paint(options.color, "bold", name)}: ${stripControls(text)}`;
}

function formatParsed(line: ParsedLine, options: DisplayOptions): string {
  const c = options.color;
  switch (line.kind) {
    case "history":
      return `${paint(c, "dim", `[${line.stamp}]`)} ${formatParsed(line.rest, options)}`;
    case "notice":
      return paint(c, "dim", `* ${line.text}`);
    case "server":
      return `${paint(c, ["red", "bold"], SERVER_NAME)}: ${line.text}`;
    case "private":
      return `${name(line.from, options)} ${paint(c, "magenta", "(private)")}: ${line.text}`;
    case "message":
      return `${name(line.from, options)}: ${line.text}`;
    case "plain":
      return line.text;
  }
}

function name(who: string, options: DisplayOptions): string {
  if (options.ownName && who === options.ownName) return paint(options.color, "bold", who);
  return paint(options.color, nameColor(who), who);
}
