/**
 * The timestamp format of the whole lab: `YYYY-MM-DD HH:MM:SS`, local time.
 *
 * @module
 */

let cachedSecond = -1;
let cachedText = "";

/**
 * Formats `date` (default: now) as `YYYY-MM-DD HH:MM:SS` in the local time zone. The text for
 * the current second is cached, because a busy server stamps thousands of replies per second.
 */
export function formatTimestamp(date: Date = new Date()): string {
  const second = Math.floor(date.getTime() / 1000);
  if (second === cachedSecond) return cachedText;
  const pad = (n: number): string => String(n).padStart(2, "0");
  const text = `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ` +
    `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
  cachedSecond = second;
  cachedText = text;
  return text;
}

/**
 * Waits for `promise` to settle, or for `ms` to pass, whichever is first; never rejects. For
 * grace periods: "let them finish, but not for longer than this".
 */
export async function settleWithin(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const limit = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms);
  });
  try {
    await Promise.race([promise.catch(() => {}), limit]);
  } finally {
    clearTimeout(timer);
  }
}
