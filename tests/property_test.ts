/**
 * Property tests (fast-check): line framing against a reference model, UTF-8 decoding, the
 * terminal sanitiser, and the chat room's handling of arbitrary lines from several members.
 *
 * Every property runs with a fixed seed, so a failure is reproducible; fast-check prints the
 * seed, the path and the shrunk counterexample.
 */
import assert from "node:assert/strict";
import fc from "npm:fast-check@4.10.2";
import { decodeLine, LineFramer } from "../lib/framing.ts";
import { escapeControls, stripControls } from "../lib/terminal.ts";
import { ChatRoom, type Member, type MemberLink } from "../lib/chat_room.ts";
import type { Outgoing } from "../lib/chat_frames.ts";
import { captureLog } from "./helpers.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Fixed seed for every property: failures reproduce run after run. */
const SEED = 20240611;

// ---------------------------------------------------------------------------------------------
// Framing
// ---------------------------------------------------------------------------------------------

/** What a framer produced for a whole stream. */
interface Framed {
  lines: number[][];
  overflows: number;
  /** `flush()` at the end, or `null`. */
  tail: number[] | null;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/**
 * Feeds `chunks` to a fresh framer, checking on the way that `buffered` never passes the limit
 * and that `push` returns `chunk.length` (it is never asked to stop early here).
 */
function frameChunks(chunks: Uint8Array[], maxBytes: number): Framed {
  const framer = new LineFramer(maxBytes);
  const lines: number[][] = [];
  let overflows = 0;
  for (const chunk of chunks) {
    const reached = framer.push(chunk, (line) => {
      assert.ok(line.length <= maxBytes, `line of ${line.length} > ${maxBytes}`);
      lines.push([...line]); // a view, valid only during the call: copy it
    }, () => overflows++);
    assert.equal(reached, chunk.length, "push returns chunk.length unless asked to stop");
    assert.ok(framer.buffered <= maxBytes, `buffered ${framer.buffered} > ${maxBytes}`);
    assert.ok(framer.buffered >= 0);
  }
  const tail = framer.flush();
  // After flush nothing is pending.
  assert.equal(framer.buffered, 0);
  assert.equal(framer.hasPartial, false);
  assert.equal(framer.flush(), null, "a second flush has nothing");
  return { lines, overflows, tail: tail === null ? null : [...tail] };
}

/**
 * Feeds `chunks`, but `onLine` asks the framer to stop after every line for which `stopAt`
 * says so; the caller then pushes the rest of the chunk from the offset `push` returned, as a
 * reader that pauses between lines would.
 */
function frameStopping(
  chunks: Uint8Array[],
  maxBytes: number,
  stopAt: (lineIndex: number) => boolean,
): Framed {
  const framer = new LineFramer(maxBytes);
  const lines: number[][] = [];
  let overflows = 0;
  for (const chunk of chunks) {
    let rest = chunk;
    while (true) {
      let stopped = false;
      const reached = framer.push(rest, (line) => {
        lines.push([...line]);
        if (stopAt(lines.length - 1)) {
          stopped = true;
          return false;
        }
        return true;
      }, () => overflows++);
      assert.ok(framer.buffered <= maxBytes);
      if (!stopped) {
        assert.equal(reached, rest.length);
        break;
      }
      // Stopped: right after the newline that ended the line just handed out.
      assert.ok(reached >= 1 && reached <= rest.length, `offset ${reached} of ${rest.length}`);
      assert.equal(rest[reached - 1], 0x0a, "stops just after a newline");
      rest = rest.subarray(reached);
      if (rest.length === 0) break;
    }
  }
  const tail = framer.flush();
  return { lines, overflows, tail: tail === null ? null : [...tail] };
}

/**
 * The reference: split on `\n`; each line loses one trailing `\r`; a line longer than
 * `maxBytes` is dropped and counted once. The unterminated rest is what `flush()` returns (one
 * trailing `\r` dropped), `null` when empty, or an overflow (and `null`) when too long.
 */
function reference(bytes: Uint8Array, maxBytes: number): Framed {
  const lines: number[][] = [];
  let overflows = 0;
  const parts: number[][] = [[]];
  for (const b of bytes) {
    if (b === 0x0a) parts.push([]);
    else parts[parts.length - 1].push(b);
  }
  const rest = parts.pop() ?? [];
  const trim = (p: number[]) => (p[p.length - 1] === 0x0d ? p.slice(0, -1) : p);
  for (const part of parts) {
    const line = trim(part);
    if (line.length > maxBytes) overflows++;
    else lines.push(line);
  }
  let tail: number[] | null = null;
  if (rest.length > 0) {
    const line = trim(rest);
    if (line.length > maxBytes) overflows++;
    else tail = line;
  }
  return { lines, overflows, tail };
}

/** Byte pieces that stress the framer: CR/LF combinations, 0xff, UTF-8, long runs. */
const piece: fc.Arbitrary<Uint8Array> = fc.oneof(
  { arbitrary: fc.uint8Array({ maxLength: 24 }), weight: 3 },
  {
    arbitrary: fc.array(fc.constantFrom(0x0a, 0x0d, 0xff, 0x00, 0x61), { maxLength: 12 })
      .map((a) => Uint8Array.from(a)),
    weight: 3,
  },
  {
    arbitrary: fc.constantFrom("\n", "\r", "\r\n", "\r\r\n", "\n\r", "\r\r", "")
      .map((s) => encoder.encode(s)),
    weight: 3,
  },
  {
    arbitrary: fc.string({ unit: "binary", maxLength: 16 }).map((s) => encoder.encode(s)),
    weight: 2,
  },
  {
    // Runs long enough to overflow the small limits drawn below, sometimes ending in CR.
    arbitrary: fc.tuple(fc.constantFrom(0x78, 0x0d, 0xe2), fc.integer({ min: 1, max: 150 }))
      .map(([b, n]) => new Uint8Array(n).fill(b)),
    weight: 1,
  },
);

/** Pieces, plus extra cut points (as fractions) to re-split their concatenation. */
const stream = fc.record({
  pieces: fc.array(piece, { maxLength: 20, size: "medium" }),
  cuts: fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 12 }),
  maxBytes: fc.integer({ min: 1, max: 64 }),
});

function cutAt(bytes: Uint8Array, fractions: number[]): Uint8Array[] {
  const points = [...new Set(fractions.map((f) => Math.floor(f * bytes.length)))].sort((a, b) =>
    a - b
  );
  const edges = [0, ...points, bytes.length];
  return edges.slice(1).map((end, i) => bytes.subarray(edges[i], end));
}

Deno.test("property: framing is independent of how the stream is split, and matches the model", () => {
  fc.assert(
    fc.property(stream, ({ pieces, cuts, maxBytes }) => {
      const whole = concat(pieces);
      const expected = reference(whole, maxBytes);
      assert.deepEqual(frameChunks([whole], maxBytes), expected, "whole stream");
      assert.deepEqual(frameChunks(pieces, maxBytes), expected, "as generated");
      assert.deepEqual(frameChunks(cutAt(whole, cuts), maxBytes), expected, "re-split");
      const single = [...whole].map((b) => Uint8Array.of(b));
      assert.deepEqual(frameChunks(single, maxBytes), expected, "one byte per push");
    }),
    { seed: SEED, numRuns: 2000 },
  );
});

Deno.test("property: framing: stopping after a line and pushing the rest gives the same result", () => {
  fc.assert(
    fc.property(stream, fc.array(fc.boolean(), { minLength: 1, maxLength: 8 }), (s, pattern) => {
      const chunks = cutAt(concat(s.pieces), s.cuts);
      const expected = frameChunks(chunks, s.maxBytes);
      const stopped = frameStopping(chunks, s.maxBytes, (i) => pattern[i % pattern.length]);
      assert.deepEqual(stopped, expected);
    }),
    { seed: SEED, numRuns: 1000 },
  );
});

Deno.test("property: framing: a very long line costs at most maxBytes, reported once", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 2, max: 64 }), // "ok" must fit
      fc.integer({ min: 65, max: 5000 }),
      fc.integer({ min: 1, max: 97 }),
      (maxBytes, length, chunkSize) => {
        const line = new Uint8Array(length).fill(0x79);
        const bytes = concat([line, encoder.encode("\nok\n")]);
        const chunks: Uint8Array[] = [];
        for (let i = 0; i < bytes.length; i += chunkSize) {
          chunks.push(bytes.subarray(i, i + chunkSize));
        }
        const framed = frameChunks(chunks, maxBytes);
        assert.deepEqual(framed, { lines: [[0x6f, 0x6b]], overflows: 1, tail: null });
      },
    ),
    { seed: SEED, numRuns: 300 },
  );
});

// ---------------------------------------------------------------------------------------------
// decodeLine
// ---------------------------------------------------------------------------------------------

Deno.test("property: decodeLine never throws and yields well-formed text", () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
      const text = decodeLine(bytes);
      assert.equal(typeof text, "string");
      assert.ok(text.isWellFormed(), "no lone surrogates");
      // Re-encoding valid output and decoding again is stable.
      assert.equal(decodeLine(encoder.encode(text)), text);
    }),
    { seed: SEED, numRuns: 2000 },
  );
});

Deno.test("property: decodeLine round-trips valid UTF-8", () => {
  const text = fc.oneof(
    fc.string({ unit: "binary", maxLength: 40 }),
    fc.string({ unit: "grapheme", maxLength: 20 }),
    fc.string({ unit: fc.constantFrom("a", "é", "中", "😀", "\u0000", "\r", "\x1b", "\ufffd") }),
  );
  fc.assert(
    fc.property(text, (s) => {
      assert.equal(decodeLine(encoder.encode(s)), s);
    }),
    { seed: SEED, numRuns: 2000 },
  );
});

Deno.test({
  name: "property: decodeLine keeps a leading U+FEFF (ZERO WIDTH NO-BREAK SPACE)",
  // Regression: each line is decoded on its own, and a decoder that strips a byte order mark
  // treated every line as the start of a file, dropping a leading U+FEFF.
  fn() {
    assert.equal(decodeLine(encoder.encode("\ufeffhi")), "\ufeffhi");
  },
});

// ---------------------------------------------------------------------------------------------
// stripControls / escapeControls
// ---------------------------------------------------------------------------------------------

/** What must never survive stripControls: C0 but tab, DEL, C1, separators, bidi controls. */
// deno-lint-ignore no-control-regex -- matching control characters is the point
const UNSAFE = /[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\u200e\u200f]/;
/** Raw control characters of any kind, tab included (escapeControls escapes tabs too). */
// deno-lint-ignore no-control-regex -- matching control characters is the point
const RAW_CONTROL = /[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\u200e\u200f]/;

/** Text full of controls and escape-sequence fragments. */
const hostile: fc.Arbitrary<string> = fc.oneof(
  fc.string({ unit: "binary", maxLength: 30 }),
  fc.array(
    fc.oneof(
      fc.constantFrom(
        "\x1b",
        "\x1b[",
        "\x1b[2J",
        "\x1b[31m",
        "\x1b]0;title\x07",
        "\x1b]52;c;ZXZpbA==\x07",
        "\x1b]8;;http://x\x1b\\",
        "\x1bP1$r\x1b\\",
        "\x1b_apc\x1b\\",
        "\x1b^pm\x9c",
        "\x1bX",
        "\u009b",
        "\u009b1;2H",
        "\u009d0;t\u009c",
        "\u0090dcs",
        "\u0085",
        "\x07",
        "\x00",
        "\r",
        "\n",
        "\t",
        "\x7f",
        "\u2028",
        "\u2029",
        "\u202e",
        "\u2066",
        "\u2069",
        "\u200e",
        "\u200f",
        "\\",
        "[",
        "]",
        ";",
        "m",
        "é",
        "中",
        "😀",
      ),
      fc.string({ maxLength: 4 }),
      fc.integer({ min: 0, max: 0x2070 }).map((c) => String.fromCharCode(c)),
    ),
    { maxLength: 24 },
  ).map((parts) => parts.join("")),
);

Deno.test("property: stripControls leaves no control, separator or bidi character", () => {
  fc.assert(
    fc.property(hostile, (text) => {
      const clean = stripControls(text);
      const bad = clean.match(UNSAFE);
      assert.equal(bad, null, `${JSON.stringify(text)} -> ${JSON.stringify(clean)}`);
      assert.ok(!clean.includes("\x1b") && !clean.includes("\u009b"));
      assert.ok(clean.length <= text.length, "only removes");
    }),
    { seed: SEED, numRuns: 3000 },
  );
});

Deno.test("property: stripControls is idempotent", () => {
  fc.assert(
    fc.property(hostile, (text) => {
      const once = stripControls(text);
      assert.equal(stripControls(once), once, JSON.stringify(text));
    }),
    { seed: SEED, numRuns: 3000 },
  );
});

Deno.test("property: stripControls removes escape sequences whole, keeping the text around", () => {
  const plain = fc.string({
    unit: fc.oneof(
      fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)),
      fc.constantFrom("é", "中", "😀"),
    ),
    maxLength: 12,
  });
  const sequence = fc.constantFrom(
    "\x1b[2J",
    "\x1b[31m",
    "\x1b[0m",
    "\x1b[?25l",
    "\x1b[1;31;42m",
    "\x1b]0;title\x07",
    "\x1b]52;c;ZXZpbA==\x07",
    "\x1b]8;;http://example.com\x1b\\",
    "\x1bP1$r\x1b\\",
    "\x1b_apc\x1b\\",
    "\x1b^pm\x1b\\",
    "\x1bXsos\x1b\\",
    "\u009b31m",
    "\u009d0;t\u009c",
    "\u0090q\u009c",
    "\x1b7",
    "\x1b=",
    "\x1bc",
  );
  fc.assert(
    fc.property(fc.array(fc.tuple(plain, sequence), { maxLength: 5 }), plain, (pairs, last) => {
      const dirty = pairs.map(([p, s]) => p + s).join("") + last;
      const expected = pairs.map(([p]) => p).join("") + last;
      assert.equal(stripControls(dirty), expected, JSON.stringify(dirty));
    }),
    { seed: SEED, numRuns: 3000 },
  );
});

Deno.test("property: stripControls passes printable text unchanged", () => {
  const printable = fc.string({
    unit: fc.oneof(
      fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)),
      fc.constantFrom("\t", "é", "ü", "ß", "中", "文", "😀", "🎉", "👍🏽", "ñ", "€", "\u00a0"),
    ),
    maxLength: 60,
  });
  fc.assert(
    fc.property(printable, (text) => {
      assert.equal(stripControls(text), text);
    }),
    { seed: SEED, numRuns: 1000 },
  );
});

Deno.test("property: escapeControls leaves no raw control and never shortens", () => {
  fc.assert(
    fc.property(hostile, (text) => {
      const escaped = escapeControls(text);
      assert.equal(escaped.match(RAW_CONTROL), null, JSON.stringify(escaped));
      assert.ok(escaped.length >= text.length);
      // Text without controls is left as is.
      const inert = stripControls(text).replaceAll("\t", " ");
      assert.equal(escapeControls(inert), inert);
    }),
    { seed: SEED, numRuns: 3000 },
  );
});

Deno.test({
  name: "stripControls removes U+061C ARABIC LETTER MARK, a bidi control like U+200E/U+200F",
  // Regression: lib/terminal.ts CONTROL (used by stripControls and escapeControls) lists the bidi
  // marks U+200E/U+200F and the embeddings/isolates, but not U+061C (ARABIC LETTER MARK), the
  // one other character with the Unicode Bidi_Control property. It passes through chat
  // unchanged. Repro: stripControls("a\u061cb") === "a\u061cb".
  fn() {
    assert.equal(stripControls("a\u061cb"), "ab");
    assert.ok(!/\p{Bidi_Control}/u.test(stripControls("x\u061c\u200e\u202e\u2066y")));
  },
});

// ---------------------------------------------------------------------------------------------
// The chat room
// ---------------------------------------------------------------------------------------------

/** A link that keeps the lines it is sent and checks each send is whole lines. */
class FakeLink implements MemberLink {
  readonly peer = "127.0.0.1:50000";
  readonly address = "127.0.0.1";
  readonly lines: string[] = [];
  closes = 0;

  send(outs: Outgoing | readonly Outgoing[]): void {
    for (const out of Array.isArray(outs) ? outs : [outs]) this.#receive(out);
  }

  #receive(out: Outgoing): void {
    const bytes = out.line;
    assert.equal(bytes[bytes.length - 1], 0x0a, "a send must end with a newline");
    this.lines.push(...decoder.decode(bytes).slice(0, -1).split("\n"));
  }

  close(): void {
    this.closes++;
  }

  take(): string[] {
    return this.lines.splice(0);
  }
}

/** Characters no delivered line may hold: C0 but tab, DEL, C1, separators, bidi controls. */
const NOT_DELIVERABLE = UNSAFE;

/** Fragments chat lines are built from. */
const chatFragment = fc.oneof(
  {
    arbitrary: fc.constantFrom(
      "/nick ",
      "/nick",
      "/msg ",
      "/msg",
      "/me",
      "/me ",
      "/who",
      "/help",
      "/auth",
      "/auth x",
      "/kick",
      "/quit",
      "bye",
      "BYE",
      "//",
      "/",
      " ",
      "  ",
      "alice",
      "Alice",
      "bob",
      "guest-1",
      "guest-2",
      "guest-3",
      "Server",
      "Server: ",
      "* ",
      "[history 12:00] ",
      "(private): ",
      ": ",
      "\x1b[",
      "\x1b[2J",
      "\x1b]52;c;ZXZpbA==\x07",
      "\x1b]0;t\x1b\\",
      "\x1b",
      "\u009b",
      "\u009b31m",
      "\u0085",
      "\r",
      "\n",
      "\r\n",
      "\t",
      "\x00",
      "\x07",
      "\u2028",
      "\u202e",
      "\u2066",
      "\ufffd",
      "é中😀",
    ),
    weight: 6,
  },
  { arbitrary: fc.string({ unit: "binary", maxLength: 8 }), weight: 2 },
  { arbitrary: fc.string({ maxLength: 8 }), weight: 2 },
  {
    arbitrary: fc.tuple(
      fc.constantFrom("a", " ", "\x1b", "/", "\t"),
      fc.integer({ min: 1, max: 300 }),
    )
      .map(([c, n]) => c.repeat(n)),
    weight: 1,
  },
);
const chatLine = fc.array(chatFragment, { maxLength: 6 }).map((parts) => parts.join(""));
const chatScript = fc.array(fc.tuple(fc.integer({ min: 0, max: 2 }), chatLine), {
  minLength: 1,
  maxLength: 40,
  size: "medium", // scripts of up to 40 lines, not only the default few
});

interface Seat {
  link: FakeLink;
  member: Member;
}

function checkDelivered(line: string, context: string): void {
  assert.equal(
    line.match(NOT_DELIVERABLE),
    null,
    `raw control in ${JSON.stringify(line)}; ${context}`,
  );
  assert.ok(!line.includes("\x1b") && !line.includes("\u009b"), context);
}

Deno.test("property: chat room: any lines from three members are delivered safe and well-formed", () => {
  fc.assert(
    fc.property(chatScript, (script) => {
      const log = captureLog();
      const room = new ChatRoom({ rate: 0, history: 5, logger: log.logger });
      try {
        const join = (): Seat => {
          const link = new FakeLink();
          const member = room.join(link);
          assert.ok(member);
          return { link, member };
        };
        const seats = [join(), join(), join()];
        for (const seat of seats) {
          for (const line of seat.link.take()) checkDelivered(line, "greeting");
        }
        for (const [index, raw] of script) {
          if (seats[index].member.gone) {
            // Left with bye: a new client takes the seat (history is replayed to it).
            seats[index] = join();
          }
          const sender = seats[index];
          const senderName = sender.member.name;
          const context = `${senderName} sent ${JSON.stringify(raw)}`;
          for (const seat of seats) {
            for (const line of seat.link.take()) checkDelivered(line, `after join; ${context}`);
          }
          room.receive(sender.member, raw);
          for (const seat of seats) {
            const own = seat === sender;
            for (const line of seat.link.take()) {
              checkDelivered(line, context);
              if (line.startsWith("* ") || line.startsWith("[history ")) continue;
              // Otherwise it must be a message from the sender, under the sender's name.
              const match = line.match(/^([A-Za-z0-9_-]{1,24})(: | \(private\): )/);
              assert.ok(match, `not a message or notice: ${JSON.stringify(line)}; ${context}`);
              assert.equal(match[1], senderName, `${JSON.stringify(line)}; ${context}`);
              if (own) {
                // Only a private message to oneself comes back; never one's own message.
                assert.equal(match[2], " (private): ", `own message echoed; ${context}`);
              }
            }
          }
          // Names stay valid and unique.
          const names = room.names().map((n) => n.toLowerCase());
          assert.equal(new Set(names).size, names.length);
          for (const n of room.names()) assert.match(n, /^[A-Za-z0-9_-]{1,24}$/);
        }
      } finally {
        room.close();
      }
    }),
    { seed: SEED, numRuns: 1000 },
  );
});

Deno.test("property: chat room: a plain message reaches the two others exactly once, stripped", () => {
  const text = fc.array(chatFragment, { minLength: 1, maxLength: 6 }).map((p) => p.join(""))
    .filter((t) => {
      const clean = stripControls(t).trimEnd();
      const word = clean.trim().toLowerCase();
      return clean.trim() !== "" && !(clean.startsWith("/") && !clean.startsWith("//")) &&
        word !== "bye" && word !== "/quit" && !word.startsWith("/quit ");
    });
  fc.assert(
    fc.property(text, (raw) => {
      const room = new ChatRoom({ rate: 0, history: 5, logger: captureLog().logger });
      try {
        const seats = [0, 1, 2].map(() => {
          const link = new FakeLink();
          const member = room.join(link);
          assert.ok(member);
          return { link, member };
        });
        for (const s of seats) s.link.take();
        room.receive(seats[0].member, raw);
        const clean = stripControls(raw).trimEnd();
        const expected = `guest-1: ${clean.startsWith("//") ? clean.slice(1) : clean}`;
        assert.deepEqual(seats[0].link.take(), []);
        assert.deepEqual(seats[1].link.take(), [expected]);
        assert.deepEqual(seats[2].link.take(), [expected]);
      } finally {
        room.close();
      }
    }),
    { seed: SEED, numRuns: 1000 },
  );
});
