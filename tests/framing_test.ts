import assert from "node:assert/strict";
import { decodeLine, LineFramer, readLines } from "../lib/framing.ts";

const encoder = new TextEncoder();

/** Feeds `chunks` and returns the decoded lines, the overflow count and the flushed tail. */
function frame(chunks: Uint8Array[], maxBytes = 1024) {
  const framer = new LineFramer(maxBytes);
  const lines: string[] = [];
  let overflows = 0;
  let peak = 0;
  for (const chunk of chunks) {
    framer.push(chunk, (line) => {
      lines.push(decodeLine(line));
    }, () => overflows++);
    peak = Math.max(peak, framer.buffered);
  }
  const tail = framer.flush();
  return { lines, overflows, peak, tail: tail === null ? null : decodeLine(tail) };
}

function splitAt(bytes: Uint8Array, ...points: number[]): Uint8Array[] {
  const cuts = [0, ...points, bytes.length];
  return cuts.slice(1).map((end, i) => bytes.subarray(cuts[i], end));
}

Deno.test("framing: a message split at every byte gives the same lines", () => {
  const text = "héllo wörld 🎉\r\nsecond\nthird\r\n";
  const bytes = encoder.encode(text);
  const whole = frame([bytes]);
  assert.deepEqual(whole.lines, ["héllo wörld 🎉", "second", "third"]);
  for (let i = 1; i < bytes.length; i++) {
    assert.deepEqual(frame(splitAt(bytes, i)).lines, whole.lines, `split at ${i}`);
  }
  // ...and one byte per read.
  const single = [...bytes].map((b) => Uint8Array.of(b));
  assert.deepEqual(frame(single).lines, whole.lines);
});

Deno.test("framing: CRLF ends a line, a bare CR is kept, a trailing CR at flush is dropped", () => {
  assert.deepEqual(frame([encoder.encode("a\r\nb\rc\n\r\n")]).lines, ["a", "b\rc", ""]);
  // A CR held back at the end of one read, then LF in the next.
  assert.deepEqual(frame([encoder.encode("a\r"), encoder.encode("\nb")]).lines, ["a"]);
  // A CR held back, then more text: the CR was content.
  assert.deepEqual(frame([encoder.encode("a\r"), encoder.encode("b\n")]).lines, ["a\rb"]);
  assert.equal(frame([encoder.encode("tail\r")]).tail, "tail");
  assert.equal(frame([encoder.encode("x\r"), encoder.encode("\r\n")]).lines[0], "x\r");
});

Deno.test("framing: multi-byte characters split across reads decode intact", () => {
  const bytes = encoder.encode("€😀\n");
  for (let i = 1; i < bytes.length - 1; i++) {
    assert.deepEqual(frame(splitAt(bytes, i)).lines, ["€😀"]);
  }
});

Deno.test("framing: invalid UTF-8 becomes U+FFFD", () => {
  const lines = frame([Uint8Array.of(0x61, 0xff, 0xc3, 0x0a)]).lines;
  assert.deepEqual(lines, ["a\ufffd\ufffd"]);
});

Deno.test("framing: a line of exactly maxBytes passes, one byte more overflows", () => {
  const max = 8;
  assert.deepEqual(frame([encoder.encode("12345678\n")], max).lines, ["12345678"]);
  assert.deepEqual(frame([encoder.encode("12345678\r\n")], max).lines, ["12345678"]);
  assert.deepEqual(frame([encoder.encode("1234"), encoder.encode("5678\r\n")], max).lines, [
    "12345678",
  ]);
  const over = frame([encoder.encode("123456789\nok\n")], max);
  assert.deepEqual(over.lines, ["ok"]);
  assert.equal(over.overflows, 1);
});

Deno.test("framing: an over-long line is discarded to its end without buffering it", () => {
  const max = 16;
  const chunks = [
    encoder.encode("x".repeat(10)),
    ...Array(100).fill(encoder.encode("y".repeat(50))),
  ];
  chunks.push(encoder.encode("tail-of-long\nnext\n"));
  const result = frame(chunks, max);
  assert.equal(result.overflows, 1);
  assert.deepEqual(result.lines, ["next"]);
  assert.ok(result.peak <= max, `buffered ${result.peak} > ${max}`);
});

Deno.test("framing: push stops when the handler returns false", () => {
  const framer = new LineFramer(100);
  const seen: string[] = [];
  const bytes = encoder.encode("a\nb\nc\n");
  const offset = framer.push(bytes, (line) => {
    seen.push(decodeLine(line));
    return false;
  }, () => {});
  assert.deepEqual(seen, ["a"]);
  assert.equal(offset, 2);
});

Deno.test("framing: readLines yields the last line without a terminator", async () => {
  const chunks = [encoder.encode("one\ntw"), encoder.encode("o\nthree")];
  const reader = {
    read(buffer: Uint8Array): Promise<number | null> {
      const next = chunks.shift();
      if (!next) return Promise.resolve(null);
      buffer.set(next);
      return Promise.resolve(next.length);
    },
  };
  const lines: string[] = [];
  for await (const line of readLines(reader, 100)) lines.push(line);
  assert.deepEqual(lines, ["one", "two", "three"]);
});
