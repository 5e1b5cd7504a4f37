#!/usr/bin/env -S deno run --allow-run --allow-read --allow-write=bench --allow-net=127.0.0.1
/**
 * The benchmark: drives both servers over loopback next to bare baselines and prints one
 * table; the figures also go to `bench/results.json`.
 *
 * ```sh
 * deno task bench                  # about 6 minutes
 * deno task bench --duration 2     # seconds per run (default 3)
 * deno task bench --only redis     # some sections: echo, chat, redis, memory (comma-separated)
 * ```
 *
 * The load comes from `bench/loadgen.c` (compiled here with `cc`): a single-threaded epoll
 * client that costs far less CPU per request than the servers, so on two cores the server
 * under test is the limit. Beside every figure: the server's CPU and the load generator's,
 * so a reader can check which one was the limit. Every server is a fresh process per run.
 * In the mixed chat run, some of the room's members are WebSockets (`bench/ws_members.ts`).
 *
 * The `redis` rows share one room over 1, 2 and 3 `chat_server.ts --redis` processes on one
 * `redis-server` that the bench starts on a free loopback port (no persistence) and empties
 * before every run; the load generator spreads the members round-robin over the instances'
 * ports. Without `redis-server` on the PATH those rows are skipped with one line saying so.
 * `--only redis` runs them beside the in-memory chat_server.ts rows they are compared with.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { ROLES } from "../tools/compile.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const BUILD = `${ROOT}bench/.build`;

interface Server {
  /** What is measured. */
  label: string;
  /** `deno` arguments, without the port. */
  args: string[];
  /** Also serve chat_server.ts's WebSocket (`--web-port`) on a free port. */
  web?: boolean;
}

function permissionsOf(role: string): string[] {
  const found = ROLES.find((r) => r.name === role);
  if (!found) throw new Error(`no role ${role}`);
  return found.permissions;
}

const ECHO_OURS = (keepAlive: boolean): Server => ({
  label: "server.ts",
  args: [
    "run",
    ...permissionsOf("server"),
    `${ROOT}server.ts`,
    "--quiet",
    "--idle-timeout",
    "0",
    "--max-connections",
    "100000",
    "--max-per-address",
    "0", // every load comes from 127.0.0.1
    ...(keepAlive ? ["--keep-alive"] : []),
    "--port",
  ],
});
const ECHO_BARE = (keepAlive: boolean): Server => ({
  label: "bare echo",
  args: [
    "run",
    "--allow-net",
    `${ROOT}bench/echo_baseline.ts`,
    ...(keepAlive ? ["--keep-alive"] : []),
  ],
});
const CHAT_OURS: Server = {
  label: "chat_server.ts",
  args: [
    "run",
    ...permissionsOf("chat_server"),
    `${ROOT}chat_server.ts`,
    "--quiet",
    "--no-console",
    "--rate",
    "0",
    "--max-clients",
    "100000",
    "--max-per-address",
    "0", // every load comes from 127.0.0.1
    "--port",
  ],
};
/** The chat server sharing its room through the Redis at `url`: CHAT_OURS plus `--redis`. */
const CHAT_REDIS = (url: string): Server => ({
  label: "chat_server.ts --redis",
  args: [...CHAT_OURS.args.slice(0, -1), "--redis", url, "--port"],
});
/** How many instances share the room on one Redis, a row each. */
const REDIS_INSTANCES = [1, 2, 3];
/** The chat server with its WebSocket too, for the run with members on the web. */
const CHAT_WEB: Server = { ...CHAT_OURS, web: true };
/** Members on the WebSocket in that run (of 100). */
const WEB_MEMBERS = 20;
const CHAT_BARE: Server = {
  label: "bare chat",
  args: ["run", "--allow-net", `${ROOT}bench/chat_baseline.ts`],
};

/** Picks a free port (listen on 0, read it, close). */
function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  return port;
}

/** A file under /proc (Deno lets only --allow-all read /proc, so `cat` reads it). */
async function readProc(path: string): Promise<string> {
  const out = await new Deno.Command("cat", { args: [path], stdout: "piped", stderr: "null" })
    .output();
  return new TextDecoder().decode(out.stdout);
}

/** CPU seconds (user + system) a process has used. */
async function cpuSeconds(pid: number): Promise<number> {
  const fields = (await readProc(`/proc/${pid}/stat`)).split(") ")[1]?.split(" ") ?? [];
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks
}

/** Resident memory of a process in KiB. */
async function rssKiB(pid: number): Promise<number> {
  return Number((await readProc(`/proc/${pid}/status`)).match(/VmRSS:\s+(\d+)/)?.[1]);
}

interface Running {
  pid: number;
  port: number;
  /** The WebSocket's port, if `web`; else 0. */
  webPort: number;
  /** It accepted a connection on every port within the wait. */
  listening: boolean;
  stop(): Promise<void>;
}

/** Whether `port` accepts a connection within `tries` attempts 25 ms apart. */
async function accepts(port: number, tries: number): Promise<boolean> {
  for (let i = 0; i < tries; i++) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return true;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }
  return false;
}

/** Starts a server on a free port, with the open-file limit raised, and waits until it accepts. */
async function start(server: Server): Promise<Running> {
  const port = freePort();
  let webPort = 0;
  while (server.web && (webPort === 0 || webPort === port)) webPort = freePort();
  const deno = Deno.execPath();
  // `ulimit -n` as high as the hard limit allows: 10,000 connections need 10,000 descriptors.
  const child = new Deno.Command("sh", {
    args: [
      "-c",
      'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$@"',
      "sh",
      deno,
      ...server.args,
      String(port),
      ...(webPort ? ["--web-port", String(webPort)] : []),
    ],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  let listening = true;
  for (const each of webPort ? [port, webPort] : [port]) {
    if (!(await accepts(each, 200))) listening = false;
  }
  return {
    pid: child.pid,
    port,
    webPort,
    listening,
    async stop() {
      try {
        child.kill("SIGKILL");
      } catch {
        // already gone
      }
      await child.status;
    },
  };
}

let loadgenPath = "";

async function buildLoadgen(): Promise<void> {
  await Deno.mkdir(BUILD, { recursive: true });
  loadgenPath = `${BUILD}/loadgen`;
  const out = await new Deno.Command("cc", {
    args: ["-O2", "-o", loadgenPath, `${ROOT}bench/loadgen.c`],
    stderr: "piped",
  }).output().catch(() => null);
  if (!out || out.code !== 0) {
    console.error("bench.ts: needs a C compiler (cc) for the load generator: apt-get install gcc");
    Deno.exit(1);
  }
}

type Json = Record<string, number>;

/** Runs per echo configuration, ours and bare taking turns. */
const REPEATS = 3;

/** The run with the median requests/s. */
function median(runs: Json[]): Json {
  return [...runs].sort((a, b) => a.rps - b.rps)[Math.floor(runs.length / 2)];
}

async function loadgen(args: string[]): Promise<Json> {
  const out = await new Deno.Command(loadgenPath, { args, stdout: "piped", stderr: "piped" })
    .output();
  return JSON.parse(new TextDecoder().decode(out.stdout));
}

/** Runs `args` against a fresh `server`, with the server's CPU use over the run. */
async function measure(server: Server, args: (port: number) => string[]): Promise<Json> {
  const running = await start(server);
  try {
    const cpu0 = await cpuSeconds(running.pid);
    const t0 = performance.now();
    const result = await loadgen(args(running.port));
    const wall = (performance.now() - t0) / 1000;
    result.server_cpu_s = (await cpuSeconds(running.pid)) - cpu0;
    result.wall_s = wall;
    return result;
  } finally {
    await running.stop();
  }
}

/** A `redis-server` started by the bench. */
interface RedisServer {
  pid: number;
  port: number;
  /** `redis://127.0.0.1:PORT`, for `--redis`. */
  url: string;
  /** `redis-server --version`'s `v=`. */
  version: string;
  stop(): Promise<void>;
}

/** One command to the Redis on `port` (RESP over TCP); the first line of its reply (`+OK`). */
async function redisCommand(port: number, ...args: string[]): Promise<string> {
  const encoder = new TextEncoder();
  const request = encoder.encode(
    `*${args.length}\r\n` +
      args.map((arg) => `$${encoder.encode(arg).length}\r\n${arg}\r\n`).join(""),
  );
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    for (let off = 0; off < request.length;) off += await conn.write(request.subarray(off));
    const decoder = new TextDecoder();
    const buf = new Uint8Array(4096);
    let text = "";
    while (!text.includes("\r\n")) {
      const n = await conn.read(buf);
      if (n === null) break;
      text += decoder.decode(buf.subarray(0, n), { stream: true });
    }
    return text.split("\r\n")[0];
  } finally {
    conn.close();
  }
}

/**
 * Starts `redis-server` on a free loopback port, without persistence, and waits until it
 * answers PING; or says in a few words why it could not.
 */
async function startRedis(): Promise<RedisServer | string> {
  let version: string;
  try {
    const out = await new Deno.Command("redis-server", {
      args: ["--version"],
      stdout: "piped",
      stderr: "null",
    }).output();
    version = new TextDecoder().decode(out.stdout).match(/v=(\S+)/)?.[1] ?? "unknown";
  } catch {
    return "redis-server is not on the PATH (apt-get install redis-server)";
  }
  const port = freePort();
  const child = new Deno.Command("redis-server", {
    args: ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  const stop = async (): Promise<void> => {
    try {
      child.kill("SIGTERM");
    } catch {
      // already gone
    }
    await child.status;
  };
  for (let i = 0; i < 200; i++) {
    if (await redisCommand(port, "PING").catch(() => "") === "+PONG") {
      return { pid: child.pid, port, url: `redis://127.0.0.1:${port}`, version, stop };
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  await stop();
  return `redis-server ${version} did not answer PING on 127.0.0.1:${port} within 5 s`;
}

/**
 * Runs `args` (given the instances' ports, comma-separated) against `instances` fresh
 * `chat_server.ts --redis` processes sharing one room on `redis`, emptied first so runs do
 * not see each other. `server_cpu_s` is the instances' CPU summed, each in `instance_cpu_s`;
 * `redis_cpu_s` is redis-server's.
 */
async function measureRedis(
  redis: RedisServer,
  instances: number,
  args: (ports: string) => string[],
): Promise<{ result: Json; instanceCpu: number[] }> {
  const flushed = await redisCommand(redis.port, "FLUSHALL");
  if (flushed !== "+OK") throw new Error(`FLUSHALL answered ${JSON.stringify(flushed)}`);
  const running: Running[] = [];
  try {
    for (let i = 0; i < instances; i++) {
      const instance = await start(CHAT_REDIS(redis.url));
      running.push(instance);
      // Loading the Redis client and connecting may take longer than an in-memory start.
      if (!instance.listening && !(await accepts(instance.port, 400))) {
        throw new Error(
          `instance ${i + 1} of ${instances} (chat_server.ts --redis ${redis.url}) is not ` +
            `listening on port ${instance.port}: try it by hand (is npm:@redis/client cached?)`,
        );
      }
    }
    const pids = running.map((r) => r.pid);
    const cpu0 = await Promise.all(pids.map(cpuSeconds));
    const redisCpu0 = await cpuSeconds(redis.pid);
    const t0 = performance.now();
    const result = await loadgen(args(running.map((r) => r.port).join(",")));
    const wall = (performance.now() - t0) / 1000;
    const instanceCpu = (await Promise.all(pids.map(cpuSeconds))).map((cpu, i) => cpu - cpu0[i]);
    result.server_cpu_s = instanceCpu.reduce((a, b) => a + b, 0);
    result.redis_cpu_s = (await cpuSeconds(redis.pid)) - redisCpu0;
    result.wall_s = wall;
    return { result, instanceCpu };
  } finally {
    for (const instance of running) await instance.stop();
  }
}

/**
 * The chat run with `web` of its members on the WebSocket: `bench/ws_members.ts` joins them
 * all, then the load generator (`args`, stamping lines with CLOCK_REALTIME) runs its TCP
 * members; when it is done, the web members are told how many lines were sent and stop.
 * Both results carry the server's CPU use; each its own generator's as `loadgen_cpu_s`.
 */
async function measureWeb(
  args: (port: number) => string[],
  web: number,
  senders: number,
  rate: number,
  duration: number,
): Promise<{ tcp: Json; web: Json }> {
  const running = await start(CHAT_WEB);
  const members = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net=127.0.0.1",
      `${ROOT}bench/ws_members.ts`,
      ...[running.webPort, web, duration, senders, rate].map(String),
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const reader = members.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  const line = async (n: number): Promise<Json> => {
    while (text.split("\n").length <= n) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`ws_members.ts stopped early: ${JSON.stringify(text)}`);
      text += value;
    }
    return JSON.parse(text.split("\n")[n - 1]);
  };
  try {
    const { ready } = await line(1);
    if (ready !== web) throw new Error(`only ${ready} of ${web} WebSocket members joined`);
    const cpu0 = await cpuSeconds(running.pid);
    const webCpu0 = await cpuSeconds(members.pid);
    const t0 = performance.now();
    const tcp = await loadgen([...args(running.port), "realtime"]);
    const wall = (performance.now() - t0) / 1000;
    const serverCpu = (await cpuSeconds(running.pid)) - cpu0;
    const webCpu = (await cpuSeconds(members.pid)) - webCpu0;
    const writer = members.stdin.getWriter();
    await writer.write(new TextEncoder().encode(`${tcp.sent}\n`));
    await writer.close();
    const result = await line(2);
    return {
      tcp: { ...tcp, server_cpu_s: serverCpu, wall_s: wall },
      web: { ...result, loadgen_cpu_s: webCpu, server_cpu_s: serverCpu, wall_s: wall },
    };
  } finally {
    try {
      members.kill("SIGKILL");
    } catch {
      // already gone
    }
    await reader.cancel().catch(() => {});
    await members.status;
    await running.stop();
  }
}

/** RSS of `server` holding `count` idle connections (greeted ones, for the chat). */
async function memory(server: Server, count: number, greet: boolean): Promise<Json> {
  const running = await start(server);
  try {
    await new Promise((resolve) => setTimeout(resolve, 300)); // let start-up settle
    if (count === 0) return { held: 0, rss_kib: await rssKiB(running.pid) };
    const child = new Deno.Command(loadgenPath, {
      args: ["idle", String(running.port), String(count), "60", ...(greet ? ["greet"] : [])],
      stdin: "piped",
      stdout: "piped",
      stderr: "null",
    }).spawn();
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    while (!text.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) break;
      text += value;
    }
    const held = JSON.parse(text.split("\n")[0]);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const result = { ...held, rss_kib: await rssKiB(running.pid) };
    await child.stdin.close();
    reader.releaseLock();
    await child.stdout.cancel().catch(() => {});
    await child.status;
    return result;
  } finally {
    await running.stop();
  }
}

const fmt = (n: number, digits = 0): string =>
  Number.isFinite(n) ? n.toLocaleString("en-US", { maximumFractionDigits: digits }) : "-";
const pct = (cpu: number, wall: number): string =>
  Number.isFinite(cpu / wall) ? `${fmt((cpu / wall) * 100)}%` : "-";

/**
 * The chat fan-out table: chat_server.ts in memory; with `withChat`, the bare baseline and the
 * mixed run too; with `redis`, the room shared over 1, 2 and 3 instances on it.
 */
async function chatTable(
  duration: number,
  withChat: boolean,
  redis: RedisServer | null,
  results: Record<string, unknown>,
  print: (line: string) => void,
): Promise<void> {
  const chat: unknown[] = [];
  const chatRedis: unknown[] = [];
  let redisFailed = "";
  print("");
  print(
    "Chat fan-out (10 senders, server --rate 0): deliveries/s, end-to-end latency (ms), lost/dup/reordered",
  );
  if (withChat) {
    print(
      `mixed: chat_server.ts with ${WEB_MEMBERS} of the 100 members on its WebSocket ` +
        "(bench/ws_members.ts, its CPU under gen); the senders are TCP members",
    );
  }
  if (redis) {
    print(
      `redis xN: one room over N chat_server.ts --redis on one redis-server ${redis.version} ` +
        "(started here, FLUSHALL before each run); members round-robin over the N ports;",
    );
    print(
      "  srv = the N instances' CPU summed (100% = one core), redis = redis-server's CPU; " +
        `on ${navigator.hardwareConcurrency} cores the load generator, the N instances and ` +
        "redis-server all share them",
    );
  }
  print(
    "server          clients rate/s  offered/s  delivered/s   p50     p99  lost dup reord   srv   gen" +
      (redis ? " redis" : ""),
  );
  const row = (label: string, clients: number, rate: number, r: Json): void =>
    print(
      `${label.padEnd(15)} ${String(clients).padStart(7)} ${String(rate).padStart(6)} ` +
        `${fmt(r.offered_per_s).padStart(10)} ${fmt(r.deliveries_per_s).padStart(12)} ` +
        `${fmt(r.p50_ms, 2).padStart(6)} ${fmt(r.p99_ms, 2).padStart(7)} ${
          fmt(r.lost).padStart(5)
        } ` +
        `${fmt(r.duplicated).padStart(3)} ${fmt(r.reordered).padStart(5)} ` +
        `${pct(r.server_cpu_s, r.wall_s).padStart(5)} ${
          pct(r.loadgen_cpu_s, r.wall_s).padStart(5)
        }` +
        (r.redis_cpu_s === undefined ? "" : ` ${pct(r.redis_cpu_s, r.wall_s).padStart(5)}`),
    );
  for (const [clients, rate] of [[100, 1000], [1000, 100]]) {
    const args = (members: number) => (port: number | string): string[] => [
      "chat",
      String(port),
      String(members),
      String(duration),
      "10",
      String(rate),
    ];
    for (const server of withChat ? [CHAT_OURS, CHAT_BARE] : [CHAT_OURS]) {
      const r = await measure(server, args(clients));
      chat.push({ server: server.label, clients, rate, ...r });
      row(server.label, clients, rate, r);
      if (server !== CHAT_OURS || !redis || redisFailed) continue;
      for (const instances of REDIS_INSTANCES) {
        const label = `redis x${instances}`;
        let measured;
        try {
          measured = await measureRedis(redis, instances, args(clients));
        } catch (error) {
          // One line, and the rest of the bench goes on without these rows.
          redisFailed = `${label} failed, the other Redis rows are skipped: ${
            error instanceof Error ? error.message : String(error)
          }`;
          print(redisFailed);
          break;
        }
        const { result, instanceCpu } = measured;
        chatRedis.push({
          server: label,
          instances,
          redis_server: redis.version,
          clients,
          rate,
          ...result,
          instance_cpu_s: instanceCpu,
        });
        row(label, clients, rate, result);
      }
    }
    if (clients !== 100 || !withChat) continue;
    // The same load with some members on the WebSocket: one room, two transports.
    const { tcp, web } = await measureWeb(
      args(clients - WEB_MEMBERS),
      WEB_MEMBERS,
      10,
      rate,
      duration,
    );
    const sum = (key: string): number => tcp[key] + web[key];
    const total: Json = {
      offered_per_s: sum("offered_per_s"),
      deliveries_per_s: sum("deliveries_per_s"),
      lost: sum("lost"),
      duplicated: sum("duplicated"),
      reordered: sum("reordered"),
      errors: sum("errors"),
      server_cpu_s: tcp.server_cpu_s,
      loadgen_cpu_s: sum("loadgen_cpu_s"),
      wall_s: tcp.wall_s,
    };
    row("mixed: TCP", clients - WEB_MEMBERS, rate, { ...tcp, server_cpu_s: NaN });
    row("mixed: web", WEB_MEMBERS, rate, { ...web, server_cpu_s: NaN });
    row("mixed: total", clients, rate, total);
    results.chat_web = {
      server: CHAT_WEB.label,
      clients,
      tcp_members: clients - WEB_MEMBERS,
      web_members: WEB_MEMBERS,
      rate,
      tcp,
      web,
      total,
    };
  }
  results.chat = chat;
  if (redis) {
    results.chat_redis = redisFailed ? { rows: chatRedis, failed: redisFailed } : chatRedis;
  }
}

/** What `--only` can pick; all of them by default. */
const SECTIONS = ["echo", "chat", "redis", "memory"];

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: { duration: { type: "string", default: "3" }, only: { type: "string" } },
  });
  const duration = Math.max(1, Math.min(60, Number(values.duration) || 3));
  const only = values.only ?? SECTIONS.join(",");
  const sections = new Set(only.split(",").map((name) => name.trim()).filter(Boolean));
  const unknown = [...sections].filter((name) => !SECTIONS.includes(name));
  if (unknown.length > 0 || sections.size === 0) {
    console.error(
      `bench.ts: --only takes some of ${SECTIONS.join(",")} (comma-separated), not '${only}'`,
    );
    Deno.exit(2);
  }
  const command = `deno task bench --duration ${duration}${values.only ? ` --only ${only}` : ""}`;
  await buildLoadgen();
  const cpuModel = (await readProc("/proc/cpuinfo"))
    .match(/model name\s*:\s*(.*)/)?.[1] ?? "unknown CPU";
  const machine = `${navigator.hardwareConcurrency} cores, ${cpuModel}, Deno ${Deno.version.deno}`;
  const results: Record<string, unknown> = {
    command,
    machine,
    duration,
    date: new Date().toISOString(),
  };
  const print = (line: string): void => console.log(line);
  print(`Machine: ${machine}`);
  print(`Command: ${command}`);

  if (sections.has("echo")) {
    const echo: unknown[] = [];
    print("");
    print(
      "Echo: requests/s, latency p50/p99 (ms), server CPU, load generator CPU; ratio = ours / bare;" +
        ` median of ${REPEATS} runs, ours and bare taking turns`,
    );
    print(
      "mode        conns  server.ts rps   p50    p99   srv   gen | bare rps   p50    p99   srv   gen | ratio",
    );
    for (const keepAlive of [false, true]) {
      for (const conns of [1, 16, 64, 256]) {
        const mode = keepAlive ? "echo-keepalive" : "echo-oneshot";
        const args = (
          port: number,
        ): string[] => [mode, String(port), String(conns), String(duration)];
        // Ours and bare take turns, REPEATS times; the median run of each is reported, since a
        // shared machine's speed drifts from one run to the next.
        const oursRuns: Json[] = [];
        const bareRuns: Json[] = [];
        for (let run = 0; run < REPEATS; run++) {
          oursRuns.push(await measure(ECHO_OURS(keepAlive), args));
          bareRuns.push(await measure(ECHO_BARE(keepAlive), args));
        }
        const ours = median(oursRuns);
        const bare = median(bareRuns);
        const ratio = ours.rps / bare.rps;
        const runs = { ours: oursRuns.map((r) => r.rps), bare: bareRuns.map((r) => r.rps) };
        echo.push({ mode: keepAlive ? "keep-alive" : "one-shot", conns, ours, bare, ratio, runs });
        print(
          `${(keepAlive ? "keep-alive" : "one-shot").padEnd(10)} ${String(conns).padStart(5)}  ` +
            `${fmt(ours.rps).padStart(12)} ${fmt(ours.p50_ms, 2).padStart(5)} ${
              fmt(ours.p99_ms, 2).padStart(6)
            } ` +
            `${pct(ours.server_cpu_s, ours.wall_s).padStart(5)} ${
              pct(ours.loadgen_cpu_s, ours.wall_s).padStart(5)
            } | ` +
            `${fmt(bare.rps).padStart(8)} ${fmt(bare.p50_ms, 2).padStart(5)} ${
              fmt(bare.p99_ms, 2).padStart(6)
            } ` +
            `${pct(bare.server_cpu_s, bare.wall_s).padStart(5)} ${
              pct(bare.loadgen_cpu_s, bare.wall_s).padStart(5)
            } | ` +
            `${fmt(ratio * 100)}%`,
        );
      }
    }
    results.echo = echo;
  }

  // The chat table: with "chat", what it always had; with "redis", the rows of one room on
  // Redis, right after the in-memory chat_server.ts rows they are compared with.
  const withChat = sections.has("chat");
  let redis: RedisServer | null = null;
  if (sections.has("redis")) {
    const started = await startRedis();
    if (typeof started === "string") {
      print("");
      print(`Chat on Redis: rows skipped: ${started}`);
      results.chat_redis = { skipped: started };
    } else {
      redis = started;
    }
  }
  if (withChat || redis) {
    try {
      await chatTable(duration, withChat, redis, results, print);
    } finally {
      await redis?.stop();
    }
  }

  if (sections.has("memory")) {
    const mem: unknown[] = [];
    print("");
    print(
      "Memory: resident KiB with idle connections (held/asked), KiB per connection above the empty server",
    );
    print("server          0 conns    1,000 conns     10,000 conns    KiB/conn at 10,000");
    for (
      const [server, greet] of [
        [ECHO_OURS(false), false],
        [ECHO_BARE(false), false],
        [CHAT_OURS, true],
        [CHAT_BARE, true],
      ] as const
    ) {
      const points = [];
      for (const count of [0, 1000, 10000]) points.push(await memory(server, count, greet));
      const perConn = (points[2].rss_kib - points[0].rss_kib) / 10000;
      mem.push({ server: server.label, points, kib_per_connection: perConn });
      print(
        `${server.label.padEnd(15)} ${fmt(points[0].rss_kib).padStart(7)}  ` +
          `${fmt(points[1].rss_kib).padStart(8)} (${fmt(points[1].held)})  ` +
          `${fmt(points[2].rss_kib).padStart(8)} (${fmt(points[2].held)})  ${
            fmt(perConn, 1).padStart(10)
          }`,
      );
    }
    results.memory = mem;
  }

  await Deno.writeTextFile(`${ROOT}bench/results.json`, JSON.stringify(results, null, 2) + "\n");
  console.log(`\nResults in bench/results.json. Reproduce with: ${command}`);
}

if (import.meta.main) await main();
