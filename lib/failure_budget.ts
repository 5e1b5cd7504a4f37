/**
 * A budget of failed attempts (wrong passwords) per key: a client address today, an account
 * name as well once there are accounts. Limits per connection alone are no limit: a script
 * opens more connections. So every failure from one address slows the next answer to that
 * address, and a budget spent locks the address out for a while, never anyone else.
 *
 * Time is passed in (`performance.now()` milliseconds), so it is exact under test.
 *
 * @module
 */

/** Settings of a {@linkcode FailureBudget}. */
export interface FailureBudgetOptions {
  /** Failures allowed per key before it is locked out; 0 = no budget (never locked). */
  maxFailures: number;
  /** How long the first lock-out lasts, in ms; each further one in a row lasts twice as long. */
  lockoutMs: number;
  /** Wait before answering a failure, in ms; it doubles every 5 failures, to 8 times. */
  delayMs: number;
  /** A key with no failure for this long starts afresh, in ms. Default 15 minutes. */
  forgetMs?: number;
}

/** What a failure costs, from {@linkcode FailureBudget.fail}. */
export interface FailureCost {
  /** Wait this long before answering. */
  delayMs: number;
  /** The key is now locked out for this many ms (0 = not locked). */
  lockedMs: number;
  /** This failure started the lock-out: the one moment worth a log line. */
  startedLockout: boolean;
  /** Failures counted against the key so far in this episode. */
  failures: number;
}

interface Entry {
  failures: number;
  /** Lock-outs in a row, for the doubling. */
  lockouts: number;
  lockedUntil: number;
  last: number;
}

/** Longest lock-out, however many came before. */
const MAX_LOCKOUT_MS = 60 * 60 * 1000;
/** Entries kept before old ones are swept (bounds memory under a spray of addresses). */
const SWEEP_AT = 10_000;

/** Failed attempts per key, with growing delays and temporary lock-outs. */
export class FailureBudget {
  readonly #max: number;
  readonly #lockoutMs: number;
  readonly #delayMs: number;
  readonly #forgetMs: number;
  readonly #entries = new Map<string, Entry>();

  /** An empty budget. */
  constructor(options: FailureBudgetOptions) {
    this.#max = options.maxFailures;
    this.#lockoutMs = options.lockoutMs;
    this.#delayMs = options.delayMs;
    this.#forgetMs = options.forgetMs ?? 15 * 60 * 1000;
  }

  /** Failures allowed per key (0 = unlimited). */
  get maxFailures(): number {
    return this.#max;
  }

  /** How much longer `key` is locked out, in ms; 0 when it is not. */
  lockedFor(key: string, now: number = performance.now()): number {
    const entry = this.#current(key, now);
    return entry ? Math.max(0, entry.lockedUntil - now) : 0;
  }

  /** Counts a failure against `key` and says what it costs. */
  fail(key: string, now: number = performance.now()): FailureCost {
    let entry = this.#current(key, now);
    if (!entry) {
      if (this.#entries.size >= SWEEP_AT) this.#sweep(now);
      entry = { failures: 0, lockouts: 0, lockedUntil: 0, last: now };
      this.#entries.set(key, entry);
    }
    if (entry.lockedUntil > 0 && entry.lockedUntil <= now) {
      entry.failures = 0; // a lock-out served: a fresh budget (but the next lock-out is longer)
      entry.lockedUntil = 0;
    }
    entry.failures++;
    entry.last = now;
    const delayMs = this.#delayMs * 2 ** Math.min(3, Math.floor((entry.failures - 1) / 5));
    let startedLockout = false;
    if (this.#max > 0 && entry.failures >= this.#max && entry.lockedUntil <= now) {
      entry.lockouts++;
      entry.lockedUntil = now +
        Math.min(MAX_LOCKOUT_MS, this.#lockoutMs * 2 ** (entry.lockouts - 1));
      startedLockout = true;
    }
    return {
      delayMs,
      lockedMs: Math.max(0, entry.lockedUntil - now),
      startedLockout,
      failures: entry.failures,
    };
  }

  /** The entry for `key`, unless it was forgotten. */
  #current(key: string, now: number): Entry | undefined {
    const entry = this.#entries.get(key);
    if (entry && entry.lockedUntil <= now && now - entry.last >= this.#forgetMs) {
      this.#entries.delete(key);
      return undefined;
    }
    return entry;
  }

  #sweep(now: number): void {
    for (const key of [...this.#entries.keys()]) this.#current(key, now);
  }
}
