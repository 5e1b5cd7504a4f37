/**
 * The room log: the one seam through which everything everyone must see passes (messages,
 * actions, joins, leaves, renames, the operator's lines, kicks, private messages between
 * instances). The room appends an entry; the log hands every entry, its own and other
 * instances', back to each room in log order, and each room delivers to its local members
 * from there. So every member on every instance sees one order.
 *
 * Engines: {@linkcode MemoryRoomLog} here (the default, delivering synchronously, as fast as a
 * room without a log), SQLite (`room_log_sqlite.ts`, history and transcript survive a
 * restart) and Redis (`room_log_redis.ts`, one room across many servers).
 *
 * @module
 */
import type { ChatEvent } from "./chat_frames.ts";
import type { AccountStore } from "./accounts.ts";

/** One event in the log. */
export interface LogEntry {
  /** Its place in the log, increasing (engine-specific: a counter, a row id, a stream ID). */
  readonly id: string;
  /** When it was appended, in ms since the epoch. */
  readonly at: number;
  /** The instance that appended it. */
  readonly origin: string;
  /**
   * The member of the origin instance that must not get it (the sender of a message, the
   * one who joined); 0 for none.
   */
  readonly except: number;
  /** The event. A `private` one is delivered only to its `to`, wherever that member is. */
  readonly event: ChatEvent;
}

/** What the room appends: the log adds `id`, `at` and `origin`. */
export type NewEntry = Pick<LogEntry, "except" | "event">;

/** How the log is doing, for the room to tell its members (only Redis can be lost). */
export type LogStatus = "connected" | "lost" | "resumed";

/** What a room is handed by its log. */
export interface LogSubscriber {
  /** Every entry, in log order, exactly once. */
  deliver(entry: LogEntry): void;
  /** The engine lost, or found again, what it shares with other instances. */
  status?(status: LogStatus, detail: string): void;
}

/**
 * Who is in the room on other instances, and names that must be unique across them. The room
 * keeps its own members; this answers for everyone else. Calls may answer at once (one
 * instance) or later (Redis): the room handles both.
 */
export interface RoomDirectory {
  /**
   * A `guest-N` name no one anywhere has, claimed for this instance (released like any other);
   * `taken` says whether a name is held here.
   */
  guestName(taken: (name: string) => boolean): string | Promise<string>;
  /** Claims `name` (ignoring case) for a member here; `false` when anyone anywhere holds it. */
  claim(name: string): boolean | Promise<boolean>;
  /** Gives up a name claimed here (its member left or was renamed). */
  release(name: string): void;
  /** Names of members on other instances, in order of arrival as far as known. */
  others(): string[];
  /** Whether `name` (ignoring case) is a member on another instance. */
  elsewhere(name: string): boolean;
}

/** The directory of a room with no other instances. */
export class LocalDirectory implements RoomDirectory {
  #next = 1;

  guestName(taken: (name: string) => boolean): string {
    let name = `guest-${this.#next++}`;
    while (taken(name)) name = `guest-${this.#next++}`;
    return name;
  }

  claim(): boolean {
    return true; // the room has checked its own members
  }

  release(): void {}

  others(): string[] {
    return [];
  }

  elsewhere(): boolean {
    return false;
  }
}

/** A room's log. */
export interface RoomLog {
  /** This instance's id in the log (`origin` of the entries it appends). */
  readonly instance: string;
  /** Who is elsewhere in the room (a {@linkcode LocalDirectory} when nobody else shares it). */
  readonly directory: RoomDirectory;
  /** Whether other instances share this log. */
  readonly shared: boolean;
  /** Starts delivering to `subscriber`: entries appended from now on. */
  open(subscriber: LogSubscriber): void;
  /** Appends an entry. Delivery (to this room too) is through the subscriber, in log order. */
  append(entry: NewEntry): void;
  /**
   * The last `n` entries worth replaying to an arrival (messages and actions), oldest first.
   * Kept in memory, so a welcome never waits for storage.
   */
  recent(n: number): LogEntry[];
  /** Stops delivering and releases the engine (flushes what was appended). */
  close(): Promise<void>;
  /** Where accounts are kept beside the log, for engines that store (SQLite, Redis). */
  accounts?(): AccountStore;
}

/** Whether an event is replayed as history (and kept for it). */
export function isHistory(event: ChatEvent): boolean {
  return event.type === "message" || event.type === "action";
}

/** The `HH:MM` an entry is shown with in history, in local time. */
export function historyStamp(at: number): string {
  const date = new Date(at);
  return `${String(date.getHours()).padStart(2, "0")}:${
    String(date.getMinutes()).padStart(2, "0")
  }`;
}

/**
 * A bounded list of the most recent history entries, shared by the engines that keep their
 * history in memory.
 */
export class RecentHistory {
  readonly #entries: LogEntry[] = [];
  readonly #max: number;

  /** Keeps at most `max` entries. */
  constructor(max: number) {
    this.#max = max;
  }

  /** Remembers `entry` if it is history. */
  add(entry: LogEntry): void {
    if (this.#max === 0 || !isHistory(entry.event)) return;
    this.#entries.push(entry);
    if (this.#entries.length > this.#max) this.#entries.shift();
  }

  /** The last `n`, oldest first. */
  last(n: number): LogEntry[] {
    return n <= 0 ? [] : this.#entries.slice(-n);
  }
}

/** Where a {@linkcode MemoryRoomLog} starts: for an engine that keeps the log elsewhere too. */
export interface MemoryStart {
  /** The id of the first entry appended. Default 1. */
  next?: number;
  /** History entries from before (oldest first). */
  history?: readonly LogEntry[];
}

/**
 * The log in memory: the default, one process, delivering synchronously inside `append`. An
 * engine that also keeps the log elsewhere (SQLite) extends it.
 */
export class MemoryRoomLog implements RoomLog {
  readonly instance = "local";
  readonly directory: RoomDirectory = new LocalDirectory();
  readonly shared = false;
  readonly #history: RecentHistory;
  #subscriber: LogSubscriber | null = null;
  #next: number;

  /** Keeps the last `history` messages for arrivals. */
  constructor(history: number, start: MemoryStart = {}) {
    this.#history = new RecentHistory(history);
    for (const entry of start.history ?? []) this.#history.add(entry);
    this.#next = start.next ?? 1;
  }

  open(subscriber: LogSubscriber): void {
    this.#subscriber = subscriber;
  }

  /** Appends and delivers at once; returns the entry as delivered. */
  append(entry: NewEntry): LogEntry {
    const full: LogEntry = {
      id: String(this.#next++),
      at: Date.now(),
      origin: this.instance,
      except: entry.except,
      event: entry.event,
    };
    this.#history.add(full);
    this.#subscriber?.deliver(full);
    return full;
  }

  recent(n: number): LogEntry[] {
    return this.#history.last(n);
  }

  close(): Promise<void> {
    this.#subscriber = null;
    return Promise.resolve();
  }
}
