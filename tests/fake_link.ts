/**
 * A fake {@linkcode MemberLink} for unit tests of the chat room: no socket, only the lines it
 * is sent (with when they came) and a record of being closed.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { MemberLink } from "../lib/chat_room.ts";
import { type ChatEvent, type Outgoing, renderLine } from "../lib/chat_frames.ts";
import { withTimeout } from "./helpers.ts";

const decoder = new TextDecoder();

/** A link that decodes what it is sent into lines (with when they came) and records `close()`. */
export class FakeLink implements MemberLink {
  readonly peer: string;
  readonly address: string;
  /** Every line received, in order. */
  readonly lines: string[] = [];
  /** Every event sent, in order. */
  readonly events: ChatEvent[] = [];
  /** Every `send()`'s bytes, as is. */
  readonly sent: Uint8Array[] = [];
  /** `performance.now()` when each line arrived. */
  readonly times: number[] = [];
  /** How many times `close()` was called. */
  closes = 0;
  /** Resolves on the first `close()`. */
  readonly closed: Promise<void>;
  readonly #resolveClosed: () => void;
  #waiters: { pattern: RegExp; resolve: (line: string) => void }[] = [];

  constructor(peer = "127.0.0.1:50000") {
    this.peer = peer;
    this.address = peer.replace(/:\d+$/, "").replace(/^\[(.*)\]$/, "$1");
    const { promise, resolve } = Promise.withResolvers<void>();
    this.closed = promise;
    this.#resolveClosed = resolve;
  }

  send(outs: Outgoing | readonly Outgoing[]): void {
    for (const out of Array.isArray(outs) ? outs : [outs]) this.#receive(out);
  }

  #receive(out: Outgoing): void {
    const bytes = out.line;
    // The room must only ever hand over whole lines.
    assert.equal(bytes[bytes.length - 1], 0x0a, "a send must end with a newline");
    // The typed form says exactly what the line says.
    assert.equal(renderLine(JSON.parse(out.json)) + "\n", decoder.decode(bytes));
    this.events.push(out.event);
    this.sent.push(bytes);
    const now = performance.now();
    for (const line of decoder.decode(bytes).slice(0, -1).split("\n")) {
      this.lines.push(line);
      this.times.push(now);
      for (const w of [...this.#waiters]) {
        if (w.pattern.test(line)) {
          this.#waiters.splice(this.#waiters.indexOf(w), 1);
          w.resolve(line);
        }
      }
    }
  }

  close(): void {
    this.closes++;
    this.#resolveClosed();
  }

  /** Returns the lines received since the last call, and forgets them. */
  take(): string[] {
    this.times.splice(0);
    return this.lines.splice(0);
  }

  /** Resolves with the first line (kept or future) matching `pattern`. */
  waitFor(pattern: RegExp, timeoutMs = 5000): Promise<string> {
    const seen = this.lines.find((line) => pattern.test(line));
    if (seen) return Promise.resolve(seen);
    return withTimeout(
      new Promise<string>((resolve) => this.#waiters.push({ pattern, resolve })),
      timeoutMs,
      `${pattern}; have ${JSON.stringify(this.lines)}`,
    );
  }

  /** When the line matching `pattern` arrived. */
  timeOf(pattern: RegExp): number {
    const index = this.lines.findIndex((line) => pattern.test(line));
    assert.ok(index >= 0, `no ${pattern} in ${JSON.stringify(this.lines)}`);
    return this.times[index];
  }
}
