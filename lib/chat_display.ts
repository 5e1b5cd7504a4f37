/**
 * How chat lines look on a terminal: each person's name in a stable colour of its own,
 * `Server` in red, notices dimmed, your own lines bold. Used by the chat client and by the
 * server's operator console. Text is stripped of controls and escapes before it is styled,
 * so whatever a server sends, only our own colour codes reach the terminal.
 *
 * @module
 */
import { type ParsedLine, parseLine, SERVER_NAME } from "./chat_protocol.ts";
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
