/**
 * Bare baseline for the benchmark: a broadcast chat in the fewest lines Deno allows. No lib,
 * no logging, no limits, no commands, no protection against slow readers.
 * `deno run -N bench/chat_baseline.ts PORT`
 *
 * @module
 */
const port = Number(Deno.args.find((arg) => /^\d+$/.test(arg)) ?? 8080);
const encoder = new TextEncoder();
const decoder = new TextDecoder();
const clients = new Map<Deno.Conn, Promise<unknown>>();
let guests = 0;

/** Writes in order per client: each write waits for the previous one. */
function send(conn: Deno.Conn, bytes: Uint8Array): void {
  const previous = clients.get(conn);
  if (previous) clients.set(conn, previous.then(() => conn.write(bytes)).catch(() => {}));
}

async function handle(conn: Deno.Conn): Promise<void> {
  const name = `guest-${++guests}`;
  clients.set(conn, Promise.resolve());
  send(conn, encoder.encode(`* welcome ${name}\n`));
  const buffer = new Uint8Array(4096);
  let pending = "";
  try {
    while (true) {
      const n = await conn.read(buffer);
      if (n === null) break;
      pending += decoder.decode(buffer.subarray(0, n));
      let newline;
      while ((newline = pending.indexOf("\n")) >= 0) {
        const bytes = encoder.encode(`${name}: ${pending.slice(0, newline)}\n`);
        pending = pending.slice(newline + 1);
        for (const other of clients.keys()) if (other !== conn) send(other, bytes);
      }
    }
  } catch {
    // a reset
  } finally {
    clients.delete(conn);
    try {
      conn.close();
    } catch {
      // already closed
    }
  }
}

const listener = Deno.listen({ hostname: "127.0.0.1", port });
console.error(`listening on 127.0.0.1:${listener.addr.port}`);
for await (const conn of listener) handle(conn);
