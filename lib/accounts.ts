/**
 * Accounts: a registered name belongs to whoever knows its password. Passwords are kept only
 * as scrypt hashes (`node:crypto`), each with its own salt and with the cost parameters in the
 * record, so they can be raised later without breaking old records; they are compared in
 * constant time. Records live in the room's store: memory here, SQLite and Redis in their
 * engines' files.
 *
 * @module
 */
import { randomBytes, scrypt, timingSafeEqual } from "node:crypto";

/** scrypt's cost parameters, stored with every hash. */
export interface ScryptParams {
  /** CPU/memory cost (a power of two). */
  N: number;
  /** Block size. */
  r: number;
  /** Parallelism. */
  p: number;
  /** Length of the derived key, in bytes. */
  keyLength: number;
}

/** Today's parameters: about 50 ms and 16 MiB per hash on our machines (OWASP's minimum). */
export const SCRYPT_PARAMS: ScryptParams = { N: 2 ** 14, r: 8, p: 1, keyLength: 32 };

/** One account. */
export interface AccountRecord {
  /** The name as registered (its case kept). */
  name: string;
  /** `scrypt`. */
  algorithm: "scrypt";
  /** The parameters the hash was made with. */
  params: ScryptParams;
  /** Base64 of the per-account salt. */
  salt: string;
  /** Base64 of the derived key. */
  hash: string;
  /** When it was registered, in ms since the epoch. */
  created: number;
}

/** Where accounts are kept. Calls may answer at once (memory, SQLite) or later (Redis). */
export interface AccountStore {
  /** Whether accounts survive a restart of the server. */
  readonly persistent: boolean;
  /** The account of `key` (a name key: lower case), if any. */
  get(key: string): AccountRecord | undefined | Promise<AccountRecord | undefined>;
  /** Creates the account unless one exists for its key; says whether it did. */
  create(key: string, record: AccountRecord): boolean | Promise<boolean>;
  /** Replaces an account's record (a new password). */
  update(key: string, record: AccountRecord): void | Promise<void>;
  /** Removes an account; says whether there was one. */
  remove(key: string): boolean | Promise<boolean>;
}

/** Accounts in memory: they last as long as the process. */
export class MemoryAccountStore implements AccountStore {
  readonly persistent = false;
  readonly #records = new Map<string, AccountRecord>();

  get(key: string): AccountRecord | undefined {
    return this.#records.get(key);
  }

  create(key: string, record: AccountRecord): boolean {
    if (this.#records.has(key)) return false;
    this.#records.set(key, record);
    return true;
  }

  update(key: string, record: AccountRecord): void {
    this.#records.set(key, record);
  }

  remove(key: string): boolean {
    return this.#records.delete(key);
  }
}

function derive(password: string, salt: Buffer, params: ScryptParams): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(
      password.normalize("NFC"),
      salt,
      params.keyLength,
      { N: params.N, r: params.r, p: params.p, maxmem: 128 * params.N * params.r * 2 },
      (error, key) => error ? reject(error) : resolve(key),
    );
  });
}

/** A record for `name` with `password` hashed under a fresh salt. */
export async function hashPassword(
  name: string,
  password: string,
  params: ScryptParams = SCRYPT_PARAMS,
): Promise<AccountRecord> {
  const salt = randomBytes(16);
  const key = await derive(password, salt, params);
  return {
    name,
    algorithm: "scrypt",
    params: { ...params },
    salt: salt.toString("base64"),
    hash: key.toString("base64"),
    created: Date.now(),
  };
}

/** Whether `password` is the record's, in constant time, with the record's own parameters. */
export async function verifyPassword(record: AccountRecord, password: string): Promise<boolean> {
  const expected = Buffer.from(record.hash, "base64");
  const key = await derive(password, Buffer.from(record.salt, "base64"), record.params);
  return key.length === expected.length && timingSafeEqual(key, expected);
}

/** Why a password cannot be used, or `null`. */
export function passwordProblem(password: string): string | null {
  if (password.length < 8) return "a password has at least 8 characters";
  if (password.length > 256) return "a password has at most 256 characters";
  return null;
}
