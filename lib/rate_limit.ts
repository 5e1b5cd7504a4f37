/**
 * Token-bucket rate limiting: up to `burst` events at once, `rate` per second sustained.
 *
 * @module
 */

/** A token bucket. Time is passed in, so it is exact under test and cheap in a hot path. */
export class TokenBucket {
  readonly #rate: number;
  readonly #burst: number;
  #tokens: number;
  #updated: number;

  /**
   * @param rate tokens added per second; 0 means unlimited.
   * @param burst most tokens held at once (the bucket starts full).
   */
  constructor(rate: number, burst: number, now: number = performance.now()) {
    this.#rate = rate;
    this.#burst = Math.max(1, burst);
    this.#tokens = this.#burst;
    this.#updated = now;
  }

  /** Takes one token if there is one. Always true when the rate is 0 (no limit). */
  take(now: number = performance.now()): boolean {
    if (this.#rate === 0) return true;
    this.#refill(now);
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }

  /** Milliseconds until a token is available (0 if one is now). */
  waitMs(now: number = performance.now()): number {
    if (this.#rate === 0) return 0;
    this.#refill(now);
    return this.#tokens >= 1 ? 0 : Math.ceil(((1 - this.#tokens) / this.#rate) * 1000);
  }

  #refill(now: number): void {
    const elapsed = Math.max(0, now - this.#updated) / 1000;
    this.#tokens = Math.min(this.#burst, this.#tokens + elapsed * this.#rate);
    this.#updated = now;
  }
}
