/**
 * Unit tests of {@linkcode ChatRoom}: no sockets, only fake {@linkcode MemberLink}s that keep
 * the lines they are sent and record being closed.
 */
import assert from "node:assert/strict";
import { ChatRoom, type ChatRoomOptions, type Member } from "../lib/chat_room.ts";
import { ownNameFrom } from "../lib/chat_protocol.ts";
import { renderLine } from "../lib/chat_frames.ts";
import { captureLog, withTimeout } from "./helpers.ts";
import { FakeLink } from "./fake_link.ts";

interface Person {
  link: FakeLink;
  member: Member;
}

/** Runs `body` with a fresh room, always closing it (the idle sweeper is an interval). */
async function withRoom(
  options: ChatRoomOptions,
  body: (room: ChatRoom, log: ReturnType<typeof captureLog>) => void | Promise<void>,
): Promise<void> {
  const log = captureLog();
  const room = new ChatRoom({ logger: log.logger, ...options });
  try {
    await body(room, log);
  } finally {
    room.close();
  }
}

/** Joins a new member, asserts it was admitted. */
function admit(room: ChatRoom): Person {
  const link = new FakeLink();
  const member = room.join(link);
  assert.ok(member, "join should admit");
  return { link, member };
}

/** Joins `n` members and forgets everything they were sent while joining. */
function crowd(room: ChatRoom, n: number): Person[] {
  const people = Array.from({ length: n }, () => admit(room));
  for (const p of people) p.link.take();
  return people;
}

const HISTORY_LINE = /^\[history \d\d:\d\d\] /;

Deno.test("room: the welcome mentions /help and bye; the second line says who else is here", async () => {
  await withRoom({}, (room) => {
    const a = admit(room);
    assert.equal(a.link.lines.length, 2, JSON.stringify(a.link.lines));
    const [welcome, others] = a.link.lines;
    assert.match(welcome, /^\* Welcome to the chat, guest-1!/);
    assert.ok(welcome.includes("/help"), welcome);
    assert.match(welcome, /\bbye\b/);
    assert.equal(ownNameFrom(welcome), "guest-1");
    assert.equal(others, "* You are the only one here.");

    const b = admit(room);
    assert.deepEqual(b.link.lines.slice(1), ["* 1 other here: guest-1"]);
    assert.match(b.link.lines[0], /^\* Welcome to the chat, guest-2!/);

    const c = admit(room);
    assert.deepEqual(c.link.lines.slice(1), ["* 2 others here: guest-1, guest-2"]);
    assert.equal(room.size, 3);
    assert.deepEqual(room.names(), ["guest-1", "guest-2", "guest-3"]);
  });
});

Deno.test("room: join and leave notices go to the others, not to the member concerned", async () => {
  await withRoom({}, (room) => {
    const a = admit(room);
    const b = admit(room);
    const c = admit(room);
    assert.deepEqual(a.link.lines.slice(2), ["* guest-2 joined", "* guest-3 joined"]);
    assert.deepEqual(b.link.lines.slice(2), ["* guest-3 joined"]);
    assert.equal(c.link.lines.length, 2, "no join notice about yourself");
    for (const p of [a, b, c]) p.link.take();

    // The transport lost the connection: the others are told, the link is not closed again.
    room.leave(c.member, "disconnected");
    assert.deepEqual(a.link.take(), ["* guest-3 disconnected"]);
    assert.deepEqual(b.link.take(), ["* guest-3 disconnected"]);
    assert.deepEqual(c.link.take(), []);
    assert.equal(c.link.closes, 0);
    assert.ok(c.member.gone);
    // Leaving twice, or talking after leaving, does nothing.
    room.leave(c.member, "bye");
    room.receive(c.member, "still here?");
    assert.deepEqual([a.link.take(), b.link.take(), c.link.take()], [[], [], []]);
    assert.deepEqual(room.names(), ["guest-1", "guest-2"]);

    room.leave(b.member, "slow");
    assert.deepEqual(a.link.take(), ["* guest-2 was disconnected (not reading fast enough)"]);
    assert.equal(b.link.closes, 0, "the transport closes a slow link itself");
  });
});

Deno.test("room: a plain line reaches every other member as `name: text`, not the sender", async () => {
  await withRoom({}, (room) => {
    const [a, b, c] = crowd(room, 3);
    room.receive(a.member, "hello everyone  ");
    assert.deepEqual(a.link.take(), []);
    assert.deepEqual(b.link.take(), ["guest-1: hello everyone"]);
    assert.deepEqual(c.link.take(), ["guest-1: hello everyone"]);
    // Encoded once: every recipient is handed the same bytes.
    assert.equal(b.link.sent.at(-1), c.link.sent.at(-1));
    // Blank lines are not messages.
    room.receive(a.member, "   ");
    room.receive(a.member, "");
    assert.deepEqual([b.link.take(), c.link.take()], [[], []]);
  });
});

Deno.test("room: interleaved senders reach every member in one global order", async () => {
  const observed: string[] = [];
  await withRoom({ rate: 0, observer: (out) => observed.push(renderLine(out.event)) }, (room) => {
    const people = crowd(room, 4);
    observed.length = 0; // the join notices
    const senders = people.slice(0, 3);
    const expected: string[] = [];
    let seed = 12345;
    for (let i = 0; i < 300; i++) {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      const from = senders[seed % 3];
      room.receive(from.member, `line ${i}`);
      expected.push(`${from.member.name}: line ${i}`);
    }
    assert.deepEqual(observed, expected);
    assert.deepEqual(people[3].link.lines, expected, "a listener sees everything, in order");
    for (const p of senders) {
      assert.deepEqual(
        p.link.lines,
        expected.filter((line) => !line.startsWith(`${p.member.name}: `)),
        p.member.name,
      );
    }
  });
});

/** Sends `/nick NAME` and returns what the sender was told. */
function nick(room: ChatRoom, p: Person, name: string): string[] {
  p.link.take();
  room.receive(p.member, `/nick ${name}`);
  return p.link.take();
}

Deno.test("room: /nick takes a valid name and tells yourself and the others", async () => {
  await withRoom({}, (room) => {
    const [a, b, c] = crowd(room, 3);
    assert.deepEqual(nick(room, a, "alice"), ["* you are now known as alice"]);
    assert.equal(ownNameFrom("* you are now known as alice"), "alice");
    assert.deepEqual(b.link.take(), ["* guest-1 is now known as alice"]);
    assert.deepEqual(c.link.take(), ["* guest-1 is now known as alice"]);
    assert.equal(a.member.name, "alice");
    room.receive(a.member, "hi");
    assert.deepEqual(b.link.take(), ["alice: hi"]);
    // 24 characters is the longest name.
    const longest = "a".repeat(24);
    assert.deepEqual(nick(room, a, longest), [`* you are now known as ${longest}`]);
    assert.deepEqual(b.link.take(), [`* alice is now known as ${longest}`]);
    // Changing the case of your own name is allowed; the same name is not a change.
    assert.deepEqual(nick(room, c, "Carol"), ["* you are now known as Carol"]);
    assert.deepEqual(nick(room, c, "CAROL"), ["* you are now known as CAROL"]);
    assert.deepEqual(nick(room, c, "CAROL"), ["* you are already CAROL"]);
    assert.deepEqual(nick(room, c, ""), ["* usage: /nick NAME"]);
    // The old name is free again.
    assert.deepEqual(nick(room, b, "carol"), ["* the name carol is taken"]);
    assert.deepEqual(nick(room, b, "alice"), ["* you are now known as alice"]);
  });
});

Deno.test("room: /nick refuses bad, long, taken, reserved and guest names", async () => {
  await withRoom({}, (room) => {
    const [a, b] = crowd(room, 2);
    nick(room, a, "alice");
    b.link.take();
    const cases: [string, RegExp][] = [
      ["a".repeat(25), /^\* cannot use that name: a name is 1 to 24 letters, digits, _ or -$/],
      ["bad name", /^\* cannot use that name: a name is 1 to 24/],
      ["b@d", /^\* cannot use that name: a name is 1 to 24/],
      ["dot.ted", /^\* cannot use that name: a name is 1 to 24/],
      ["café", /^\* cannot use that name: a name is 1 to 24/],
      ["名前", /^\* cannot use that name: a name is 1 to 24/],
      ["ALICE", /^\* the name ALICE is taken$/],
      ["Alice", /^\* the name Alice is taken$/],
      ["Server", /^\* cannot use that name: Server is reserved$/],
      ["server", /^\* cannot use that name: server is reserved$/],
      ["SERVER", /^\* cannot use that name: SERVER is reserved$/],
      ["S3rv3r", /^\* cannot use that name: S3rv3r is reserved$/],
      ["s_e_r_v_e_r", /^\* cannot use that name: s_e_r_v_e_r is reserved$/],
      ["Server1", /^\* cannot use that name: Server1 is reserved$/],
      ["admin", /^\* cannot use that name: admin is reserved$/],
      ["Adm1n", /^\* cannot use that name: Adm1n is reserved$/],
      ["guest-7", /^\* cannot use that name: guest-N names are given out by the server$/],
      ["GUEST-1", /^\* cannot use that name: guest-N names are given out by the server$/],
    ];
    for (const [name, reply] of cases) {
      const told = nick(room, b, name);
      assert.equal(told.length, 1, `${JSON.stringify(name)}: ${JSON.stringify(told)}`);
      assert.match(told[0], reply, JSON.stringify(name));
      assert.equal(b.member.name, "guest-2", `${JSON.stringify(name)} must not rename`);
    }
    assert.deepEqual(a.link.take(), [], "failed renames are not announced");
    assert.deepEqual(room.names(), ["alice", "guest-2"]);
  });
});

Deno.test("room: /who lists everyone and marks you", async () => {
  await withRoom({}, (room) => {
    const [a, b, c] = crowd(room, 3);
    nick(room, a, "alice");
    b.link.take();
    c.link.take();
    room.receive(b.member, "/who");
    assert.deepEqual(b.link.take(), ["* 3 here: alice, guest-2 (you), guest-3"]);
    room.receive(a.member, "/WHO");
    assert.deepEqual(a.link.take(), ["* 3 here: alice (you), guest-2, guest-3"]);
    assert.deepEqual(c.link.take(), [], "/who is not broadcast");
  });
});

Deno.test("room: /me tells the others `* name ACTION`; without an action, usage", async () => {
  await withRoom({}, (room) => {
    const [a, b, c] = crowd(room, 3);
    room.receive(a.member, "/me waves at everyone");
    assert.deepEqual(a.link.take(), []);
    assert.deepEqual(b.link.take(), ["* guest-1 waves at everyone"]);
    assert.deepEqual(c.link.take(), ["* guest-1 waves at everyone"]);
    room.receive(a.member, "/me");
    assert.deepEqual(a.link.take(), ["* usage: /me ACTION"]);
    room.receive(a.member, "/me    ");
    assert.deepEqual(a.link.take(), ["* usage: /me ACTION"]);
    assert.deepEqual([b.link.take(), c.link.take()], [[], []]);
  });
});

Deno.test("room: /msg reaches only its addressee; errors for unknown names and no text", async () => {
  await withRoom({}, (room) => {
    const [a, b, c] = crowd(room, 3);
    nick(room, b, "bob");
    a.link.take();
    c.link.take();
    room.receive(a.member, "/msg bob meet me at noon");
    assert.deepEqual(b.link.take(), ["guest-1 (private): meet me at noon"]);
    assert.deepEqual(a.link.take(), ["* (private to bob) meet me at noon"]);
    assert.deepEqual(c.link.take(), []);
    // Names are case-insensitive.
    room.receive(a.member, "/msg BOB again");
    assert.deepEqual(b.link.take(), ["guest-1 (private): again"]);
    assert.deepEqual(a.link.take(), ["* (private to bob) again"]);

    room.receive(a.member, "/msg nobody hello");
    assert.deepEqual(a.link.take(), ["* no one called nobody is here"]);
    room.receive(a.member, "/msg bob");
    assert.deepEqual(a.link.take(), ["* usage: /msg NAME TEXT"]);
    room.receive(a.member, "/msg bob    ");
    assert.deepEqual(a.link.take(), ["* usage: /msg NAME TEXT"]);
    room.receive(a.member, "/msg");
    assert.deepEqual(a.link.take(), ["* usage: /msg NAME TEXT"]);
    assert.deepEqual([b.link.take(), c.link.take()], [[], []]);
  });
});

Deno.test("room: an unknown command is refused and not broadcast; // sends a line starting with /", async () => {
  await withRoom({}, (room) => {
    const [a, b] = crowd(room, 2);
    room.receive(a.member, "/frobnicate the widgets");
    const told = a.link.take();
    assert.equal(told.length, 1);
    assert.match(told[0], /^\* unknown command \/frobnicate\b/);
    assert.ok(told[0].includes("/help"), told[0]);
    assert.deepEqual(b.link.take(), []);

    room.receive(a.member, "//x");
    assert.deepEqual(b.link.take(), ["guest-1: /x"]);
    room.receive(a.member, "//nick not a command");
    assert.deepEqual(b.link.take(), ["guest-1: /nick not a command"]);
    assert.deepEqual(a.link.take(), []);
    assert.equal(a.member.name, "guest-1");

    room.receive(a.member, "/help");
    const help = a.link.take();
    assert.match(help[0], /^\* Commands:/);
    for (const command of ["/nick", "/who", "/me", "/msg", "/help", "/quit", "bye"]) {
      assert.ok(help.some((line) => line.includes(command)), command);
    }
    assert.ok(help.every((line) => line.startsWith("* ")), JSON.stringify(help));
    assert.deepEqual(b.link.take(), []);
  });
});

Deno.test("room: bye (any case, any spaces) and /quit say goodbye, close the link, tell the others", async () => {
  await withRoom({}, (room) => {
    const watcher = admit(room);
    for (const word of ["bye", "BYE ", "  Bye  ", "bYe\t", "/quit", "/QUIT"]) {
      const p = admit(room);
      p.link.take();
      watcher.link.take();
      room.receive(p.member, word);
      assert.deepEqual(p.link.take(), [`* Goodbye, ${p.member.name}!`], JSON.stringify(word));
      assert.equal(p.link.closes, 1, JSON.stringify(word));
      assert.ok(p.member.gone);
      assert.deepEqual(watcher.link.take(), [`* ${p.member.name} left`], JSON.stringify(word));
      // Nothing more once gone.
      room.receive(p.member, "are you there?");
      assert.deepEqual(watcher.link.take(), []);
    }
    assert.equal(room.size, 1);
    // "bye" inside a sentence is just a message.
    const p = admit(room);
    watcher.link.take();
    room.receive(p.member, "bye bye");
    assert.deepEqual(watcher.link.take(), [`${p.member.name}: bye bye`]);
    assert.equal(p.link.closes, 0);
  });
});

Deno.test("room: escape sequences and control characters never reach the others", async () => {
  await withRoom({}, (room) => {
    const [a, b] = crowd(room, 2);
    const evil = "a\x1b[31mred\x1b[0m b\x1b]52;c;ZXZpbA==\x07c \x1b]0;title\x1b\\d \u009b31me " +
      "f\x00g h\ri j\x07k \u202eevil\ttab é 中文 🎉";
    room.receive(a.member, evil);
    const got = b.link.take();
    assert.deepEqual(got, ["guest-1: ared bc d e fg hi jk evil\ttab é 中文 🎉"]);
    // deno-lint-ignore no-control-regex -- asserting that none are left
    assert.ok(!/[\x00-\x08\x0a-\x1f\x7f-\x9f\u202a-\u202e]/.test(got[0]), JSON.stringify(got[0]));
    // The same for /me and /msg.
    room.receive(a.member, "/me \x1b[2Jwipes\x1b]0;x\x07 the screen");
    assert.deepEqual(b.link.take(), ["* guest-1 wipes the screen"]);
    room.receive(a.member, "/msg guest-2 \x1b[5mblink\u202e");
    assert.deepEqual(b.link.take(), ["guest-1 (private): blink"]);
    // Line and paragraph separators, NEL, vertical tab and form feed cannot fake a new line.
    room.receive(a.member, "l\u2028guest-2: m\u2029\x85n\x0bo\x0cp");
    assert.deepEqual(b.link.take(), ["guest-1: lguest-2: mnop"]);
    // A line of nothing but escapes is blank: nothing is sent.
    room.receive(a.member, "\x1b[2J\x1b[H");
    assert.deepEqual(b.link.take(), []);
    // "bye" hidden behind escapes still means bye (stripped first).
    room.receive(a.member, "\x1b[31mbye\x1b[0m");
    assert.equal(a.link.closes, 1);
  });
});

Deno.test("room: flood control delivers the burst, drops the rest and warns once", async () => {
  await withRoom({ rate: 10, burst: 20 }, async (room, log) => {
    const [a, b] = crowd(room, 2);
    for (let i = 0; i < 100; i++) room.receive(a.member, `flood ${i}`);
    assert.deepEqual(b.link.take(), Array.from({ length: 20 }, (_, i) => `guest-1: flood ${i}`));
    const warned = a.link.take();
    assert.equal(warned.length, 1, JSON.stringify(warned));
    assert.match(warned[0], /^\* slow down: at most 10 lines per second/);
    await log.waitFor(/WARN .*Flood from guest-1/);
    // Leaving is never rate-limited.
    room.receive(a.member, "bye");
    assert.deepEqual(a.link.take(), ["* Goodbye, guest-1!"]);
    assert.deepEqual(b.link.take(), ["* guest-1 left"]);
  });
});

// Regression: "/quit" used to go through flood control and be dropped with the rest of a
// flood, so the member stayed (chat_client.ts sends "/quit" when its piped input ends).
Deno.test({
  name: "room: /quit after a flood still leaves (leaving is never rate-limited)",
  async fn() {
    await withRoom({ rate: 10, burst: 20 }, (room) => {
      const [a, b] = crowd(room, 2);
      for (let i = 0; i < 30; i++) room.receive(a.member, `flood ${i}`);
      a.link.take();
      b.link.take();
      room.receive(a.member, "/quit");
      assert.deepEqual(a.link.take(), ["* Goodbye, guest-1!"]);
      assert.equal(a.link.closes, 1);
      assert.deepEqual(b.link.take(), ["* guest-1 left"]);
    });
  },
});

Deno.test("room: rate 0 turns flood control off", async () => {
  await withRoom({ rate: 0, burst: 20 }, (room) => {
    const [a, b] = crowd(room, 2);
    for (let i = 0; i < 100; i++) room.receive(a.member, `flood ${i}`);
    assert.deepEqual(b.link.take(), Array.from({ length: 100 }, (_, i) => `guest-1: flood ${i}`));
    assert.deepEqual(a.link.take(), []);
  });
});

Deno.test("room: history replays the last N messages to an arrival; history 0 replays none", async () => {
  await withRoom({ history: 3 }, (room) => {
    const [a, b] = crowd(room, 2);
    for (let i = 1; i <= 4; i++) room.receive(a.member, `message ${i}`);
    room.receive(b.member, "/me waves");
    // Not history: notices, replies and private messages.
    room.receive(b.member, "/msg guest-1 a secret");
    room.receive(b.member, "/who");
    const c = admit(room);
    assert.match(c.link.lines[0], /^\* Welcome/);
    assert.equal(c.link.lines[1], "* 2 others here: guest-1, guest-2");
    const replay = c.link.lines.slice(2);
    assert.equal(replay.length, 3, JSON.stringify(replay));
    assert.ok(replay.every((line) => HISTORY_LINE.test(line)), JSON.stringify(replay));
    assert.deepEqual(replay.map((line) => line.replace(HISTORY_LINE, "")), [
      "guest-1: message 3",
      "guest-1: message 4",
      "* guest-2 waves",
    ]);
  });
  await withRoom({ history: 0 }, (room) => {
    const [a] = crowd(room, 1);
    for (let i = 1; i <= 5; i++) room.receive(a.member, `message ${i}`);
    const c = admit(room);
    assert.equal(c.link.lines.length, 2, JSON.stringify(c.link.lines));
    assert.ok(!c.link.lines.some((line) => line.includes("[history")));
  });
});

Deno.test("room: the member over max clients is told the server is full and closed", async () => {
  await withRoom({ maxClients: 2 }, async (room, log) => {
    const [a, b] = crowd(room, 2);
    const link = new FakeLink("127.0.0.1:9");
    assert.equal(room.join(link), null);
    assert.deepEqual(link.lines, ["* server full, try again later"]);
    assert.equal(link.closes, 1);
    assert.equal(room.size, 2);
    assert.deepEqual([a.link.take(), b.link.take()], [[], []], "no join notice");
    await log.waitFor(/WARN .*Refused 127\.0\.0\.1:9: room full/);
    // A place frees up: the next one gets in.
    room.receive(b.member, "bye");
    const c = admit(room);
    assert.equal(c.member.name, "guest-3");
  });
});

Deno.test("room: kick removes a member by name and tells everyone", async () => {
  await withRoom({}, (room) => {
    const [a, b, c] = crowd(room, 3);
    nick(room, b, "bob");
    a.link.take();
    c.link.take();
    assert.equal(room.kick("nobody"), false);
    assert.equal(room.kick("BOB"), true);
    assert.deepEqual(b.link.take(), ["* You were removed from the room by Server."]);
    assert.equal(b.link.closes, 1);
    assert.deepEqual(a.link.take(), ["* bob was removed by Server"]);
    assert.deepEqual(c.link.take(), ["* bob was removed by Server"]);
    assert.deepEqual(room.names(), ["guest-1", "guest-3"]);
    assert.equal(room.kick("bob"), false);
  });
});

Deno.test("room: say() reaches everyone as Server; lineTooLong tells only the sender", async () => {
  await withRoom({}, (room) => {
    const [a, b] = crowd(room, 2);
    room.say("  maintenance at \x1b[31mnoon\x1b[0m ");
    assert.deepEqual(a.link.take(), ["Server: maintenance at noon"]);
    assert.deepEqual(b.link.take(), ["Server: maintenance at noon"]);
    room.say("   ");
    assert.deepEqual(a.link.take(), []);
    room.lineTooLong(a.member, 64);
    assert.deepEqual(a.link.take(), ["* line too long (max 64 bytes); it was not sent"]);
    assert.deepEqual(b.link.take(), []);
  });
});

Deno.test("room: close() tells every member, closes every link and refuses later joins", () => {
  const log = captureLog();
  const room = new ChatRoom({ logger: log.logger });
  try {
    const people = crowd(room, 3);
    room.close();
    for (const p of people) {
      // No "left" notices about the others: only the shutdown notice.
      assert.deepEqual(p.link.take(), ["* Server is shutting down. Goodbye!"]);
      assert.equal(p.link.closes, 1);
      assert.ok(p.member.gone);
    }
    assert.equal(room.size, 0);
    const late = new FakeLink();
    assert.equal(room.join(late), null);
    assert.deepEqual(late.lines, ["* server is shutting down"]);
    assert.equal(late.closes, 1);
    room.close(); // twice is harmless
    assert.deepEqual(people.map((p) => p.link.closes), [1, 1, 1]);
  } finally {
    room.close();
  }
  // A custom notice.
  const other = new ChatRoom({ logger: log.logger });
  try {
    const [p] = crowd(other, 1);
    other.close("* Back in 5 minutes");
    assert.deepEqual(p.link.take(), ["* Back in 5 minutes"]);
  } finally {
    other.close();
  }
});

Deno.test("room: a silent member is dropped after the idle timeout", async () => {
  await withRoom({ idleTimeout: 0.05 }, async (room, log) => {
    const started = performance.now();
    const a = admit(room);
    const b = admit(room);
    await withTimeout(a.link.closed, 2000, "the idle member's link to close");
    assert.ok(performance.now() - started >= 45, "not before the timeout");
    assert.deepEqual(a.link.lines.slice(-1), ["* You were disconnected for being idle."]);
    assert.ok(a.member.gone);
    // b joined after a, so it was still here to be told (and is dropped in turn).
    await withTimeout(b.link.closed, 2000, "the second idle member's link to close");
    assert.deepEqual(b.link.lines.slice(-2), [
      "* guest-1 was disconnected for being idle",
      "* You were disconnected for being idle.",
    ]);
    assert.equal(room.size, 0);
    await log.waitFor(/guest-1 .* left: idle/);
  });
});

Deno.test("room: a member who keeps talking is not dropped for being idle", async () => {
  await withRoom({ idleTimeout: 0.2 }, async (room) => {
    const quiet = admit(room);
    const talker = admit(room);
    // Activity, not synchronisation: the talker speaks every 10 ms (20 times per timeout).
    const keepAlive = setInterval(() => room.receive(talker.member, "/who"), 10);
    try {
      await withTimeout(quiet.link.closed, 3000, "the quiet member's link to close");
    } finally {
      clearInterval(keepAlive);
    }
    assert.equal(talker.link.closes, 0);
    assert.ok(talker.link.lines.includes("* guest-1 was disconnected for being idle"));
    assert.deepEqual(room.names(), ["guest-2"]);
  });
});
