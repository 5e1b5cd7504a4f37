/**
 * The room log: one suite run against every engine (memory, SQLite, and Redis where a
 * redis-server can be started), then what only the SQLite store does: history that survives a
 * restart, the transcript, and clear one-line errors for a bad store file.
 */
import assert from "node:assert/strict";
import { type LogEntry, MemoryRoomLog, type RoomLog } from "../lib/room_log.ts";
import { readStore, SqliteRoomLog } from "../lib/room_log_sqlite.ts";
import { FatalError } from "../lib/cli.ts";
import { ChatRoom } from "../lib/chat_room.ts";
import { LineClient, runDeno, Spawned, withTimeout } from "./helpers.ts";
import { FakeLink } from "./fake_link.ts";
import { startRedis } from "./redis_fixture.ts";
import { connectRedisRoomLog } from "../lib/room_log_redis.ts";

/** An engine under test: makes a log with `history`, and cleans up after. */
interface Engine {
  name: string;
  make(history: number): Promise<RoomLog>;
  done(): Promise<void>;
}

async function engines(): Promise<Engine[]> {
  const dir = await Deno.makeTempDir();
  const list: Engine[] = [
    {
      name: "memory",
      make: (history) => Promise.resolve(new MemoryRoomLog(history)),
      done: () => Promise.resolve(),
    },
    {
      name: "sqlite",
      make: (history) => Promise.resolve(new SqliteRoomLog(`${dir}/suite.db`, history)),
      done: () => Deno.remove(dir, { recursive: true }),
    },
  ];
  const redis = await startRedis();
  if (redis) {
    let n = 0;
    list.push({
      name: "redis",
      make: (history) => connectRedisRoomLog({ url: redis.url, room: `suite${n++}`, history }),
      done: () => redis.stop(),
    });
  }
  return list;
}

/** Collects what a log delivers, and waits for a count. */
function collect(log: RoomLog): { got: LogEntry[]; until(n: number): Promise<void> } {
  const got: LogEntry[] = [];
  let wake: (() => void) | null = null;
  log.open({ deliver: (entry) => (got.push(entry), wake?.()) });
  return {
    got,
    async until(n: number) {
      await withTimeout(
        (async () => {
          while (got.length < n) await new Promise<void>((resolve) => wake = resolve);
        })(),
        5000,
        `${n} entries`,
      );
    },
  };
}

Deno.test("room log: every engine delivers each entry once, in order, and keeps history", async (t) => {
  const all = await engines();
  for (const engine of all) {
    await t.step(engine.name, async () => {
      const log = await engine.make(3);
      try {
        const seen = collect(log);
        for (let i = 0; i < 10; i++) {
          log.append({
            except: i,
            event: i % 3 === 2
              ? { type: "join", name: `n${i}` }
              : { type: "message", from: "ann", text: `line ${i}` },
          });
        }
        await seen.until(10);
        assert.deepEqual(seen.got.map((e) => e.except), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
        assert.ok(seen.got.every((e) => e.origin === log.instance));
        // Ids increase in log order.
        const ids = seen.got.map((e) => e.id);
        assert.deepEqual([...ids].sort(compareIds), ids);
        assert.equal(new Set(ids).size, 10);
        // History: the last 3 messages (joins are not history), oldest first.
        assert.deepEqual(
          log.recent(3).map((e) => e.event.type === "message" ? e.event.text : e.event.type),
          ["line 6", "line 7", "line 9"],
        );
        assert.deepEqual(log.recent(1).map((e) => e.except), [9]);
        assert.deepEqual(log.recent(0), []);
      } finally {
        await log.close();
      }
    });
  }
  for (const engine of all) await engine.done();
});

/** Log ids compare as numbers, or as Redis stream ids (`ms-seq`). */
function compareIds(a: string, b: string): number {
  const [a1, a2] = [...a.split("-"), "0"].map(BigInt);
  const [b1, b2] = [...b.split("-"), "0"].map(BigInt);
  return a1 === b1 ? Number(a2 - b2) : Number(a1 - b1);
}

Deno.test("room log: a room on the SQLite store replays its history after a restart", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/chat.db`;
    const firstLog = new SqliteRoomLog(path, 20);
    const first = new ChatRoom({ log: firstLog, rate: 0 });
    const ann = new FakeLink("10.0.0.1:1");
    const member = first.join(ann);
    assert.ok(member);
    first.receive(member, "before the restart");
    first.receive(member, "/me waves");
    first.say("operator here");
    first.close();
    await firstLog.close();
    const log = new SqliteRoomLog(path, 20);
    const second = new ChatRoom({ log, rate: 0 });
    try {
      const bob = new FakeLink("10.0.0.2:1");
      assert.ok(second.join(bob));
      const history = bob.lines.filter((line) => line.startsWith("[history "));
      assert.deepEqual(history.map((line) => line.replace(/^\[history \d\d:\d\d\] /, "")), [
        "guest-1: before the restart",
        "* guest-1 waves",
        "Server: operator here",
      ]);
    } finally {
      second.close();
      await log.close();
    }
    // The transcript has everything everyone saw, joins and leaves too.
    const transcript = readStore(path).map((entry) => entry.event.type);
    assert.deepEqual(transcript, ["join", "message", "action", "message", "join"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("room log: a corrupt, missing or unusable store is one clear error", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(
      `${dir}/junk.db`,
      "this is not a database at all, just text\n".repeat(100),
    );
    assert.throws(
      () => new SqliteRoomLog(`${dir}/junk.db`, 20),
      (e: Error) => e instanceof FatalError && /is not a chat store/.test(e.message),
    );
    assert.throws(
      () => new SqliteRoomLog(`${dir}/no/such/folder/chat.db`, 20),
      (e: Error) => e instanceof FatalError && /cannot open/.test(e.message),
    );
    await Deno.mkdir(`${dir}/a-folder.db`);
    assert.throws(() => new SqliteRoomLog(`${dir}/a-folder.db`, 20), FatalError);
    assert.throws(
      () => readStore(`${dir}/missing.db`),
      (e: Error) => e instanceof FatalError && /does not exist/.test(e.message),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("room log CLI: --store survives a restart; --transcript prints it; a bad store exits 1", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/lab.db`;
  const start = () =>
    new Spawned([
      "run",
      "-N",
      "--allow-read",
      "--allow-write",
      "chat_server.ts",
      "--port",
      "0",
      "--store",
      path,
    ]);
  try {
    let server = start();
    let client = await LineClient.connect({
      transport: "tcp",
      hostname: "127.0.0.1",
      port: await server.port(),
    });
    await client.readUntil(/^\* You are the only one here/);
    await client.send("/nick ada\nremember me\n");
    await client.readUntil(/^\* you are now known as ada$/);
    await client.send("/who\n"); // the message was handled before this answer
    await client.readUntil(/^\* 1 here/);
    client.close();
    await server.waitFor(/ada \(.*\) left: disconnected/);
    server.child.kill("SIGTERM");
    assert.equal((await server.exit()).code, 0);

    server = start();
    client = await LineClient.connect({
      transport: "tcp",
      hostname: "127.0.0.1",
      port: await server.port(),
    });
    const lines = await client.readUntil(/^\[history \d\d:\d\d\] ada: remember me$/);
    assert.match(lines[0], /^\* Welcome to the chat, guest-1!/);
    client.close();
    await server.waitFor(/guest-1 \(.*\) left: disconnected/);
    server.child.kill("SIGTERM");
    assert.equal((await server.exit()).code, 0);

    const transcript = await runDeno([
      "run",
      "--allow-read",
      "chat_server.ts",
      "--transcript",
      "--store",
      path,
    ]);
    assert.equal(transcript.code, 0, transcript.stderr);
    const text = transcript.stdout.trimEnd().split("\n").map((l) => l.replace(/^\S+ \S+ {2}/, ""));
    assert.deepEqual(text, [
      "* guest-1 joined",
      "* guest-1 is now known as ada",
      "ada: remember me",
      "* ada disconnected",
      "* guest-1 joined",
      "* guest-1 disconnected",
    ]);
    assert.match(transcript.stdout, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d {2}\* guest-1 joined$/m);

    await Deno.writeTextFile(`${dir}/junk.db`, "x".repeat(4096));
    for (
      const args of [["--store", `${dir}/junk.db`], ["--transcript", "--store", `${dir}/none.db`]]
    ) {
      const bad = await runDeno([
        "run",
        "-N",
        "--allow-read",
        "--allow-write",
        "chat_server.ts",
        "--port",
        "0",
        ...args,
      ]);
      assert.equal(bad.code, 1, bad.stderr);
      assert.equal(bad.stderr.trim().split("\n").length, 1, bad.stderr);
      assert.match(bad.stderr, /^chat_server\.ts: --store: /);
    }
    const noStore = await runDeno(["run", "chat_server.ts", "--transcript"]);
    assert.equal(noStore.code, 2);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
