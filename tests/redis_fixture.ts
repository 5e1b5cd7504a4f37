/**
 * A throwaway `redis-server` for tests: on a free loopback port, with nothing saved to disk,
 * waited on until it answers `PING` (never by sleeping a fixed time), stopped by its PID.
 *
 * Where `redis-server` is not installed the tests that need it skip visibly, except under
 * `CI=true`, where that is an error (CI must install it), as {@linkcode haveTool} does.
 *
 * @module
 */
import { withTimeout } from "./helpers.ts";

/** A running `redis-server`. */
export interface RedisFixture {
  /** `redis://127.0.0.1:PORT`. */
  readonly url: string;
  /** Its port (the same after {@linkcode RedisFixture.restart}). */
  readonly port: number;
  /** Its process id (a new one after a restart). */
  readonly pid: number;
  /** Stops it (SIGTERM) and waits for it to exit. Safe to call twice. */
  stop(): Promise<void>;
  /** Stops it and starts a fresh, empty one on the same port. */
  restart(): Promise<void>;
}

const SERVER = "redis-server";
const READY_MS = 10000;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Whether `redis-server` can be run; prints why not (or throws under `CI=true`). */
function haveRedis(): boolean {
  try {
    new Deno.Command(SERVER, { args: ["--version"], stdout: "null", stderr: "null" })
      .outputSync();
    return true;
  } catch {
    if (Deno.env.get("CI") === "true") {
      throw new Error(`${SERVER} is required under CI=true: .ci/run installs it`);
    }
    console.log(
      `SKIP: ${SERVER} not found; the Redis tests are skipped (apt-get install redis-server)`,
    );
    return false;
  }
}

/** A loopback port nothing listens on (just now). */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** Whether a Redis on `port` answers `PING` with `+PONG`. */
async function answers(port: number): Promise<boolean> {
  let conn: Deno.TcpConn | null = null;
  try {
    conn = await Deno.connect({ hostname: "127.0.0.1", port });
    await conn.write(encoder.encode("PING\r\n"));
    const buffer = new Uint8Array(64);
    const n = await conn.read(buffer);
    return n !== null && decoder.decode(buffer.subarray(0, n)).startsWith("+PONG");
  } catch {
    return false;
  } finally {
    try {
      conn?.close();
    } catch {
      // already closed
    }
  }
}

/** One `redis-server` process, its output kept for when it fails to start. */
class Server {
  readonly child: Deno.ChildProcess;
  readonly output: string[] = [];
  readonly #pumps: Promise<void>;
  #exited = false;

  constructor(port: number) {
    this.child = new Deno.Command(SERVER, {
      args: [
        "--port",
        String(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--loglevel",
        "warning",
      ],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.child.status.then(() => this.#exited = true);
    this.#pumps = Promise.all([this.#pump(this.child.stdout), this.#pump(this.child.stderr)])
      .then(() => {});
  }

  async #pump(stream: ReadableStream<Uint8Array>): Promise<void> {
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      this.output.push(chunk);
    }
  }

  /** Waits until it answers on `port`; throws with its output if it exits first. */
  async ready(port: number): Promise<void> {
    await withTimeout(
      (async () => {
        while (!(await answers(port))) {
          if (this.#exited) {
            throw new Error(`${SERVER} on port ${port} exited: ${this.output.join("").trim()}`);
          }
          // Polling for readiness, not waiting in place of it: each try is a real PING.
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      })(),
      READY_MS,
      `${SERVER} on port ${port} to answer PING`,
    );
  }

  async stop(): Promise<void> {
    if (!this.#exited) {
      try {
        this.child.kill("SIGTERM");
      } catch {
        // exited meanwhile
      }
    }
    await withTimeout(this.child.status, READY_MS, `${SERVER} to exit`).catch((error) => {
      this.child.kill("SIGKILL");
      throw error;
    });
    await this.#pumps;
  }
}

/**
 * Starts a `redis-server` on a free loopback port, or returns `null` (having said why) when
 * there is none installed.
 */
export async function startRedis(): Promise<RedisFixture | null> {
  if (!haveRedis()) return null;
  let port = 0;
  let server: Server | null = null;
  // A free port can be taken between finding it and binding it: try a few.
  for (let attempt = 1; server === null; attempt++) {
    port = freePort();
    const candidate = new Server(port);
    try {
      await candidate.ready(port);
      server = candidate;
    } catch (error) {
      await candidate.stop().catch(() => {});
      if (attempt === 3) throw error;
    }
  }
  let current: Server = server;
  let stopped = false;
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    get pid() {
      return current.child.pid;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await current.stop();
    },
    async restart() {
      await current.stop();
      current = new Server(port);
      stopped = false;
      try {
        await current.ready(port);
      } catch (error) {
        stopped = true;
        await current.stop().catch(() => {});
        throw error;
      }
    },
  };
}
