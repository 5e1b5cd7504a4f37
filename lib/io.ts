/**
 * Writing every byte: `write()` may take only part of a buffer, so callers loop. The async
 * form awaits each write, which is what respects the peer's backpressure.
 *
 * @module
 */

/** Anything with an async `write()` in the style of `Deno.Conn`. */
export interface ByteWriter {
  /** Writes some of `bytes`; resolves to how many were taken. */
  write(bytes: Uint8Array): Promise<number>;
}

/** Anything with a sync `writeSync()` in the style of `Deno.stdout`. */
export interface SyncByteWriter {
  /** Writes some of `bytes`; returns how many were taken. */
  writeSync(bytes: Uint8Array): number;
}

/** Writes all of `bytes`, waiting for the peer to take them. */
export async function writeAll(writer: ByteWriter, bytes: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < bytes.length) {
    offset += await writer.write(offset === 0 ? bytes : bytes.subarray(offset));
  }
}

/** Writes all of `bytes` synchronously (for stdout and stderr). */
export function writeAllSync(writer: SyncByteWriter, bytes: Uint8Array): void {
  let offset = 0;
  while (offset < bytes.length) {
    offset += writer.writeSync(offset === 0 ? bytes : bytes.subarray(offset));
  }
}

const encoder = new TextEncoder();

/** Prints text to stdout. A closed stdout (`client | head -1`) is not an error worth a trace. */
export function printOut(text: string): void {
  try {
    writeAllSync(Deno.stdout, encoder.encode(text));
  } catch (error) {
    if (!(error instanceof Deno.errors.BrokenPipe)) throw error;
  }
}

/** Prints text to stderr, ignoring a closed stderr (logging must never take a server down). */
export function printErr(text: string): void {
  try {
    writeAllSync(Deno.stderr, encoder.encode(text));
  } catch {
    // Nowhere left to report it.
  }
}
