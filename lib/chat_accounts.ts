/**
 * The room's account commands: `/register PASSWORD`, `/login NAME PASSWORD`,
 * `/passwd OLD NEW`, `/unregister PASSWORD`, and the operator's `/unregister NAME`. A
 * registered name can be taken only by logging in to it; `/nick` to it is refused with a hint.
 *
 * Hashing (scrypt) and the store may answer later, so every step re-checks that the member is
 * still here before it acts. Wrong passwords are delayed and counted per name and per address
 * (one {@linkcode FailureBudget}, keys `name:` and `address:`); a spent budget locks that
 * name, or that address, out for a while. No password is ever logged.
 *
 * @module
 */
import {
  type AccountRecord,
  type AccountStore,
  hashPassword,
  passwordProblem,
  verifyPassword,
} from "./accounts.ts";
import type { ChatEvent, ErrorCode } from "./chat_frames.ts";
import { nameKey, nameProblem } from "./chat_protocol.ts";
import type { FailureBudget } from "./failure_budget.ts";
import type { Logger } from "./log.ts";

/** What the desk needs of a member. */
export interface AccountMember {
  /** Current name. */
  name: string;
  /** The name key it is logged in as, or `null`. */
  account: string | null;
  /** Left the room. */
  gone: boolean;
  /** Its link's address key and peer, for budgets and logs. */
  readonly link: { readonly address: string; readonly peer: string };
}

/** What the desk needs of the room. */
export interface AccountRoom<M extends AccountMember> {
  /** Sends an event to one member. */
  tell(member: M, event: ChatEvent): void;
  /**
   * Gives `member` the name `name` (claiming it room-wide), then calls `done` with whether it
   * worked; the room says why not.
   */
  rename(member: M, name: string, done: (ok: boolean) => void): void;
  /** The member here holding `name`, if any. */
  holder(name: string): M | undefined;
}

/** Settings of an {@linkcode AccountDesk}. */
export interface AccountDeskOptions {
  /** Where accounts are kept. */
  store: AccountStore;
  /** Failures per name and per address. */
  budget: FailureBudget;
  /** Log (never a password). */
  logger: Logger;
}

/** Handles the account commands of one room. */
export class AccountDesk<M extends AccountMember> {
  readonly #room: AccountRoom<M>;
  readonly #store: AccountStore;
  readonly #budget: FailureBudget;
  readonly #log: Logger;
  /** Members with a hash or lookup under way: one account command at a time each. */
  readonly #busy = new Set<M>();

  /** A desk for `room`. */
  constructor(room: AccountRoom<M>, options: AccountDeskOptions) {
    this.#room = room;
    this.#store = options.store;
    this.#budget = options.budget;
    this.#log = options.logger;
  }

  /** Whether accounts outlive the process (else the server says so at start). */
  get persistent(): boolean {
    return this.#store.persistent;
  }

  /**
   * Calls `then(true)` when `member` may take `name` (not registered, or registered to the
   * account it is logged in as); otherwise tells it how to log in and calls `then(false)`.
   */
  checkNick(member: M, name: string, then: (free: boolean) => void): void {
    const key = nameKey(name);
    if (member.account === key) return then(true);
    this.#lookup(member, key, (record) => {
      if (record === null) return then(false); // unknown: already told
      if (record) {
        this.#error(
          member,
          "name-taken",
          `${name} is registered: log in with /login ${name} PASSWORD`,
        );
      }
      then(!record);
    });
  }

  /** Handles an account command; returns `false` when `word` is not one. */
  command(member: M, word: string, arg: string): boolean {
    switch (word) {
      case "/register":
        this.#register(member, arg);
        return true;
      case "/login":
        this.#login(member, arg);
        return true;
      case "/passwd":
        this.#passwd(member, arg);
        return true;
      case "/unregister":
        this.#unregister(member, arg);
        return true;
      default:
        return false;
    }
  }

  /** The operator removes an account. Resolves to whether there was one. */
  async remove(name: string): Promise<boolean> {
    const removed = await this.#store.remove(nameKey(name));
    if (removed) this.#log.info(`Account ${name} removed by the operator`);
    return removed;
  }

  #register(member: M, password: string): void {
    if (password === "") return this.#error(member, "usage", "usage: /register PASSWORD");
    if (/^guest-\d+$/i.test(member.name)) {
      return this.#error(member, "usage", "pick your name first with /nick NAME, then /register");
    }
    const problem = passwordProblem(password);
    if (problem) return this.#error(member, "usage", `cannot register: ${problem}`);
    const key = nameKey(member.name);
    const name = member.name;
    this.#run(member, async () => {
      const record = await hashPassword(name, password);
      if (member.gone || nameKey(member.name) !== key) return;
      if (!(await this.#store.create(key, record))) {
        return this.#error(member, "name-taken", `${name} is registered already`);
      }
      member.account = key;
      this.#log.info(`${name} registered (${member.link.peer})`);
      this.#notice(member, `${name} is registered to you: /login ${name} PASSWORD takes it back`);
    });
  }

  #login(member: M, arg: string): void {
    const space = arg.indexOf(" ");
    const name = space === -1 ? arg : arg.slice(0, space);
    const password = space === -1 ? "" : arg.slice(space + 1);
    if (name === "" || password === "") {
      return this.#error(member, "usage", "usage: /login NAME PASSWORD");
    }
    if (nameProblem(name) && !/^guest-\d+$/i.test(name)) {
      return this.#error(member, "no-such-member", `no account called ${name.slice(0, 32)}`);
    }
    const key = nameKey(name);
    if (member.account === key) return this.#notice(member, `you are logged in as ${name} already`);
    this.#run(member, async () => {
      const locked = this.#lockedFor(member, key);
      if (locked > 0) return this.#locked(member, locked);
      const record = await this.#store.get(key);
      // A missing account costs the same as a wrong password: names cannot be probed cheaply.
      const ok = record ? await verifyPassword(record, password) : false;
      if (member.gone) return;
      if (!ok || !record) return this.#failed(member, key, "wrong name or password");
      const holder = this.#room.holder(record.name);
      if (holder && holder !== member) {
        return this.#error(member, "name-taken", `${record.name} is logged in already`);
      }
      this.#room.rename(member, record.name, (renamed) => {
        if (!renamed) return;
        member.account = key;
        this.#log.info(`${record.name} logged in (${member.link.peer})`);
        this.#notice(member, `logged in as ${record.name}`);
      });
    });
  }

  #passwd(member: M, arg: string): void {
    const [old = "", next = "", ...extra] = arg.split(" ");
    if (old === "" || next === "" || extra.length > 0) {
      return this.#error(member, "usage", "usage: /passwd OLD NEW (no spaces in either)");
    }
    const key = member.account;
    if (!key) return this.#error(member, "usage", "log in first: /login NAME PASSWORD");
    const problem = passwordProblem(next);
    if (problem) return this.#error(member, "usage", `cannot change it: ${problem}`);
    this.#withPassword(member, key, old, async (record) => {
      await this.#store.update(key, await hashPassword(record.name, next));
      this.#log.info(`${record.name} changed their password`);
      this.#notice(member, "password changed");
    });
  }

  #unregister(member: M, password: string): void {
    const key = member.account;
    if (!key) return this.#error(member, "usage", "log in first: /login NAME PASSWORD");
    if (password === "") return this.#error(member, "usage", "usage: /unregister PASSWORD");
    this.#withPassword(member, key, password, async (record) => {
      await this.#store.remove(key);
      member.account = null;
      this.#log.info(`${record.name} unregistered`);
      this.#notice(member, `${record.name} is no longer registered`);
    });
  }

  /** Checks `password` for the account `key`, then runs `then` with its record. */
  #withPassword(
    member: M,
    key: string,
    password: string,
    then: (record: AccountRecord) => Promise<void>,
  ): void {
    this.#run(member, async () => {
      const locked = this.#lockedFor(member, key);
      if (locked > 0) return this.#locked(member, locked);
      const record = await this.#store.get(key);
      if (!record) {
        member.account = null;
        return this.#error(member, "no-such-member", "that account no longer exists");
      }
      const ok = await verifyPassword(record, password);
      if (member.gone) return;
      if (!ok) return this.#failed(member, key, "wrong password");
      await then(record);
    });
  }

  /** Runs one account step for `member`, one at a time, reporting failures in one line. */
  #run(member: M, step: () => Promise<void>): void {
    if (this.#busy.has(member)) {
      return this.#error(member, "usage", "one account command at a time, please");
    }
    this.#busy.add(member);
    step().catch((error) => {
      this.#log.error(`Account command from ${member.link.peer} failed: ${error}`);
      if (!member.gone) this.#error(member, "usage", "that did not work; try again later");
    }).finally(() => this.#busy.delete(member));
  }

  /** Looks `key` up; when the store cannot answer, says so and passes `null`. */
  #lookup(member: M, key: string, then: (record: AccountRecord | undefined | null) => void): void {
    const found = this.#store.get(key);
    if (!(found instanceof Promise)) return then(found);
    found.then(then, () => {
      if (!member.gone) this.#error(member, "usage", "accounts are not reachable right now");
      then(null);
    });
  }

  #lockedFor(member: M, key: string): number {
    return Math.max(
      this.#budget.lockedFor(`name:${key}`),
      this.#budget.lockedFor(`address:${member.link.address}`),
    );
  }

  #locked(member: M, ms: number): void {
    this.#error(
      member,
      "flood",
      `too many wrong passwords; try again in ${Math.ceil(ms / 1000)} s`,
    );
  }

  /** A wrong password: counted per name and per address, answered after the growing delay. */
  async #failed(member: M, key: string, why: string): Promise<void> {
    const byName = this.#budget.fail(`name:${key}`);
    const byAddress = this.#budget.fail(`address:${member.link.address}`);
    this.#log.warn(`Wrong account password for ${key} from ${member.link.peer}`);
    for (
      const [cost, what] of [[byName, `the name ${key}`], [byAddress, member.link.address]] as const
    ) {
      if (cost.startedLockout) {
        this.#log.warn(
          `Locked out ${what} for ${
            Math.ceil(cost.lockedMs / 1000)
          } s after ${cost.failures} wrong account passwords`,
        );
      }
    }
    await new Promise((resolve) =>
      setTimeout(resolve, Math.max(byName.delayMs, byAddress.delayMs))
    );
    if (!member.gone) this.#error(member, "usage", why);
  }

  #notice(member: M, text: string): void {
    this.#room.tell(member, { type: "notice", text });
  }

  #error(member: M, code: ErrorCode, text: string): void {
    this.#room.tell(member, { type: "error", code, text });
  }
}
