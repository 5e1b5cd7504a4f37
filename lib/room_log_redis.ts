/**
 * The room log in Redis (`--redis URL`): one room spanning many `chat_server.ts` processes.
 *
 * The log is a Redis Stream, capped with `MAXLEN ~`: every instance appends to it and reads it
 * back on a connection of its own (`XREAD BLOCK` from the last ID it delivered), so every
 * member on every instance sees the same events in the same order, this instance's own
 * included (an append is never delivered at once, only when it comes back from the stream).
 * History for arrivals is the stream's tail, read at connect and then kept up in memory.
 *
 * Names are unique across instances: each is a key claimed atomically (`SET NX` in a script)
 * and held by a heartbeat that refreshes its TTL, so a crashed instance's names are free again
 * within the TTL; the first survivor to notice (`SET NX` on a marker) appends a `leave` for
 * each of its members, so everyone sees them go.
 *
 * The client is `npm:@redis/client` (node-redis), loaded by a dynamic `import()` only when a
 * Redis log is asked for, so the scripts still run offline on a bare `deno` without it.
 *
 * Needs a standalone Redis 6.2 or later (or a primary): the scripts below read keys they
 * do not declare, which Redis Cluster forbids.
 *
 * ## Keys (`chat` is the default prefix: the `room` option)
 *
 * | key                   | type   | what                                                       |
 * | --------------------- | ------ | ---------------------------------------------------------- |
 * | `chat:log`            | stream | the log: fields `o` origin, `s` its sequence, `x` except, `t` ms, `e` event JSON, `r` (a reaped instance) |
 * | `chat:name:{lower}`   | string | the instance holding the name; TTL `nameTtlMs`             |
 * | `chat:instance:{id}`  | string | the instance is alive (host, pid, start); TTL `nameTtlMs`  |
 * | `chat:members:{id}`   | hash   | name key → `{name, at}` of its members; TTL 6 × `nameTtlMs` |
 * | `chat:instances`      | zset   | every instance id, by start time                            |
 * | `chat:guests`         | string | the `guest-N` counter (`INCR`)                              |
 * | `chat:reaped:{id}`    | string | who appended the leaves of a dead instance (`SET NX`)       |
 *
 * ## While apart (Redis lost mid-run)
 *
 * The room is told once (`status("lost")`) and the instance goes on as a local room: while
 * apart, messages reach only this instance's members (an append is delivered here at once and
 * never goes to Redis later); others' messages from that time arrive after reconnection, in
 * stream order, as long as the stream still holds them (the last `maxLen` entries). The
 * engine reconnects with backoff (100 ms doubling to 5 s), claims its members' names again,
 * says `status("resumed")` and reads on from the last ID it delivered. An append whose
 * connection failed before Redis answered is delivered here at once too; if Redis did get it,
 * the others see it in the stream and this instance does not see it twice.
 *
 * Names claimed while apart are checked against this instance and the last known others
 * only; one that another instance took meanwhile stays with both members (the engine logs a
 * warning) until one of them leaves or is renamed. An instance apart for longer than the TTL
 * is taken for dead by the others, who see its members leave (`disconnected`); when it comes
 * back they are in `/who` again, without a join notice, and its own members never see those
 * leaves.
 *
 * @module
 */
import { FatalError } from "./cli.ts";
import type { ChatEvent } from "./chat_frames.ts";
import type { Logger } from "./log.ts";
import { errorText } from "./net.ts";
import {
  isHistory,
  type LogEntry,
  type LogSubscriber,
  type NewEntry,
  RecentHistory,
  type RoomDirectory,
  type RoomLog,
} from "./room_log.ts";
import type { AccountRecord, AccountStore } from "./accounts.ts";

/** The client, pinned: see the module doc. */
export const REDIS_CLIENT = "npm:@redis/client@6.3.1";

/** How to reach Redis and how to use it. */
export interface RedisLogOptions {
  /** `redis://[user:password@]host[:port][/db]` or `rediss://...` for TLS. */
  url: string;
  /** The prefix of every key: rooms with different prefixes share nothing. Default `chat`. */
  room?: string;
  /** How many history entries `recent()` keeps. */
  history: number;
  /** The stream's cap (approximate, `MAXLEN ~`). Default 10000. */
  maxLen?: number;
  /** How long a name outlives its instance's last heartbeat. Default 10000 ms. */
  nameTtlMs?: number;
  /** How long connecting may take before giving up. Default 3000 ms. */
  connectTimeoutMs?: number;
  /** Where reconnections, conflicts and reaped instances are logged. */
  logger?: Logger;
}

/** The few calls made on a client: raw commands only, so the adapter is this small. */
interface Connection {
  connect(): Promise<unknown>;
  sendCommand(args: string[]): Promise<unknown>;
  close(): Promise<unknown>;
  destroy(): void;
  on(event: "error" | "end", listener: (error?: unknown) => void): unknown;
}

/** Makes a client that has not connected yet, and says whether an error is Redis's answer. */
interface Driver {
  /** A client named `name` in `CLIENT LIST`. */
  create(name: string): Connection;
  isReply(error: unknown): boolean;
}

/** One pair of connections: commands, and the reader blocked in `XREAD`. */
interface Session {
  readonly cmd: Connection;
  readonly reader: Connection;
  alive: boolean;
  reading?: Promise<void>;
}

/** A name held by a member of this instance. */
interface Held {
  name: string;
  at: number;
}

/** A name held on another instance. */
interface Remote {
  name: string;
  instance: string;
  at: number;
}

const DEFAULT_PREFIX = "chat";
const DEFAULT_MAX_LEN = 10000;
const DEFAULT_NAME_TTL_MS = 10000;
const DEFAULT_CONNECT_MS = 3000;
const BACKOFF_FIRST_MS = 100;
const BACKOFF_MAX_MS = 5000;
const BLOCK_MS = 5000;
const READ_COUNT = 1000;
/** How many of this instance's appends, delivered here when Redis failed, are remembered. */
const APART_MEMORY = 10000;

/**
 * Claims a name: `KEYS` name key, members hash; `ARGV` instance, ttl, member JSON, hash ttl.
 * 1 when it is ours now (it was free, or ours already).
 */
const CLAIM = `
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('HSET', KEYS[2], KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return 1`;

/** Gives a name up if it is still ours: `KEYS` name key, members hash; `ARGV` instance. */
const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
redis.call('HDEL', KEYS[2], KEYS[1])
return 1`;

/**
 * The heartbeat: `KEYS` instance key, members hash, instances zset, then one name key per
 * held name; `ARGV` instance, ttl, meta, now, hash ttl, rewrite (1: the hash is rebuilt from
 * these names alone), then one member JSON per name key. Refreshes (or takes back) each name
 * unless another instance holds it; returns those.
 */
const HEARTBEAT = `
local id = ARGV[1]
redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[4], id)
if ARGV[6] == '1' then redis.call('DEL', KEYS[2]) end
local taken = {}
for i = 4, #KEYS do
  local holder = redis.call('GET', KEYS[i])
  if holder == false or holder == id then
    redis.call('SET', KEYS[i], id, 'PX', ARGV[2])
    redis.call('HSET', KEYS[2], KEYS[i], ARGV[i + 3])
  else
    taken[#taken + 1] = KEYS[i]
    redis.call('HDEL', KEYS[2], KEYS[i])
  end
end
if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('PEXPIRE', KEYS[2], ARGV[5]) end
return taken`;

/**
 * Who is where: `KEYS` instances zset; `ARGV` key prefix. For each instance: its id, whether
 * it is alive, and its members hash as a flat list.
 */
const SURVEY = `
local out = {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local alive = redis.call('EXISTS', ARGV[1] .. 'instance:' .. id)
  out[#out + 1] = {id, alive, redis.call('HGETALL', ARGV[1] .. 'members:' .. id)}
end
return out`;

/**
 * Takes on a dead instance once: `KEYS` its instance key, reaped marker, members hash,
 * instances zset, then the name keys it was last known to hold; `ARGV` us, its id, marker
 * ttl. Its members (a flat hash list), or false when it is alive again or another instance
 * got there first. Its names are freed now (a name claimed after its last heartbeat could
 * otherwise outlive it by a little), so whoever sees the leave can take the name.
 */
const REAP = `
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
if not redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[3]) then return false end
local members = redis.call('HGETALL', KEYS[3])
for i = 1, #members, 2 do
  if redis.call('GET', members[i]) == ARGV[2] then redis.call('DEL', members[i]) end
end
for i = 5, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[2] then redis.call('DEL', KEYS[i]) end
end
redis.call('DEL', KEYS[3])
redis.call('ZREM', KEYS[4], ARGV[2])
return members`;

/** Gives up everything on close: `KEYS` instance key, members hash, zset, name keys. */
const DEPART = `
for i = 4, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[1] then redis.call('DEL', KEYS[i]) end
end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('ZREM', KEYS[3], ARGV[1])
return 1`;

/** `redis://user:secret@host` shown as `redis://user:***@host`. */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z]+:\/\/[^:@/]*):[^@/]*@/i, "$1:***@");
}

/** Why a connection failed, in a few words. */
function reason(error: unknown, timeoutMs: number): string {
  const code = (error as { code?: unknown })?.code;
  // The client's error classes keep the name "Error": go by the class.
  const name = error instanceof Error ? error.constructor.name : "";
  const text = errorText(error).split("\n")[0];
  if (code === "ECONNREFUSED") return "connection refused";
  if (code === "ENOTFOUND" || code === "EAI_AGAIN") return "unknown host";
  if (code === "EHOSTUNREACH" || code === "ENETUNREACH") return "host unreachable";
  if (code === "ECONNRESET" || name === "SocketClosedUnexpectedlyError") {
    return "the connection was closed: is it a Redis server?";
  }
  if (name === "ConnectionTimeoutError" || error instanceof DeadlineError) {
    return `no answer within ${timeoutMs / 1000} s`;
  }
  return text;
}

/** A step that took too long. */
class DeadlineError extends Error {
  constructor(what: string) {
    super(`${what} timed out`);
    this.name = "DeadlineError";
  }
}

/** `promise`, or a {@linkcode DeadlineError} after `ms` (the timer is cleared either way). */
async function deadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new DeadlineError(what)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** A stream entry's `[field, value, ...]` as a map. */
function fieldMap(fields: unknown): Map<string, string> {
  const map = new Map<string, string>();
  if (!Array.isArray(fields)) return map;
  for (let i = 0; i + 1 < fields.length; i += 2) map.set(String(fields[i]), String(fields[i + 1]));
  return map;
}

/** `[[id, fields], ...]` from `XRANGE`/`XREVRANGE` (or one stream of `XREAD`). */
function streamEntries(reply: unknown): [string, unknown][] {
  if (!Array.isArray(reply)) return [];
  return reply.filter((item): item is [string, unknown] => Array.isArray(item))
    .map(([id, fields]) => [String(id), fields]);
}

/** Orders two stream IDs (`ms-seq`). */
function compareIds(a: string, b: string): number {
  const [ams, aseq] = a.split("-").map(Number);
  const [bms, bseq] = b.split("-").map(Number);
  return ams - bms || (aseq || 0) - (bseq || 0);
}

/** A random hex string of `bytes` bytes. */
function randomHex(bytes: number): string {
  return [...crypto.getRandomValues(new Uint8Array(bytes))]
    .map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** This host's name if we may ask (never prompting), else `deno`. */
function hostName(): string {
  try {
    if (Deno.permissions.querySync({ name: "sys", kind: "hostname" }).state === "granted") {
      return Deno.hostname().replace(/[^A-Za-z0-9._-]/g, "_");
    }
  } catch {
    // no such permission query here
  }
  return "deno";
}

/** Loads the client, or says in one line why it cannot be. */
async function loadDriver(url: string, connectMs: number): Promise<Driver> {
  let redis;
  try {
    redis = await import("npm:@redis/client@6.3.1");
  } catch (error) {
    throw new FatalError(
      `cannot load the Redis client ${REDIS_CLIENT} (${errorText(error).split("\n")[0]}): ` +
        `run once with network access (or deno cache) to fetch it`,
    );
  }
  const options = {
    url,
    RESP: 2 as const,
    // Reconnecting is ours to do (with backoff, resuming the stream): the client only fails.
    socket: { connectTimeout: connectMs, reconnectStrategy: false as const },
    disableOfflineQueue: true,
  };
  try {
    redis.createClient(options); // validates the URL; connects only on connect()
  } catch (error) {
    throw new FatalError(
      `bad --redis URL ${redactUrl(url)} (${errorText(error)}): use redis://HOST:PORT`,
    );
  }
  return {
    create: (name) => {
      const client: Connection = redis.createClient({ ...options, name });
      // The client's own errors are reported by us, once, in our words: never printed.
      client.on("error", () => {});
      return client;
    },
    isReply: (error) => error instanceof redis.ErrorReply,
  };
}

/** Opens a Redis room log, or throws a one-line {@linkcode FatalError}; see the module doc. */
export function connectRedisRoomLog(options: RedisLogOptions): Promise<RedisRoomLog> {
  return RedisRoomLog.connect(options);
}

/** The Redis room log; made by {@linkcode connectRedisRoomLog}. */
export class RedisRoomLog implements RoomLog {
  /** `host-pid-random`: unique to this process and this connection. */
  readonly instance: string;
  /** Names across every instance on this Redis. */
  readonly directory: RoomDirectory;
  /** Other instances share this log. */
  readonly shared = true;

  readonly #driver: Driver;
  readonly #url: string;
  readonly #prefix: string;
  readonly #maxLen: number;
  readonly #ttl: number;
  readonly #connectMs: number;
  readonly #logger: Logger | undefined;
  readonly #history: RecentHistory;
  readonly #started = Date.now();

  /** The connections in use: null while apart. */
  #session: Session | null = null;
  /** Clients connecting, and a session being set up (for close to end at once). */
  #dialing: Connection[] = [];
  #setup: Session | null = null;
  #subscriber: LogSubscriber | null = null;
  #closed = false;
  #closing: Promise<void> | null = null;
  /** The last stream ID delivered (or, before `open`, the tail at connect). */
  #lastId = "0-0";
  /** Appends of ours, by sequence, sent and not yet seen back nor confirmed. */
  readonly #inflight = new Map<string, NewEntry>();
  /** Appends of ours delivered here when Redis failed, in case the stream has them after all. */
  readonly #apart = new Set<string>();
  #seq = 0;
  #localSeq = 0;
  #lastGuest = 0;
  /** This instance's names. */
  readonly #held = new Map<string, Held>();
  /** Others' names, as last surveyed and kept up from the log since. */
  #others = new Map<string, Remote>();
  /** Membership entries delivered while a survey is out, to apply on top of its answer. */
  #overlay: LogEntry[] | null = null;
  /** Names another instance took while we were apart (warned about once). */
  readonly #conflicts = new Set<string>();
  #tickTimer: ReturnType<typeof setTimeout> | undefined;
  #ticking: Promise<void> | null = null;
  #lastBeat = 0;
  #backoffTimer: ReturnType<typeof setTimeout> | undefined;
  #wake: (() => void) | null = null;
  #reconnecting: Promise<void> | null = null;
  readonly #pending = new Set<Promise<unknown>>();

  private constructor(options: RedisLogOptions, driver: Driver) {
    this.#driver = driver;
    this.#url = redactUrl(options.url);
    this.#prefix = `${options.room ?? DEFAULT_PREFIX}:`;
    this.#maxLen = options.maxLen ?? DEFAULT_MAX_LEN;
    this.#ttl = Math.max(50, options.nameTtlMs ?? DEFAULT_NAME_TTL_MS);
    this.#connectMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_MS;
    this.#logger = options.logger;
    this.#history = new RecentHistory(options.history);
    this.instance = `${hostName()}-${Deno.pid}-${randomHex(3)}`;
    this.directory = {
      guestName: (taken) => this.#guest(taken),
      claim: (name) => this.#claim(name),
      release: (name) => this.#release(name),
      others: () => this.#othersNames(),
      elsewhere: (name) => this.#elsewhere(name),
    };
  }

  /** See {@linkcode connectRedisRoomLog}. */
  static async connect(options: RedisLogOptions): Promise<RedisRoomLog> {
    const connectMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_MS;
    const driver = await loadDriver(options.url, connectMs);
    const log = new RedisRoomLog(options, driver);
    try {
      await deadline(log.#start(options.history), connectMs, "connecting");
    } catch (error) {
      log.#abandon();
      if (driver.isReply(error)) {
        throw new FatalError(
          `Redis at ${log.#url} refused us (${errorText(error).split("\n")[0]}): ` +
            `check the user, password and database in --redis`,
        );
      }
      throw new FatalError(
        `cannot reach Redis at ${log.#url} (${reason(error, connectMs)}): ` +
          `start redis-server, or check --redis`,
      );
    }
    return log;
  }

  // ---- keys

  #key(name: string): string {
    return this.#prefix + name;
  }

  #nameKey(name: string): string {
    return `${this.#prefix}name:${name.toLowerCase()}`;
  }

  get #logKey(): string {
    return this.#key("log");
  }

  get #membersKey(): string {
    return this.#key(`members:${this.instance}`);
  }

  get #instanceKey(): string {
    return this.#key(`instance:${this.instance}`);
  }

  get #membersTtl(): number {
    return this.#ttl * 6;
  }

  // ---- connecting

  /** Connects, reads the tail for history, says we are here and learns who else is. */
  async #start(history: number): Promise<void> {
    const session = await this.#dial();
    this.#setup = session;
    await this.#seed(session.cmd, history);
    await this.#heartbeat(session, true);
    await this.#survey(session);
    this.#setup = null;
    if (!session.alive || this.#closed) throw new Error("connection closed");
    this.#session = session;
    this.#schedule();
  }

  /** Two connected clients within the time limit, or the error (and nothing left open). */
  async #dial(): Promise<Session> {
    const cmd = this.#driver.create(this.instance);
    const reader = this.#driver.create(`${this.instance}-reader`);
    this.#dialing = [cmd, reader];
    try {
      await deadline(Promise.all([cmd.connect(), reader.connect()]), this.#connectMs, "connecting");
    } catch (error) {
      for (const client of [cmd, reader]) destroyQuietly(client);
      throw error;
    } finally {
      this.#dialing = [];
    }
    if (this.#closed) {
      for (const client of [cmd, reader]) destroyQuietly(client);
      throw new Error("closed");
    }
    const session: Session = { cmd, reader, alive: true };
    cmd.on("end", () => this.#lost(session, new Error("connection closed")));
    return session;
  }

  /** History from the stream's tail; the reader starts after the newest entry. */
  async #seed(cmd: Connection, want: number): Promise<void> {
    const found: LogEntry[] = [];
    let end = "+";
    let scanned = 0;
    const batch = want === 0 ? 1 : Math.min(1000, Math.max(100, want * 4));
    while (true) {
      const page = streamEntries(
        await cmd.sendCommand(["XREVRANGE", this.#logKey, end, "-", "COUNT", String(batch)]),
      );
      if (end === "+" && page.length > 0) this.#lastId = page[0][0];
      for (const [id, fields] of page) {
        const entry = this.#parse(id, fieldMap(fields));
        if (entry && isHistory(entry.event)) {
          found.push(entry);
        }
      }
      scanned += page.length;
      if (found.length >= want || page.length < batch || scanned >= this.#maxLen) break;
      end = `(${page[page.length - 1][0]}`;
    }
    for (const entry of found.slice(0, want).reverse()) this.#history.add(entry);
  }

  /** Lets go of a half-made log (a failed connect). */
  #abandon(): void {
    this.#closed = true;
    for (const client of this.#dialing) destroyQuietly(client);
    if (this.#setup) this.#end(this.#setup);
  }

  /** Closes both connections of `session` at once. */
  #end(session: Session): void {
    session.alive = false;
    destroyQuietly(session.cmd);
    destroyQuietly(session.reader);
  }

  /**
   * Redis failed under `session`: if it is the one in use, the room is told once and the
   * engine reconnects in the background.
   */
  #lost(session: Session, error: unknown): void {
    if (!session.alive || this.#closed) return;
    this.#end(session);
    if (this.#session !== session) return; // one being set up: that attempt fails
    this.#session = null;
    clearTimeout(this.#tickTimer);
    const detail = `Redis at ${this.#url}: ${reason(error, this.#connectMs)}; ` +
      `serving this instance's members only until it is back`;
    this.#logger?.debug(`room log: ${detail}`);
    this.#subscriber?.status?.("lost", detail);
    this.#reconnecting ??= this.#reconnect().finally(() => this.#reconnecting = null);
  }

  /** Tries again and again (100 ms doubling to 5 s) until Redis is back, then resumes. */
  async #reconnect(): Promise<void> {
    let delay = BACKOFF_FIRST_MS;
    while (!this.#closed) {
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        this.#backoffTimer = setTimeout(resolve, delay);
      });
      this.#wake = null;
      if (this.#closed) return;
      const next = Math.min(delay * 2, BACKOFF_MAX_MS);
      let session: Session | null = null;
      try {
        session = await this.#dial();
        this.#setup = session;
        await deadline(this.#resume(session), this.#connectMs, "resuming");
        if (!session.alive) throw new Error("connection closed");
      } catch (error) {
        if (session) this.#end(session);
        if (this.#closed) return;
        this.#logger?.debug(
          `room log: Redis at ${this.#url} still unreachable (${
            reason(error, this.#connectMs)
          }); next try in ${next} ms`,
        );
        delay = next;
        continue;
      } finally {
        this.#setup = null;
      }
      if (this.#closed) return this.#end(session);
      this.#session = session;
      this.#subscriber?.status?.(
        "resumed",
        `Redis at ${this.#url} is back; reading on after ${this.#lastId}`,
      );
      if (this.#subscriber) this.#startReading(session);
      this.#schedule();
      return;
    }
  }

  /** Claims our names again (they may have expired, or Redis restarted empty). */
  async #resume(session: Session): Promise<void> {
    await this.#heartbeat(session, true);
    // A Redis that came back with less of the stream than we read (an older copy): new
    // entries may get IDs below ours, so read on from its newest.
    const top = streamEntries(
      await session.cmd.sendCommand(["XREVRANGE", this.#logKey, "+", "-", "COUNT", "1"]),
    )[0]?.[0];
    if (top !== undefined && compareIds(top, this.#lastId) < 0) {
      this.#logger?.warn(
        `room log: the stream in Redis at ${this.#url} ends at ${top}, before ${this.#lastId} ` +
          `that was delivered here: reading on from ${top}`,
      );
      this.#lastId = top;
    }
    await this.#survey(session);
  }

  // ---- the log

  open(subscriber: LogSubscriber): void {
    this.#subscriber = subscriber;
    subscriber.status?.("connected", `Redis at ${this.#url} as ${this.instance}`);
    const session = this.#session;
    if (session && !session.reading) this.#startReading(session);
  }

  #startReading(session: Session): void {
    session.reading = this.#read(session);
    this.#track(session.reading);
  }

  /**
   * Appends `entry` to the stream; it is delivered here when the reader reads it back. While
   * apart from Redis it is delivered here at once instead, and never sent later: while apart,
   * messages reach only this instance's members; others' messages from that time arrive
   * after reconnection, in stream order, as long as the stream still holds them.
   */
  append(entry: NewEntry): void {
    if (this.#closed) return;
    const session = this.#session;
    if (!session?.alive) return this.#deliverHere(entry);
    this.#send(session, entry, []);
  }

  /** XADDs `entry` (with `extra` fields); a failure delivers it here instead. */
  #send(session: Session, entry: NewEntry, extra: string[]): void {
    const seq = String(++this.#seq);
    this.#inflight.set(seq, entry);
    const sent = session.cmd.sendCommand([
      "XADD",
      this.#logKey,
      "MAXLEN",
      "~",
      String(this.#maxLen),
      "*",
      "o",
      this.instance,
      "s",
      seq,
      "x",
      String(entry.except),
      "t",
      String(Date.now()),
      "e",
      JSON.stringify(entry.event),
      ...extra,
    ]).then(() => {
      this.#inflight.delete(seq);
    }, (error) => {
      if (this.#driver.isReply(error)) {
        this.#logger?.error(`room log: Redis refused an entry: ${errorText(error)}`);
      } else {
        this.#lost(session, error);
      }
      // Unless the reader saw it already, it goes to this instance's members at least.
      if (!this.#inflight.delete(seq) || this.#closed) return;
      this.#apart.add(seq);
      if (this.#apart.size > APART_MEMORY) {
        this.#apart.delete(this.#apart.values().next().value as string);
      }
      this.#deliverHere(entry);
    });
    this.#track(sent);
  }

  /** Delivers one of our entries to this instance only (apart from Redis). */
  #deliverHere(entry: NewEntry): void {
    const full: LogEntry = {
      id: `${this.#lastId}~${++this.#localSeq}`,
      at: Date.now(),
      origin: this.instance,
      except: entry.except,
      event: entry.event,
    };
    this.#history.add(full);
    this.#deliver(full);
  }

  #deliver(entry: LogEntry): void {
    try {
      this.#subscriber?.deliver(entry);
    } catch (error) {
      this.#logger?.error(`room log: delivering ${entry.id} failed: ${errorText(error)}`);
    }
  }

  /** The reader: every stream entry after the last delivered, in order, once. */
  async #read(session: Session): Promise<void> {
    while (session.alive && !this.#closed) {
      let reply: unknown;
      try {
        reply = await session.reader.sendCommand([
          "XREAD",
          "COUNT",
          String(READ_COUNT),
          "BLOCK",
          String(BLOCK_MS),
          "STREAMS",
          this.#logKey,
          this.#lastId,
        ]);
      } catch (error) {
        this.#lost(session, error);
        return;
      }
      if (this.#closed) return;
      const stream = Array.isArray(reply) ? reply[0] : null;
      for (const [id, fields] of streamEntries(Array.isArray(stream) ? stream[1] : null)) {
        this.#receive(id, fieldMap(fields));
      }
    }
  }

  /** One entry read from the stream. */
  #receive(id: string, fields: Map<string, string>): void {
    this.#lastId = id;
    // Leaves for our own members, appended by a survivor that took us for dead while we
    // were apart: our members never left.
    if (fields.get("r") === this.instance) return;
    const seq = fields.get("s");
    if (fields.get("o") === this.instance && seq !== undefined) {
      this.#inflight.delete(seq);
      if (this.#apart.delete(seq)) return; // delivered here already
    }
    const entry = this.#parse(id, fields);
    if (!entry) {
      this.#logger?.warn(`room log: unreadable entry ${id} in ${this.#logKey} skipped`);
      return;
    }
    this.#membership(entry);
    this.#history.add(entry);
    this.#deliver(entry);
  }

  #parse(id: string, fields: Map<string, string>): LogEntry | null {
    let event: ChatEvent;
    try {
      event = JSON.parse(fields.get("e") ?? "");
    } catch {
      return null;
    }
    if (typeof event !== "object" || event === null || typeof event.type !== "string") {
      return null;
    }
    return {
      id,
      at: Number(fields.get("t")) || Number(id.split("-")[0]),
      origin: fields.get("o") ?? "",
      except: Number(fields.get("x")) || 0,
      event,
    };
  }

  recent(n: number): LogEntry[] {
    return this.#history.last(n);
  }

  /** Waits for `promise` on close. */
  #track(promise: Promise<unknown>): void {
    const settled = promise.catch(() => {}).finally(() => this.#pending.delete(settled));
    this.#pending.add(settled);
  }

  /**
   * Stops reading and the heartbeat, waits for what was appended, gives up this instance's
   * names and closes both connections.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#closed = true;
    this.#subscriber = null;
    clearTimeout(this.#tickTimer);
    clearTimeout(this.#backoffTimer);
    this.#wake?.();
    for (const client of this.#dialing) destroyQuietly(client);
    if (this.#setup) this.#end(this.#setup);
    await this.#ticking;
    const session = this.#session;
    this.#session = null;
    if (session?.alive) {
      session.alive = false;
      destroyQuietly(session.reader);
      try {
        await deadline(
          Promise.all([...this.#pending, this.#depart(session.cmd)]),
          this.#connectMs,
          "closing",
        );
        await deadline(session.cmd.close(), this.#connectMs, "closing");
      } catch (error) {
        this.#logger?.debug(`room log: closing: ${errorText(error)}`);
        destroyQuietly(session.cmd);
      }
      await session.reading;
    }
    await this.#reconnecting;
    await Promise.all(this.#pending);
  }

  #depart(cmd: Connection): Promise<unknown> {
    const names = [...this.#held.keys()].map((key) => this.#nameKey(key));
    this.#held.clear();
    return cmd.sendCommand([
      "EVAL",
      DEPART,
      String(3 + names.length),
      this.#instanceKey,
      this.#membersKey,
      this.#key("instances"),
      ...names,
      this.instance,
    ]);
  }

  // ---- heartbeat and survey

  /** The next tick: a survey of who is where, and a heartbeat when one is due. */
  #schedule(): void {
    if (this.#closed) return;
    clearTimeout(this.#tickTimer);
    this.#tickTimer = setTimeout(() => {
      const session = this.#session;
      if (!session?.alive) return;
      this.#ticking = this.#tick(session).finally(() => {
        this.#ticking = null;
        if (session.alive) this.#schedule();
      });
    }, Math.min(this.#ttl / 3, 1000));
  }

  async #tick(session: Session): Promise<void> {
    const bound = Math.max(1000, this.#ttl / 2);
    try {
      if (Date.now() - this.#lastBeat >= this.#ttl / 3) {
        await deadline(this.#heartbeat(session, false), bound, "the heartbeat");
      }
      await deadline(this.#survey(session), bound, "the survey");
    } catch (error) {
      if (this.#driver.isReply(error)) {
        this.#logger?.error(`room log: Redis refused the heartbeat: ${errorText(error)}`);
      } else {
        this.#lost(session, error);
      }
    }
  }

  /** Says we are alive and refreshes (or takes back) every name held here. */
  async #heartbeat(session: Session, rewrite: boolean): Promise<void> {
    const held = [...this.#held.entries()];
    const now = Date.now();
    const taken = await session.cmd.sendCommand([
      "EVAL",
      HEARTBEAT,
      String(3 + held.length),
      this.#instanceKey,
      this.#membersKey,
      this.#key("instances"),
      ...held.map(([key]) => this.#nameKey(key)),
      this.instance,
      String(this.#ttl),
      JSON.stringify({ pid: Deno.pid, started: this.#started }),
      String(this.#started),
      String(this.#membersTtl),
      rewrite ? "1" : "0",
      ...held.map(([, held]) => JSON.stringify(held)),
    ]);
    this.#lastBeat = now;
    for (const key of Array.isArray(taken) ? taken.map(String) : []) {
      const name = key.slice(`${this.#prefix}name:`.length);
      if (this.#conflicts.has(name)) continue;
      this.#conflicts.add(name);
      this.#logger?.warn(
        `room log: the name ${this.#held.get(name)?.name ?? name} was taken on another ` +
          `instance while this one was apart from Redis; two members share it for now`,
      );
    }
  }

  /** Who is on the other instances; reaps the dead ones. */
  async #survey(session: Session): Promise<void> {
    const overlay: LogEntry[] = [];
    this.#overlay = overlay;
    let reply: unknown;
    try {
      reply = await session.cmd.sendCommand([
        "EVAL",
        SURVEY,
        "1",
        this.#key("instances"),
        this.#prefix,
      ]);
    } finally {
      if (this.#overlay === overlay) this.#overlay = null;
    }
    const others = new Map<string, Remote>();
    const dead: [string, Remote[]][] = [];
    for (const item of Array.isArray(reply) ? reply : []) {
      if (!Array.isArray(item)) continue;
      const [id, alive, flat] = [String(item[0]), Number(item[1]) === 1, item[2]];
      if (id === this.instance) continue;
      const members = [...fieldMap(flat).values()].flatMap((json) => {
        try {
          const { name, at } = JSON.parse(json);
          return typeof name === "string" ? [{ name, instance: id, at: Number(at) || 0 }] : [];
        } catch {
          return [];
        }
      });
      if (alive) {
        for (const member of members) others.set(member.name.toLowerCase(), member);
      } else {
        dead.push([id, members]);
      }
    }
    // Names of an instance that died since the last survey, known only from the log.
    for (const remote of this.#others.values()) {
      const entry = dead.find(([id]) => id === remote.instance);
      if (entry && !entry[1].some((m) => m.name.toLowerCase() === remote.name.toLowerCase())) {
        entry[1].push(remote);
      }
    }
    this.#others = others;
    for (const entry of overlay) this.#membership(entry, false);
    for (const [id, members] of dead) await this.#reap(session, id, members);
  }

  /** Appends the leaves of a dead instance's members, if no other survivor did. */
  async #reap(session: Session, id: string, known: Remote[]): Promise<void> {
    const reply = await session.cmd.sendCommand([
      "EVAL",
      REAP,
      String(4 + known.length),
      this.#key(`instance:${id}`),
      this.#key(`reaped:${id}`),
      this.#key(`members:${id}`),
      this.#key("instances"),
      ...known.map((member) => this.#nameKey(member.name)),
      this.instance,
      id,
      String(Math.max(60000, this.#membersTtl)),
    ]);
    if (!Array.isArray(reply)) return; // alive again, or another survivor did it
    const names = new Map(known.map((m) => [m.name.toLowerCase(), m]));
    for (const json of fieldMap(reply).values()) {
      try {
        const { name, at } = JSON.parse(json);
        if (typeof name === "string") {
          names.set(name.toLowerCase(), { name, instance: id, at: Number(at) || 0 });
        }
      } catch {
        // not ours to read
      }
    }
    const members = [...names.values()].sort((a, b) => a.at - b.at);
    if (members.length === 0) return;
    this.#logger?.info(
      `room log: instance ${id} is gone; its ${members.length} member(s) left the room`,
    );
    for (const member of members) {
      this.#send(session, {
        except: 0,
        event: { type: "leave", name: member.name, reason: "disconnected" },
      }, ["r", id]);
    }
  }

  /** Keeps others' names up from a delivered entry (at once, between surveys). */
  #membership(entry: LogEntry, record = true): void {
    const event = entry.event;
    if (event.type !== "join" && event.type !== "leave" && event.type !== "rename") return;
    if (record) this.#overlay?.push(entry);
    const ours = entry.origin === this.instance;
    if (event.type === "join") {
      if (!ours) {
        this.#others.set(event.name.toLowerCase(), {
          name: event.name,
          instance: entry.origin,
          at: entry.at,
        });
      }
    } else if (event.type === "leave") {
      this.#others.delete(event.name.toLowerCase());
    } else {
      const before = this.#others.get(event.from.toLowerCase());
      this.#others.delete(event.from.toLowerCase());
      if (!ours) {
        this.#others.set(event.to.toLowerCase(), {
          name: event.to,
          instance: entry.origin,
          at: before?.at ?? entry.at,
        });
      }
    }
  }

  // ---- accounts

  /**
   * Accounts in Redis (one hash, `PREFIX:accounts`), shared by every instance. Unlike the log,
   * they need Redis: while apart, account commands fail with a one-line answer.
   */
  accounts(): AccountStore {
    const hash = this.#key("accounts");
    const call = async (args: string[]): Promise<unknown> => {
      const session = this.#session;
      if (!session?.alive) throw new Error("Redis is not reachable");
      return await session.cmd.sendCommand(args);
    };
    return {
      persistent: true,
      async get(key) {
        const json = await call(["HGET", hash, key]);
        return typeof json === "string" ? JSON.parse(json) as AccountRecord : undefined;
      },
      async create(key, record) {
        return Number(await call(["HSETNX", hash, key, JSON.stringify(record)])) === 1;
      },
      async update(key, record) {
        await call(["HSET", hash, key, JSON.stringify(record)]);
      },
      async remove(key) {
        return Number(await call(["HDEL", hash, key])) === 1;
      },
    };
  }

  // ---- the directory

  /** A fresh `guest-N` (from a counter in Redis), already claimed for the caller. */
  async #guest(taken: (name: string) => boolean): Promise<string> {
    for (let tries = 0; tries < 1000; tries++) {
      const session = this.#session;
      let n = this.#lastGuest + 1;
      if (session?.alive) {
        try {
          n = Number(await session.cmd.sendCommand(["INCR", this.#key("guests")]));
        } catch (error) {
          if (!this.#driver.isReply(error)) this.#lost(session, error);
        }
      }
      this.#lastGuest = Math.max(this.#lastGuest, n);
      const name = `guest-${n}`;
      if (taken(name) || this.#elsewhere(name)) continue;
      if (await this.#claim(name)) return name;
    }
    throw new Error("no free guest name after 1000 tries");
  }

  /** Claims `name` atomically; while apart, against what is known here. */
  #claim(name: string): boolean | Promise<boolean> {
    const key = name.toLowerCase();
    const session = this.#session;
    if (this.#closed) return false;
    if (!session?.alive) return this.#claimHere(name);
    const held: Held = { name, at: Date.now() };
    const claimed = session.cmd.sendCommand([
      "EVAL",
      CLAIM,
      "2",
      this.#nameKey(name),
      this.#membersKey,
      this.instance,
      String(this.#ttl),
      JSON.stringify(held),
      String(this.#membersTtl),
    ]).then((reply) => {
      if (Number(reply) !== 1) return false;
      this.#held.set(key, held);
      this.#conflicts.delete(key);
      return true;
    }, (error) => {
      if (this.#driver.isReply(error)) throw error;
      this.#lost(session, error);
      return this.#claimHere(name);
    });
    this.#track(claimed);
    return claimed;
  }

  /** A claim while apart: against this instance and the others last known. */
  #claimHere(name: string): boolean {
    if (this.#closed || this.#elsewhere(name)) return false;
    this.#held.set(name.toLowerCase(), { name, at: Date.now() });
    return true;
  }

  /** Gives up `name` if this instance still holds it. */
  #release(name: string): void {
    const key = name.toLowerCase();
    if (!this.#held.delete(key)) return;
    this.#conflicts.delete(key);
    const session = this.#session;
    if (!session?.alive || this.#closed) return; // it expires, or is not claimed back
    const released = session.cmd.sendCommand([
      "EVAL",
      RELEASE,
      "2",
      this.#nameKey(name),
      this.#membersKey,
      this.instance,
    ]).catch((error) => {
      if (!this.#driver.isReply(error)) this.#lost(session, error);
    });
    this.#track(released);
  }

  /** Others' names, by arrival. */
  #othersNames(): string[] {
    return [...this.#others.values()]
      .filter((remote) => !this.#held.has(remote.name.toLowerCase()))
      .sort((a, b) => a.at - b.at)
      .map((remote) => remote.name);
  }

  #elsewhere(name: string): boolean {
    return this.#others.has(name.toLowerCase());
  }
}

function destroyQuietly(client: Connection): void {
  try {
    client.destroy();
  } catch {
    // closed already
  }
}
