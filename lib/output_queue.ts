/**
 * A bounded, batching output queue for one connection.
 *
 * Sends never block the caller: bytes are queued and a single writer drains the queue,
 * joining everything queued so far into one write per turn of the event loop. A peer that
 * stops reading makes the backlog (bytes queued behind the first pending message) grow; past
 * `maxBytes` the queue gives up on it (calls `onOverflow`, later, never inside `send`) instead
 * of holding memory or stalling anyone else. The first message is not counted, so one large
 * message (a history replay) to a peer that reads is never mistaken for a slow peer.
 *
 * @module
 */
import { writeAll } from "./io.ts";

/** Callbacks of an {@linkcode OutputQueue}. */
export interface OutputQueueEvents {
  /** The peer fell more than `maxBytes` behind; the queue has stopped sending. */
  onOverflow(): void;
  /** A write failed (the peer went away). */
  onError(error: unknown): void;
}

/** Queues bytes for one writer. */
export class OutputQueue {
  readonly #writer: { write(bytes: Uint8Array): Promise<number> };
  readonly #maxBytes: number;
  readonly #events: OutputQueueEvents;
  #chunks: Uint8Array[] = [];
  /** Bytes queued behind the first pending message (the one being written, or about to be). */
  #backlog = 0;
  #writing = false;
  #failed = false;
  #idle: (() => void)[] = [];

  /** @param maxBytes most bytes held for a peer that is not reading. */
  constructor(
    writer: { write(bytes: Uint8Array): Promise<number> },
    maxBytes: number,
    events: OutputQueueEvents,
  ) {
    this.#writer = writer;
    this.#maxBytes = maxBytes;
    this.#events = events;
  }

  /** Bytes queued behind the first pending message. */
  get backlog(): number {
    return this.#backlog;
  }

  /** Queues `bytes`. The same array may be queued to many peers: it is never modified. */
  send(bytes: Uint8Array): void {
    if (this.#failed) return;
    if (this.#writing) {
      // Behind a write in progress: this is the backlog a peer that is not reading builds up.
      if (this.#backlog + bytes.length > this.#maxBytes) {
        this.#fail();
        queueMicrotask(() => this.#events.onOverflow());
        return;
      }
      this.#backlog += bytes.length;
      this.#chunks.push(bytes);
      return;
    }
    this.#chunks.push(bytes);
    this.#writing = true;
    // Let the rest of this turn queue more, so it all leaves in one write.
    queueMicrotask(() => this.#drain());
  }

  /** Resolves once everything queued so far has been written (or the queue failed). */
  drained(): Promise<void> {
    if (!this.#writing || this.#failed) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  async #drain(): Promise<void> {
    try {
      while (this.#chunks.length > 0 && !this.#failed) {
        const batch = this.#chunks.length === 1 ? this.#chunks[0] : concat(this.#chunks);
        this.#chunks = [];
        this.#backlog = 0;
        await writeAll(this.#writer, batch);
      }
    } catch (error) {
      if (!this.#failed) {
        this.#fail();
        this.#events.onError(error);
      }
    } finally {
      this.#writing = false;
      for (const resolve of this.#idle.splice(0)) resolve();
    }
  }

  #fail(): void {
    this.#failed = true;
    this.#chunks = [];
    this.#backlog = 0;
    for (const resolve of this.#idle.splice(0)) resolve();
  }
}

function concat(chunks: Uint8Array[]): Uint8Array {
  let total = 0;
  for (const chunk of chunks) total += chunk.length;
  const out = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out;
}
