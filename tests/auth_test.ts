/**
 * The chat room's password: the room's policy with fake links (a short delay before each
 * answer to a wrong password, for speed), the real one-second delay over TCP, the
 * {@linkcode Password} class, the `--password-file` and `CHAT_PASSWORD` command lines, and
 * the interactive client asking for the password in a tmux pane without echoing it.
 */
import assert from "node:assert/strict";
import { ChatRoom, type ChatRoomOptions, MAX_AUTH_FAILURES } from "../lib/chat_room.ts";
import {
  Password,
  PASSWORD_REQUIRED,
  TOO_MANY_FAILURES,
  WRONG_PASSWORD,
} from "../lib/chat_auth.ts";
import { type ChatServerOptions, startChatServer } from "../chat_server.ts";
import {
  type CapturedLog,
  captureLog,
  haveTool,
  LineClient,
  runDeno,
  Spawned,
  withTimeout,
} from "./helpers.ts";
import { FakeLink } from "./fake_link.ts";
import { lastRow, Tmux } from "./tmux.ts";

const hasTmux = haveTool("tmux", ["-V"]);

/** What an arrival is told first (the room adds how to leave). */
const ASKED = `${PASSWORD_REQUIRED} (or bye to leave)`;
const FIRST = "* send /auth PASSWORD first (or bye to leave)";
const ACCEPTED = "* password accepted";
/** A password, and attempts, that cannot appear in a log line by accident. */
const SECRET = "Sésame-ouvre-toi-42";
const WELCOME = /^\* Welcome to the chat, (guest-\d+)!/;

/** Runs `body` with a password room (debug log), always closing the room. */
async function withRoom(
  options: ChatRoomOptions,
  body: (room: ChatRoom, log: CapturedLog) => Promise<void> | void,
): Promise<void> {
  const log = captureLog("debug");
  const room = new ChatRoom({ password: SECRET, authDelayMs: 20, logger: log.logger, ...options });
  try {
    await body(room, log);
  } finally {
    room.close();
  }
}

/** Joins a link and gives the right password; returns both, with the link's lines taken. */
function enter(room: ChatRoom, peer?: string) {
  const link = new FakeLink(peer);
  const member = room.join(link);
  assert.ok(member);
  room.receive(member, `/auth ${SECRET}`);
  assert.ok(member.admitted, JSON.stringify(link.lines));
  link.take();
  return { link, member };
}

/** Asserts no log line contains `text`. */
function assertNotLogged(log: CapturedLog, text: string): void {
  const hit = log.lines.find((line) => line.includes(text));
  assert.equal(hit, undefined, `the log shows ${JSON.stringify(text)}`);
}

Deno.test("auth room: a pending arrival is asked for the password and sees and sends nothing", async () => {
  await withRoom({}, (room, log) => {
    const alice = enter(room, "127.0.0.1:40001");
    const link = new FakeLink("127.0.0.1:40002");
    const pending = room.join(link);
    assert.ok(pending);
    assert.deepEqual(link.take(), [ASKED]);
    assert.ok(ASKED.startsWith(PASSWORD_REQUIRED));
    assert.equal(PASSWORD_REQUIRED, "* This room needs a password: send /auth PASSWORD");
    assert.equal(pending.admitted, false);
    // Not announced, not listed, no guest name yet.
    assert.deepEqual(alice.link.take(), []);
    assert.deepEqual(room.names(), ["guest-1"]);
    room.receive(alice.member, "/who");
    assert.deepEqual(alice.link.take(), ["* 1 here: guest-1 (you)"]);

    // Whatever it sends before the password is answered with the same line, and goes nowhere.
    for (const line of ["hello?", "/who", "/nick mallory", "/msg guest-1 psst", "/me waves"]) {
      room.receive(pending, line);
      assert.deepEqual(link.take(), [FIRST], line);
    }
    assert.deepEqual(alice.link.take(), []);
    assert.equal(pending.name, "");

    // The room's traffic does not reach it.
    room.receive(alice.member, "a message for members only");
    room.say("an operator notice");
    assert.deepEqual(link.take(), []);
    assert.deepEqual(alice.link.take(), ["Server: an operator notice"]);
    assert.ok(!log.lines.some((line) => /hello\?|mallory|psst/.test(line)), log.lines.join("\n"));
  });
});

Deno.test("auth room: the right password is accepted, then the welcome; the others see the join", async () => {
  await withRoom({ history: 5 }, (room, log) => {
    const alice = enter(room);
    room.receive(alice.member, "before you came");
    const link = new FakeLink("127.0.0.1:40003");
    const bob = room.join(link);
    assert.ok(bob);
    link.take();
    room.receive(bob, `/auth ${SECRET}`);
    const lines = link.take();
    assert.equal(lines[0], ACCEPTED);
    assert.match(lines[1], WELCOME);
    assert.equal(lines[1].match(WELCOME)?.[1], "guest-2");
    assert.equal(lines[2], "* 1 other here: guest-1");
    assert.match(lines[3], /^\[history \d\d:\d\d\] guest-1: before you came$/);
    assert.equal(lines.length, 4, JSON.stringify(lines));
    assert.deepEqual(alice.link.take(), ["* guest-2 joined"]);
    assert.ok(bob.admitted);
    // Now a member like any other.
    room.receive(bob, "hi all");
    assert.deepEqual(alice.link.take(), ["guest-2: hi all"]);
    room.receive(bob, `/auth ${SECRET}`);
    assert.deepEqual(link.take(), ["* you are already in the room"]);
    assertNotLogged(log, SECRET);
  });
});

Deno.test("auth room: a wrong password is answered after the delay; lines meanwhile are ignored", async () => {
  const delay = 40;
  await withRoom({ authDelayMs: delay }, async (room, log) => {
    const alice = enter(room);
    const link = new FakeLink("127.0.0.1:40004");
    const pending = room.join(link);
    assert.ok(pending);
    link.take();
    const sent = performance.now();
    room.receive(pending, "/auth wrong-attempt-one");
    assert.deepEqual(link.lines, [], "no answer before the delay");
    // While the failure is waited out, everything is ignored, the right password included.
    room.receive(pending, `/auth ${SECRET}`);
    room.receive(pending, "/who");
    room.receive(pending, "hello");
    assert.deepEqual(link.lines, []);
    await link.waitFor(/^\* wrong password/);
    const elapsed = link.timeOf(/^\* wrong password/) - sent;
    // Timers may fire a fraction of a millisecond early by performance.now().
    assert.ok(elapsed >= delay - 1, `answered after ${elapsed.toFixed(1)} ms (delay ${delay})`);
    assert.deepEqual(link.take(), [WRONG_PASSWORD]);
    assert.equal(WRONG_PASSWORD, "* wrong password; try again with /auth PASSWORD");
    assert.equal(pending.admitted, false);
    // Nothing else was queued: the next line gets the next answer.
    room.receive(pending, "/who");
    assert.deepEqual(link.take(), [FIRST]);
    assert.deepEqual(alice.link.take(), []);
    const warning = await log.waitFor(/WARN .*Wrong password/);
    assert.match(warning, /127\.0\.0\.1:40004/);
    assert.match(warning, new RegExp(`\\(1 of ${MAX_AUTH_FAILURES}\\)`));
    // A second chance works.
    room.receive(pending, `/auth ${SECRET}`);
    assert.equal(link.take()[0], ACCEPTED);
    assert.deepEqual(alice.link.take(), ["* guest-2 joined"]);
    assertNotLogged(log, "wrong-attempt-one");
    assertNotLogged(log, SECRET);
  });
});

Deno.test("auth room: three wrong passwords and the link is closed; the attempts are never logged", async () => {
  assert.equal(MAX_AUTH_FAILURES, 3);
  await withRoom({}, async (room, log) => {
    const alice = enter(room);
    const link = new FakeLink("127.0.0.1:40005");
    const pending = room.join(link);
    assert.ok(pending);
    link.take();
    const attempts = ["guess-AAA-1", "", "guess-CCC-3"];
    for (const [i, attempt] of attempts.entries()) {
      room.receive(pending, attempt === "" ? "/auth" : `/auth ${attempt}`);
      const answer = i < 2 ? WRONG_PASSWORD : TOO_MANY_FAILURES;
      await link.waitFor(new RegExp(`^${answer.replace(/[*?()]/g, "\\$&")}$`));
      assert.deepEqual(link.take(), [answer]);
      await log.waitFor(new RegExp(`WARN .*127\\.0\\.0\\.1:40005 \\(${i + 1} of 3\\)`));
    }
    assert.equal(TOO_MANY_FAILURES, "* too many wrong passwords; goodbye");
    await withTimeout(link.closed, 1000, "the link to close");
    assert.equal(link.closes, 1);
    assert.ok(pending.gone);
    await log.waitFor(/WARN .*127\.0\.0\.1:40005 disconnected after 3 wrong passwords/);
    // Gone: later lines do nothing, and the room never heard of it.
    room.receive(pending, `/auth ${SECRET}`);
    assert.deepEqual(link.take(), []);
    assert.deepEqual(alice.link.take(), []);
    assert.deepEqual(room.names(), ["guest-1"]);
    for (const attempt of attempts.filter(Boolean)) assertNotLogged(log, attempt);
    assertNotLogged(log, SECRET);
    assert.equal(log.lines.filter((line) => /Wrong password/.test(line)).length, 3);
  });
});

Deno.test("auth room: bye while pending says goodbye and closes; the room is not told", async () => {
  await withRoom({}, (room, log) => {
    const alice = enter(room);
    const link = new FakeLink("127.0.0.1:40006");
    const pending = room.join(link);
    assert.ok(pending);
    link.take();
    room.receive(pending, "bye");
    assert.deepEqual(link.take(), ["* Goodbye!"]);
    assert.equal(link.closes, 1);
    assert.deepEqual(alice.link.take(), []);
    assert.ok(log.lines.some((line) => /127\.0\.0\.1:40006 left before joining: bye/.test(line)));
    // /quit works the same, and during a failure's delay too.
    const other = new FakeLink("127.0.0.1:40007");
    const second = room.join(other);
    assert.ok(second);
    other.take();
    room.receive(second, "/auth nope");
    room.receive(second, "/quit");
    assert.deepEqual(other.take(), ["* Goodbye!"]);
    assert.equal(other.closes, 1);
    assert.deepEqual(alice.link.take(), []);
  });
});

Deno.test("auth room: a client that never gives the password is closed after authTimeout", async () => {
  await withRoom({ authTimeout: 0.1 }, async (room, log) => {
    const alice = enter(room);
    const link = new FakeLink("127.0.0.1:40008");
    const started = performance.now();
    assert.ok(room.join(link));
    await withTimeout(link.closed, 3000, "the pending client to be closed");
    assert.ok(performance.now() - started >= 99, "not before the time-out");
    assert.deepEqual(link.take(), [ASKED, "* no password given in time; goodbye"]);
    assert.deepEqual(alice.link.take(), [], "members are not told");
    assert.ok(
      log.lines.some((line) => /127\.0\.0\.1:40008 left before joining: denied/.test(line)),
    );
    // Members themselves are never timed out by it.
    assert.deepEqual(room.names(), ["guest-1"]);
  });
});

Deno.test("auth room: close() closes pending clients too and cancels their pending answers", () => {
  // A long delay: the answer's timer would outlive the test if close() did not clear it (the
  // op sanitizer fails the test on a leaked timer).
  const log = captureLog("debug");
  const room = new ChatRoom({ password: SECRET, authDelayMs: 60_000, logger: log.logger });
  const waiting = new FakeLink("127.0.0.1:40009");
  const failing = new FakeLink("127.0.0.1:40010");
  try {
    const member = enter(room);
    assert.ok(room.join(waiting));
    const second = room.join(failing);
    assert.ok(second);
    room.receive(second, "/auth nope");
    assert.ok(second.authTimer !== undefined, "an answer is pending");
    room.close();
    for (const link of [waiting, failing]) {
      assert.deepEqual(link.take(), [ASKED, "* Server is shutting down. Goodbye!"]);
      assert.equal(link.closes, 1);
    }
    assert.deepEqual(member.link.take(), ["* Server is shutting down. Goodbye!"]);
    // A closed room turns new arrivals away.
    const late = new FakeLink();
    assert.equal(room.join(late), null);
    assert.deepEqual(late.take(), ["* server is shutting down"]);
  } finally {
    room.close();
  }
});

// Regression: the line used to be trimmed before the check, so a password ending in a space
// (a --password-file line "pw \n") could never match.
Deno.test("auth room: a password with a trailing space (from a file) can be given", () => {
  const room = new ChatRoom({ password: "pw ", authDelayMs: 1, logger: captureLog().logger });
  try {
    const link = new FakeLink();
    const member = room.join(link);
    assert.ok(member);
    room.receive(member, "/auth pw ");
    assert.ok(link.lines.includes(ACCEPTED), JSON.stringify(link.lines));
  } finally {
    room.close();
  }
});

Deno.test("auth TCP: the answer to a wrong password takes the real second; then the right one", async () => {
  const log = captureLog("debug");
  const server = startChatServer({ port: 0, history: 0, password: "pw", logger: log.logger });
  let client: LineClient | null = null;
  try {
    client = await LineClient.connect(server.addr);
    assert.equal(await client.readLine(), ASKED);
    const sent = performance.now();
    await client.send("/auth not-it\n");
    assert.equal(await client.readLine(3000), WRONG_PASSWORD);
    const elapsed = performance.now() - sent;
    assert.ok(elapsed >= 950, `answered after ${elapsed.toFixed(0)} ms`);
    await client.send("/auth pw\n");
    assert.equal(await client.readLine(), ACCEPTED);
    assert.match(await client.readLine() ?? "", /^\* Welcome to the chat, guest-1!/);
    assert.equal(await client.readLine(), "* You are the only one here.");
    await log.waitFor(/WARN .*Wrong password from 127\.0\.0\.1:\d+ \(1 of 3\)/);
    assertNotLogged(log, "not-it");
  } finally {
    client?.close();
    await server.close();
  }
});

Deno.test("auth TCP: three wrong passwords and the server closes the connection", async () => {
  const log = captureLog("debug");
  const server = startChatServer({
    port: 0,
    password: "pw",
    authDelayMs: 20,
    logger: log.logger,
  });
  let client: LineClient | null = null;
  try {
    client = await LineClient.connect(server.addr);
    assert.equal(await client.readLine(), ASKED);
    for (let i = 1; i <= 2; i++) {
      await client.send(`/auth wrong-${i}\n`);
      assert.equal(await client.readLine(), WRONG_PASSWORD);
    }
    await client.send("/auth wrong-3\n");
    assert.deepEqual(await client.readToEnd(), [TOO_MANY_FAILURES]);
    await log.waitFor(/disconnected after 3 wrong passwords/);
    assert.equal(server.room.size, 0);
  } finally {
    client?.close();
    await server.close();
  }
});

Deno.test("auth Password: matches only the password, whatever the length or script", () => {
  const password = new Password("correct horse");
  assert.equal(password.matches("correct horse"), true);
  assert.equal(password.matches("correct hors"), false);
  assert.equal(password.matches("correct horse "), false);
  assert.equal(password.matches("Correct horse"), false);
  assert.equal(password.matches("correct horse battery staple, and much longer than it"), false);
  assert.equal(password.matches(""), false);
  assert.equal(password.matches("x"), false);

  const unicode = new Password("pässwörd-中文-🔑");
  assert.equal(unicode.matches("pässwörd-中文-🔑"), true);
  // The same letters composed differently are different bytes.
  assert.equal(unicode.matches("pa\u0308sswörd-中文-🔑"), false);
  assert.equal(unicode.matches("pässwörd-中文-"), false);
  assert.equal(unicode.matches("passwrd--"), false);

  const single = new Password("x");
  assert.equal(single.matches("x"), true);
  assert.equal(single.matches("xx"), false);
  assert.equal(single.matches(""), false);
});

/** Connects and gives `password`; returns the client in the room, its greeting read. */
async function authenticated(port: number, password: string): Promise<LineClient> {
  const client = await LineClient.connect({ transport: "tcp", hostname: "127.0.0.1", port });
  try {
    assert.equal(await client.readLine(), ASKED);
    await client.send(`/auth ${password}\n`);
    assert.equal(await client.readLine(), ACCEPTED);
    assert.match(await client.readLine() ?? "", WELCOME);
    assert.match(
      await client.readLine() ?? "",
      /^\* (You are the only one here\.|\d+ others? here)/,
    );
  } catch (error) {
    client.close();
    throw error;
  }
  return client;
}

/** Runs `chat_server.ts --port 0 ARGS` with `env` until `body` is done. */
async function withCliServer(
  args: string[],
  env: Record<string, string>,
  body: (port: number, server: Spawned) => Promise<void>,
): Promise<void> {
  const server = new Spawned(
    [
      "run",
      "-N",
      "--allow-read",
      "--allow-env=SERVER_HOST,SERVER_PORT,LOG_LEVEL,TLS_CERT,TLS_KEY,CHAT_PASSWORD",
      "chat_server.ts",
      "--port",
      "0",
      ...args,
    ],
    { env },
  );
  try {
    const port = await server.port();
    await body(port, server);
    server.child.kill("SIGTERM");
    assert.equal((await server.exit()).code, 0);
  } finally {
    try {
      server.child.kill("SIGKILL");
    } catch {
      // already exited
    }
    await server.exit().catch(() => {});
  }
}

/** Runs `body` with a temporary folder holding `good` (`pw`) and `bad` password files. */
async function withPasswordFiles(
  body: (files: { good: string; bad: string }) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "auth_test_" });
  try {
    await Deno.writeTextFile(`${dir}/good`, "pw\n");
    await Deno.writeTextFile(`${dir}/bad`, "not-the-password\n");
    await body({ good: `${dir}/good`, bad: `${dir}/bad` });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("auth CLI: chat_server.ts --password-file FILE asks for the file's first line", async () => {
  await withPasswordFiles(async ({ good }) => {
    await withCliServer(["--password-file", good], {}, async (port, server) => {
      const client = await authenticated(port, "pw");
      try {
        await client.send("/who\n");
        assert.equal(await client.readLine(), "* 1 here: guest-1 (you)");
      } finally {
        client.close();
      }
      assert.ok(server.stderrLines.some((line) => /bound to .*\(password\)/.test(line)));
    });
  });
});

Deno.test("auth CLI: chat_server.ts takes CHAT_PASSWORD from the environment", async () => {
  await withCliServer([], { CHAT_PASSWORD: "env-pw-7" }, async (port, server) => {
    const client = await authenticated(port, "env-pw-7");
    client.close();
    assert.ok(!server.stderrLines.some((line) => line.includes("env-pw-7")), "password logged");
  });
});

Deno.test("auth CLI: --password on the command line is refused, exit 2, one line", async () => {
  const run = await runDeno(["run", "-N", "chat_server.ts", "--port", "0", "--password", "pw"]);
  assert.equal(run.code, 2);
  const lines = run.stderr.split("\n").filter(Boolean);
  assert.equal(lines.length, 1, run.stderr);
  assert.match(lines[0], /^chat_server\.ts: .*--password\b/);
  assert.equal(run.stdout, "");
});

/** Runs `body` with an in-process password room (`pw`, short delay) and one member in it. */
async function withPasswordRoom(
  options: ChatServerOptions,
  body: (port: string, watcher: LineClient) => Promise<void>,
): Promise<void> {
  const server = startChatServer({
    port: 0,
    history: 0,
    password: "pw",
    authDelayMs: 50,
    logger: captureLog().logger,
    ...options,
  });
  let watcher: LineClient | null = null;
  try {
    watcher = await authenticated(server.addr.port, "pw");
    await body(String(server.addr.port), watcher);
  } finally {
    watcher?.close();
    await server.close();
  }
}

Deno.test("auth CLI: chat_client.ts --password-file sends the password, then the piped lines", async () => {
  await withPasswordFiles(async ({ good }) => {
    await withPasswordRoom({}, async (port, watcher) => {
      const run = await runDeno(
        [
          "run",
          "-N",
          "--allow-read",
          "chat_client.ts",
          "--port",
          port,
          "--name",
          "carol",
          "--password-file",
          good,
        ],
        { stdin: "hi\nbye\n", timeoutMs: 10000 },
      );
      assert.equal(run.code, 0, run.stderr);
      assert.equal(run.stderr, "");
      const out = run.stdout.trimEnd().split("\n");
      assert.equal(out[0], ASKED);
      assert.equal(out[1], ACCEPTED);
      assert.match(out[2], WELCOME);
      assert.equal(out.at(-1), "* Goodbye, carol!");
      assert.ok(!run.stdout.includes("send /auth PASSWORD first"), run.stdout);
      assert.deepEqual(await watcher.readUntil(/^\* carol left$/), [
        "* guest-2 joined",
        "* guest-2 is now known as carol",
        "carol: hi",
        "* carol left",
      ]);
    });
  });
});

Deno.test("auth CLI: chat_client.ts with a wrong password file exits 1: refused the password", async () => {
  await withPasswordFiles(async ({ bad }) => {
    await withPasswordRoom({}, async (port, watcher) => {
      const run = await runDeno(
        ["run", "-N", "--allow-read", "chat_client.ts", "--port", port, "--password-file", bad],
        { stdin: "hi\nbye\n", timeoutMs: 10000 },
      );
      assert.equal(run.code, 1, run.stdout);
      const lines = run.stderr.split("\n").filter(Boolean);
      assert.equal(lines.length, 1, run.stderr);
      assert.match(lines[0], /^chat_client\.ts: .*refused the password/);
      // Nothing reached the room.
      await watcher.send("/who\n");
      assert.equal(await watcher.readLine(), "* 1 here: guest-1 (you)");
    });
  });
});

Deno.test("auth CLI: piped chat_client.ts without --password-file exits 1 saying to use it", async () => {
  await withPasswordRoom({}, async (port, watcher) => {
    const run = await runDeno(
      ["run", "-N", "chat_client.ts", "--port", port],
      { stdin: "hi\nbye\n", timeoutMs: 10000 },
    );
    assert.equal(run.code, 1, run.stdout);
    const lines = run.stderr.split("\n").filter(Boolean);
    assert.equal(lines.length, 1, run.stderr);
    assert.match(lines[0], /^chat_client\.ts: .*--password-file/);
    assert.ok(!run.stdout.includes("Welcome"), run.stdout);
    await watcher.send("/who\n");
    assert.equal(await watcher.readLine(), "* 1 here: guest-1 (you)");
  });
});

Deno.test({
  name: "auth tty: the interactive client asks 'Password: ' and does not show what is typed",
  ignore: !hasTmux,
  async fn() {
    const typed = "tty-Secret-9";
    const log = captureLog("debug");
    const server = startChatServer({
      port: 0,
      history: 0,
      password: typed,
      authDelayMs: 50,
      logger: log.logger,
    });
    const tmux = new Tmux("auth-tty");
    const notShown = (rows: string[]): void => {
      const screen = rows.join("\n");
      assert.ok(!screen.includes(typed.slice(0, 4)), `the password is on the screen:\n${screen}`);
    };
    try {
      await tmux.start([
        "run",
        "-N",
        "--allow-read",
        "chat_client.ts",
        "--port",
        String(server.addr.port),
      ]);
      await tmux.waitFor("the password prompt", (rows) => lastRow(rows) === "Password:", {
        history: true,
      });
      assert.ok((await tmux.screen(false, true)).includes(ASKED));
      // Wrong first: the prompt says so and asks again, still without echo.
      await tmux.type("nope-" + typed.slice(0, 4));
      await tmux.press("Enter");
      await tmux.waitFor(
        "the retry prompt",
        (rows) => lastRow(rows) === "Wrong password, try again:",
        { history: true, check: notShown },
      );
      await tmux.type(typed);
      // The server's log proves the keys arrived; the screen was checked on every poll.
      await tmux.press("Enter");
      const rows = await tmux.waitFor(
        "the welcome and the chat prompt",
        (rows) => rows.some((row) => WELCOME.test(row)) && /^guest-\d+>$/.test(lastRow(rows)),
        { history: true, check: notShown },
      );
      assert.ok(rows.includes(ACCEPTED), rows.join("\n"));
      await log.waitFor(/guest-1 joined from 127\.0\.0\.1:\d+/);
      // Control: after the password, typing is shown again; and Up recalls no password (the
      // secret is not kept in the line history).
      await tmux.press("Up");
      await tmux.type("visible text");
      await tmux.waitFor(
        "typed text",
        (rows) => lastRow(rows) === "guest-1> visible text",
        { history: true, check: notShown },
      );
      await tmux.press("C-u");
      await tmux.type("bye");
      await tmux.press("Enter");
      const end = await tmux.waitFor(
        "the client to exit",
        (rows) => rows.some((row) => /^\[exit status \d+\]$/.test(row)),
        { history: true, check: notShown },
      );
      assert.ok(end.includes("[exit status 0]"), end.join("\n"));
      assert.ok(end.includes("* Goodbye, guest-1!"), end.join("\n"));
      assertNotLogged(log, typed.slice(0, 4));
    } finally {
      await tmux.kill();
      await server.close();
    }
  },
});

Deno.test("auth room: clients waiting for the password take places in --max-clients", () => {
  const room = new ChatRoom({ password: "pw", maxClients: 2, logger: captureLog().logger });
  try {
    const links = [new FakeLink(), new FakeLink(), new FakeLink()];
    assert.ok(room.join(links[0]));
    assert.ok(room.join(links[1]));
    assert.equal(room.join(links[2]), null);
    assert.ok(links[2].lines.some((l) => l.startsWith("* server full")));
  } finally {
    room.close();
  }
});
