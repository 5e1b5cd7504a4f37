/**
 * Logging to stderr: `YYYY-MM-DD HH:MM:SS LEVEL message`, one line per event.
 *
 * Messages may carry text from the network, so every line has its control characters escaped
 * before it reaches the terminal.
 *
 * @module
 */
import { LOG_LEVELS } from "./config.ts";
import { escapeControls } from "./terminal.ts";
import { formatTimestamp } from "./time.ts";
import { printErr } from "./io.ts";

/** One of `debug`, `info`, `warn`, `error`. */
export type LogLevel = typeof LOG_LEVELS[number];

/** Where log lines go; tests pass an array-backed sink to read them back. */
export type LogSink = (line: string) => void;

/** Writes a line to stderr. */
export const stderrSink: LogSink = (line: string): void => printErr(line + "\n");

/** A levelled logger. Lines below the threshold cost one comparison. */
export class Logger {
  readonly #threshold: number;
  readonly #sink: LogSink;

  /** @param level the least important level printed; `sink` defaults to stderr. */
  constructor(level: LogLevel = "info", sink: LogSink = stderrSink) {
    this.#threshold = LOG_LEVELS.indexOf(level);
    this.#sink = sink;
  }

  /** Whether lines at `level` are printed (to skip building expensive messages). */
  enabled(level: LogLevel): boolean {
    return LOG_LEVELS.indexOf(level) >= this.#threshold;
  }

  /** Detail for debugging: every message's text. */
  debug(message: string): void {
    this.#write(0, "DEBUG", message);
  }

  /** Normal events: connections, replies. */
  info(message: string): void {
    this.#write(1, "INFO", message);
  }

  /** Something went wrong for one client; the server goes on. */
  warn(message: string): void {
    this.#write(2, "WARN", message);
  }

  /** Something went wrong for the server. */
  error(message: string): void {
    this.#write(3, "ERROR", message);
  }

  #write(rank: number, label: string, message: string): void {
    if (rank < this.#threshold) return;
    this.#sink(`${formatTimestamp()} ${label.padEnd(5)} ${escapeControls(message)}`);
  }
}

/** The level a server runs at: `--quiet` wins over `--log-level`. */
export function effectiveLevel(options: { logLevel?: string; quiet?: boolean }): LogLevel {
  if (options.quiet) return "error";
  const level = options.logLevel as LogLevel | undefined;
  return level && LOG_LEVELS.includes(level) ? level : "info";
}

/** Shortens text for a log line, saying how much was left out. */
export function preview(text: string, max = 200): string {
  if (text.length <= max) return text;
  // Cut between characters, never inside a surrogate pair.
  const cut = /[\ud800-\udbff]/.test(text[max - 1]) ? max - 1 : max;
  return `${text.slice(0, cut)}... (${text.length} chars)`;
}
