/**
 * A WebSocket client for tests: collects the server's JSON frames and waits for the next one
 * of a type, with a time limit, never by sleeping.
 *
 * @module
 */
import { withTimeout } from "./helpers.ts";

/** A frame as received: a `ChatEvent`, read loosely so tests can look at any field. */
export type Frame = Record<string, unknown>;

/** A test's WebSocket to the chat. */
export class WsClient {
  readonly socket: WebSocket;
  /** Every frame received, in order. */
  readonly frames: Frame[] = [];
  /** Resolves with the close event's code and reason. */
  readonly closed: Promise<{ code: number; reason: string }>;
  #read = 0;
  #wake: (() => void) | null = null;

  private constructor(socket: WebSocket) {
    this.socket = socket;
    const { promise, resolve } = Promise.withResolvers<{ code: number; reason: string }>();
    this.closed = promise;
    socket.onmessage = (message) => {
      this.frames.push(JSON.parse(String(message.data)));
      this.#wake?.();
    };
    socket.onclose = (event) => {
      resolve({ code: event.code, reason: event.reason });
      this.#wake?.();
    };
  }

  /** Opens `url` and waits until the socket is open. */
  static async open(url: string): Promise<WsClient> {
    const socket = new WebSocket(url);
    const client = new WsClient(socket);
    await withTimeout(
      new Promise<void>((resolve, reject) => {
        socket.onopen = () => resolve();
        socket.onerror = (e) => reject(new Error(`WebSocket failed: ${(e as ErrorEvent).message}`));
      }),
      5000,
      `a WebSocket to ${url}`,
    );
    return client;
  }

  /** Sends one frame (an object as JSON, or raw text/bytes as given). */
  send(frame: Record<string, unknown> | string | Uint8Array<ArrayBuffer>): void {
    this.socket.send(
      typeof frame === "string" || frame instanceof Uint8Array ? frame : JSON.stringify(frame),
    );
  }

  /** The next unread frame (of `type`, skipping others), or throws after `ms`. */
  async next(type?: string, ms = 5000): Promise<Frame> {
    return await withTimeout(
      (async () => {
        while (true) {
          while (this.#read < this.frames.length) {
            const frame = this.frames[this.#read++];
            if (!type || frame.type === type) return frame;
          }
          if (this.socket.readyState === WebSocket.CLOSED) {
            throw new Error(`closed while waiting for a ${type ?? "frame"}`);
          }
          await new Promise<void>((resolve) => this.#wake = resolve);
        }
      })(),
      ms,
      `a ${type ?? "frame"} frame`,
    );
  }

  /** Closes and waits for the close to finish. */
  async close(): Promise<void> {
    if (this.socket.readyState !== WebSocket.CLOSED) this.socket.close();
    await withTimeout(this.closed, 5000, "the WebSocket to close");
  }
}
