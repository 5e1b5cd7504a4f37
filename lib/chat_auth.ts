/**
 * The chat room's password: checking an attempt in constant time, and the lines a client sees
 * on its way in. The room (`chat_room.ts`) applies the policy: one second before every
 * answer to a wrong password, three failures and the client is out.
 *
 * @module
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { FatalError, readFlagFile } from "./cli.ts";

/** Told to a client on arrival when the room has a password. */
export const PASSWORD_REQUIRED = "* This room needs a password: send /auth PASSWORD";
/** The answer to a wrong password (after a delay) while attempts remain. */
export const WRONG_PASSWORD = "* wrong password; try again with /auth PASSWORD";
/** The last answer to a client that used up its attempts. */
export const TOO_MANY_FAILURES = "* too many wrong passwords; goodbye";

/** A password to check attempts against. */
export class Password {
  readonly #digest: Uint8Array;

  /** Keeps only a digest of `secret`. */
  constructor(secret: string) {
    this.#digest = digest(secret);
  }

  /**
   * Whether `attempt` is the password. Both sides are hashed to the same length first, so the
   * comparison takes the same time whatever the attempt, its length included.
   */
  matches(attempt: string): boolean {
    return timingSafeEqual(digest(attempt), this.#digest);
  }
}

function digest(text: string): Uint8Array {
  return createHash("sha256").update(text, "utf8").digest();
}

/**
 * Reads a password from the first line of `path` (a trailing newline is not part of it), so it
 * never has to appear on a command line. Throws a {@linkcode FatalError} with a hint.
 */
export function readPasswordFile(path: string, flag = "--password-file"): string {
  const password = readFlagFile(path, flag).split(/\r?\n/)[0];
  if (password === "") {
    throw new FatalError(`${flag}: ${path} is empty; put the password on its first line`);
  }
  return password;
}
