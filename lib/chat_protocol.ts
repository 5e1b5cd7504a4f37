/**
 * The chat's line protocol, shared by the room (which writes it) and the client (which
 * colours it). Everything is one UTF-8 line:
 *
 * - `NAME: TEXT`: a message from NAME to the room.
 * - `Server: TEXT`: a message from the operator console.
 * - `NAME (private): TEXT`: a private message to you.
 * - `* TEXT`: a notice from the server (joins, leaves, renames, errors, replies, `/me`).
 * - `[history HH:MM] LINE`: an earlier message, replayed on arrival.
 *
 * Names are 1 to 24 of `A-Z a-z 0-9 _ -`, so no one can write a line that looks like someone
 * else's, a notice, or history.
 *
 * @module
 */

/** The operator's name, as it appears on the wire. */
export const SERVER_NAME = "Server";

/** Valid names: 1 to 24 letters, digits, `_` or `-`. */
export const NAME_PATTERN = /^[A-Za-z0-9_-]{1,24}$/;

/** Names that could be mistaken for the server or staff, after folding look-alikes. */
const RESERVED = ["server", "admin", "operator", "system", "root", "moderator", "mod", "host"];

/** Folds look-alike spellings (`S3rv3r`, `s_e_r_v_e_r`, `SERVER`) to one form. */
function fold(name: string): string {
  return name.toLowerCase()
    .replace(/[_-]/g, "")
    .replace(/0/g, "o").replace(/[1l|]/g, "i").replace(/3/g, "e").replace(/4/g, "a")
    .replace(/5/g, "s").replace(/7/g, "t").replace(/8/g, "b").replace(/9/g, "g")
    .replace(/vv/g, "w").replace(/rn/g, "m");
}

const FOLDED_RESERVED = RESERVED.map(fold);
/** `Server1`, `server_bot`, `AdminTeam`: close enough to impersonate. */
const RESERVED_PREFIXES = ["server", "admin"];

/** Why a name cannot be taken, or `null` when it can (uniqueness is the room's business). */
export function nameProblem(name: string): string | null {
  if (!NAME_PATTERN.test(name)) {
    return "a name is 1 to 24 letters, digits, _ or -";
  }
  const folded = fold(name);
  if (FOLDED_RESERVED.includes(folded) || RESERVED_PREFIXES.some((p) => folded.startsWith(p))) {
    return `${name} is reserved`;
  }
  if (/^guest-\d+$/i.test(name)) return "guest-N names are given out by the server";
  return null;
}

/** Case-insensitive key for uniqueness: `Alice` and `alice` are the same person. */
export function nameKey(name: string): string {
  return name.toLowerCase();
}

/** A line as the client colours it. */
export type ParsedLine =
  | { kind: "history"; stamp: string; rest: ParsedLine }
  | { kind: "notice"; text: string }
  | { kind: "server"; text: string }
  | { kind: "private"; from: string; text: string }
  | { kind: "message"; from: string; text: string }
  | { kind: "plain"; text: string };

const HISTORY = /^\[history (\d\d:\d\d)\] (.*)$/s;
const PRIVATE = /^([A-Za-z0-9_-]{1,24}) \(private\): (.*)$/s;
const MESSAGE = /^([A-Za-z0-9_-]{1,24}): (.*)$/s;

/** Classifies a line from the server. */
export function parseLine(line: string): ParsedLine {
  const history = line.match(HISTORY);
  if (history) return { kind: "history", stamp: history[1], rest: parseLine(history[2]) };
  if (line.startsWith("* ")) return { kind: "notice", text: line.slice(2) };
  const priv = line.match(PRIVATE);
  if (priv) return { kind: "private", from: priv[1], text: priv[2] };
  const message = line.match(MESSAGE);
  if (message) {
    return message[1] === SERVER_NAME
      ? { kind: "server", text: message[2] }
      : { kind: "message", from: message[1], text: message[2] };
  }
  return { kind: "plain", text: line };
}

/** Reads your own name out of a welcome or rename notice, if the line is one. */
export function ownNameFrom(line: string): string | null {
  return line.match(/^\* Welcome to the chat, ([A-Za-z0-9_-]{1,24})!/)?.[1] ??
    line.match(/^\* you are now known as ([A-Za-z0-9_-]{1,24})$/)?.[1] ?? null;
}
