/**
 * Bare baseline for the benchmark: the echo service in the fewest lines Deno allows. No lib,
 * no logging, no limits, no graceful close. `deno run -N bench/echo_baseline.ts PORT [--keep-alive]`
 *
 * @module
 */
const port = Number(Deno.args.find((arg) => /^\d+$/.test(arg)) ?? 8080);
const keepAlive = Deno.args.includes("--keep-alive");
const encoder = new TextEncoder();
const decoder = new TextDecoder();
const pad = (n: number): string => String(n).padStart(2, "0");

function stamp(): string {
  const d = new Date();
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

async function handle(conn: Deno.Conn): Promise<void> {
  const buffer = new Uint8Array(4096);
  let pending = "";
  try {
    while (true) {
      const n = await conn.read(buffer);
      if (n === null) return;
      pending += decoder.decode(buffer.subarray(0, n));
      let newline;
      while ((newline = pending.indexOf("\n")) >= 0) {
        const message = pending.slice(0, newline);
        pending = pending.slice(newline + 1);
        await conn.write(encoder.encode(`Server received at ${stamp()}: ${message}\n`));
        if (!keepAlive) return;
      }
    }
  } catch {
    // a reset: nothing to do
  } finally {
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
