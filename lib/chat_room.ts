/**
 * The chat room: who is here, their names, commands, flood control, history, and delivery in
 * one global order. It knows no sockets: a transport (TCP today, others later) hands it a
 * {@linkcode MemberLink} per client and the decoded lines that client sends.
 *
 * Every method runs synchronously, so lines are accepted in one order and each member's link
 * receives them in that order. A broadcast is encoded once and the same bytes are handed to
 * every recipient.
 *
 * @module
 */
import { nameKey, nameProblem, SERVER_NAME } from "./chat_protocol.ts";
import {
  type AuthState,
  type ChatEvent,
  type ErrorCode,
  type LeaveReason,
  Outgoing,
  PROTOCOL_VERSION,
  type RoomEvent,
} from "./chat_frames.ts";
import { Logger, preview } from "./log.ts";
import { TokenBucket } from "./rate_limit.ts";
import { Password, PASSWORD_REQUIRED, TOO_MANY_FAILURES, WRONG_PASSWORD } from "./chat_auth.ts";
import { stripControls } from "./terminal.ts";
import { FailureBudget } from "./failure_budget.ts";
import { type AccountStore, MemoryAccountStore } from "./accounts.ts";
import { AccountDesk } from "./chat_accounts.ts";
import {
  historyStamp,
  type LogEntry,
  type LogStatus,
  MemoryRoomLog,
  type RoomDirectory,
  type RoomLog,
} from "./room_log.ts";

/** What the room needs from a transport for one client. */
export interface MemberLink {
  /** Where the client connects from, for logs. */
  readonly peer: string;
  /**
   * Who the client is counted as, for budgets per address: its IP address (an IPv6 /64), see
   * `addressKey` in `address_limit.ts`.
   */
  readonly address: string;
  /**
   * Queues an event for the client without blocking, in the link's own form (`out.line` for
   * a text client, `out.json` for a typed one: each is encoded once for all recipients). An
   * array is one unit (a welcome and its history): a text link writes it at once. A link
   * that cannot keep up may drop the client, but must do so later (not inside this call) by
   * calling {@linkcode ChatRoom.leave}.
   */
  send(out: Outgoing | readonly Outgoing[]): void;
  /**
   * Closes the client's connection once what was queued has gone out. `reason` says why
   * (`bye`, `kicked`, `idle`, `denied`, `shutdown`, `full`, `busy`), for transports that can
   * tell the client (a WebSocket's close reason), so it knows not to reconnect.
   */
  close(reason?: string): void;
}

/** A client in the room. */
export interface Member {
  /** Unique for the life of the room. */
  readonly id: number;
  /** Current name. */
  name: string;
  /** The transport's handle. */
  readonly link: MemberLink;
  /** Flood control. */
  readonly bucket: TokenBucket;
  /** When the member last sent a line (ms, `performance.now()`). */
  lastActive: number;
  /** When the member was last warned about flooding. */
  lastFloodWarning: number;
  /** Set once the member has left; later calls about it are ignored. */
  gone: boolean;
  /** In the room (false while a password is awaited). */
  admitted: boolean;
  /** When the client arrived (ms, `performance.now()`). */
  readonly arrived: number;
  /** Wrong passwords so far. */
  failures: number;
  /** Pending answer to a wrong password. */
  authTimer: ReturnType<typeof setTimeout> | undefined;
  /** Lines sent while its name is being found (another instance is asked): replayed. */
  early: string[] | null;
  /** The account (name key) it is logged in as, or `null`. */
  account: string | null;
}

export type { LeaveReason };

/** Settings of a {@linkcode ChatRoom}. */
export interface ChatRoomOptions {
  /** Most members at once. Default 1000. */
  maxClients?: number;
  /** Messages replayed to each arrival. Default 20. */
  history?: number;
  /** Lines per second each member may send; 0 = no limit. Default 10. */
  rate?: number;
  /** Lines a member may send at once before the rate applies. Default 20. */
  burst?: number;
  /** Seconds of silence after which a member is dropped; 0 = never. Default 0. */
  idleTimeout?: number;
  /** Log of joins, leaves and (at debug) messages. */
  logger?: Logger;
  /** Sees every event broadcast to the whole room (for the operator console). */
  observer?: (out: Outgoing) => void;
  /** When set, a client joins only after `/auth PASSWORD`. */
  password?: string;
  /** Wait before answering a wrong password, in ms. Default 1000. */
  authDelayMs?: number;
  /**
   * The room log everything everyone sees goes through (SQLite, Redis). Default: in memory,
   * closed with the room.
   */
  log?: RoomLog;
  /** Seconds a client may take to give the password; 0 = no limit. Default 30. */
  authTimeout?: number;
  /**
   * Wrong passwords allowed from one address (all its connections together) before that
   * address is locked out; 0 = no such budget. Default 30.
   */
  maxAuthFailures?: number;
  /** Seconds of the first lock-out of an address; each further one doubles. Default 60. */
  authLockout?: number;
  /** Where accounts are kept. Default: in memory, for the life of the room. */
  accounts?: AccountStore;
  /**
   * Clients that may wait for the password at once; more are turned away, so connections that
   * never log in cannot crowd out members. Default a quarter of `maxClients` (at least 16).
   */
  maxPending?: number;
}

/**
 * Joins and leaves are announced while the room has at most this many members. In a larger
 * room every arrival would cost every member a line (traffic grows with the square of the
 * room); they are still logged, and `/who` still tells.
 */
export const ANNOUNCE_LIMIT = 200;
/** Names listed in a welcome; the rest are counted. */
export const WELCOME_NAMES = 20;

/** Wrong passwords before a client is disconnected. */
export const MAX_AUTH_FAILURES = 3;
/** Default budget of wrong passwords per address (see {@linkcode ChatRoomOptions}). */
export const MAX_AUTH_FAILURES_PER_ADDRESS = 30;

const HELP = [
  "Commands:",
  "  /nick NAME            change your name (1-24 letters, digits, _ or -)",
  "  /who                  list who is here",
  "  /me ACTION            describe an action: * you ACTION",
  "  /msg NAME TEXT        private message",
  "  /register PASSWORD    keep your current name: only you can take it",
  "  /login NAME PASSWORD  take your registered name back",
  "  /passwd OLD NEW       change your password",
  "  /unregister PASSWORD  give your registered name up",
  "  /help                 this list",
  "  /quit or bye          leave",
  "A line starting with // sends a message that starts with /.",
].join("\n");

/** A chat room. */
export class ChatRoom {
  readonly #members = new Map<number, Member>();
  readonly #byName = new Map<string, Member>();
  readonly #roomLog: RoomLog;
  readonly #directory: RoomDirectory;
  readonly #ownsLog: boolean;
  readonly #maxClients: number;
  readonly #historySize: number;
  readonly #rate: number;
  readonly #burst: number;
  readonly #idleMs: number;
  readonly #log: Logger;
  readonly #observer: ((out: Outgoing) => void) | undefined;
  readonly #sweeper: ReturnType<typeof setInterval> | undefined;
  readonly #password: Password | null;
  readonly #authDelayMs: number;
  readonly #authTimeoutMs: number;
  readonly #authBudget: FailureBudget;
  readonly #maxPending: number;
  readonly #desk: AccountDesk<Member>;
  /** Clients still to give the password. */
  readonly #pending = new Set<Member>();
  /** Clients waiting for a guest name from the directory. */
  readonly #naming = new Set<Member>();
  #nextId = 1;
  #closed = false;

  /** Creates an empty room. */
  constructor(options: ChatRoomOptions = {}) {
    this.#maxClients = options.maxClients ?? 1000;
    this.#historySize = options.history ?? 20;
    this.#rate = options.rate ?? 10;
    this.#burst = options.burst ?? 20;
    this.#idleMs = (options.idleTimeout ?? 0) * 1000;
    this.#log = options.logger ?? new Logger("warn");
    this.#observer = options.observer;
    this.#password = options.password ? new Password(options.password) : null;
    this.#authDelayMs = options.authDelayMs ?? 1000;
    this.#authTimeoutMs = (options.authTimeout ?? 30) * 1000;
    this.#authBudget = new FailureBudget({
      maxFailures: options.maxAuthFailures ?? MAX_AUTH_FAILURES_PER_ADDRESS,
      lockoutMs: (options.authLockout ?? 60) * 1000,
      delayMs: this.#authDelayMs,
    });
    this.#maxPending = options.maxPending ?? Math.max(16, Math.floor(this.#maxClients / 4));
    this.#ownsLog = !options.log;
    this.#roomLog = options.log ?? new MemoryRoomLog(this.#historySize);
    this.#directory = this.#roomLog.directory;
    this.#desk = new AccountDesk<Member>({
      tell: (member, what) => this.#tell(member, what),
      rename: (member, name, done) => this.#claimName(member, name, done),
      holder: (name) => this.#byName.get(nameKey(name)),
    }, {
      store: options.accounts ?? this.#roomLog.accounts?.() ?? new MemoryAccountStore(),
      budget: this.#authBudget,
      logger: this.#log,
    });
    this.#roomLog.open({
      deliver: (entry) => this.#deliver(entry),
      status: (status, detail) => this.#logStatus(status, detail),
    });
    const limits = [this.#idleMs, this.#password ? this.#authTimeoutMs : 0].filter((ms) => ms > 0);
    if (limits.length > 0) {
      const every = Math.min(1000, Math.max(10, Math.min(...limits) / 4));
      this.#sweeper = setInterval(() => this.#dropIdle(), every);
    }
  }

  /** Members present. */
  get size(): number {
    return this.#members.size;
  }

  /** Names present here, in order of arrival. */
  names(): string[] {
    return [...this.#members.values()].map((m) => m.name);
  }

  /** Everyone in the room: here, then on other instances. */
  everyone(): string[] {
    return [...this.names(), ...this.#directory.others()];
  }

  /**
   * Admits a client: gives it a guest name, welcomes it, replays history and tells the others.
   * When the room is full (or closed) the client is told so and closed; returns `null`.
   */
  join(link: MemberLink): Member | null {
    if (this.#refuse(link, this.#pending.size + this.#naming.size)) return null;
    const now = performance.now();
    const member: Member = {
      id: this.#nextId++,
      name: "",
      link,
      bucket: new TokenBucket(this.#rate, this.#burst, now),
      lastActive: now,
      lastFloodWarning: -Infinity,
      gone: false,
      admitted: false,
      arrived: now,
      failures: 0,
      authTimer: undefined,
      early: null,
      account: null,
    };
    if (this.#password) {
      if (this.#lockedOut(member, now)) return null;
      if (this.#pending.size >= this.#maxPending) {
        link.send(
          event({
            type: "error",
            code: "busy",
            text: "too many clients are logging in right now; try again in a minute",
          }),
        );
        link.close("busy");
        this.#log.warn(`Refused ${link.peer}: ${this.#pending.size} clients waiting to log in`);
        return null;
      }
      // Outside the room until the password is right: it sees and sends nothing of it.
      this.#pending.add(member);
      this.#log.info(`${link.peer} connected; waiting for the password`);
      this.#auth(member, "required", `${PASSWORD_REQUIRED} (or bye to leave)`);
      return member;
    }
    this.#admit(member);
    return member;
  }

  /** Turns a client away when the room is closed or full; returns whether it did. */
  #refuse(link: MemberLink, waiting = 0): boolean {
    // Clients still giving the password take places too, so they cannot be used to flood.
    if (!this.#closed && this.#members.size + waiting < this.#maxClients) return false;
    link.send(
      event(
        this.#closed
          ? { type: "notice", text: "server is shutting down" }
          : { type: "error", code: "full", text: "server full, try again later" },
      ),
    );
    link.close(this.#closed ? "shutdown" : "full");
    this.#log.warn(`Refused ${link.peer}: ${this.#closed ? "shutting down" : "room full"}`);
    return true;
  }

  /** Brings a member into the room: a guest name, the welcome, history, a join notice. */
  #admit(member: Member): void {
    if (this.#refuse(member.link, this.#naming.size)) {
      member.gone = true;
      return;
    }
    const taken = (name: string) => this.#byName.has(nameKey(name));
    const name = this.#directory.guestName(taken);
    if (typeof name === "string") return this.#enter(member, name);
    // Another instance is asked: hold the member's lines until it has a name.
    this.#hold(member);
    this.#naming.add(member);
    name.then((name) => {
      this.#naming.delete(member);
      if (member.gone || this.#closed) return this.#directory.release(name);
      this.#enter(member, name);
      this.#release(member);
    }, (error) => {
      this.#naming.delete(member);
      this.#log.error(`No name for ${member.link.peer}: ${error}`);
      this.leave(member, "disconnected");
      member.link.close("busy");
    });
  }

  /** A named member enters: the welcome, history, and the others are told. */
  #enter(member: Member, name: string): void {
    member.admitted = true;
    member.name = name;
    this.#members.set(member.id, member);
    this.#byName.set(nameKey(member.name), member);
    if (this.#log.enabled("info")) {
      this.#log.info(
        `${member.name} joined from ${member.link.peer} (${this.#members.size} online)`,
      );
    }
    const history = this.#roomLog.recent(this.#historySize).map((entry) =>
      event({ type: "history", stamp: historyStamp(entry.at), event: entry.event as RoomEvent })
    );
    // One unit, so a long history replay is not mistaken for a client that stopped reading.
    member.link.send([event(this.#welcome(member)), ...history]);
    if (this.#members.size <= ANNOUNCE_LIMIT) {
      this.#broadcast({ type: "join", name: member.name }, member);
    }
  }

  /** The welcome: your name, and who else is here (at most {@linkcode WELCOME_NAMES}). */
  #welcome(member: Member): ChatEvent {
    const others: string[] = [];
    for (const other of this.#members.values()) {
      if (other === member) continue;
      if (others.length === WELCOME_NAMES) break;
      others.push(other.name);
    }
    const elsewhere = this.#directory.others();
    others.push(...elsewhere.slice(0, WELCOME_NAMES - others.length));
    return {
      type: "welcome",
      version: PROTOCOL_VERSION,
      name: member.name,
      others,
      count: this.#members.size - 1 + elsewhere.length,
    };
  }

  /** A line from a client that has not given the password yet. */
  #authenticate(member: Member, text: string, now: number): void {
    const password = this.#password;
    if (!password || member.authTimer !== undefined) return; // waiting out a failure: ignored
    if (!member.bucket.take(now)) return;
    const auth = text.match(/^\/auth(?: (.*))?$/i);
    if (!auth) {
      return this.#auth(member, "required", "* send /auth PASSWORD first (or bye to leave)");
    }
    // A locked-out address gets no answer to any attempt, right or wrong.
    if (this.#lockedOut(member, now)) return;
    if (password.matches(auth[1] ?? "")) {
      this.#pending.delete(member);
      this.#auth(member, "accepted", "* password accepted");
      return this.#admit(member);
    }
    member.failures++;
    const address = member.link.address;
    const cost = this.#authBudget.fail(address, now);
    // The attempt itself is never logged; each failure is, until the address is locked out,
    // which is logged once for the whole episode.
    this.#log.warn(
      `Wrong password from ${member.link.peer} (${member.failures} of ${MAX_AUTH_FAILURES}); ` +
        `${cost.failures} from ${address} lately`,
    );
    if (cost.startedLockout) {
      this.#log.warn(
        `Locked out ${address} for ${Math.ceil(cost.lockedMs / 1000)} s after ${cost.failures} ` +
          `wrong passwords from that address (--max-auth-failures)`,
      );
    }
    // Every failure waits before its answer, longer as an address fails more, so guessing
    // is slow however many connections it uses.
    member.authTimer = setTimeout(() => {
      member.authTimer = undefined;
      if (member.gone) return;
      if (this.#lockedOut(member, performance.now())) return;
      if (member.failures >= MAX_AUTH_FAILURES) {
        this.#auth(member, "denied", TOO_MANY_FAILURES);
        this.#log.warn(`${member.link.peer} disconnected after ${member.failures} wrong passwords`);
        return this.leave(member, "denied");
      }
      this.#auth(member, "wrong", WRONG_PASSWORD);
    }, cost.delayMs);
  }

  /**
   * When the member's address is locked out for wrong passwords: tells it for how long, turns
   * it away and returns `true`. Only that address is refused, never anyone else.
   */
  #lockedOut(member: Member, now: number): boolean {
    const ms = this.#authBudget.lockedFor(member.link.address, now);
    if (ms === 0) return false;
    this.#auth(
      member,
      "locked",
      `* too many wrong passwords from your address; try again in ${Math.ceil(ms / 1000)} s`,
    );
    this.leave(member, "denied");
    return true;
  }

  /** Handles one line a member sent (raw: it is sanitised here). */
  receive(member: Member, raw: string): void {
    if (member.gone) return;
    if (member.early) return void member.early.push(raw);
    const now = performance.now();
    member.lastActive = now;
    const clean = stripControls(raw);
    const text = clean.trimEnd();
    // Leaving is never rate-limited.
    if (isLeaving(text)) return this.#quit(member);
    // A password may end in spaces: it gets the line untrimmed.
    if (!member.admitted) return this.#authenticate(member, clean, now);
    if (!member.bucket.take(now)) {
      if (now - member.lastFloodWarning >= 1000) {
        member.lastFloodWarning = now;
        this.#error(
          member,
          "flood",
          `slow down: at most ${this.#rate} lines per second; lines were dropped`,
        );
        this.#log.warn(`Flood from ${member.name} (${member.link.peer}): lines dropped`);
      }
      return;
    }
    if (text.trim() === "") return;
    if (text.startsWith("/") && !text.startsWith("//")) return this.#command(member, text);
    const message = text.startsWith("//") ? text.slice(1) : text;
    if (this.#log.enabled("debug")) this.#log.debug(`${member.name}: ${preview(message)}`);
    this.#broadcast({ type: "message", from: member.name, text: message }, member);
  }

  /** Tells a member its line was too long and dropped (the transport detects it). */
  lineTooLong(member: Member, maxBytes: number): void {
    if (member.gone) return;
    this.#error(member, "too-long", `line too long (max ${maxBytes} bytes); it was not sent`);
    this.#log.warn(`Over-long line from ${member.name} (${member.link.peer}) dropped`);
  }

  /**
   * Removes a member and tells the others why. Safe to call more than once. The member's
   * link is closed unless the transport already lost it (`disconnected`, `slow`).
   */
  leave(member: Member, reason: LeaveReason): void {
    this.#remove(member, reason, true);
  }

  /** {@linkcode leave}; the others are told when `announce` (not for a kick from elsewhere). */
  #remove(member: Member, reason: LeaveReason, announce: boolean): void {
    if (member.gone) return;
    member.gone = true;
    if (!member.admitted) {
      // Never in the room: nobody is told.
      this.#pending.delete(member);
      clearTimeout(member.authTimer);
      if (reason === "bye") this.#notice(member, "Goodbye!");
      if (reason !== "disconnected" && reason !== "slow") member.link.close(reason);
      this.#log.info(`${member.link.peer} left before joining: ${reason}`);
      return;
    }
    this.#members.delete(member.id);
    this.#byName.delete(nameKey(member.name));
    this.#directory.release(member.name);
    if (this.#log.enabled("info")) {
      this.#log.info(`${member.name} (${member.link.peer}) left: ${reason}`);
    }
    if (reason === "bye") this.#notice(member, `Goodbye, ${member.name}!`);
    if (reason === "kicked") {
      this.#notice(member, `You were removed from the room by ${SERVER_NAME}.`);
    }
    if (reason === "idle") this.#notice(member, "You were disconnected for being idle.");
    if (reason !== "disconnected" && reason !== "slow") member.link.close(reason);
    // At shutdown everyone here is leaving; only other instances need to be told.
    const told = reason !== "shutdown" || this.#roomLog.shared;
    if (announce && told && this.#members.size < ANNOUNCE_LIMIT) {
      this.#broadcast({ type: "leave", name: member.name, reason }, member);
    }
  }

  /** The operator says something: everyone sees `Server: TEXT`. */
  say(text: string): void {
    const clean = stripControls(text).trim();
    if (clean !== "") {
      this.#broadcast({ type: "message", from: SERVER_NAME, text: clean }, null);
    }
  }

  /** The operator removes the account `name`; resolves to whether there was one. */
  unregister(name: string): Promise<boolean> {
    return this.#desk.remove(name);
  }

  /** Whether accounts outlive the process. */
  get accountsPersist(): boolean {
    return this.#desk.persistent;
  }

  /** Removes a member by name (case-insensitive). Returns whether someone was removed. */
  kick(name: string): boolean {
    const member = this.#byName.get(nameKey(name));
    if (member) {
      this.leave(member, "kicked");
      return true;
    }
    if (!this.#directory.elsewhere(name)) return false;
    // On another instance: the leave goes through the log, and that instance removes them.
    this.#broadcast({ type: "leave", name, reason: "kicked" }, null);
    return true;
  }

  /** Tells everyone `notice`, closes every link and refuses new members. */
  close(notice = "* Server is shutting down. Goodbye!"): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#sweeper);
    const bytes = event({ type: "notice", text: notice.replace(/^\* /, "") });
    for (const member of [...this.#members.values(), ...this.#pending, ...this.#naming]) {
      member.link.send(bytes);
      this.leave(member, "shutdown");
    }
    if (this.#ownsLog) void this.#roomLog.close();
  }

  #quit(member: Member): void {
    this.leave(member, "bye");
  }

  #command(member: Member, text: string): void {
    const [word, ...rest] = text.split(" ");
    const arg = rest.join(" ").trim();
    switch (word.toLowerCase()) {
      case "/nick":
        return this.#nick(member, arg);
      case "/who":
        return this.#tell(member, { type: "who", names: this.everyone(), you: member.name });
      case "/me":
        if (arg === "") return this.#error(member, "usage", "usage: /me ACTION");
        return this.#broadcast({ type: "action", from: member.name, text: arg }, member);
      case "/msg":
        return this.#private(member, arg);
      case "/help":
        return this.#notice(member, HELP);
      case "/auth":
        return this.#notice(member, "you are already in the room");
      default:
        if (this.#desk.command(member, word.toLowerCase(), arg)) return;
        this.#error(
          member,
          "unknown-command",
          `unknown command ${preview(word, 32)}; type /help for the list`,
        );
    }
  }

  #nick(member: Member, name: string): void {
    if (name === "") return this.#error(member, "usage", "usage: /nick NAME");
    const problem = nameProblem(name);
    if (problem) return this.#error(member, "bad-name", `cannot use that name: ${problem}`);
    const holder = this.#byName.get(nameKey(name));
    if (holder && holder !== member) {
      return this.#error(member, "name-taken", `the name ${name} is taken`);
    }
    if (name === member.name) return this.#notice(member, `you are already ${name}`);
    // Lines after a /nick are the new name's: they wait while the accounts and the directory
    // (on other instances, later) are asked. A registered name is taken by /login, not /nick.
    this.#hold(member);
    this.#desk.checkNick(member, name, (free) => {
      if (!free) return this.#release(member);
      this.#claimName(member, name, () => this.#release(member));
    });
  }

  /** Gives `member` the name `name` once it is free room-wide; `done` says whether it did. */
  #claimName(member: Member, name: string, done: (ok: boolean) => void): void {
    if (nameKey(name) === nameKey(member.name)) {
      this.#rename(member, name);
      return done(true);
    }
    const claimed = this.#directory.claim(name);
    if (typeof claimed === "boolean") return done(this.#claimed(member, name, claimed));
    claimed.then(
      (ok) => done(this.#claimed(member, name, ok)),
      () => done(this.#claimed(member, name, false)),
    );
  }

  /** Queues the member's lines (in `early`) until {@linkcode #release}. */
  #hold(member: Member): void {
    member.early ??= [];
  }

  /** Handles the held lines in order; a line that holds again keeps the rest queued. */
  #release(member: Member): void {
    const held = member.early ?? [];
    member.early = null;
    for (let i = 0; i < held.length; i++) {
      this.receive(member, held[i]);
      if (member.early) {
        (member.early as string[]).push(...held.slice(i + 1));
        return;
      }
    }
  }

  /** The directory answered whether `name` was free everywhere; returns whether it renamed. */
  #claimed(member: Member, name: string, ok: boolean): boolean {
    const holder = this.#byName.get(nameKey(name));
    if (ok && (member.gone || (holder && holder !== member))) {
      // Taken here meanwhile, or the member left while the directory was asked.
      this.#directory.release(name);
      ok = false;
      if (member.gone) return false;
    }
    if (!ok) {
      this.#error(member, "name-taken", `the name ${name} is taken`);
      return false;
    }
    this.#rename(member, name);
    return true;
  }

  #rename(member: Member, name: string): void {
    const old = member.name;
    // Logged in as the old name: a new name is a new identity (log in again to get it back).
    if (member.account !== null && member.account !== nameKey(name)) member.account = null;
    this.#byName.delete(nameKey(old));
    if (nameKey(old) !== nameKey(name)) this.#directory.release(old);
    member.name = name;
    this.#byName.set(nameKey(name), member);
    this.#log.info(`${old} is now known as ${name}`);
    this.#tell(member, { type: "rename", from: old, to: name, you: true });
    this.#broadcast({ type: "rename", from: old, to: name }, member);
  }

  #private(member: Member, arg: string): void {
    const space = arg.indexOf(" ");
    const to = space === -1 ? "" : arg.slice(0, space);
    const text = space === -1 ? "" : arg.slice(space + 1).trim();
    if (to === "" || text === "") return this.#error(member, "usage", "usage: /msg NAME TEXT");
    const target = this.#byName.get(nameKey(to));
    if (target) {
      this.#tell(target, { type: "private", from: member.name, to: target.name, text });
    } else if (this.#directory.elsewhere(to)) {
      // Through the log to the instance where they are; it delivers to them alone.
      this.#broadcast({ type: "private", from: member.name, to, text }, member);
    } else {
      return this.#error(member, "no-such-member", `no one called ${preview(to, 32)} is here`);
    }
    this.#tell(member, {
      type: "private",
      from: member.name,
      to: target?.name ?? to,
      text,
      sent: true,
    });
  }

  /** What everyone must see goes through the log; `except` does not get it back. */
  #broadcast(event: ChatEvent, except: Member | null): void {
    this.#roomLog.append({ except: except?.id ?? 0, event });
  }

  /** An entry of the log, ours or another instance's: delivered to the members here. */
  #deliver(entry: LogEntry): void {
    const what = entry.event;
    const ours = entry.origin === this.#roomLog.instance;
    if (what.type === "private") {
      const target = ours ? null : this.#byName.get(nameKey(what.to));
      if (target) this.#tell(target, { ...what, to: target.name });
      return;
    }
    if (what.type === "leave" && what.reason === "kicked" && !ours) {
      // Kicked by an operator elsewhere: if they are here, they go, without a second notice.
      const member = this.#byName.get(nameKey(what.name));
      if (member) this.#remove(member, "kicked", false);
    }
    const out = new Outgoing(what);
    for (const member of this.#members.values()) {
      if (!ours || member.id !== entry.except) member.link.send(out);
    }
    this.#observer?.(out);
  }

  /** The log lost, or found again, the other instances: everyone here is told once. */
  #logStatus(status: LogStatus, detail: string): void {
    if (status === "connected") return;
    this.#log.warn(`Room log ${status}: ${detail}`);
    const text = status === "lost"
      ? "the link to the other chat servers is lost; until it is back you are talking to this server's members only"
      : "the link to the other chat servers is back";
    const out = event({ type: "notice", text });
    for (const member of this.#members.values()) member.link.send(out);
  }

  #tell(member: Member, what: ChatEvent): void {
    member.link.send(new Outgoing(what));
  }

  #notice(member: Member, text: string): void {
    this.#tell(member, { type: "notice", text });
  }

  #error(member: Member, code: ErrorCode, text: string): void {
    this.#tell(member, { type: "error", code, text });
  }

  /** A step of logging in; `line` is the text line as a TCP client sees it (`* ...`). */
  #auth(member: Member, state: AuthState, line: string): void {
    this.#tell(member, { type: "auth", state, text: line.replace(/^\* /, "") });
  }

  #dropIdle(): void {
    const now = performance.now();
    if (this.#idleMs > 0) {
      for (const member of [...this.#members.values()]) {
        if (now - member.lastActive >= this.#idleMs) this.leave(member, "idle");
      }
    }
    for (const member of this.#authTimeoutMs > 0 ? [...this.#pending] : []) {
      if (now - member.arrived < this.#authTimeoutMs || member.authTimer !== undefined) continue;
      this.#auth(member, "denied", "* no password given in time; goodbye");
      this.leave(member, "denied");
    }
  }
}

/** `bye` alone on a line (any case) or `/quit` (with or without a reason). */
function isLeaving(text: string): boolean {
  const word = text.trim().toLowerCase();
  return word === "bye" || word === "/quit" || word.startsWith("/quit ");
}

function event(what: ChatEvent): Outgoing {
  return new Outgoing(what);
}
