/**
 * A single-line editor for raw-mode terminals, as pure logic: decode key bytes, apply keys to
 * the text and cursor, and render the prompt line. No I/O here, so every behaviour is a unit
 * test; {@linkcode TerminalPrompt} in `terminal_prompt.ts` drives it on a real terminal.
 *
 * @module
 */
import { charWidth, stripControls, textWidth } from "./terminal.ts";

/** A decoded key press. */
export type Key =
  | { name: "text"; text: string }
  | {
    name:
      | "enter"
      | "backspace"
      | "delete"
      | "left"
      | "right"
      | "home"
      | "end"
      | "up"
      | "down"
      | "interrupt"
      | "eof"
      | "kill-line"
      | "kill-end"
      | "kill-word"
      | "redraw"
      | "word-left"
      | "word-right";
  };

/** What the caller must do after a key. */
export type EditorAction =
  | { type: "submit"; line: string }
  | { type: "interrupt" }
  | { type: "eof" }
  | { type: "redraw" }
  | null;

const CSI_KEYS: Record<string, Key["name"]> = {
  A: "up",
  B: "down",
  C: "right",
  D: "left",
  H: "home",
  F: "end",
  "1~": "home",
  "7~": "home",
  "4~": "end",
  "8~": "end",
  "3~": "delete",
  "1;5C": "word-right",
  "1;5D": "word-left",
  "1;3C": "word-right",
  "1;3D": "word-left",
};

const CONTROL_KEYS: Record<number, Key["name"]> = {
  0x01: "home", // Ctrl+A
  0x02: "left", // Ctrl+B
  0x03: "interrupt", // Ctrl+C
  0x04: "eof", // Ctrl+D
  0x05: "end", // Ctrl+E
  0x06: "right", // Ctrl+F
  0x08: "backspace", // Ctrl+H
  0x0b: "kill-end", // Ctrl+K
  0x0c: "redraw", // Ctrl+L
  0x0d: "enter",
  0x0a: "enter",
  0x0e: "down", // Ctrl+N
  0x10: "up", // Ctrl+P
  0x15: "kill-line", // Ctrl+U
  0x17: "kill-word", // Ctrl+W
  0x7f: "backspace",
};

/**
 * One whole escape sequence: CSI (`ESC [` parameters, intermediates, final byte, which covers
 * private forms like `ESC [?25h` and mouse reports), SS3 (`ESC O x`), OSC (`ESC ]` to BEL or
 * ST), DCS/SOS/PM/APC strings (to ST), or `ESC x` (Alt+key). Captures: CSI parameters, CSI
 * final byte, SS3 final byte, Alt key.
 */
const ESCAPE_SEQUENCE =
  // deno-lint-ignore no-control-regex -- decoding escape sequences is the point
  /^\x1b(?:\[([\x30-\x3f]*)[\x20-\x2f]*([\x40-\x7e])|O([\x40-\x7e])|\][^\x07\x1b]*(?:\x07|\x1b\\)|[PX^_][^\x1b]*\x1b\\|(?![[O\]PX^_])([\x20-\x7e]))/;
/** A prefix of one of those, cut off by the end of a read. */
const UNFINISHED_ESCAPE =
  // deno-lint-ignore no-control-regex -- an unfinished escape sequence
  /^\x1b(?:\[[\x30-\x3f]*[\x20-\x2f]*|O|\][^\x07\x1b]*\x1b?|[PX^_][^\x1b]*\x1b?)?$/;
/** Longest unfinished sequence held back between reads. */
const MAX_PENDING = 4096;

function keyOfSequence(match: RegExpMatchArray): Key["name"] | undefined {
  if (match[2] !== undefined) return CSI_KEYS[match[1] + match[2]];
  if (match[3] !== undefined) return CSI_KEYS[match[3]];
  if (match[4] === "b") return "word-left";
  if (match[4] === "f") return "word-right";
  return undefined; // strings (OSC, DCS, ...) and other Alt keys are not keys we use
}

/**
 * Turns raw terminal input into keys. Keeps state between chunks, so an escape sequence or a
 * UTF-8 character split across reads still decodes as one key.
 */
export class KeyDecoder {
  readonly #utf8 = new TextDecoder();
  #pending = "";
  #lastWasCR = false;

  /** Decodes one chunk of input. */
  decode(bytes: Uint8Array): Key[] {
    const text = this.#pending + this.#utf8.decode(bytes, { stream: true });
    this.#pending = "";
    const keys: Key[] = [];
    let plain = "";
    const flushPlain = (): void => {
      if (plain) keys.push({ name: "text", text: plain });
      plain = "";
    };
    for (let i = 0; i < text.length; i++) {
      const code = text.charCodeAt(i);
      if (code === 0x1b) {
        const rest = text.slice(i);
        const match = rest.match(ESCAPE_SEQUENCE);
        if (!match) {
          // Cut off at the end of the chunk: wait for the rest (within reason).
          if (UNFINISHED_ESCAPE.test(rest) && rest.length <= MAX_PENDING) {
            this.#pending = rest;
            break;
          }
          continue; // a lone Escape key: ignored
        }
        flushPlain();
        const name = keyOfSequence(match);
        if (name) keys.push({ name } as Key);
        i += match[0].length - 1;
        this.#lastWasCR = false;
        continue;
      }
      if (code < 0x20 || code === 0x7f) {
        // Terminals send Enter as CR; a pasted CRLF must not count twice.
        const skip = code === 0x0a && this.#lastWasCR;
        this.#lastWasCR = code === 0x0d;
        if (skip) continue;
        flushPlain();
        const name = CONTROL_KEYS[code];
        if (name) keys.push({ name } as Key);
        else if (code === 0x09) plain += "\t";
        continue;
      }
      this.#lastWasCR = false;
      plain += text[i];
    }
    flushPlain();
    return keys;
  }
}

/** What the terminal shows on the prompt row. */
export interface RenderedLine {
  /** The row's text: the prompt and the visible part of the input. */
  text: string;
  /** The cursor's column, counted from 0. */
  cursorColumn: number;
}

/** Editing state: the text (as code points), the cursor and the history. */
export class LineEditor {
  #chars: string[] = [];
  #cursor = 0;
  readonly #history: string[] = [];
  #historyIndex = 0;
  #draft: string[] = [];
  /** Typing a secret: nothing is shown and the line is not kept in the history. */
  secret = false;

  /** The text typed so far. */
  get text(): string {
    return this.#chars.join("");
  }

  /** The cursor position, in code points from the start. */
  get cursor(): number {
    return this.#cursor;
  }

  /** Applies one key; returns what the caller must do, if anything. */
  apply(key: Key): EditorAction {
    const chars = this.#chars;
    switch (key.name) {
      case "text": {
        // Pasted text can hold escape sequences; never put them on the prompt line.
        const inserted = [...stripControls(key.text)];
        chars.splice(this.#cursor, 0, ...inserted);
        this.#cursor += inserted.length;
        return null;
      }
      case "enter": {
        const line = this.text;
        const keep = !this.secret && line.trim() !== "" && this.#history.at(-1) !== line;
        if (keep) this.#history.push(line);
        this.#historyIndex = this.#history.length;
        this.#set([]);
        return { type: "submit", line };
      }
      case "backspace":
        if (this.#cursor > 0) chars.splice(--this.#cursor, 1);
        return null;
      case "delete":
        if (this.#cursor < chars.length) chars.splice(this.#cursor, 1);
        return null;
      case "left":
        this.#cursor = Math.max(0, this.#cursor - 1);
        return null;
      case "right":
        this.#cursor = Math.min(chars.length, this.#cursor + 1);
        return null;
      case "home":
        this.#cursor = 0;
        return null;
      case "end":
        this.#cursor = chars.length;
        return null;
      case "word-left":
        this.#cursor = this.#wordStart();
        return null;
      case "word-right": {
        let i = this.#cursor;
        while (i < chars.length && chars[i] === " ") i++;
        while (i < chars.length && chars[i] !== " ") i++;
        this.#cursor = i;
        return null;
      }
      case "kill-line":
        chars.splice(0, this.#cursor);
        this.#cursor = 0;
        return null;
      case "kill-end":
        chars.splice(this.#cursor);
        return null;
      case "kill-word": {
        const start = this.#wordStart();
        chars.splice(start, this.#cursor - start);
        this.#cursor = start;
        return null;
      }
      case "up":
      case "down":
        if (this.secret) return null;
        this.#browseHistory(key.name === "up" ? -1 : 1);
        return null;
      case "interrupt":
        return { type: "interrupt" };
      case "eof":
        // Ctrl+D leaves on an empty line and deletes forward otherwise, as in a shell.
        if (chars.length === 0) return { type: "eof" };
        if (this.#cursor < chars.length) chars.splice(this.#cursor, 1);
        return null;
      case "redraw":
        return { type: "redraw" };
    }
  }

  /**
   * Renders `prompt` and the input for a row `columns` wide. Input wider than the row scrolls
   * sideways so the cursor stays visible; wide characters count two columns.
   */
  render(prompt: string, promptWidth: number, columns: number): RenderedLine {
    if (this.secret) return { text: prompt, cursorColumn: promptWidth };
    const room = Math.max(1, columns - promptWidth - 1);
    let start = 0;
    let before = 0;
    for (let i = 0; i < this.#cursor; i++) before += widthOf(this.#chars[i]);
    // The character under the cursor must fit too, or the cursor would sit on a blank.
    const under = this.#cursor < this.#chars.length ? widthOf(this.#chars[this.#cursor]) : 0;
    while (before + under > room && start < this.#cursor) before -= widthOf(this.#chars[start++]);
    let shown = "";
    let used = 0;
    for (let i = start; i < this.#chars.length; i++) {
      const w = widthOf(this.#chars[i]);
      if (used + w > room) break;
      shown += this.#chars[i] === "\t" ? " " : this.#chars[i];
      used += w;
    }
    return { text: prompt + shown, cursorColumn: promptWidth + before };
  }

  #wordStart(): number {
    let i = this.#cursor;
    while (i > 0 && this.#chars[i - 1] === " ") i--;
    while (i > 0 && this.#chars[i - 1] !== " ") i--;
    return i;
  }

  #browseHistory(step: number): void {
    if (this.#history.length === 0) return;
    if (this.#historyIndex === this.#history.length) this.#draft = [...this.#chars];
    const next = Math.min(this.#history.length, Math.max(0, this.#historyIndex + step));
    if (next === this.#historyIndex) return;
    this.#historyIndex = next;
    this.#set(next === this.#history.length ? this.#draft : [...this.#history[next]]);
  }

  #set(chars: string[]): void {
    this.#chars = chars;
    this.#cursor = chars.length;
  }
}

function widthOf(char: string): number {
  return charWidth(char.codePointAt(0) ?? 0);
}

/** Width of a prompt (plain text, no escapes). */
export function promptWidth(prompt: string): number {
  return textWidth(prompt);
}
