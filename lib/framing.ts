/**
 * Line framing over a byte stream.
 *
 * A line ends at `\n`; a `\r` just before it is dropped. Lines are found with a native
 * `indexOf` scan over each chunk; complete lines inside a chunk are handed out as views into
 * that chunk (no copy), and only the unfinished tail is buffered, in a buffer that grows by
 * doubling up to the limit. So a long line costs linear time, and the bytes held for one
 * connection never exceed `maxBytes`.
 *
 * @module
 */

const LF = 0x0a;
const CR = 0x0d;
const CR_BYTE = Uint8Array.of(CR);
const EMPTY = new Uint8Array(0);
const SHRINK_ABOVE = 4096;

/** Receives one complete line, without its terminator. Valid only during the call. */
export type LineHandler = (line: Uint8Array) => void;

/**
 * Receives notice that a line grew past the limit. From then on the framer discards bytes
 * until the next `\n`, so the rest of the over-long line never becomes a line of its own.
 */
export type OverflowHandler = () => void;

/** Splits a byte stream into lines of at most `maxBytes` bytes each. */
export class LineFramer {
  readonly #maxBytes: number;
  #buffer: Uint8Array;
  #length = 0;
  /** The unfinished line ended with `\r`, held back in case `\n` follows. */
  #pendingCR = false;
  /** Inside an over-long line: drop bytes until the next `\n`. */
  #discarding = false;

  /** @param maxBytes the longest line accepted, in bytes, terminator excluded. */
  constructor(maxBytes: number) {
    this.#maxBytes = maxBytes;
    this.#buffer = EMPTY; // allocated on the first unfinished line: idle connections cost nothing
  }

  /** Bytes of an unfinished line held in memory (never more than `maxBytes`). */
  get buffered(): number {
    return this.#length;
  }

  /** Whether part of a line has arrived without its terminator. */
  get hasPartial(): boolean {
    return this.#length > 0 || this.#pendingCR;
  }

  /**
   * Feeds one chunk. Calls `onLine` for every line it completes, in order, and `onOverflow`
   * once for every line that exceeds the limit. Stops early (returning the offset reached)
   * when `onLine` asks to by returning `false`; returns `chunk.length` otherwise.
   */
  push(
    chunk: Uint8Array,
    onLine: (line: Uint8Array) => boolean | void,
    onOverflow: OverflowHandler,
  ): number {
    let start = 0;
    while (start < chunk.length) {
      const newline = chunk.indexOf(LF, start);
      const end = newline === -1 ? chunk.length : newline;
      if (this.#discarding) {
        if (newline === -1) return chunk.length;
        this.#discarding = false;
        start = newline + 1;
        continue;
      }
      if (newline === -1) {
        this.#appendPartial(chunk.subarray(start), onOverflow);
        return chunk.length;
      }
      const line = this.#completeLine(chunk.subarray(start, end));
      start = newline + 1;
      if (line === null) {
        onOverflow();
        continue;
      }
      if (onLine(line) === false) return start;
    }
    return chunk.length;
  }

  /**
   * Ends the unfinished line, if any, as though its terminator had arrived (at end of stream,
   * or after a pause). Returns it, or `null` when nothing is pending. A trailing `\r` is
   * dropped, as it would be before `\n`.
   */
  flush(): Uint8Array | null {
    if (this.#discarding) {
      this.#discarding = false;
      return null;
    }
    if (!this.hasPartial) return null;
    const line = this.#buffer.slice(0, this.#length);
    this.#length = 0;
    this.#pendingCR = false;
    return line;
  }

  /** Joins the buffered tail with `raw` (the bytes before a `\n`); `null` when too long. */
  #completeLine(raw: Uint8Array): Uint8Array | null {
    const piece = raw[raw.length - 1] === CR ? raw.subarray(0, -1) : raw;
    if (this.#length === 0 && !this.#pendingCR) {
      // The common case: a whole line inside one chunk, handed out without a copy.
      return piece.length > this.#maxBytes ? null : piece;
    }
    // A held-back `\r` followed by more bytes was part of the line, not its end.
    const heldCR = this.#pendingCR && raw.length > 0;
    this.#pendingCR = false;
    if ((heldCR && !this.#append(CR_BYTE)) || !this.#append(piece)) return this.#reset();
    const line = this.#buffer.subarray(0, this.#length);
    this.#length = 0;
    // Let a buffer grown for one long line go, so a connection does not keep its peak.
    if (this.#buffer.length > SHRINK_ABOVE) this.#buffer = EMPTY;
    return line;
  }

  #appendPartial(piece: Uint8Array, onOverflow: OverflowHandler): void {
    if (this.#pendingCR) {
      this.#pendingCR = false;
      if (!this.#append(CR_BYTE)) return this.#startDiscarding(onOverflow);
    }
    if (piece[piece.length - 1] === CR) {
      piece = piece.subarray(0, -1);
      this.#pendingCR = true;
    }
    if (!this.#append(piece)) this.#startDiscarding(onOverflow);
  }

  #startDiscarding(onOverflow: OverflowHandler): void {
    this.#reset();
    this.#discarding = true;
    onOverflow();
  }

  #reset(): null {
    this.#length = 0;
    this.#pendingCR = false;
    return null;
  }

  /** Appends to the buffer; `false` (and nothing appended) when that would pass the limit. */
  #append(bytes: Uint8Array): boolean {
    const needed = this.#length + bytes.length;
    if (needed > this.#maxBytes) return false;
    if (needed > this.#buffer.length) {
      let size = this.#buffer.length || 256;
      while (size < needed) size *= 2;
      const grown = new Uint8Array(Math.min(size, this.#maxBytes));
      grown.set(this.#buffer.subarray(0, this.#length));
      this.#buffer = grown;
    }
    this.#buffer.set(bytes, this.#length);
    this.#length = needed;
    return true;
  }
}

// Not fatal: invalid UTF-8 becomes U+FFFD. A U+FEFF opening a line is text, not a byte order mark.
const decoder = new TextDecoder("utf-8", { ignoreBOM: true });

/** Decodes a line as UTF-8, replacing invalid sequences with U+FFFD. */
export function decodeLine(line: Uint8Array): string {
  return decoder.decode(line);
}

/** Anything with `read()` in the style of `Deno.Conn` and `Deno.stdin`. */
export interface ByteReader {
  /** Reads into `buffer`; resolves to the count read, or `null` at end of stream. */
  read(buffer: Uint8Array): Promise<number | null>;
}

/**
 * Yields each line of `reader` as text, the last one even without a terminator. Lines over
 * `maxBytes` are skipped and reported through `onOverflow`.
 */
export async function* readLines(
  reader: ByteReader,
  maxBytes: number,
  onOverflow: OverflowHandler = () => {},
): AsyncGenerator<string> {
  const framer = new LineFramer(maxBytes);
  const buffer = new Uint8Array(16 * 1024);
  const ready: string[] = [];
  while (true) {
    const n = await reader.read(buffer);
    if (n === null) break;
    framer.push(buffer.subarray(0, n), (line) => {
      ready.push(decodeLine(line));
    }, onOverflow);
    yield* ready.splice(0);
  }
  const last = framer.flush();
  if (last !== null) yield decodeLine(last);
}

/** The size of a connection's first read buffer: small, since most connections are idle. */
export const FIRST_READ_SIZE = 512;
/** The largest a read buffer grows to. */
export const MAX_READ_SIZE = 64 * 1024;

/**
 * The buffer for the next read: twice as large when the last read (`n` bytes) filled `buffer`,
 * a sign of a fast sender, up to {@linkcode MAX_READ_SIZE}; otherwise `buffer` itself.
 */
export function nextReadBuffer<T extends ArrayBufferLike>(
  buffer: Uint8Array<T>,
  n: number,
): Uint8Array<T> | Uint8Array<ArrayBuffer> {
  return n === buffer.length && buffer.length < MAX_READ_SIZE
    ? new Uint8Array(buffer.length * 2)
    : buffer;
}
