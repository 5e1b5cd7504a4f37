// deno-lint-ignore-file no-control-regex -- reading a terminal's escape sequences is the point
/**
 * The chat client (and the echo client's interactive mode) in a real terminal: each test
 * runs the client in a tmux pane of a fixed size on a private tmux server, types into it with
 * `send-keys`, and reads the screen with `capture-pane`. Screens are polled until the expected
 * text appears (bounded by a timeout); nothing waits by sleeping.
 */
import assert from "node:assert/strict";
import { styleText } from "node:util";
import { startChatServer } from "../chat_server.ts";
import { startServer } from "../server.ts";
import { nameColor } from "../lib/chat_display.ts";
import { textWidth } from "../lib/terminal.ts";
import { captureLog, haveTool, LineClient, REPLY } from "./helpers.ts";
import { COLUMNS, lastRow, Tmux } from "./tmux.ts";

const hasTmux = haveTool("tmux", ["-V"]);
/** The terminal these tests run the clients in. */
const TTY = { terminal: "xterm-256color", reportRaw: true };

/** The SGR parameter styleText writes for a colour, e.g. `31` for red. */
function colourCode(style: Parameters<typeof styleText>[0]): string {
  const code = styleText(style, "x", { validateStream: false }).match(/^\x1b\[(\d+)m/)?.[1];
  assert.ok(code, `no code for ${style}`);
  return code;
}

/** Whether the SGRs right before `text` in `row` set parameter `code` (tmux may split them). */
function styledBefore(row: string, code: string, text: string): boolean {
  const index = row.indexOf(text);
  if (index < 0) return false;
  const run = row.slice(0, index).match(/(?:\x1b\[[0-9;]*m)+$/)?.[0] ?? "";
  return [...run.matchAll(/\x1b\[([0-9;]*)m/g)].flatMap((m) => m[1].split(";")).includes(code);
}

interface ChatSetup {
  tmux: Tmux;
  server: ReturnType<typeof startChatServer>;
  log: ReturnType<typeof captureLog>;
}

/** Runs `body` with a chat server and `chat_client.ts --name alice ARGS` in a tmux pane. */
async function withChatClient(
  args: string[],
  body: (setup: ChatSetup) => Promise<void>,
): Promise<void> {
  const log = captureLog();
  const server = startChatServer({ port: 0, logger: log.logger });
  const tmux = new Tmux("chat-tty");
  try {
    await tmux.start([
      "run",
      "-N",
      "chat_client.ts",
      "--port",
      String(server.addr.port),
      "--name",
      "alice",
      ...args,
    ], TTY);
    // The prompt shows the name once the server has confirmed it.
    await tmux.waitFor("the alice> prompt", (rows) => lastRow(rows) === "alice>");
    await body({ tmux, server, log });
  } finally {
    await tmux.kill();
    await server.close();
  }
}

/** Connects a second member, renamed to `name`. */
async function joinAs(
  server: ReturnType<typeof startChatServer>,
  name: string,
): Promise<LineClient> {
  const client = await LineClient.connect(server.addr);
  try {
    await client.readUntil(/^\* Welcome to the chat/);
    await client.send(`/nick ${name}\n`);
    await client.readUntil(new RegExp(`^\\* you are now known as ${name}$`));
  } catch (error) {
    client.close();
    throw error;
  }
  return client;
}

Deno.test({
  name: "chat tty: the welcome appears, then the prompt with the chosen name",
  ignore: !hasTmux,
  async fn() {
    await withChatClient([], async ({ tmux, log }) => {
      const rows = await tmux.screen();
      assert.match(rows[0], /^\* Welcome to the chat, guest-\d+! Type a message/);
      assert.ok(rows.includes("* You are the only one here."), rows.join("\n"));
      assert.ok(rows.includes("* you are now known as alice"), rows.join("\n"));
      assert.equal(lastRow(rows), "alice>");
      // The cursor waits after "alice> ", on the prompt's row.
      await tmux.waitForCursor("alice> ".length);
      assert.equal(Number(await tmux.display("#{cursor_y}")), rows.lastIndexOf("alice>"));
      await log.waitFor(/guest-\d+ is now known as alice/);
    });
  },
});

Deno.test({
  name: "chat tty: an incoming line passes above the prompt; typing and cursor are kept",
  ignore: !hasTmux,
  async fn() {
    await withChatClient([], async ({ tmux, server }) => {
      await tmux.type("hello wor");
      await tmux.waitFor("the typed text", (rows) => lastRow(rows) === "alice> hello wor");
      const bob = await joinAs(server, "bob");
      try {
        await bob.send("bob-line from bob\n");
        // The incoming line appears above the prompt, and the prompt, redrawn under it, still
        // holds the typing (a separate write: the screen is polled until both are there).
        const rows = await tmux.waitFor(
          "bob's line above alice's typing",
          (rows) => rows.includes("bob: bob-line from bob") && lastRow(rows) === "alice> hello wor",
        );
        const promptRow = rows.lastIndexOf("alice> hello wor");
        assert.ok(rows.indexOf("bob: bob-line from bob") < promptRow, rows.join("\n"));
        assert.equal(rows.filter((row) => row.startsWith("alice>")).length, 1, rows.join("\n"));
        await tmux.waitForCursor("alice> hello wor".length);
        assert.equal(Number(await tmux.display("#{cursor_y}")), promptRow);
        // Edit in the middle: the line sent is the edited one.
        await tmux.press("Left", "Left");
        await tmux.waitForCursor("alice> hello w".length);
        await tmux.type("X");
        await tmux.press("Enter");
        const received = await bob.readUntil(/^alice: /);
        assert.equal(received.at(-1), "alice: hello wXor");
        // alice sees her own line (the server does not echo it) and an empty prompt.
        const after = await tmux.waitFor(
          "alice's own line and an empty prompt",
          (rows) => rows.includes("alice: hello wXor") && lastRow(rows) === "alice>",
        );
        assert.equal(after.filter((row) => row.startsWith("alice>")).length, 1, after.join("\n"));
        await tmux.waitForCursor("alice> ".length);
      } finally {
        bob.close();
      }
    });
  },
});

/** `n` letters a..z repeated: easy to tell which part of the line a row shows. */
function letters(n: number): string {
  return Array.from({ length: n }, (_, i) => String.fromCharCode(97 + i % 26)).join("");
}

Deno.test({
  name: "chat tty: long input scrolls on one row and is sent whole; CJK counts two columns",
  ignore: !hasTmux,
  async fn() {
    await withChatClient([], async ({ tmux, server }) => {
      const bob = await joinAs(server, "bob");
      try {
        await tmux.waitForRow(/^\* guest-\d+ is now known as bob$/);
        await tmux.type("中文 ");
        await tmux.waitFor("the CJK text", (rows) => lastRow(rows) === "alice> 中文");
        await tmux.waitForCursor("alice> 中文 ".length + 2); // two wide characters
        const long = letters(150);
        await tmux.type(long);
        const rows = await tmux.waitFor(
          "the end of the long line",
          (rows) => lastRow(rows).endsWith(long.slice(-20)),
        );
        const row = lastRow(rows);
        // One row, no wrapping: the prompt, then the tail of the text, cursor at its end.
        assert.ok(row.startsWith("alice> "), row);
        assert.ok(row.length <= COLUMNS - 1, `${row.length} columns: ${row}`);
        assert.match(rows[rows.lastIndexOf(row) - 1], /^\* guest-\d+ is now known as bob$/);
        await tmux.waitForCursor(row.length);
        // Home shows the start again.
        await tmux.press("Home");
        const home = await tmux.waitFor(
          "the start of the line",
          (rows) => lastRow(rows).startsWith("alice> 中文 abc"),
        );
        assert.ok(textWidth(lastRow(home)) <= COLUMNS - 1, lastRow(home));
        await tmux.waitForCursor("alice> ".length);
        await tmux.press("Enter");
        const received = await bob.readUntil(/^alice: /);
        assert.equal(received.at(-1), `alice: 中文 ${long}`);
      } finally {
        bob.close();
      }
    });
  },
});

Deno.test({
  name: "chat tty: in a scrolled line the character under the cursor is shown",
  // Regression (see tests/line_editor_test.ts): in a line wider than the terminal, Left used to
  // leave the cursor pinned on the last column over a blank, hiding the character under it.
  async fn() {
    await withChatClient([], async ({ tmux }) => {
      const long = letters(150);
      await tmux.type(long);
      await tmux.waitFor("the long line", (rows) => lastRow(rows).endsWith(long.slice(-20)));
      await tmux.press("Left", "Left", "Left");
      const rows = await tmux.waitFor(
        "the view to move",
        (rows) => !lastRow(rows).endsWith(long.slice(-20)),
      );
      const cursor = Number(await tmux.display("#{cursor_x}"));
      assert.equal(lastRow(rows)[cursor], long[long.length - 3]);
    });
  },
});

Deno.test({
  name: "chat tty: names are coloured, Server is red, notices dim",
  ignore: !hasTmux,
  async fn() {
    await withChatClient([], async ({ tmux, server }) => {
      const bob = await joinAs(server, "bob");
      try {
        await bob.send("bob-line from bob\n");
        await tmux.waitForRow(/^bob: bob-line from bob$/);
        server.room.say("note");
        const rows = await tmux.waitForRow(/Server\S*: note$/, true);
        const bobRow = rows.find((row) => row.includes(": bob-line from bob"));
        assert.ok(bobRow, rows.join("\n"));
        assert.ok(
          styledBefore(bobRow, colourCode(nameColor("bob")), "bob"),
          `bob is not ${nameColor("bob")}: ${JSON.stringify(bobRow)}`,
        );
        const serverRow = rows.find((row) => row.includes(": note"));
        assert.ok(serverRow, rows.join("\n"));
        assert.equal(colourCode("red"), "31");
        assert.ok(styledBefore(serverRow, "31", "Server"), `not red: ${JSON.stringify(serverRow)}`);
        // The message text after the name is in the default colour.
        assert.match(bobRow, /\x1b\[39m: bob-line from bob$/);
        // Notices are dim (SGR 2): the welcome is the first row.
        assert.ok(styledBefore(rows[0], "2", "* Welcome"), JSON.stringify(rows[0]));
      } finally {
        bob.close();
      }
    });
  },
});

Deno.test({
  name: "chat tty: --no-color writes no colour codes",
  ignore: !hasTmux,
  async fn() {
    await withChatClient(["--no-color"], async ({ tmux, server }) => {
      const bob = await joinAs(server, "bob");
      try {
        await bob.send("bob-line from bob\n");
        await tmux.waitForRow(/^bob: bob-line from bob$/);
        server.room.say("note");
        const rows = await tmux.waitForRow(/^Server: note$/, true);
        const screen = rows.join("\n");
        // tmux writes SGRs only where the style changes; resets (0, 39, 49) are its own.
        for (const match of screen.matchAll(/\x1b\[([0-9;]*)m/g)) {
          const params = match[1].split(";").filter((p) => p !== "");
          assert.ok(params.every((p) => ["0", "39", "49"].includes(p)), JSON.stringify(match[0]));
        }
        assert.doesNotMatch(screen.replace(/\x1b\[[0-9;]*m/g, ""), /\x1b/);
        assert.match(screen, /^\* Welcome to the chat/m);
        assert.match(screen, /^\* guest-\d+ is now known as bob$/m);
      } finally {
        bob.close();
      }
    });
  },
});

Deno.test({
  name: "chat tty: bye says goodbye and exits with status 0",
  ignore: !hasTmux,
  async fn() {
    await withChatClient([], async ({ tmux, log }) => {
      await tmux.type("bye");
      await tmux.press("Enter");
      const status = await tmux.exitStatus();
      const rows = await tmux.screen(false, true);
      const goodbye = rows.indexOf("* Goodbye, alice!");
      assert.ok(goodbye >= 0, rows.join("\n"));
      assert.equal(rows[goodbye + 1], "* disconnected from the server", rows.join("\n"));
      // The prompt row was cleared on the way out.
      assert.ok(!rows.some((row) => row.startsWith("alice>")), rows.join("\n"));
      assert.equal(status, 0);
      assert.equal(await tmux.display("#{pane_dead}"), "1");
      await log.waitFor(/alice \(127\.0\.0\.1:\d+\) left: bye/);
    });
  },
});

Deno.test({
  name: "chat tty: Ctrl+C leaves the room cleanly, exit status 0",
  ignore: !hasTmux,
  async fn() {
    await withChatClient([], async ({ tmux, server, log }) => {
      const bob = await joinAs(server, "bob");
      try {
        await tmux.waitForRow(/^\* guest-\d+ is now known as bob$/);
        await tmux.type("half a thought");
        await tmux.waitFor("the typed text", (rows) => lastRow(rows) === "alice> half a thought");
        await tmux.press("C-c");
        assert.equal(await tmux.exitStatus(), 0);
        assert.equal(await tmux.display("#{pane_dead}"), "1");
        await log.waitFor(/alice \(127\.0\.0\.1:\d+\) left: bye/);
        const rows = await tmux.screen(false, true);
        assert.ok(rows.includes("* Goodbye, alice!"), rows.join("\n"));
        // bob saw alice leave, and the unsent text was not sent.
        const seen = await bob.readUntil(/^\* alice left$/);
        assert.ok(!seen.some((line) => line.includes("half a thought")), seen.join("\n"));
      } finally {
        bob.close();
      }
    });
  },
});

Deno.test({
  name: "chat tty: Ctrl+D on an empty line leaves, exit status 0",
  ignore: !hasTmux,
  async fn() {
    await withChatClient([], async ({ tmux, log }) => {
      await tmux.press("C-d");
      assert.equal(await tmux.exitStatus(), 0);
      await log.waitFor(/alice \(127\.0\.0\.1:\d+\) left: bye/);
    });
  },
});

/** Runs `body` with an echo server and `client.ts` (interactive) in a tmux pane. */
async function withEchoClient(body: (tmux: Tmux) => Promise<void>): Promise<void> {
  const server = startServer({ port: 0, logger: captureLog().logger });
  const tmux = new Tmux("chat-tty");
  try {
    await tmux.start(["run", "-N", "client.ts", "--port", String(server.addr.port)], TTY);
    await tmux.waitFor("the echo prompt", (rows) => lastRow(rows) === "Enter message to send:");
    await body(tmux);
  } finally {
    await tmux.kill();
    await server.close();
  }
}

Deno.test({
  name: "echo tty: interactive mode sends a line, shows the reply, quit exits 0",
  ignore: !hasTmux,
  async fn() {
    await withEchoClient(async (tmux) => {
      const first = await tmux.screen();
      assert.equal(first[0], "TCP Client - Type 'quit' to exit");
      assert.equal(await tmux.display("#{cursor_x}"), String("Enter message to send: ".length));
      await tmux.type("hi");
      await tmux.press("Enter");
      const rows = await tmux.waitFor(
        "the reply and the next prompt",
        (rows) =>
          rows.some((row) => row.startsWith("Server response: ")) &&
          lastRow(rows) === "Enter message to send:",
      );
      const reply = rows.find((row) => row.startsWith("Server response: ")) ?? "";
      assert.match(reply.slice("Server response: ".length), REPLY);
      assert.ok(reply.endsWith(": hi"), reply);
      assert.equal(lastRow(rows), "Enter message to send:");
      await tmux.type("quit");
      await tmux.press("Enter");
      assert.equal(await tmux.exitStatus(), 0);
    });
  },
});

Deno.test({
  name: "echo tty: Ctrl+D at the prompt exits 0",
  ignore: !hasTmux,
  async fn() {
    await withEchoClient(async (tmux) => {
      await tmux.press("C-d");
      assert.equal(await tmux.exitStatus(), 0);
    });
  },
});

Deno.test({
  name: "echo tty: Ctrl+C at the prompt exits 0",
  ignore: !hasTmux,
  async fn() {
    await withEchoClient(async (tmux) => {
      await tmux.press("C-c");
      assert.equal(await tmux.exitStatus(), 0);
    });
  },
});
