/**
 * The room log in a SQLite file (`--store FILE`), through Deno's built-in `node:sqlite`: no
 * dependency. Delivery is as in memory (at once, in order); every entry is also written to the
 * file, so history and the transcript survive a restart.
 *
 * Writes are batched: the entries of one turn of the event loop go in one transaction
 * (`synchronous=NORMAL` in WAL mode), a few microseconds each instead of a disk flush each.
 * A crash can lose the last turn's entries, never corrupt the file.
 *
 * Private messages never reach the log of a single server (the room delivers them itself),
 * so the file holds only what everyone saw.
 *
 * @module
 */
import { DatabaseSync, type StatementSync } from "node:sqlite";
import { FatalError } from "./cli.ts";
import type { ChatEvent } from "./chat_frames.ts";
import { errorText } from "./net.ts";
import { type LogEntry, MemoryRoomLog, type NewEntry } from "./room_log.ts";
import type { AccountRecord, AccountStore } from "./accounts.ts";

/** The file's layout version, in `meta`. */
const SCHEMA = 1;

/** One stored entry, as the transcript reads it. */
export interface StoredEntry {
  /** Row id: the entry's place in the log. */
  id: number;
  /** When, in ms since the epoch. */
  at: number;
  /** The event. */
  event: ChatEvent;
}

/**
 * Opens (or creates) a store, or throws a {@linkcode FatalError} that says what is wrong with
 * the file: no permission, not a chat store, unreadable, unwritable.
 */
function openDatabase(path: string, readOnly: boolean): DatabaseSync {
  for (const name of readOnly ? ["read"] as const : ["read", "write"] as const) {
    if (Deno.permissions.querySync({ name, path }).state !== "granted") {
      throw new FatalError(`--store: no permission to ${name} ${path}: run with --allow-${name}`);
    }
  }
  let db: DatabaseSync | null = null;
  try {
    db = new DatabaseSync(path, { readOnly });
    if (!readOnly) {
      db.exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;");
      db.exec(
        "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);" +
          "CREATE TABLE IF NOT EXISTS log (id INTEGER PRIMARY KEY, at INTEGER NOT NULL, " +
          "type TEXT NOT NULL, event TEXT NOT NULL);" +
          "CREATE TABLE IF NOT EXISTS accounts (key TEXT PRIMARY KEY, record TEXT NOT NULL);",
      );
      db.prepare("INSERT OR IGNORE INTO meta (key, value) VALUES ('schema', ?)").run(
        String(SCHEMA),
      );
    }
    const row = db.prepare("SELECT value FROM meta WHERE key = 'schema'").get() as
      | { value: string }
      | undefined;
    if (Number(row?.value) !== SCHEMA) {
      throw new Error(`layout ${row?.value ?? "unknown"}, expected ${SCHEMA}`);
    }
    return db;
  } catch (error) {
    try {
      db?.close();
    } catch {
      // not open
    }
    throw new FatalError(storeProblem(path, error));
  }
}

/** One line for what went wrong with a store file. */
function storeProblem(path: string, error: unknown): string {
  const text = errorText(error);
  if (/not a database|malformed|file is encrypted/i.test(text)) {
    return `--store: ${path} is not a chat store (${text}): move it away, or pick another file`;
  }
  if (/no such table|layout/i.test(text)) {
    return `--store: ${path} is not a chat store of this version (${text}): pick another file`;
  }
  if (/readonly|read-only|permission|access/i.test(text)) {
    return `--store: cannot write ${path} (${text}): check its permissions, or pick another file`;
  }
  if (/unable to open/i.test(text)) {
    return `--store: cannot open ${path} (${text}): does its folder exist and can you write it?`;
  }
  return `--store: cannot use ${path} (${text})`;
}

/** The room log in a SQLite file: the memory log, with every entry also written down. */
export class SqliteRoomLog extends MemoryRoomLog {
  readonly #db: DatabaseSync;
  readonly #insert: StatementSync;
  readonly #batch: LogEntry[] = [];
  readonly #onError: (message: string) => void;
  #closed = false;

  /**
   * Opens `path` (created if missing) and loads the last `history` messages from it. A write
   * that fails later is reported through `onError` (the room goes on in memory).
   */
  constructor(path: string, history: number, onError: (message: string) => void = () => {}) {
    const db = openDatabase(path, false);
    const last = db.prepare("SELECT MAX(id) AS id FROM log").get() as { id: number | null };
    super(history, {
      next: (last.id ?? 0) + 1,
      history: readEntries(db, { history, onlyHistory: true }).map((stored) => ({
        id: String(stored.id),
        at: stored.at,
        origin: "local",
        except: 0,
        event: stored.event,
      })),
    });
    this.#db = db;
    this.#insert = db.prepare("INSERT INTO log (id, at, type, event) VALUES (?, ?, ?, ?)");
    this.#onError = onError;
  }

  /** Accounts in the same file (table `accounts`: a JSON record per name key). */
  accounts(): AccountStore {
    const db = this.#db;
    const get = db.prepare("SELECT record FROM accounts WHERE key = ?");
    const create = db.prepare("INSERT OR IGNORE INTO accounts (key, record) VALUES (?, ?)");
    const update = db.prepare("UPDATE accounts SET record = ? WHERE key = ?");
    const remove = db.prepare("DELETE FROM accounts WHERE key = ?");
    return {
      persistent: true,
      get(key) {
        const row = get.get(key) as { record: string } | undefined;
        return row ? JSON.parse(row.record) as AccountRecord : undefined;
      },
      create: (key, record) => Number(create.run(key, JSON.stringify(record)).changes) === 1,
      update(key, record) {
        update.run(JSON.stringify(record), key);
      },
      remove: (key) => Number(remove.run(key).changes) === 1,
    };
  }

  /** Appends and delivers at once; the entries of one turn are written in one transaction. */
  override append(entry: NewEntry): LogEntry {
    const full = super.append(entry);
    if (!this.#closed && this.#batch.push(full) === 1) queueMicrotask(() => this.#flush());
    return full;
  }

  override async close(): Promise<void> {
    if (!this.#closed) {
      this.#flush();
      this.#closed = true;
      this.#db.close();
    }
    await super.close();
  }

  /** Writes the batch in one transaction. */
  #flush(): void {
    if (this.#batch.length === 0 || this.#closed) return;
    const rows = this.#batch.splice(0);
    this.#db.exec("BEGIN");
    try {
      for (const row of rows) {
        this.#insert.run(Number(row.id), row.at, row.event.type, JSON.stringify(row.event));
      }
      this.#db.exec("COMMIT");
    } catch (error) {
      this.#db.exec("ROLLBACK");
      // The room goes on in memory; the file misses these entries.
      this.#onError(`--store: could not write ${rows.length} entries: ${errorText(error)}`);
    }
  }
}

/**
 * Entries of a store, oldest first: all of them, or the last `history` worth replaying (with
 * `onlyHistory`).
 */
function readEntries(
  db: DatabaseSync,
  options: { history?: number; onlyHistory?: boolean } = {},
): StoredEntry[] {
  const where = options.onlyHistory ? "WHERE type IN ('message', 'action')" : "";
  const rows = (options.history !== undefined
    ? db.prepare(
      `SELECT * FROM (SELECT id, at, event FROM log ${where} ORDER BY id DESC LIMIT ?) ORDER BY id`,
    )
      .all(options.history)
    : db.prepare(`SELECT id, at, event FROM log ${where} ORDER BY id`).all()) as {
      id: number;
      at: number;
      event: string;
    }[];
  return rows.map((row) => ({ id: row.id, at: row.at, event: JSON.parse(row.event) }));
}

/** Every entry of the store at `path`, oldest first (for the transcript); read-only. */
export function readStore(path: string): StoredEntry[] {
  try {
    Deno.statSync(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new FatalError(`--store: ${path} does not exist: give the file the server used`);
    }
  }
  const db = openDatabase(path, true);
  try {
    return readEntries(db);
  } finally {
    db.close();
  }
}
