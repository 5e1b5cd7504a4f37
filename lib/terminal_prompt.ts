/**
 * A prompt on a raw-mode terminal that other output can pass without wrecking it: printed
 * lines appear above the prompt, and what was being typed stays, cursor included.
 *
 * @module
 */
import { type EditorAction, KeyDecoder, LineEditor } from "./line_editor.ts";
import { writeAllSync } from "./io.ts";
import { textWidth } from "./terminal.ts";

/** Callbacks and look of a {@linkcode TerminalPrompt}. */
export interface TerminalPromptOptions {
  /** The prompt, possibly coloured. */
  prompt: string;
  /** The prompt's width in columns (give it when the prompt has colour codes). */
  promptWidth?: number;
  /** A line was entered. */
  onLine(line: string): void;
  /** Ctrl+C. */
  onInterrupt(): void;
  /** Ctrl+D on an empty line, or the end of input. */
  onEof(): void;
}

const encoder = new TextEncoder();
const CLEAR_ROW = "\r\x1b[2K";

/** Drives a {@linkcode LineEditor} on `Deno.stdin`/`Deno.stdout`. */
export class TerminalPrompt {
  readonly #options: TerminalPromptOptions;
  readonly #editor = new LineEditor();
  readonly #decoder = new KeyDecoder();
  #prompt: string;
  #promptWidth: number;
  #active = false;
  #secret: { resolve: (line: string) => void; prompt: string; width: number } | null = null;

  /** Prepares the prompt; nothing happens until {@linkcode TerminalPrompt.start}. */
  constructor(options: TerminalPromptOptions) {
    this.#options = options;
    this.#prompt = options.prompt;
    this.#promptWidth = options.promptWidth ?? textWidth(options.prompt);
  }

  /** Switches the terminal to raw mode, shows the prompt and starts reading keys. */
  start(): void {
    Deno.stdin.setRaw(true);
    this.#active = true;
    this.#redraw();
    void this.#readKeys();
  }

  /** Clears the prompt row and gives the terminal back in its normal mode. */
  stop(): void {
    if (!this.#active) return;
    this.#active = false;
    this.#write(CLEAR_ROW);
    try {
      Deno.stdin.setRaw(false);
    } catch {
      // stdin already gone
    }
  }

  /** Changes the prompt (e.g. after a rename). */
  setPrompt(prompt: string, width: number = textWidth(prompt)): void {
    this.#prompt = prompt;
    this.#promptWidth = width;
    if (this.#active) this.#redraw();
  }

  /**
   * Asks for a secret (a password) on the prompt row: nothing typed is shown or kept in the
   * history. Resolves with the line entered.
   */
  askSecret(prompt: string): Promise<string> {
    return new Promise((resolve) => {
      this.#secret = { resolve, prompt: this.#prompt, width: this.#promptWidth };
      this.#editor.secret = true;
      this.setPrompt(prompt);
    });
  }

  /** Prints `text` (one or more lines) above the prompt and redraws the prompt under it. */
  print(text: string): void {
    const body = text.replace(/\n/g, "\r\n") + "\r\n";
    if (!this.#active) return this.#write(body);
    this.#write(CLEAR_ROW + body);
    this.#redraw();
  }

  async #readKeys(): Promise<void> {
    const buffer = new Uint8Array(4096);
    while (this.#active) {
      let n: number | null;
      try {
        n = await Deno.stdin.read(buffer);
      } catch {
        n = null;
      }
      if (!this.#active) return;
      if (n === null) return this.#options.onEof();
      for (const key of this.#decoder.decode(buffer.subarray(0, n))) {
        this.#act(this.#editor.apply(key));
        if (!this.#active) return;
      }
      this.#redraw();
    }
  }

  #act(action: EditorAction): void {
    if (action === null) return;
    switch (action.type) {
      case "submit": {
        const secret = this.#secret;
        if (secret) {
          this.#secret = null;
          this.#editor.secret = false;
          this.setPrompt(secret.prompt, secret.width);
          return secret.resolve(action.line);
        }
        this.#redraw();
        return this.#options.onLine(action.line);
      }
      case "interrupt":
        return this.#options.onInterrupt();
      case "eof":
        return this.#options.onEof();
      case "redraw":
        this.#write("\x1b[2J\x1b[H");
        return this.#redraw();
    }
  }

  #redraw(): void {
    if (!this.#active) return;
    let columns = 80;
    try {
      columns = Deno.consoleSize().columns;
    } catch {
      // not a terminal after all: keep the default width
    }
    const row = this.#editor.render(this.#prompt, this.#promptWidth, columns);
    // Draw the row, then put the cursor back where it belongs (column counted from 1).
    this.#write(
      `${CLEAR_ROW}${row.text}\r${row.cursorColumn > 0 ? `\x1b[${row.cursorColumn}C` : ""}`,
    );
  }

  #write(text: string): void {
    try {
      writeAllSync(Deno.stdout, encoder.encode(text));
    } catch {
      // the terminal is gone; nothing to draw on
    }
  }
}
