// deno-lint-ignore-file no-control-regex -- escape sequences and control characters are the subject
import assert from "node:assert/strict";
import { styleText } from "node:util";
import { type Key, KeyDecoder, LineEditor, promptWidth } from "../lib/line_editor.ts";
import { escapeControls, stripControls, textWidth } from "../lib/terminal.ts";
import { formatIncoming, formatOwn, nameColor } from "../lib/chat_display.ts";

const encoder = new TextEncoder();

/** Decodes `chunks` one after the other with one decoder; returns every key. */
function decode(...chunks: (string | Uint8Array)[]): Key[] {
  const decoder = new KeyDecoder();
  return chunks.flatMap((chunk) =>
    decoder.decode(typeof chunk === "string" ? encoder.encode(chunk) : chunk)
  );
}

/** The keys' names, with text keys as `text:...`. */
function names(keys: Key[]): string[] {
  return keys.map((key) => key.name === "text" ? `text:${key.text}` : key.name);
}

/** All text the keys would type. */
function typed(keys: Key[]): string {
  return keys.map((key) => key.name === "text" ? key.text : "").join("");
}

/** An editor after typing `text` (the cursor at its end). */
function editorWith(text: string): LineEditor {
  const editor = new LineEditor();
  editor.apply({ name: "text", text });
  return editor;
}

/** Applies named keys in order; returns the last action. */
function press(editor: LineEditor, ...keys: Exclude<Key["name"], "text">[]) {
  let action = null;
  for (const name of keys) action = editor.apply({ name } as Key);
  return action;
}

// ---------------------------------------------------------------- KeyDecoder

Deno.test("KeyDecoder: printable text is one text key", () => {
  assert.deepEqual(decode("hello, world"), [{ name: "text", text: "hello, world" }]);
  assert.deepEqual(decode("é中文👍"), [{ name: "text", text: "é中文👍" }]);
});

Deno.test("KeyDecoder: a UTF-8 character split across chunks decodes as one", () => {
  const bytes = encoder.encode("aé中👍b");
  // Split inside é (2 bytes), inside 中 (3 bytes) and inside 👍 (4 bytes).
  const keys = decode(
    bytes.subarray(0, 2),
    bytes.subarray(2, 5),
    bytes.subarray(5, 8),
    bytes.subarray(8),
  );
  assert.equal(typed(keys), "aé中👍b");
  assert.ok(!typed(keys).includes("\ufffd"), "no replacement character");
  // A lone first byte gives nothing yet.
  const decoder = new KeyDecoder();
  assert.deepEqual(decoder.decode(new Uint8Array([0xc3])), []);
  assert.deepEqual(decoder.decode(new Uint8Array([0xa9])), [{ name: "text", text: "é" }]);
});

Deno.test("KeyDecoder: CR, LF and CRLF are one enter each", () => {
  assert.deepEqual(names(decode("ab\r")), ["text:ab", "enter"]);
  assert.deepEqual(names(decode("ab\n")), ["text:ab", "enter"]);
  assert.deepEqual(names(decode("a\r\nb\r\n")), ["text:a", "enter", "text:b", "enter"]);
  // A CRLF split between chunks still counts once; two CRs are two enters.
  assert.deepEqual(names(decode("a\r", "\nb")), ["text:a", "enter", "text:b"]);
  assert.deepEqual(names(decode("\r\r")), ["enter", "enter"]);
  // An LF that does not follow a CR is an enter of its own.
  assert.deepEqual(names(decode("\r", "x", "\n")), ["enter", "text:x", "enter"]);
});

Deno.test("KeyDecoder: arrows, home, end, delete", () => {
  assert.deepEqual(names(decode("\x1b[D\x1b[C\x1b[A\x1b[B")), ["left", "right", "up", "down"]);
  assert.deepEqual(names(decode("\x1bOH\x1b[H\x1b[1~\x1b[7~")), ["home", "home", "home", "home"]);
  assert.deepEqual(names(decode("\x1b[F\x1bOF\x1b[4~\x1b[8~")), ["end", "end", "end", "end"]);
  assert.deepEqual(names(decode("\x1b[3~")), ["delete"]);
  assert.deepEqual(names(decode("\x1bOD\x1bOC")), ["left", "right"]);
  assert.deepEqual(names(decode("a\x1b[Db")), ["text:a", "left", "text:b"]);
  assert.deepEqual(names(decode("\x1b[1;5C\x1b[1;5D\x1bb\x1bf")), [
    "word-right",
    "word-left",
    "word-left",
    "word-right",
  ]);
});

Deno.test("KeyDecoder: an escape sequence split across chunks is one key", () => {
  assert.deepEqual(names(decode("ab\x1b", "[D")), ["text:ab", "left"]);
  assert.deepEqual(names(decode("\x1b[", "3~x")), ["delete", "text:x"]);
  assert.deepEqual(names(decode("\x1b[3", "~")), ["delete"]);
  assert.deepEqual(names(decode("\x1bO", "H")), ["home"]);
  assert.deepEqual(names(decode("\x1b[1;5", "C")), ["word-right"]);
  // Nothing of the unfinished sequence is typed while waiting for the rest.
  const decoder = new KeyDecoder();
  assert.deepEqual(decoder.decode(encoder.encode("\x1b[")), []);
  assert.deepEqual(names(decoder.decode(encoder.encode("C"))), ["right"]);
});

Deno.test("KeyDecoder: control keys", () => {
  const cases: [string, string][] = [
    ["\x01", "home"], // Ctrl+A
    ["\x05", "end"], // Ctrl+E
    ["\x15", "kill-line"], // Ctrl+U
    ["\x17", "kill-word"], // Ctrl+W
    ["\x0b", "kill-end"], // Ctrl+K
    ["\x03", "interrupt"], // Ctrl+C
    ["\x04", "eof"], // Ctrl+D
    ["\x7f", "backspace"], // DEL, what Backspace sends
    ["\x08", "backspace"], // Ctrl+H
    ["\x02", "left"], // Ctrl+B
    ["\x06", "right"], // Ctrl+F
    ["\x10", "up"], // Ctrl+P
    ["\x0e", "down"], // Ctrl+N
    ["\x0c", "redraw"], // Ctrl+L
  ];
  for (const [input, name] of cases) {
    assert.deepEqual(
      names(decode(`a${input}b`)),
      ["text:a", name, "text:b"],
      escapeControls(input),
    );
  }
  // Other controls are ignored, not typed; a tab is typed.
  assert.equal(typed(decode("a\x00\x07\x1cb")), "ab");
  assert.equal(typed(decode("a\tb")), "a\tb");
});

Deno.test("KeyDecoder: pasted escape sequences never become text", () => {
  const pasted = [
    "\x1b[31mred\x1b[0m", // SGR colour
    "\x1b[200~red\x1b[201~", // bracketed paste markers
    "\x1b[15~red\x1bOP", // F5, F1
    "\x1b[2J\x1b[Hred", // clear screen, cursor home
    "\x1b[1;2Hred\x1b[K", // cursor position, erase line
    "\x1b[Ired\x1b[O", // focus in/out
    "r\x1b\x1bed", // a lone Escape before text
  ];
  for (const text of pasted) {
    const keys = decode(text);
    assert.ok(!typed(keys).includes("\x1b"), escapeControls(text));
    assert.ok(!/[\[~;]/.test(typed(keys)), `${escapeControls(text)} typed ${typed(keys)}`);
  }
  // In the editor, only the plain text is left.
  const editor = new LineEditor();
  for (const key of decode("\x1b[31mred\x1b[0m \x1b[200~pasted\x1b[201~")) editor.apply(key);
  assert.equal(editor.text, "red pasted");
});

Deno.test({
  name: "KeyDecoder: escape sequences with private or string parameters never become text",
  // Regression: DEC private modes, terminal replies, mouse reports and OSC/DCS strings used to
  // lose their ESC and land on the prompt line as text (`[?25h`, `]0;title`).
  fn() {
    const pasted = [
      "a\x1b[?25hb",
      "a\x1b[>0cb",
      "a\x1b[<0;1;2Mb",
      "a\x1b]0;title\x07b",
      "a\x1b]8;;http://example.com\x1b\\b",
      "a\x1bPq#0\x1b\\b",
    ];
    for (const text of pasted) {
      const editor = new LineEditor();
      for (const key of decode(text)) editor.apply(key);
      assert.equal(editor.text, "ab", escapeControls(text));
    }
  },
});

// ---------------------------------------------------------------- LineEditor

Deno.test("LineEditor: typing inserts at the cursor, also in the middle", () => {
  const editor = editorWith("held");
  assert.equal(editor.cursor, 4);
  press(editor, "left", "left");
  editor.apply({ name: "text", text: "llo wor" });
  assert.equal(editor.text, "hello world");
  assert.equal(editor.cursor, 9);
  // Characters are code points: an emoji is one step of the cursor.
  const emoji = editorWith("a👍b");
  press(emoji, "left", "left");
  assert.equal(emoji.cursor, 1);
  emoji.apply({ name: "text", text: "x" });
  assert.equal(emoji.text, "ax👍b");
});

Deno.test("LineEditor: backspace and delete at both ends and inside", () => {
  const editor = editorWith("abc");
  assert.equal(press(editor, "delete"), null); // at the end: nothing to delete
  assert.equal(editor.text, "abc");
  press(editor, "backspace");
  assert.equal(editor.text, "ab");
  assert.equal(editor.cursor, 2);
  press(editor, "home", "backspace"); // at the start: nothing to erase
  assert.equal(editor.text, "ab");
  assert.equal(editor.cursor, 0);
  press(editor, "delete");
  assert.equal(editor.text, "b");
  assert.equal(editor.cursor, 0);
  const middle = editorWith("abcd");
  press(middle, "left", "left", "backspace");
  assert.deepEqual([middle.text, middle.cursor], ["acd", 1]);
  press(middle, "delete");
  assert.deepEqual([middle.text, middle.cursor], ["ad", 1]);
});

Deno.test("LineEditor: home, end, left and right stay within the text", () => {
  const editor = editorWith("hello");
  press(editor, "home");
  assert.equal(editor.cursor, 0);
  press(editor, "left");
  assert.equal(editor.cursor, 0);
  press(editor, "right", "right");
  assert.equal(editor.cursor, 2);
  press(editor, "end");
  assert.equal(editor.cursor, 5);
  press(editor, "right");
  assert.equal(editor.cursor, 5);
  assert.equal(editor.text, "hello");
});

Deno.test("LineEditor: kill-word, kill-line and kill-end", () => {
  const editor = editorWith("hello big  world");
  press(editor, "kill-word");
  assert.deepEqual([editor.text, editor.cursor], ["hello big  ", 11]);
  press(editor, "kill-word"); // spaces before the word go with it
  assert.deepEqual([editor.text, editor.cursor], ["hello ", 6]);
  const middle = editorWith("one two three");
  press(middle, "left", "left", "left", "left", "left", "left"); // after "two"
  press(middle, "kill-word");
  assert.deepEqual([middle.text, middle.cursor], ["one  three", 4]);
  press(middle, "kill-end");
  assert.deepEqual([middle.text, middle.cursor], ["one ", 4]);
  press(middle, "left", "kill-line");
  assert.deepEqual([middle.text, middle.cursor], [" ", 0]);
  const start = editorWith("abc");
  press(start, "home", "kill-word");
  assert.equal(start.text, "abc");
});

Deno.test("LineEditor: history up and down, restoring the draft", () => {
  const editor = new LineEditor();
  assert.equal(press(editor, "up"), null); // no history yet
  assert.equal(editor.text, "");
  for (const line of ["one", "two", "two", "   "]) {
    editor.apply({ name: "text", text: line });
    press(editor, "enter");
  }
  editor.apply({ name: "text", text: "draft" });
  press(editor, "up");
  assert.equal(editor.text, "two"); // a repeated line is kept once, a blank one not at all
  assert.equal(editor.cursor, 3);
  press(editor, "up");
  assert.equal(editor.text, "one");
  press(editor, "up");
  assert.equal(editor.text, "one"); // the oldest stays
  press(editor, "down");
  assert.equal(editor.text, "two");
  press(editor, "down");
  assert.equal(editor.text, "draft");
  assert.equal(editor.cursor, 5);
  press(editor, "down");
  assert.equal(editor.text, "draft");
  // A recalled line can be edited and submitted.
  press(editor, "up");
  editor.apply({ name: "text", text: "!" });
  assert.deepEqual(press(editor, "enter"), { type: "submit", line: "two!" });
  press(editor, "up");
  assert.equal(editor.text, "two!");
});

Deno.test("LineEditor: enter submits the text and clears the line", () => {
  const editor = editorWith("hello");
  press(editor, "left", "left");
  assert.deepEqual(press(editor, "enter"), { type: "submit", line: "hello" });
  assert.equal(editor.text, "");
  assert.equal(editor.cursor, 0);
  assert.deepEqual(press(editor, "enter"), { type: "submit", line: "" });
});

Deno.test("LineEditor: Ctrl+D is eof on an empty line and delete-forward otherwise", () => {
  assert.deepEqual(press(new LineEditor(), "eof"), { type: "eof" });
  const editor = editorWith("abc");
  assert.equal(press(editor, "eof"), null); // at the end: nothing happens
  assert.equal(editor.text, "abc");
  press(editor, "home");
  assert.equal(press(editor, "eof"), null);
  assert.deepEqual([editor.text, editor.cursor], ["bc", 0]);
  press(editor, "eof", "eof");
  assert.equal(editor.text, "");
  assert.deepEqual(press(editor, "eof"), { type: "eof" });
  // Ctrl+C and Ctrl+L are reported, the text kept.
  const other = editorWith("x");
  assert.deepEqual(press(other, "interrupt"), { type: "interrupt" });
  assert.deepEqual(press(other, "redraw"), { type: "redraw" });
  assert.equal(other.text, "x");
});

Deno.test("LineEditor: pasted text with escape sequences and controls is stripped", () => {
  const editor = new LineEditor();
  editor.apply({ name: "text", text: "a\x1b[31mb\x1b]0;title\x07c\u202ed\x00e\x9b2Jf" });
  assert.equal(editor.text, "abcdef");
  assert.equal(editor.cursor, 6);
  editor.apply({ name: "text", text: "\t中" });
  assert.equal(editor.text, "abcdef\t中");
});

// ---------------------------------------------------------------- render

Deno.test("render: a short line is the prompt and the input, the cursor after what precedes it", () => {
  const editor = editorWith("hello");
  assert.deepEqual(editor.render("you> ", 5, 80), { text: "you> hello", cursorColumn: 10 });
  press(editor, "left", "left");
  assert.deepEqual(editor.render("you> ", 5, 80), { text: "you> hello", cursorColumn: 8 });
  press(editor, "home");
  assert.equal(editor.render("you> ", 5, 80).cursorColumn, 5);
  // A coloured prompt: its width is given, not measured from the escapes.
  const coloured = styleText("red", "you", { validateStream: false }) + "> ";
  assert.deepEqual(editor.render(coloured, 5, 80), { text: coloured + "hello", cursorColumn: 5 });
  assert.equal(promptWidth("you> "), 5);
  assert.equal(new LineEditor().render("> ", 2, 80).cursorColumn, 2);
});

Deno.test("render: input wider than the row scrolls, the cursor stays visible", () => {
  const columns = 20;
  const prompt = "alice> ";
  const editor = editorWith("0123456789abcdefghijklmnopqrstuvwxyz");
  const check = (): { text: string; cursorColumn: number } => {
    const row = editor.render(prompt, prompt.length, columns);
    assert.ok(textWidth(row.text) <= columns - 1, `row ${JSON.stringify(row.text)} too wide`);
    assert.ok(row.cursorColumn <= columns - 1, `cursor ${row.cursorColumn}`);
    assert.ok(row.cursorColumn >= prompt.length);
    assert.ok(row.text.startsWith(prompt));
    return row;
  };
  // At the end: the tail is shown and the cursor is just after it.
  let row = check();
  assert.equal(row.text, prompt + "opqrstuvwxyz"); // 12 columns of room
  assert.equal(row.cursorColumn, prompt.length + "opqrstuvwxyz".length);
  // Walking left: the row keeps within bounds and the cursor on the row.
  for (let i = 0; i < 36; i++) {
    press(editor, "left");
    row = check();
  }
  // At home, the start of the text is shown, as much as fits.
  assert.equal(row.text, prompt + "0123456789ab");
  assert.equal(row.cursorColumn, prompt.length);
  // Back to the end: the tail again.
  press(editor, "end");
  assert.equal(check().text, prompt + "opqrstuvwxyz");
});

Deno.test({
  name: "render: the character under the cursor stays visible when the line scrolls",
  // Regression: the view must scroll so that the character under the cursor fits on the row
  // too (`before + width(char under cursor) <= room`), not only the text before it.
  fn() {
    const prompt = "alice> ";
    const editor = editorWith("0123456789abcdefghijklmnopqrstuvwxyz");
    for (let i = 0; i < 36; i++) {
      press(editor, "left");
      const row = editor.render(prompt, prompt.length, 20);
      const under = row.text.slice(prompt.length)[row.cursorColumn - prompt.length];
      assert.equal(under, editor.text[editor.cursor], `cursor at ${editor.cursor}`);
    }
  },
});

Deno.test("render: wide CJK characters count two columns", () => {
  const editor = editorWith("中文");
  assert.deepEqual(editor.render("> ", 2, 80), { text: "> 中文", cursorColumn: 6 });
  press(editor, "left");
  assert.equal(editor.render("> ", 2, 80).cursorColumn, 4);
  // Scrolling with wide characters: never wider than the row, never half a character.
  const long = editorWith("中文字符中文字符中文字符");
  for (const columns of [9, 10, 11, 12, 20]) {
    for (let i = 0; i <= 12; i++) {
      const row = long.render("> ", 2, columns);
      assert.ok(textWidth(row.text) <= columns - 1, `${columns}: ${row.text}`);
      assert.ok(row.cursorColumn <= columns - 1, `${columns}: cursor ${row.cursorColumn}`);
      assert.equal((row.cursorColumn - 2) % 2, 0, "the cursor is on a character boundary");
      press(long, "left");
    }
    press(long, "end");
  }
  assert.equal(promptWidth("中> "), 4);
  // A tab is shown as one space, so it cannot move the terminal's cursor.
  const tab = editorWith("a\tb");
  assert.deepEqual(tab.render("> ", 2, 80), { text: "> a b", cursorColumn: 5 });
});

// ---------------------------------------------------------------- terminal.ts

Deno.test("stripControls: removes whole escape sequences and control characters", () => {
  const cases: [string, string][] = [
    ["a\x1b[31mred\x1b[0mb", "aredb"], // CSI SGR
    ["a\x1b[2J\x1b[1;1H\x1b[?1049hb", "ab"], // CSI with parameters, private mode
    ["a\x1b]0;title\x07b", "ab"], // OSC ended by BEL
    ["a\x1b]0;title\x1b\\b", "ab"], // OSC ended by ST
    ["a\x1b]52;c;aGVsbG8=\x07b", "ab"], // OSC 52: write the clipboard
    ["a\x1b]8;;http://evil.example\x1b\\link\x1b]8;;\x1b\\b", "alinkb"], // hyperlink
    ["a\x1bPq#0;2;0;0;0\x1b\\b", "ab"], // DCS (sixel)
    ["a\x9b31mb\x9b2Jc", "abc"], // 8-bit CSI (U+009B)
    ["a\x9d0;title\x9cb", "ab"], // 8-bit OSC and ST
    ["a\x1b", "a"], // a lone ESC at the end
    ["a\x1b\x1b[31mb", "ab"], // ESC before a sequence
    ["a\x00b\x07c\rd\ne\x7ff", "abcdef"], // NUL, BEL, CR, LF, DEL
    ["evil\u202egnp.exe", "evilgnp.exe"], // right-to-left override
    ["a\u2066b\u2069c\u200fd\u2028e", "abcde"], // isolates, RLM, line separator
  ];
  for (const [input, expected] of cases) {
    assert.equal(stripControls(input), expected, escapeControls(input));
  }
  // Nothing that needs no stripping is touched.
  const plain = "tab\tkept, é, 中文, emoji 👍🏽 ❤️ 👨‍👩‍👧, ümlaut";
  assert.equal(stripControls(plain), plain);
  assert.equal(stripControls("\x1b[1m" + plain + "\x1b[0m"), plain);
  // Idempotent, and the result has no control left.
  const nasty = "\x1b]0;x\x07\x1b[31m\x9b1m\x1bP\x1b\\\u202e\x00ok";
  assert.equal(stripControls(stripControls(nasty)), stripControls(nasty));
  assert.doesNotMatch(stripControls(nasty), /[\x00-\x08\x0a-\x1f\x7f-\x9f\u202a-\u202e]/);
});

Deno.test("escapeControls: writes controls visibly and keeps printable text", () => {
  assert.equal(escapeControls("a\x1b[31mb"), "a\\x1b[31mb");
  assert.equal(escapeControls("line\nnext\r\tx"), "line\\nnext\\r\\tx");
  assert.equal(escapeControls("\x00\x7f\x9b"), "\\x00\\x7f\\x9b");
  assert.equal(escapeControls("a\u202eb"), "a\\u202eb");
  const printable = "hello, é 中文 👍 [31m";
  assert.equal(escapeControls(printable), printable);
  assert.doesNotMatch(escapeControls("\x1b]0;t\x07\u2066"), /[\x00-\x1f\x7f-\x9f\u2066]/);
});

// ---------------------------------------------------------------- chat_display.ts

/** The colour codes styleText writes for `style`. */
function sgr(style: Parameters<typeof styleText>[0], text: string): string {
  return styleText(style, text, { validateStream: false });
}

Deno.test("chat display: a name's colour is stable and never red", () => {
  const names = Array.from({ length: 500 }, (_, i) => `user${i}`).concat(["bob", "alice", "x"]);
  const colours = new Set<string>();
  for (const name of names) {
    const colour = nameColor(name);
    assert.equal(nameColor(name), colour, name);
    assert.equal(nameColor(name.toUpperCase()), colour, "Alice and alice are one person");
    assert.ok(!["red", "redBright"].includes(colour), `${name} is ${colour}`);
    colours.add(colour);
  }
  assert.ok(colours.size >= 5, `only ${[...colours]} used`);
});

Deno.test("chat display: formatIncoming without colour is the stripped text", () => {
  const options = { color: false };
  assert.equal(formatIncoming("bob: hi", options), "bob: hi");
  assert.equal(formatIncoming("Server: note", options), "Server: note");
  assert.equal(formatIncoming("* alice joined", options), "* alice joined");
  assert.equal(formatIncoming("bob: \x1b[31mred\x1b[0m\x1b]0;t\x07!\u202e", options), "bob: red!");
  assert.equal(formatIncoming("\x1b[2J* fake notice", options), "* fake notice");
  assert.doesNotMatch(formatIncoming("[history 12:00] bob: hi\x07", options), /\x1b|\x07/);
  assert.equal(formatOwn("alice", "hi\x1b[31m", options), "alice: hi");
});

Deno.test("chat display: formatIncoming with colour styles names, Server in red, notices dim", () => {
  const options = { color: true, ownName: "alice" };
  assert.equal(formatIncoming("bob: hi", options), `${sgr(nameColor("bob"), "bob")}: hi`);
  assert.ok(formatIncoming("bob: hi", options).startsWith("\x1b["));
  assert.equal(formatIncoming("alice: me", options), `${sgr("bold", "alice")}: me`);
  const server = formatIncoming("Server: note", options);
  assert.equal(server, `${sgr(["red", "bold"], "Server")}: note`);
  assert.ok(server.includes("\x1b[31m"), JSON.stringify(server));
  const notice = formatIncoming("* bob joined", options);
  assert.equal(notice, sgr("dim", "* bob joined"));
  assert.ok(notice.startsWith("\x1b[2m"));
  assert.equal(
    formatIncoming("bob (private): psst", options),
    `${sgr(nameColor("bob"), "bob")} ${sgr("magenta", "(private)")}: psst`,
  );
  assert.equal(
    formatIncoming("[history 09:15] bob: earlier", options),
    `${sgr("dim", "[09:15]")} ${sgr(nameColor("bob"), "bob")}: earlier`,
  );
  // The sender's escapes are gone; only our own colour codes are left.
  const hostile = formatIncoming("bob: \x1b[31mred\x1b]0;t\x07", options);
  assert.equal(hostile, `${sgr(nameColor("bob"), "bob")}: red`);
  // A name is a name only in the shape the protocol allows.
  assert.equal(formatIncoming("not a name: hi", options), "not a name: hi");
});
