/**
 * Connections per client address: so that one machine (one student's script) cannot take every
 * place on a server. Shared by every transport of a server, so TCP and WebSocket connections
 * from one address count together.
 *
 * @module
 */

/**
 * The key a client is counted under: the IPv4 address, or the /64 prefix of an IPv6 address
 * (one host is routinely given a whole /64, so counting single IPv6 addresses limits nothing).
 * IPv4-mapped IPv6 addresses (`::ffff:1.2.3.4`) count as the IPv4 address.
 */
export function addressKey(addr: Deno.Addr): string {
  if (addr.transport !== "tcp" && addr.transport !== "udp") return addr.transport;
  const host = addr.hostname;
  if (!host.includes(":")) return host;
  const mapped = host.match(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/i);
  if (mapped) return mapped[1];
  return ipv6Prefix64(host);
}

/** The first four groups of an IPv6 address, expanded: `2001:db8:0:1::/64`. */
function ipv6Prefix64(host: string): string {
  const bare = host.split("%")[0].toLowerCase();
  const [head, tail] = bare.includes("::") ? bare.split("::") : [bare, null];
  const left = head ? head.split(":") : [];
  const right = tail ? tail.split(":") : [];
  const groups = tail === null
    ? left
    : [...left, ...new Array(Math.max(0, 8 - left.length - right.length)).fill("0"), ...right];
  return `${groups.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, "")).join(":")}::/64`;
}

/** What a chat client over the limit is told (every transport says the same). */
export function tooManyText(max: number): string {
  return `too many connections from your address (at most ${max}); close one and try again`;
}

/** Settings of an {@linkcode AddressLimit}. */
export interface AddressLimitOptions {
  /** Most connections open at once from one address; 0 = no limit. */
  max: number;
  /**
   * Told once when an address starts being refused, and once when that episode ends (when the
   * address is down to half the limit).
   */
  log?: (message: string) => void;
}

/** Counts open connections per address and refuses those over the limit. */
export class AddressLimit {
  readonly #max: number;
  readonly #log: (message: string) => void;
  readonly #open = new Map<string, number>();
  /** Addresses being refused now, with how many were refused in this episode. */
  readonly #refused = new Map<string, number>();

  /** A limit of `options.max` per address. */
  constructor(options: AddressLimitOptions) {
    this.#max = options.max;
    this.#log = options.log ?? (() => {});
  }

  /** The limit (0 = none). */
  get max(): number {
    return this.#max;
  }

  /** Connections open from `key` now. */
  count(key: string): number {
    return this.#open.get(key) ?? 0;
  }

  /**
   * Counts a new connection from `key`, or refuses it (returns `false`) when that address is
   * at the limit. A refused connection is not counted: do not {@linkcode release} it.
   */
  tryAdd(key: string): boolean {
    const open = this.#open.get(key) ?? 0;
    if (this.#max > 0 && open >= this.#max) {
      const refused = this.#refused.get(key);
      if (refused === undefined) {
        this.#log(
          `Refusing connections from ${key}: ${open} already open from that address (--max-per-address ${this.#max})`,
        );
      }
      this.#refused.set(key, (refused ?? 0) + 1);
      return false;
    }
    this.#open.set(key, open + 1);
    return true;
  }

  /** A connection counted by {@linkcode tryAdd} has closed. */
  release(key: string): void {
    const open = (this.#open.get(key) ?? 1) - 1;
    if (open > 0) this.#open.set(key, open);
    else this.#open.delete(key);
    const refused = this.#refused.get(key);
    // The episode ends once the address is well under the limit, not at every close: a
    // client cycling one connection at the limit gets one line, not one per cycle.
    if (refused !== undefined && open <= this.#max / 2) {
      this.#refused.delete(key);
      this.#log(`Accepting ${key} again; refused ${refused} connection(s) over the limit`);
    }
  }
}
