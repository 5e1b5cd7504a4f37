/**
 * A bounded, batching output queue for one connection.
 *
 * Sends never block the caller: bytes are queued and a single writer drains the queue,
 * joining everything queued so far into one write. When the write happens is up to a
 * {@linkcode FlushScheduler}: by default at the end of the current turn of the event loop; a
 * server with many clients shares one {@linkcode PacedFlusher}, which coalesces writes in time
 * under load (see there). A peer that
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

/**
 * What one small write to a local TCP peer costs the writing process, in ms: the syscall,
 * Deno's op, and (on loopback) the receiver's TCP path, which runs in the writer's context.
 * Measured with `deno task bench` on a 2-core machine; it only sets how far apart passes are.
 */
const WRITE_COST_MS = 0.004;

/** Decides when queues with new bytes are written. */
export interface FlushScheduler {
  /** `queue` has bytes to write: call its {@linkcode OutputQueue.flush} soon. */
  schedule(queue: OutputQueue): void;
}

/** Writes at the end of the current turn of the event loop (one write per queue per turn). */
export const END_OF_TURN: FlushScheduler = {
  schedule(queue) {
    queueMicrotask(() => queue.flush());
  },
};

/**
 * One flusher for all of a server's clients. Each pass writes every queue that has bytes, then
 * the next pass waits at least as long as this one took. At light load a pass takes
 * microseconds and nothing waits; with a thousand clients a pass takes milliseconds, the
 * lines of several messages go out in each client's single write, and writing never takes
 * more than about half the time. On loopback every `write()` also runs the receiver's TCP
 * path, so the number of writes, not bytes, is what costs.
 */
export class PacedFlusher implements FlushScheduler {
  #due: OutputQueue[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;
  #pending = false;
  #nextPass = 0;

  /** Adds `queue` to the next pass, starting one if none is planned. */
  schedule(queue: OutputQueue): void {
    this.#due.push(queue);
    if (this.#pending) return;
    this.#pending = true;
    const wait = this.#nextPass - performance.now();
    if (wait <= 0) queueMicrotask(() => this.#pass());
    else this.#timer = setTimeout(() => this.#pass(), wait);
  }

  /** Writes everything now and cancels the planned pass (when the server stops). */
  close(): void {
    clearTimeout(this.#timer);
    this.#pass();
  }

  #pass(): void {
    this.#timer = undefined;
    this.#pending = false;
    const started = performance.now();
    const due = this.#due;
    this.#due = [];
    for (const queue of due) queue.flush();
    // The writes themselves run after this loop, in Deno's event loop: budget for them too.
    const spent = performance.now() - started + due.length * WRITE_COST_MS;
    this.#nextPass = started + 2 * spent;
  }
}

/** Queues bytes for one writer. */
export class OutputQueue {
  readonly #writer: { write(bytes: Uint8Array): Promise<number> };
  readonly #maxBytes: number;
  readonly #events: OutputQueueEvents;
  readonly #scheduler: FlushScheduler;
  #chunks: Uint8Array[] = [];
  /** Bytes queued behind the first pending message (the one being written, or about to be). */
  #backlog = 0;
  /** A flush is planned or a write is under way. */
  #busy = false;
  #writing = false;
  #failed = false;
  #idle: (() => void)[] = [];

  /** @param maxBytes most bytes held for a peer that is not reading. */
  constructor(
    writer: { write(bytes: Uint8Array): Promise<number> },
    maxBytes: number,
    events: OutputQueueEvents,
    scheduler: FlushScheduler = END_OF_TURN,
  ) {
    this.#writer = writer;
    this.#maxBytes = maxBytes;
    this.#events = events;
    this.#scheduler = scheduler;
  }

  /** Bytes queued behind the first pending message. */
  get backlog(): number {
    return this.#backlog;
  }

  /** Queues `bytes`. The same array may be queued to many peers: it is never modified. */
  send(bytes: Uint8Array): void {
    if (this.#failed) return;
    if (this.#busy) {
      // Behind a pending message: this is the backlog a peer that is not reading builds up.
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
    this.#busy = true;
    this.#scheduler.schedule(this);
  }

  /** Resolves once everything queued so far has been written (or the queue failed). */
  drained(): Promise<void> {
    if (!this.#busy || this.#failed) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  /** Writes everything queued, in one write (the scheduler calls this). */
  flush(): void {
    if (this.#writing || this.#failed || this.#chunks.length === 0) return;
    const batch = this.#chunks.length === 1 ? this.#chunks[0] : concat(this.#chunks);
    this.#chunks = [];
    this.#backlog = 0;
    this.#writing = true;
    writeAll(this.#writer, batch).then(() => this.#written(), (error) => this.#broken(error));
  }

  #written(): void {
    this.#writing = false;
    if (this.#failed) return;
    // What arrived during the write goes in the scheduler's next pass.
    if (this.#chunks.length > 0) return this.#scheduler.schedule(this);
    this.#busy = false;
    for (const resolve of this.#idle.splice(0)) resolve();
  }

  #broken(error: unknown): void {
    this.#writing = false;
    if (this.#failed) return;
    this.#fail();
    this.#events.onError(error);
  }

  #fail(): void {
    this.#failed = true;
    this.#busy = false;
    this.#chunks = [];
    this.#backlog = 0;
    for (const resolve of this.#idle.splice(0)) resolve();
  }
}

/** `chunks` joined into one array. */
export function concat(chunks: readonly Uint8Array[]): Uint8Array {
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
