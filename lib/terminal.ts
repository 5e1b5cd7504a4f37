/**
 * Terminal output: making other people's text safe to print, and colour.
 *
 * Two treatments of untrusted text: {@linkcode escapeControls} keeps every character but
 * writes controls as visible escapes (for logs, where the exact bytes matter), and
 * {@linkcode stripControls} removes controls and whole escape sequences (for chat, where the
 * text is read by people).
 *
 * @module
 */
import { styleText } from "node:util";

/** C0 controls, DEL, C1 controls, bidirectional overrides and line/paragraph separators. */
// deno-lint-ignore no-control-regex -- matching control characters is the point
const CONTROL = /[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/**
 * Escape sequences, whole: CSI (`ESC [` ... final byte, or 8-bit U+009B), OSC (`ESC ]` ... BEL
 * or ST, or U+009D; unterminated runs to the end of the text), DCS/SOS/PM/APC strings, and
 * two-character `ESC x` sequences.
 */
const ESCAPE_SEQUENCE = new RegExp(
  [
    "(?:\\x1b\\[|\\x9b)[\\x30-\\x3f]*[\\x20-\\x2f]*[\\x40-\\x7e]",
    "(?:\\x1b\\]|\\x9d)[^\\x07\\x1b\\x9c]*(?:\\x07|\\x1b\\\\|\\x9c)?",
    "(?:\\x1b[PX^_]|[\\x90\\x98\\x9e\\x9f])[^\\x1b\\x9c]*(?:\\x1b\\\\|\\x9c)?",
    "\\x1b[\\x20-\\x7e]?",
  ].join("|"),
  "g",
);

/** Removes escape sequences and control characters, keeping tabs and printable text. */
export function stripControls(text: string): string {
  // Fast path: most chat lines contain nothing to remove.
  CONTROL.lastIndex = 0;
  if (!CONTROL.test(text)) return text;
  return text.replace(ESCAPE_SEQUENCE, "").replace(CONTROL, (c) => c === "\t" ? "\t" : "");
}

/** Writes control characters as visible escapes (`\n`, `\x1b`, `\u202e`) so logs stay inert. */
export function escapeControls(text: string): string {
  CONTROL.lastIndex = 0;
  if (!CONTROL.test(text)) return text;
  return text.replace(CONTROL, (c) => {
    switch (c) {
      case "\n":
        return "\\n";
      case "\r":
        return "\\r";
      case "\t":
        return "\\t";
    }
    const code = c.charCodeAt(0);
    return code < 0x100
      ? `\\x${code.toString(16).padStart(2, "0")}`
      : `\\u${code.toString(16).padStart(4, "0")}`;
  });
}

/** Styles from `node:util` `styleText` that this project uses. */
export type Style =
  | "red"
  | "green"
  | "yellow"
  | "blue"
  | "magenta"
  | "cyan"
  | "greenBright"
  | "yellowBright"
  | "blueBright"
  | "magentaBright"
  | "cyanBright"
  | "redBright"
  | "dim"
  | "bold"
  | "italic";

/** Applies styles to text when `enabled`, else returns the text unchanged. */
export function paint(enabled: boolean, style: Style | Style[], text: string): string {
  return enabled ? styleText(style, text, { validateStream: false }) : text;
}

/**
 * Whether to colour output written to `stream`: only on a terminal, and never when the user
 * asked for no colour (`NO_COLOR`, which Deno reads without a permission, or a flag).
 */
export function colorWanted(stream: { isTerminal(): boolean }, noColorFlag = false): boolean {
  return !noColorFlag && !Deno.noColor && stream.isTerminal();
}

/** Terminal columns taken by one code point: 0 for combining marks, 2 for wide CJK/emoji. */
export function charWidth(codePoint: number): number {
  if (codePoint < 0x300) return 1;
  if (
    (codePoint >= 0x300 && codePoint <= 0x36f) || (codePoint >= 0x200b && codePoint <= 0x200f) ||
    (codePoint >= 0xfe00 && codePoint <= 0xfe0f) || codePoint === 0x20d2
  ) return 0;
  if (
    (codePoint >= 0x1100 && codePoint <= 0x115f) || (codePoint >= 0x2e80 && codePoint <= 0xa4cf) ||
    (codePoint >= 0xac00 && codePoint <= 0xd7a3) || (codePoint >= 0xf900 && codePoint <= 0xfaff) ||
    (codePoint >= 0xfe30 && codePoint <= 0xfe4f) || (codePoint >= 0xff00 && codePoint <= 0xff60) ||
    (codePoint >= 0xffe0 && codePoint <= 0xffe6) ||
    (codePoint >= 0x1f300 && codePoint <= 0x1faff) ||
    (codePoint >= 0x20000 && codePoint <= 0x3fffd)
  ) return 2;
  return 1;
}

/** Terminal columns taken by a string of printable text. */
export function textWidth(text: string): number {
  let width = 0;
  for (const char of text) width += charWidth(char.codePointAt(0) ?? 0);
  return width;
}
