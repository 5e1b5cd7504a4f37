/**
 * Accounts: scrypt records, the room's /register, /login, /passwd, /unregister, a registered
 * name protected from /nick, failures delayed and budgeted per name, nothing secret logged,
 * and the records kept across a restart (SQLite) and across servers (Redis).
 */
import assert from "node:assert/strict";
import { hashPassword, MemoryAccountStore, verifyPassword } from "../lib/accounts.ts";
import { ChatRoom, type ChatRoomOptions, type Member } from "../lib/chat_room.ts";
import { SqliteRoomLog } from "../lib/room_log_sqlite.ts";
import { connectRedisRoomLog } from "../lib/room_log_redis.ts";
import { captureLog, withTimeout } from "./helpers.ts";
import { FakeLink } from "./fake_link.ts";
import { startRedis } from "./redis_fixture.ts";

const SECRET = "correct-horse-battery";

Deno.test("accounts: scrypt records have their own salt and parameters; checks are exact", async () => {
  const a = await hashPassword("ada", SECRET);
  const b = await hashPassword("ada", SECRET);
  assert.notEqual(a.salt, b.salt);
  assert.notEqual(a.hash, b.hash);
  assert.equal(a.algorithm, "scrypt");
  assert.deepEqual(a.params, { N: 16384, r: 8, p: 1, keyLength: 32 });
  assert.ok(await verifyPassword(a, SECRET));
  assert.ok(!(await verifyPassword(a, SECRET + " ")));
  assert.ok(!(await verifyPassword(a, "")));
  // An old record keeps working under its own (lower) cost.
  const old = await hashPassword("bob", SECRET, { N: 1024, r: 8, p: 1, keyLength: 16 });
  assert.ok(await verifyPassword(old, SECRET));
  assert.equal(Buffer.from(old.hash, "base64").length, 16);
});

/** A room with fake links; each `enter` joins one and returns it with a way to wait. */
function withRoom(options: ChatRoomOptions = {}) {
  const log = captureLog("debug");
  const room = new ChatRoom({ authDelayMs: 1, rate: 0, logger: log.logger, ...options });
  let n = 0;
  const enter = (address = `10.0.0.${++n}`) => {
    const link = new FakeLink(`${address}:${4000 + n}`);
    const member = room.join(link) as Member;
    assert.ok(member);
    link.take();
    const say = async (line: string, answer: RegExp) => {
      link.take(); // only answers to this line count
      room.receive(member, line);
      return await link.waitFor(answer);
    };
    return { link, member, say };
  };
  return { room, log, enter };
}

Deno.test("accounts room: register, protected name, login, passwd, unregister", async () => {
  const { room, log, enter } = withRoom();
  try {
    const ada = enter();
    await ada.say(`/register ${SECRET}`, /pick your name first/);
    await ada.say("/nick ada", /you are now known as ada/);
    await ada.say("/register short", /at least 8 characters/);
    await ada.say(`/register ${SECRET}`, /^\* ada is registered to you/);
    // While ada is here her name is taken; after she leaves, it is still hers.
    const eve = enter();
    await eve.say("/nick ADA", /the name ADA is taken/);
    room.leave(ada.member, "bye");
    await eve.say("/nick Ada", /^\* Ada is registered: log in with \/login Ada PASSWORD$/);
    await eve.say("/login ada guess-guess", /^\* wrong name or password$/);
    await eve.say("/login nobody guess-guess", /^\* wrong name or password$/);
    // The owner comes back and logs in: the name and the account are hers again.
    const back = enter();
    await back.say(`/login ADA ${SECRET}`, /^\* logged in as ada$/);
    assert.equal(back.member.name, "ada");
    assert.equal(back.member.account, "ada");
    await back.say(`/register ${SECRET}`, /ada is registered already/);
    await back.say(`/passwd wrong-old new-password-1`, /^\* wrong password$/);
    await back.say(`/passwd ${SECRET} new-password-1`, /^\* password changed$/);
    await back.say(`/unregister ${SECRET}`, /^\* wrong password$/);
    await back.say("/unregister new-password-1", /^\* ada is no longer registered$/);
    room.leave(back.member, "bye");
    await eve.say("/nick ada", /you are now known as ada/);
    // Never a password in the log.
    for (const secret of [SECRET, "guess-guess", "new-password-1", "wrong-old"]) {
      assert.ok(!log.lines.some((l) => l.includes(secret)), secret);
    }
  } finally {
    room.close();
  }
});

Deno.test("accounts room: wrong passwords for one name are budgeted: then it is locked out", async () => {
  const { room, log, enter } = withRoom({ maxAuthFailures: 3, authLockout: 60 });
  try {
    const ada = enter();
    await ada.say("/nick ada", /now known as ada/);
    await ada.say(`/register ${SECRET}`, /registered to you/);
    room.leave(ada.member, "bye");
    // Three guessers from three addresses: the name's budget is spent after three.
    for (let i = 0; i < 3; i++) {
      await enter(`10.1.0.${i}`).say(`/login ada guess-${i}-xxxx`, /wrong name or password/);
    }
    const fourth = enter("10.1.0.9");
    await fourth.say(`/login ada ${SECRET}`, /^\* too many wrong passwords; try again in \d+ s$/);
    assert.equal(log.lines.filter((l) => /Locked out the name ada/.test(l)).length, 1);
    // Another account is not affected.
    const bob = enter("10.1.0.10");
    await bob.say("/nick bob", /now known as bob/);
    await bob.say(`/register ${SECRET}`, /registered to you/);
  } finally {
    room.close();
  }
});

Deno.test("accounts: a registered name is protected across a restart with --store", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/lab.db`;
    for (const phase of ["register", "after restart"]) {
      const roomLog = new SqliteRoomLog(path, 0);
      const { room, enter } = withRoom({ log: roomLog });
      try {
        assert.ok(room.accountsPersist);
        const someone = enter();
        if (phase === "register") {
          await someone.say("/nick ada", /now known as ada/);
          await someone.say(`/register ${SECRET}`, /registered to you/);
        } else {
          await someone.say("/nick ada", /ada is registered/);
          await someone.say(`/login ada ${SECRET}`, /logged in as ada/);
        }
      } finally {
        room.close();
        await roomLog.close();
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("accounts: a registered name is protected on every server of one Redis", async () => {
  const redis = await startRedis();
  if (!redis) return;
  const logs = [
    await connectRedisRoomLog({ url: redis.url, history: 0 }),
    await connectRedisRoomLog({ url: redis.url, history: 0 }),
  ];
  const rooms = logs.map((log) => withRoom({ log }));
  try {
    const ada = rooms[0].enter();
    await ada.say("/nick ada", /now known as ada/);
    await ada.say(`/register ${SECRET}`, /registered to you/);
    rooms[0].room.leave(ada.member, "bye");
    const eve = rooms[1].enter();
    // The name is released by the leave; the account still protects it, on the other server.
    await withTimeout(eve.say("/nick ada", /ada is registered/), 5000, "the account check");
    await eve.say(`/login ada ${SECRET}`, /logged in as ada/);
  } finally {
    for (const { room } of rooms) room.close();
    for (const log of logs) await log.close();
    await redis.stop();
  }
});

Deno.test("accounts: memory accounts last as long as the room", () => {
  assert.equal(new MemoryAccountStore().persistent, false);
  const room = new ChatRoom();
  try {
    assert.equal(room.accountsPersist, false);
  } finally {
    room.close();
  }
});
