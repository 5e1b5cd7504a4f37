/**
 * A tmux driver for terminal tests: a private tmux server (`-L`) with one fixed-size session
 * running `deno ARGS` in the project root under a small shell that prints the exit status.
 * Tests type with `send-keys` and read the screen with `capture-pane`; screens are polled
 * until the expected text appears (bounded by a timeout), never waited for by sleeping.
 *
 * @module
 */
import assert from "node:assert/strict";
import { ROOT } from "./helpers.ts";

const decoder = new TextDecoder();

/** The pane's width. */
export const COLUMNS = 100;
/** The pane's height. */
export const ROWS = 30;
/** Printed by the pane's shell after the client exits, so the exit status can be read. */
export const EXIT_MARK = /\[exit status (\d+)\]/;
/** Printed (with `reportRaw`) when the client left the terminal in raw mode. */
export const RAW_MARK = "[terminal left in raw mode]";

let sessions = 0;

/** How {@linkcode Tmux.start} sets up the session. */
export interface TmuxStartOptions {
  /** tmux's `default-terminal`; none means tmux's own default. */
  terminal?: string;
  /** Whether the shell also reports (and repairs) a terminal left in raw mode. */
  reportRaw?: boolean;
}

/** A tmux server of our own (`-L`), with one session running one command. */
export class Tmux {
  readonly socket: string;
  readonly #env: Record<string, string>;
  #socketPath: string | null = null;

  /** `prefix` names the private socket (the process id and a counter are added). */
  constructor(prefix = "tmux-test") {
    this.socket = `${prefix}-${Deno.pid}-${++sessions}`;
    // A clean environment: nothing of the caller's (NO_COLOR, TMUX, a tmux config) leaks in.
    this.#env = { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin", LANG: "C.UTF-8" };
    for (const name of ["HOME", "DENO_DIR", "XDG_CACHE_HOME", "TMPDIR", "TMUX_TMPDIR"]) {
      const value = Deno.env.get(name);
      if (value !== undefined) this.#env[name] = value;
    }
    this.#env.DENO_NO_UPDATE_CHECK = "1";
  }

  /** Runs `tmux -L socket ARGS`; throws with tmux's stderr on failure. */
  async tmux(...args: string[]): Promise<string> {
    const output = await new Deno.Command("tmux", {
      args: ["-L", this.socket, "-f", "/dev/null", ...args],
      clearEnv: true,
      env: this.#env,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!output.success) {
      throw new Error(`tmux ${args.join(" ")}: ${decoder.decode(output.stderr).trim()}`);
    }
    return decoder.decode(output.stdout);
  }

  /**
   * Starts the server and a `COLUMNS`x`ROWS` session running `deno ARGS` in the project root.
   * A shell around it prints the exit status (and, with `reportRaw`, whether the terminal was
   * left raw) after the client is gone; the pane stays so the screen can still be read.
   */
  async start(denoArgs: string[], options: TmuxStartOptions = {}): Promise<void> {
    // The shell catches SIGINT (Ctrl+C goes to the whole foreground group) so that it lives to
    // report; the client gets the default disposition back, as a caught signal is reset on exec.
    const script = options.reportRaw
      ? `trap : INT; "$@"; status=$?; ` +
        `case "$(stty -a)" in *-icanon*) stty sane; echo '${RAW_MARK}';; esac; ` +
        `echo "[exit status $status]"`
      : `trap : INT; "$@"; echo "[exit status $?]"`;
    const terminal = options.terminal === undefined
      ? []
      : ["set-option", "-g", "default-terminal", options.terminal, ";"];
    await this.tmux(
      "start-server",
      ";",
      "set-option",
      "-g",
      "remain-on-exit",
      "on",
      ";",
      ...terminal,
      "new-session",
      "-d",
      "-s",
      "t",
      "-x",
      String(COLUMNS),
      "-y",
      String(ROWS),
      "-c",
      ROOT,
      "sh",
      "-c",
      script,
      "sh",
      Deno.execPath(),
      ...denoArgs,
    );
    this.#socketPath = await this.display("#{socket_path}");
  }

  /**
   * The screen's rows, trailing spaces removed; with `escapes`, tmux's SGR codes kept; with
   * `history`, the rows scrolled off the top too (tmux may scroll when the pane dies).
   */
  async screen(escapes = false, history = false): Promise<string[]> {
    const text = await this.tmux(
      "capture-pane",
      "-p",
      ...(escapes ? ["-e"] : []),
      ...(history ? ["-S", "-"] : []),
      "-t",
      "t",
    );
    return text.replace(/\n$/, "").split("\n").map((row) => row.trimEnd());
  }

  /**
   * Polls the screen until `test` holds; returns it. Every screen seen is passed to `check`
   * first. Fails with the screen after `timeoutMs`.
   */
  async waitFor(
    what: string,
    test: (rows: string[]) => boolean,
    options: {
      escapes?: boolean;
      history?: boolean;
      timeoutMs?: number;
      check?: (rows: string[]) => void;
    } = {},
  ): Promise<string[]> {
    const deadline = Date.now() + (options.timeoutMs ?? 10000);
    while (true) {
      const rows = await this.screen(options.escapes, options.history);
      options.check?.(rows);
      if (test(rows)) return rows;
      if (Date.now() > deadline) {
        throw new Error(`timed out waiting for ${what}; the screen:\n${rows.join("\n")}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 25)); // the polling interval
    }
  }

  /** Waits until some row matches `pattern`; returns the screen. */
  waitForRow(pattern: RegExp, escapes = false): Promise<string[]> {
    return this.waitFor(String(pattern), (rows) => rows.some((row) => pattern.test(row)), {
      escapes,
    });
  }

  /** Types `text` literally. */
  async type(text: string): Promise<void> {
    await this.tmux("send-keys", "-t", "t", "-l", text);
  }

  /** Presses named keys (`Enter`, `Left`, `C-c`). */
  async press(...keys: string[]): Promise<void> {
    await this.tmux("send-keys", "-t", "t", ...keys);
  }

  /** A tmux format for the pane, e.g. `#{cursor_x}`. */
  async display(format: string): Promise<string> {
    return (await this.tmux("display-message", "-p", "-t", "t", format)).trim();
  }

  /** Waits for the client to exit; returns its exit status, as the pane's shell printed it. */
  async exitStatus(): Promise<number> {
    const rows = await this.waitFor(
      "the client to exit",
      (rows) => EXIT_MARK.test(rows.join("\n")),
      { history: true },
    );
    const status = Number(rows.join("\n").match(EXIT_MARK)?.[1]);
    // The shell then ends too, and the pane's command with it.
    await this.waitUntil(
      "the pane's command to end",
      async () => await this.display("#{pane_dead}") === "1",
    );
    assert.ok(!rows.some((row) => row.includes(RAW_MARK)), "the terminal was left in raw mode");
    return status;
  }

  /** Polls until the cursor is at column `x`. */
  async waitForCursor(x: number): Promise<void> {
    await this.waitUntil(
      `the cursor at column ${x}`,
      async () => await this.display("#{cursor_x}") === String(x),
    );
  }

  /** Polls `test` until it holds, failing after `timeoutMs`. */
  async waitUntil(what: string, test: () => Promise<boolean>, timeoutMs = 10000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!await test()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 25)); // the polling interval
    }
  }

  /** Stops the tmux server and everything in it, and removes its socket file. */
  async kill(): Promise<void> {
    try {
      this.#socketPath ??= await this.display("#{socket_path}");
      await this.tmux("kill-server");
    } catch {
      // already gone
    }
    // tmux leaves the socket file behind.
    if (this.#socketPath) await Deno.remove(this.#socketPath).catch(() => {});
  }
}

/** The last non-empty row. */
export function lastRow(rows: string[]): string {
  return rows.findLast((row) => row !== "") ?? "";
}
