/**
 * The Redis room log against a real `redis-server` (see `redis_fixture.ts`): one order for
 * every instance, history from the stream's tail, names unique across instances and freed
 * when their instance closes or dies, and what happens while an instance is apart from Redis.
 *
 * Nothing here sleeps to synchronise: every wait is for an entry, a status or a condition,
 * with a time limit.
 */
import assert from "node:assert/strict";
import { FatalError } from "../lib/cli.ts";
import type { ChatEvent } from "../lib/chat_frames.ts";
import type { LogEntry, LogStatus, LogSubscriber } from "../lib/room_log.ts";
import {
  connectRedisRoomLog,
  type RedisLogOptions,
  type RedisRoomLog,
} from "../lib/room_log_redis.ts";
import { ROOT, Spawned, withTimeout } from "./helpers.ts";
import { freePort, type RedisFixture, startRedis } from "./redis_fixture.ts";

/** What a room would be handed by its log, kept for the test to wait on. */
class Recorder implements LogSubscriber {
  readonly entries: LogEntry[] = [];
  readonly statuses: LogStatus[] = [];
  readonly #waiters = new Set<() => void>();

  deliver(entry: LogEntry): void {
    this.entries.push(entry);
    this.#wake();
  }

  status(status: LogStatus): void {
    this.statuses.push(status);
    this.#wake();
  }

  #wake(): void {
    for (const waiter of [...this.#waiters]) waiter();
  }

  /** Message texts in delivery order. */
  texts(): string[] {
    return this.entries.flatMap((e) => e.event.type === "message" ? [e.event.text] : []);
  }

  /** Leave events delivered, as `name:reason`. */
  leaves(): string[] {
    return this.entries.flatMap((e) =>
      e.event.type === "leave" ? [`${e.event.name}:${e.event.reason}`] : []
    );
  }

  /** Resolves once `ready()` holds (checked on every delivery and status). */
  until(ready: () => boolean, what: string, ms = 5000): Promise<void> {
    if (ready()) return Promise.resolve();
    let waiter = () => {};
    return withTimeout(
      new Promise<void>((resolve) => {
        waiter = () => {
          if (ready()) resolve();
        };
        this.#waiters.add(waiter);
      }),
      ms,
      what,
    ).catch((error) => {
      throw new Error(
        `${error.message}; have ${JSON.stringify(this.entries.map((e) => e.event))}, ` +
          `statuses ${this.statuses}`,
      );
    }).finally(() => this.#waiters.delete(waiter));
  }

  /** Resolves once `texts` have all been delivered. */
  has(...texts: string[]): Promise<void> {
    return this.until(() => texts.every((t) => this.texts().includes(t)), `messages ${texts}`);
  }
}

/** Resolves once `ready()` holds, checking every 20 ms (for state no event announces). */
async function eventually(
  ready: () => boolean | Promise<boolean>,
  what: () => string,
  ms = 5000,
): Promise<void> {
  let done = false;
  try {
    await withTimeout(
      (async () => {
        while (!done && !(await ready())) await new Promise((resolve) => setTimeout(resolve, 20));
      })(),
      ms,
      "a condition",
    );
  } catch (error) {
    throw new Error(`${(error as Error).message}: ${what()}`);
  } finally {
    done = true;
  }
}

function message(text: string, from = "alice"): ChatEvent {
  return { type: "message", from, text };
}

/** Runs `body` with a fresh Redis (skipping, visibly, where there is none). */
function redisTest(name: string, body: (redis: RedisFixture) => Promise<void>): void {
  Deno.test(name, async () => {
    const redis = await startRedis();
    if (!redis) return;
    try {
      await body(redis);
    } finally {
      await redis.stop();
    }
  });
}

/** A log on `redis`, opened on a new {@linkcode Recorder}. */
async function instance(
  redis: RedisFixture,
  options: Partial<RedisLogOptions> = {},
): Promise<{ log: RedisRoomLog; seen: Recorder }> {
  const log = await connectRedisRoomLog({ url: redis.url, history: 20, ...options });
  const seen = new Recorder();
  log.open(seen);
  return { log, seen };
}

/** Runs one Redis command on a connection of its own (to look at, or to break, the keys). */
async function command(redis: RedisFixture, args: string[]): Promise<unknown> {
  const { createClient } = await import("npm:@redis/client@6.3.1");
  const client = createClient({ url: redis.url, RESP: 2 });
  client.on("error", () => {});
  await client.connect();
  try {
    return await client.sendCommand(args);
  } finally {
    await client.close();
  }
}

/**
 * A TCP relay between an instance and Redis, to fail the network in ways Redis cannot: drop
 * what the instance sends, or what Redis answers, then cut the connections.
 */
class Relay {
  readonly port: number;
  mode: "pass" | "drop-requests" | "drop-replies" = "pass";
  /** What was dropped, as text (to wait for a command to have been sent). */
  dropped = "";
  readonly #listener: Deno.TcpListener;
  readonly #conns = new Set<Deno.TcpConn>();
  readonly #tasks = new Set<Promise<void>>();
  readonly #accepting: Promise<void>;

  constructor(readonly target: number) {
    this.#listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.port = this.#listener.addr.port;
    this.#accepting = this.#accept();
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async #accept(): Promise<void> {
    for await (const client of this.#listener) {
      const server = await Deno.connect({ hostname: "127.0.0.1", port: this.target });
      this.#conns.add(client);
      this.#conns.add(server);
      this.#run(this.#pipe(client, server, "drop-requests"));
      this.#run(this.#pipe(server, client, "drop-replies"));
    }
  }

  #run(task: Promise<void>): void {
    this.#tasks.add(task);
    task.finally(() => this.#tasks.delete(task));
  }

  async #pipe(from: Deno.TcpConn, to: Deno.TcpConn, drops: Relay["mode"]): Promise<void> {
    const buffer = new Uint8Array(64 * 1024);
    try {
      for (let n = await from.read(buffer); n !== null; n = await from.read(buffer)) {
        if (this.mode === drops) this.dropped += new TextDecoder().decode(buffer.subarray(0, n));
        else await to.write(buffer.subarray(0, n));
      }
    } catch {
      // cut
    }
    this.#close(from);
    this.#close(to);
  }

  #close(conn: Deno.TcpConn): void {
    if (!this.#conns.delete(conn)) return;
    try {
      conn.close();
    } catch {
      // closed
    }
  }

  /** Closes every relayed connection (new ones are relayed as before) and passes again. */
  async cut(): Promise<void> {
    for (const conn of [...this.#conns]) this.#close(conn);
    await Promise.all(this.#tasks);
    this.mode = "pass";
  }

  async close(): Promise<void> {
    this.#listener.close();
    await this.#accepting.catch(() => {});
    await this.cut();
  }
}

/** Closes the connections of `log` from Redis's side, as a network failure would. */
async function cut(redis: RedisFixture, log: RedisRoomLog): Promise<void> {
  const list = String(await command(redis, ["CLIENT", "LIST"]));
  const ids = list.split("\n").flatMap((line) => {
    const name = line.match(/ name=(\S*)/)?.[1] ?? "";
    return name === log.instance || name === `${log.instance}-reader`
      ? [line.match(/^id=(\d+)/)?.[1] ?? ""]
      : [];
  });
  assert.deepEqual(ids.length, 2, `the two connections of ${log.instance} in\n${list}`);
  for (const id of ids) await command(redis, ["CLIENT", "KILL", "ID", id]);
}

redisTest("two instances on one Redis see every append in the same order", async (redis) => {
  const a = await instance(redis);
  const b = await instance(redis);
  try {
    assert.ok(a.log.instance !== b.log.instance);
    a.log.append({ except: 7, event: message("a1") });
    // Not delivered at append: only when read back from the stream, in its order.
    assert.deepEqual(a.seen.entries.length, 0);
    b.log.append({ except: 0, event: message("b1", "bob") });
    a.log.append({ except: 7, event: message("a2") });
    b.log.append({ except: 0, event: message("b2", "bob") });
    const all = ["a1", "b1", "a2", "b2"];
    await a.seen.has(...all);
    await b.seen.has(...all);
    assert.deepEqual(a.seen.entries.map((e) => e.id), b.seen.entries.map((e) => e.id));
    assert.deepEqual(a.seen.texts(), b.seen.texts());
    // One instance's appends keep their order.
    assert.deepEqual(a.seen.texts().filter((t) => t.startsWith("a")), ["a1", "a2"]);
    const a1 = a.seen.entries.find((e) => e.event.type === "message" && e.event.text === "a1");
    assert.deepEqual(a1?.origin, a.log.instance);
    assert.deepEqual(a1?.except, 7);
    assert.ok(Math.abs((a1?.at ?? 0) - Date.now()) < 5000);
    assert.match(a1?.id ?? "", /^\d+-\d+$/);
    assert.deepEqual(a.log.recent(10).map((e) => e.id), a.seen.entries.map((e) => e.id));
  } finally {
    await a.log.close();
    await b.log.close();
  }
});

redisTest("a fresh instance's history is the stream's tail, messages only", async (redis) => {
  const a = await instance(redis);
  try {
    for (let i = 1; i <= 5; i++) {
      a.log.append({ except: 0, event: message(`m${i}`) });
      a.log.append({ except: 0, event: { type: "join", name: `guest-${i}` } });
    }
    a.log.append({ except: 0, event: { type: "action", from: "alice", text: "waves" } });
    await a.seen.until(() => a.seen.entries.length === 11, "11 entries");
    const late = await connectRedisRoomLog({ url: redis.url, history: 3 });
    const all = await connectRedisRoomLog({ url: redis.url, history: 50 });
    try {
      const events = (log: RedisRoomLog, n: number) =>
        log.recent(n).map((e) =>
          e.event.type === "action" ? "*waves" : (e.event as { text: string }).text
        );
      assert.deepEqual(events(late, 3), ["m4", "m5", "*waves"]);
      assert.deepEqual(events(late, 2), ["m5", "*waves"]);
      assert.deepEqual(events(all, 50), ["m1", "m2", "m3", "m4", "m5", "*waves"]);
      // What was in the stream before it connected is history, not delivered again.
      const seen = new Recorder();
      late.open(seen);
      a.log.append({ except: 0, event: message("after") });
      await seen.has("after");
      assert.deepEqual(seen.texts(), ["after"]);
      assert.deepEqual(events(late, 3), ["m5", "*waves", "after"]);
    } finally {
      await late.close();
      await all.close();
    }
  } finally {
    await a.log.close();
  }
});

redisTest("names are unique across instances, ignoring case, until released", async (redis) => {
  const a = await instance(redis);
  const b = await instance(redis);
  try {
    assert.deepEqual(await a.log.directory.claim("Alice"), true);
    assert.deepEqual(await b.log.directory.claim("alice"), false);
    assert.deepEqual(await b.log.directory.claim("ALICE"), false);
    assert.deepEqual(await a.log.directory.claim("alice"), true, "ours already");
    // A release by an instance that does not hold it frees nothing.
    b.log.directory.release("Alice");
    assert.deepEqual(await b.log.directory.claim("Alice"), false);
    // The join entry tells the other instance at once.
    a.log.append({ except: 1, event: { type: "join", name: "Alice" } });
    await b.seen.until(() => b.seen.entries.length === 1, "the join");
    assert.deepEqual(b.log.directory.elsewhere("aLiCe"), true);
    assert.deepEqual(b.log.directory.others(), ["Alice"]);
    assert.deepEqual(a.log.directory.others(), [], "its own members are not elsewhere");
    // Guest names never collide, whoever asks.
    const guests = [
      await a.log.directory.guestName(() => false),
      await b.log.directory.guestName(() => false),
      await a.log.directory.guestName((name) => name === "guest-3"),
      await b.log.directory.guestName(() => false),
    ];
    assert.deepEqual(guests, ["guest-1", "guest-2", "guest-4", "guest-5"]);
    assert.deepEqual(await b.log.directory.claim("guest-1"), false, "a guest name is claimed");
    // Released, the name is free for the other instance.
    a.log.directory.release("Alice");
    a.log.append({ except: 0, event: { type: "leave", name: "Alice", reason: "bye" } });
    await b.seen.until(() => b.seen.leaves().length === 1, "the leave");
    assert.deepEqual(b.log.directory.elsewhere("alice"), false);
    assert.deepEqual(await b.log.directory.claim("alice"), true);
    assert.deepEqual(await a.log.directory.claim("Alice"), false);
    // A rename moves the name elsewhere.
    assert.deepEqual(await b.log.directory.claim("Robert"), true);
    b.log.directory.release("alice");
    b.log.append({ except: 0, event: { type: "rename", from: "alice", to: "Robert" } });
    await a.seen.until(() => a.seen.entries.length === 3, "the rename");
    assert.deepEqual(a.log.directory.elsewhere("alice"), false);
    assert.deepEqual(a.log.directory.elsewhere("robert"), true);
  } finally {
    await a.log.close();
    await b.log.close();
  }
});

redisTest("names held elsewhere are known within a second even with no join", async (redis) => {
  const a = await instance(redis);
  const b = await instance(redis);
  try {
    assert.deepEqual(await a.log.directory.claim("Zed"), true);
    assert.deepEqual(await a.log.directory.claim("Amy"), true);
    await eventually(
      () => b.log.directory.others().join() === "Zed,Amy",
      () => `B to survey A's names; has ${b.log.directory.others()}`,
      2500,
    );
    a.log.directory.release("Zed");
    await eventually(() => !b.log.directory.elsewhere("zed"), () => "B to see Zed released", 2500);
  } finally {
    await a.log.close();
    await b.log.close();
  }
});

redisTest("a closed instance gives its names back at once", async (redis) => {
  const a = await instance(redis);
  const b = await instance(redis);
  try {
    assert.deepEqual(await a.log.directory.claim("Carol"), true);
    assert.deepEqual(await b.log.directory.claim("carol"), false);
    await a.log.close();
    assert.deepEqual(await b.log.directory.claim("carol"), true);
    const keys = await command(redis, ["KEYS", `chat:*${a.log.instance}*`]);
    assert.deepEqual(keys, [], "none of its keys are left");
    // It leaves no leaves for the survivor to append: it is not dead, it is gone.
    b.log.append({ except: 0, event: message("marker") });
    await b.seen.has("marker");
    assert.deepEqual(b.seen.leaves(), []);
  } finally {
    await a.log.close();
    await b.log.close();
  }
});

redisTest("a killed instance's names expire and one survivor says they left", async (redis) => {
  const ttl = 600;
  const a = await instance(redis, { nameTtlMs: ttl });
  const b = await instance(redis, { nameTtlMs: ttl });
  // The doomed instance is a process of its own with the server's permissions, killed -9.
  const script = await Deno.makeTempFile({ suffix: ".ts" });
  await Deno.writeTextFile(
    script,
    `import { connectRedisRoomLog } from "${new URL("../lib/room_log_redis.ts", import.meta.url)}";
const log = await connectRedisRoomLog({ url: Deno.env.get("REDIS_URL") ?? "", history: 0, nameTtlMs: ${ttl} });
log.open({ deliver() {} });
for (const name of ["Carol", "Dave"]) {
  if (!(await log.directory.claim(name))) throw new Error("claim " + name);
  log.append({ except: 0, event: { type: "join", name } });
}
console.log("ready " + log.instance);
`,
  );
  const child = new Spawned([
    "run",
    "--config",
    `${ROOT}deno.json`,
    "--allow-net=127.0.0.1",
    "--allow-read",
    "--allow-env=REDIS_URL",
    script,
  ], { env: { REDIS_URL: redis.url } });
  try {
    const ready = await child.waitFor(/^ready \S+$/, "stdout", 20000);
    const dead = ready.split(" ")[1];
    await a.seen.until(() => a.seen.entries.length === 2, "the joins");
    await b.seen.until(() => b.seen.entries.length === 2, "the joins");
    assert.deepEqual(await a.log.directory.claim("carol"), false);
    await eventually(
      () => b.log.directory.others().join() === "Carol,Dave",
      () => `B to know them; has ${b.log.directory.others()}`,
    );
    child.child.kill("SIGKILL");
    const killedAt = performance.now();
    const gone = ["Carol:disconnected", "Dave:disconnected"];
    await a.seen.until(() => a.seen.leaves().length >= 2, "the leaves", 5000);
    await b.seen.until(() => b.seen.leaves().length >= 2, "the leaves", 5000);
    // The TTL, then at most a survey's interval (TTL / 3) and the time to append.
    const within = performance.now() - killedAt;
    assert.ok(within < ttl * 4, `names of a dead instance went in ${within} ms`);
    assert.deepEqual(a.log.directory.elsewhere("carol"), false);
    assert.deepEqual(b.log.directory.others(), []);
    assert.deepEqual(await b.log.directory.claim("Carol"), true);
    // Reaped once: both survivors see each name leave exactly once, from one of them.
    await eventually(
      async () => (await command(redis, ["ZSCORE", "chat:instances", dead])) === null,
      () => "the reap",
    );
    a.log.append({ except: 0, event: message("marker") });
    b.log.append({ except: 0, event: message("marker2") });
    await a.seen.has("marker", "marker2");
    await b.seen.has("marker", "marker2");
    assert.deepEqual(a.seen.leaves(), gone);
    assert.deepEqual(b.seen.leaves(), gone);
    const reapers = new Set(
      a.seen.entries.filter((e) => e.event.type === "leave").map((e) => e.origin),
    );
    assert.deepEqual(reapers.size, 1);
    assert.ok([a.log.instance, b.log.instance].includes([...reapers][0]));
    assert.deepEqual(a.seen.entries.filter((e) => e.event.type === "leave").map((e) => e.except), [
      0,
      0,
    ]);
  } finally {
    try {
      child.child.kill("SIGKILL");
    } catch {
      // exited
    }
    await child.exit().catch(() => {});
    await Deno.remove(script);
    await a.log.close();
    await b.log.close();
  }
});

redisTest("Redis restarted mid-run: lost once, resumed, and one order again", async (redis) => {
  const a = await instance(redis);
  const b = await instance(redis);
  try {
    assert.deepEqual(await a.log.directory.claim("Eve"), true);
    a.log.append({ except: 0, event: message("before") });
    await b.seen.has("before");
    await redis.restart();
    await a.seen.until(() => a.seen.statuses.includes("resumed"), "A to resume", 10000);
    await b.seen.until(() => b.seen.statuses.includes("resumed"), "B to resume", 10000);
    assert.deepEqual(a.seen.statuses, ["connected", "lost", "resumed"]);
    assert.deepEqual(b.seen.statuses, ["connected", "lost", "resumed"]);
    // Names were claimed again on the empty Redis.
    assert.deepEqual(await b.log.directory.claim("eve"), false);
    for (let i = 1; i <= 3; i++) {
      a.log.append({ except: 0, event: message(`a${i}`) });
      b.log.append({ except: 0, event: message(`b${i}`) });
    }
    const after = ["a1", "b1", "a2", "b2", "a3", "b3"];
    await a.seen.has(...after);
    await b.seen.has(...after);
    assert.deepEqual(a.seen.texts(), b.seen.texts());
    assert.deepEqual(
      a.seen.texts().filter((t) => t.startsWith("a")),
      ["before", "a1", "a2", "a3"].slice(1),
    );
  } finally {
    await a.log.close();
    await b.log.close();
  }
});

redisTest("while Redis is down, appends reach this instance's members only", async (redis) => {
  const a = await instance(redis);
  const b = await instance(redis);
  try {
    await redis.stop();
    await a.seen.until(() => a.seen.statuses.includes("lost"), "A to lose Redis");
    await b.seen.until(() => b.seen.statuses.includes("lost"), "B to lose Redis");
    a.log.append({ except: 3, event: message("a-apart") });
    // Delivered at once, as a room with no log would.
    assert.deepEqual(a.seen.texts(), ["a-apart"]);
    assert.deepEqual(a.seen.entries[0].except, 3);
    assert.deepEqual(a.seen.entries[0].origin, a.log.instance);
    b.log.append({ except: 0, event: message("b-apart") });
    assert.deepEqual(b.seen.texts(), ["b-apart"]);
    assert.deepEqual(a.log.recent(5).length, 1, "kept for history here");
    // Claims while apart are this instance's to decide.
    assert.deepEqual(await a.log.directory.claim("Frank"), true);
    const guest = await a.log.directory.guestName(() => false);
    assert.match(guest, /^guest-\d+$/);
    await redis.restart();
    await a.seen.until(() => a.seen.statuses.includes("resumed"), "A to resume", 10000);
    await b.seen.until(() => b.seen.statuses.includes("resumed"), "B to resume", 10000);
    a.log.append({ except: 0, event: message("together") });
    await a.seen.has("together");
    await b.seen.has("together");
    // Nothing appended while apart went to Redis later.
    assert.deepEqual(a.seen.texts(), ["a-apart", "together"]);
    assert.deepEqual(b.seen.texts(), ["b-apart", "together"]);
    // The name claimed while apart is claimed in Redis now.
    assert.deepEqual(await b.log.directory.claim("frank"), false);
    assert.deepEqual(await b.log.directory.claim(guest), false);
  } finally {
    await a.log.close();
    await b.log.close();
  }
});

redisTest("an instance cut off resumes from its last ID and misses nothing", async (redis) => {
  const a = await instance(redis);
  const b = await instance(redis);
  try {
    b.log.append({ except: 0, event: message("b0") });
    await a.seen.has("b0");
    // The moment A is told it lost Redis, B goes on talking (Redis holds it all).
    const lost = a.seen.until(() => a.seen.statuses.includes("lost"), "A to lose Redis");
    // A's last appends are in flight when the connections go: some may reach Redis.
    const last = Array.from({ length: 50 }, (_, i) => `a-last${i}`);
    for (const text of last) a.log.append({ except: 0, event: message(text) });
    await cut(redis, a.log);
    await lost;
    for (let i = 1; i <= 20; i++) b.log.append({ except: 0, event: message(`b${i}`) });
    await b.seen.has("b20");
    await a.seen.until(() => a.seen.statuses.includes("resumed"), "A to resume", 10000);
    const sent = Array.from({ length: 20 }, (_, i) => `b${i + 1}`);
    await a.seen.has(...sent);
    const got = a.seen.texts().filter((t) => t.startsWith("b"));
    assert.deepEqual(got, ["b0", ...sent], "in stream order, once each");
    // A's own last appends reached A exactly once each, whether or not they reached Redis;
    // B got those that did, in A's order.
    await a.seen.has(...last);
    const once = (r: Recorder) => r.texts().filter((t) => t.startsWith("a-last"));
    assert.deepEqual(once(a.seen).toSorted(), last.toSorted());
    assert.deepEqual(once(b.seen), last.slice(0, once(b.seen).length));
    assert.deepEqual(a.seen.statuses, ["connected", "lost", "resumed"]);
    b.log.append({ except: 0, event: message("b-final") });
    a.log.append({ except: 0, event: message("a-final") });
    await a.seen.has("b-final", "a-final");
    await b.seen.has("b-final", "a-final");
    const tail = (r: Recorder) => r.texts().filter((t) => t.endsWith("-final"));
    assert.deepEqual(tail(a.seen), tail(b.seen));
  } finally {
    await a.log.close();
    await b.log.close();
  }
});

Deno.test("no Redis listening: one line, a FatalError, in bounded time", async () => {
  const port = freePort();
  const started = performance.now();
  const error = await connectRedisRoomLog({
    url: `redis://user:secret@127.0.0.1:${port}`,
    history: 5,
  }).then(() => null, (error) => error);
  assert.ok(error instanceof FatalError, String(error));
  assert.ok(performance.now() - started < 3500);
  assert.equal(
    error.message,
    `cannot reach Redis at redis://user:***@127.0.0.1:${port} (connection refused): ` +
      `start redis-server, or check --redis`,
  );
  await assert.rejects(
    () => connectRedisRoomLog({ url: "http://127.0.0.1:1", history: 5 }),
    (error) =>
      error instanceof FatalError &&
      /^bad --redis URL http:\/\/127\.0\.0\.1:1 /.test(error.message),
  );
});

Deno.test("no Redis listening: the client prints nothing of its own", async () => {
  const port = freePort();
  const code = `import { connectRedisRoomLog } from "${new URL(
    "../lib/room_log_redis.ts",
    import.meta.url,
  )}";
try {
  await connectRedisRoomLog({ url: "redis://127.0.0.1:${port}", history: 5 });
} catch (error) {
  console.log(error.name + ": " + error.message);
}`;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--config", `${ROOT}deno.json`, code],
    env: { NO_COLOR: "1" },
    stdin: "null",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  const stderr = new TextDecoder().decode(out.stderr).split("\n")
    .filter((line) => line !== "" && !/^Download /.test(line));
  assert.deepEqual(
    stdout,
    `FatalError: cannot reach Redis at redis://127.0.0.1:${port} ` +
      `(connection refused): start redis-server, or check --redis\n`,
  );
  assert.deepEqual(stderr, []);
});

redisTest(
  "appends whose fate is unknown when Redis is lost reach this instance once",
  async (redis) => {
    const relay = new Relay(redis.port);
    const a = await instance({ url: relay.url } as RedisFixture);
    const b = await instance(redis);
    try {
      a.log.append({ except: 0, event: message("a0") });
      await b.seen.has("a0");
      await a.seen.has("a0");
      // Redis gets these, but A never hears back: B has them, A's connections then fail.
      relay.mode = "drop-replies";
      const stored = Array.from({ length: 20 }, (_, i) => `stored${i}`);
      for (const text of stored) a.log.append({ except: 0, event: message(text) });
      await b.seen.has(...stored);
      await relay.cut();
      await a.seen.until(() => a.seen.statuses.includes("resumed"), "A to resume", 10000);
      // These never reach Redis: A's members alone see them.
      relay.mode = "drop-requests";
      const unsent = Array.from({ length: 20 }, (_, i) => `unsent${i}`);
      for (const text of unsent) a.log.append({ except: 0, event: message(text) });
      await eventually(() => relay.dropped.includes("unsent19"), () => "the unsent appends");
      await relay.cut();
      await a.seen.until(
        () => a.seen.statuses.filter((s) => s === "resumed").length === 2,
        "A to resume again",
        10000,
      );
      a.log.append({ except: 0, event: message("a-end") });
      await a.seen.has("a-end", ...stored, ...unsent);
      await b.seen.has("a-end");
      // Each exactly once at A (from the stream or, failing that, here); B has the stored ones.
      assert.deepEqual(a.seen.texts().toSorted(), ["a0", ...stored, ...unsent, "a-end"].toSorted());
      assert.deepEqual(b.seen.texts(), ["a0", ...stored, "a-end"]);
      assert.deepEqual(a.seen.statuses, ["connected", "lost", "resumed", "lost", "resumed"]);
    } finally {
      await a.log.close();
      await b.log.close();
      await relay.close();
    }
  },
);
