/**
 * One room across three `chat_server.ts --redis` processes on a real redis-server that the
 * test starts on a free loopback port (missing: skipped visibly; under `CI=true`, a failure).
 * Clients are spread over the instances (raw TCP, the system `nc` and `chat_client.ts`):
 * everyone receives every message exactly once and in the same order; names collide across
 * instances; `/msg` crosses them; a SIGKILLed instance's members leave and free their names;
 * Redis restarted mid-run: the instances recover and order holds afterwards.
 */
import assert from "node:assert/strict";
import { ROLES } from "../tools/compile.ts";
import { type ChatServer, startChatServer } from "../chat_server.ts";
import { connectRedisRoomLog } from "../lib/room_log_redis.ts";
import { captureLog, haveTool, LineClient, runDeno, Spawned, withTimeout } from "./helpers.ts";
import { startRedis } from "./redis_fixture.ts";

const hasNc = haveTool("nc");
const PERMISSIONS = ROLES.find((r) => r.name === "chat_server")?.permissions ?? [];

/** A chat server on the shared Redis. */
async function instance(url: string): Promise<{ server: Spawned; addr: Deno.NetAddr }> {
  const server = new Spawned([
    "run",
    ...PERMISSIONS,
    "chat_server.ts",
    "--port",
    "0",
    "--redis",
    url,
    "--history",
    "0",
    "--rate",
    "0",
    "--no-console",
  ]);
  const port = await server.port();
  return { server, addr: { transport: "tcp", hostname: "127.0.0.1", port } };
}

async function stopAll(servers: Spawned[]): Promise<void> {
  for (const server of servers) {
    try {
      server.child.kill("SIGTERM");
    } catch {
      // already gone
    }
    await server.exit().catch(() => {});
  }
}

/** Joins and returns the client with its guest name. */
async function join(addr: Deno.NetAddr): Promise<{ client: LineClient; name: string }> {
  const client = await LineClient.connect(addr);
  const welcome = await client.readLine() ?? "";
  const name = welcome.match(/^\* Welcome to the chat, (guest-\d+)!/)?.[1];
  assert.ok(name, welcome);
  await client.readLine(); // who else is here
  return { client, name };
}

Deno.test("scale out: Redis down at start is one line, exit 1", async () => {
  const run = await runDeno([
    "run",
    ...PERMISSIONS,
    "chat_server.ts",
    "--port",
    "0",
    "--redis",
    "redis://127.0.0.1:1",
  ]);
  assert.equal(run.code, 1, run.stderr);
  assert.equal(run.stderr.trim().split("\n").length, 1, run.stderr);
  assert.match(run.stderr, /^chat_server\.ts: cannot reach Redis at redis:\/\/127\.0\.0\.1:1/);
});

Deno.test({
  name: "scale out: 3 instances, 30 clients (TCP, nc, chat_client): every message once, one order",
  ignore: !hasNc,
  async fn() {
    const redis = await startRedis();
    if (!redis) return;
    const servers: Spawned[] = [];
    const clients: { close(): void }[] = [];
    const watchers: Spawned[] = [];
    try {
      const nodes = await Promise.all([0, 1, 2].map(() => instance(redis.url)));
      servers.push(...nodes.map((n) => n.server));
      // 24 raw TCP members, 8 per instance.
      const members: { client: LineClient; name: string }[] = [];
      for (let i = 0; i < 24; i++) {
        const m = await join(nodes[i % 3].addr);
        clients.push(m.client);
        members.push(m);
      }
      // 3 nc and 3 chat_client members, one of each per instance, reading only.
      for (const node of nodes) {
        const nc = new Spawned(["127.0.0.1", String(node.addr.port)], { command: "nc" });
        const cc = new Spawned([
          "run",
          "-N",
          "chat_client.ts",
          "--port",
          String(node.addr.port),
          "--no-color",
        ]);
        watchers.push(nc, cc);
        await nc.waitFor(/Welcome to the chat/, "stdout");
        await cc.waitFor(/Welcome to the chat/, "stdout");
      }
      // Everyone is in: /who anywhere lists all 30, once this server has seen the last join.
      let who = "";
      for (let asked = 0; asked < 50 && !/^\* 30 here: /.test(who); asked++) {
        await members[0].client.send("/who\n");
        who = (await members[0].client.readUntil(/^\* \d+ here: /)).at(-1) ?? "";
      }
      assert.match(who, /^\* 30 here: /, who);

      // Six senders, two per instance, 10 numbered lines each, interleaved.
      const senders = members.slice(0, 6);
      for (let seq = 0; seq < 10; seq++) {
        for (const s of senders) await s.client.send(`seq ${seq} from ${s.name}\n`);
      }
      const expected = senders.length * 10;
      const orders: string[][] = [];
      for (const m of members) {
        const own = senders.includes(m) ? 10 : 0;
        const got: string[] = [];
        while (got.length < expected - own) {
          const line = await m.client.readLine(10000).catch((e) => {
            throw new Error(
              `${m.name} got ${got.length} of ${expected - own}: ${got.join(" | ")}; ${e}`,
            );
          });
          if (line === null) throw new Error(`${m.name} was cut off`);
          if (/: seq \d+ from /.test(line)) got.push(line);
        }
        assert.equal(new Set(got).size, got.length, `${m.name} got a duplicate`);
        orders.push(got);
      }
      // One order: every member's list, with its own lines taken out of the others', agrees.
      const reference = orders.find((_, i) => !senders.includes(members[i])) ?? [];
      assert.equal(reference.length, expected);
      for (const [i, got] of orders.entries()) {
        const mine = members[i].name;
        assert.deepEqual(got, reference.filter((l) => !l.startsWith(`${mine}:`)), mine);
      }
      for (const w of watchers) {
        const last = reference.at(-1) ?? "";
        await w.waitFor(new RegExp(`${last.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`), "stdout");
        const seen = w.stdoutLines.filter((l) => /: seq \d+ from /.test(l))
          .map((l) => l.replace(/^.*?(guest-\d+: seq)/, "$1"));
        assert.deepEqual(seen, reference, "nc and chat_client see the same order");
      }
    } finally {
      for (const w of watchers) {
        w.child.kill("SIGTERM");
        await w.exit().catch(() => {});
      }
      for (const c of clients) c.close();
      await stopAll(servers);
      await redis.stop();
    }
  },
});

Deno.test("scale out: names across instances, /msg across, a killed instance leaves, Redis restart", async () => {
  const redis = await startRedis();
  if (!redis) return;
  const servers: Spawned[] = [];
  const clients: LineClient[] = [];
  try {
    const [a, b, c] = await Promise.all([0, 1, 2].map(() => instance(redis.url)));
    servers.push(a.server, b.server, c.server);
    const ann = await join(a.addr);
    const bob = await join(b.addr);
    const cat = await join(c.addr);
    clients.push(ann.client, bob.client, cat.client);
    await ann.client.readUntil(new RegExp(`^\\* ${cat.name} joined$`));
    await bob.client.readUntil(new RegExp(`^\\* ${cat.name} joined$`));

    // A name taken on one instance is taken on every instance, ignoring case.
    await ann.client.send("/nick Ada\n");
    assert.equal(await ann.client.readLine(), "* you are now known as Ada");
    await bob.client.readUntil(new RegExp(`^\\* ${ann.name} is now known as Ada$`));
    await bob.client.send("/nick ADA\n");
    assert.equal(await bob.client.readLine(), "* the name ADA is taken");

    // /msg to a member on another instance, and back.
    await bob.client.send("/msg ada across servers\n");
    assert.equal(await bob.client.readLine(), "* (private to ada) across servers");
    assert.equal(await ann.client.readLine(), `${bob.name} (private): across servers`);
    await cat.client.send("/nick Cy\n");
    await cat.client.readUntil(/^\* you are now known as Cy$/);
    await ann.client.readUntil(/ is now known as Cy$/);
    await bob.client.readUntil(/ is now known as Cy$/);

    // SIGKILL: no goodbye from it. Its member leaves for everyone, and its name is free again.
    c.server.child.kill("SIGKILL");
    await c.server.exit().catch(() => {});
    await ann.client.readUntil(/^\* Cy disconnected$/, 20000);
    await bob.client.readUntil(/^\* Cy disconnected$/, 20000);
    await bob.client.send("/nick cy\n");
    assert.equal(await bob.client.readLine(), "* you are now known as cy");
    await ann.client.readUntil(new RegExp(`^\\* ${bob.name} is now known as cy$`));

    // Redis restarted: each instance tells its members once, serves them, and recovers.
    await redis.restart();
    assert.match(await ann.client.readLine(15000) ?? "", /link to the other chat servers is lost/);
    assert.match(await bob.client.readLine(15000) ?? "", /link to the other chat servers is lost/);
    await ann.client.readUntil(/link to the other chat servers is back/, 20000);
    await bob.client.readUntil(/link to the other chat servers is back/, 20000);
    // Order holds afterwards: both see each other's lines, in the order sent.
    for (let i = 0; i < 5; i++) {
      await ann.client.send(`after ${i}\n`);
      await bob.client.send(`reply ${i}\n`);
    }
    const annSaw = await ann.client.readUntil(/^cy: reply 4$/, 10000);
    const bobSaw = await bob.client.readUntil(/^Ada: after 4$/, 10000);
    assert.deepEqual(
      annSaw.filter((l) => /^cy: reply/.test(l)),
      [0, 1, 2, 3, 4].map((i) => `cy: reply ${i}`),
    );
    assert.deepEqual(
      bobSaw.filter((l) => /^Ada: after/.test(l)),
      [0, 1, 2, 3, 4].map((i) => `Ada: after ${i}`),
    );
    assert.ok(
      a.server.stderrLines.filter((l) => /Room log lost/.test(l)).length === 1,
      "lost is logged once",
    );
  } finally {
    for (const client of clients) client.close();
    await stopAll(servers);
    await withTimeout(redis.stop(), 10000, "redis to stop");
  }
});

Deno.test("scale out: the welcome lists who is on other servers; /kick reaches them", async () => {
  const redis = await startRedis();
  if (!redis) return;
  const servers: ChatServer[] = [];
  const clients: LineClient[] = [];
  try {
    for (let i = 0; i < 2; i++) {
      const roomLog = await connectRedisRoomLog({ url: redis.url, history: 0 });
      servers.push(startChatServer({ port: 0, history: 0, roomLog, logger: captureLog().logger }));
    }
    const ann = await LineClient.connect(servers[0].addr);
    clients.push(ann);
    const annName = (await ann.readLine())?.match(/guest-\d+/)?.[0];
    assert.equal(await ann.readLine(), "* You are the only one here.");
    const bob = await LineClient.connect(servers[1].addr);
    clients.push(bob);
    const bobName = (await bob.readLine())?.match(/guest-\d+/)?.[0];
    assert.equal(await bob.readLine(), `* 1 other here: ${annName}`);
    assert.equal(await ann.readLine(), `* ${bobName} joined`);
    // The operator of the first server removes a member of the second.
    assert.ok(servers[0].room.kick(String(bobName)));
    assert.deepEqual(await bob.readToEnd(), [`* You were removed from the room by Server.`]);
    assert.equal(await ann.readLine(), `* ${bobName} was removed by Server`);
    assert.equal(servers[1].room.size, 0);
    assert.equal(servers[0].room.kick("nobody-here"), false);
  } finally {
    for (const client of clients) client.close();
    for (const server of servers) await server.close();
    await redis.stop();
  }
});

Deno.test("scale out: lines sent before the room-wide guest name arrives are kept, in order", async () => {
  const redis = await startRedis();
  if (!redis) return;
  const roomLog = await connectRedisRoomLog({ url: redis.url, history: 0 });
  const server = startChatServer({
    port: 0,
    history: 0,
    rate: 0,
    roomLog,
    logger: captureLog().logger,
  });
  const clients: LineClient[] = [];
  try {
    const watcher = await LineClient.connect(server.addr);
    clients.push(watcher);
    await watcher.readUntil(/^\* You are the only one here\.$/);
    // Everything in the first packet, before the server has a name for this client.
    const client = await LineClient.connect(server.addr);
    clients.push(client);
    await client.send("/nick eager\nfirst\nsecond\n");
    await client.readUntil(/^\* you are now known as eager$/);
    const seen = await watcher.readUntil(/^eager: second$/);
    assert.deepEqual(seen.slice(-2), ["eager: first", "eager: second"]);
  } finally {
    for (const c of clients) c.close();
    await server.close();
    await redis.stop();
  }
});
