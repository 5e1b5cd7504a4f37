#!/usr/bin/env -S deno run --allow-run --allow-read --allow-net=127.0.0.1
/**
 * The soak: both servers, as real processes, under a mix of well-behaved clients and every
 * fault and bad input we know, for a chosen time. Checked throughout and at the end:
 *
 * - neither server crashes, and both stop cleanly (SIGTERM, exit 0) at the end;
 * - well-behaved chat clients lose, duplicate and reorder nothing;
 * - every well-behaved echo request gets its own reply;
 * - resident memory and open descriptors return to their baseline once clients leave.
 *
 * ```sh
 * deno task soak                   # 10 minutes
 * deno task soak --duration 60     # seconds
 * ```
 *
 * `tests/soak_test.ts` runs it for 30 seconds.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { ROLES } from "../tools/compile.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** What a soak run found. */
export interface SoakReport {
  /** Seconds of load. */
  duration: number;
  /** Per server: crashes, memory and descriptors. */
  servers: ServerReport[];
  /** Well-behaved chat traffic. */
  chat: {
    sent: number;
    delivered: number;
    expected: number;
    lost: number;
    duplicated: number;
    reordered: number;
  };
  /** Well-behaved echo traffic. */
  echo: { requests: number; answered: number; wrong: number; failed: number };
  /** Faults and bad inputs injected, by kind. */
  faults: Record<string, number>;
}

/** One server's side of a {@linkcode SoakReport}. */
export interface ServerReport {
  /** Which. */
  name: string;
  /** Whether the process was still running when the load stopped. */
  survived: boolean;
  /** Exit status after SIGTERM at the end (0 is clean). */
  exitCode: number | null;
  /** Milliseconds from SIGTERM to exit. */
  stopMs: number;
  /** Resident memory (KiB) before load, peak during it, after clients left. */
  rss: { baseline: number; peak: number; after: number };
  /** Open descriptors before load, peak during it, after clients left. */
  fds: { baseline: number; peak: number; after: number };
}

async function run(command: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(command, { args, stdout: "piped", stderr: "null" }).output();
  return decoder.decode(out.stdout);
}

/** Resident KiB and open descriptors of a process (Deno reads /proc only with -A, so `cat`). */
async function sample(pid: number): Promise<{ rss: number; fds: number }> {
  const status = await run("cat", [`/proc/${pid}/status`]);
  const fds = await run("ls", [`/proc/${pid}/fd`]);
  return {
    rss: Number(status.match(/VmRSS:\s+(\d+)/)?.[1] ?? NaN),
    fds: fds.split("\n").filter(Boolean).length,
  };
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  return port;
}

/** A deterministic pseudo-random source (mulberry32), so a run can be repeated. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

interface Proc {
  name: string;
  port: number;
  child: Deno.ChildProcess;
  exited: boolean;
}

async function startServer(name: "server" | "chat_server", extra: string[]): Promise<Proc> {
  const role = ROLES.find((r) => r.name === name);
  if (!role) throw new Error(name);
  const port = freePort();
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      ...role.permissions,
      `${ROOT}${role.script}`,
      "--port",
      String(port),
      "--quiet",
      ...extra,
    ],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  const proc: Proc = { name: role.script, port, child, exited: false };
  child.status.then(() => proc.exited = true);
  for (let i = 0; i < 400 && !proc.exited; i++) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return proc;
    } catch {
      await sleep(25);
    }
  }
  throw new Error(`${role.script} did not start`);
}

async function connect(port: number): Promise<Deno.TcpConn> {
  return await Deno.connect({ hostname: "127.0.0.1", port });
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < bytes.length) offset += await conn.write(bytes.subarray(offset));
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // already closed
  }
}

/** Reads lines until the peer closes or `stop` says so. */
async function readLines(conn: Deno.Conn, onLine: (line: string) => void): Promise<void> {
  const buffer = new Uint8Array(65536);
  let partial = "";
  try {
    while (true) {
      const n = await conn.read(buffer);
      if (n === null) return;
      const parts = (partial + decoder.decode(buffer.subarray(0, n), { stream: true })).split("\n");
      partial = parts.pop() ?? "";
      for (const line of parts) onLine(line);
    }
  } catch {
    // closed or reset
  }
}

/** Runs the soak for `duration` seconds; `log` receives progress lines. */
export async function runSoak(
  duration: number,
  log: (line: string) => void = () => {},
  seed = 1,
): Promise<SoakReport> {
  const rand = random(seed);
  const echo = await startServer("server", ["--idle-timeout", "3", "--max-connections", "200"]);
  const chat = await startServer("chat_server", [
    "--no-console",
    "--idle-timeout",
    "30",
    "--max-clients",
    "300",
    "--max-queue",
    "262144",
  ]);
  const servers = [echo, chat];
  await sleep(500);
  const baselines = await Promise.all(servers.map((s) => sample(s.child.pid)));
  const peaks = baselines.map((b) => ({ ...b }));
  const faults: Record<string, number> = {};
  const count = (kind: string): void => {
    faults[kind] = (faults[kind] ?? 0) + 1;
  };
  let stopping = false;
  const until = performance.now() + duration * 1000;

  // Well-behaved chat members: each sends numbered lines and checks everyone else's.
  const GOOD = 8;
  const sent = new Array(GOOD).fill(0);
  const members: {
    conn: Deno.TcpConn;
    name: string;
    next: number[];
    got: number;
    dup: number;
    reorder: number;
    lost: number;
  }[] = [];
  for (let i = 0; i < GOOD; i++) {
    const conn = await connect(chat.port);
    members.push({
      conn,
      name: `good${i}`,
      next: new Array(GOOD).fill(0),
      got: 0,
      dup: 0,
      reorder: 0,
      lost: 0,
    });
  }
  const readers = members.map((m) =>
    readLines(m.conn, (line) => {
      const match = line.match(/^good(\d+): soak (\d+)$/);
      if (!match) return;
      const from = Number(match[1]);
      const seq = Number(match[2]);
      m.got++;
      if (seq === m.next[from]) m.next[from]++;
      else if (seq < m.next[from]) m.dup++;
      else {
        m.lost += seq - m.next[from];
        m.reorder++;
        m.next[from] = seq + 1;
      }
    })
  );
  for (const m of members) await writeAll(m.conn, encoder.encode(`/nick ${m.name}\n`));
  await sleep(500);
  const talking = (async () => {
    while (!stopping) {
      for (let i = 0; i < GOOD; i++) {
        await writeAll(members[i].conn, encoder.encode(`soak ${sent[i]}\n`)).catch(() => {});
        sent[i]++;
      }
      await sleep(200); // load: 5 lines per second per member, under the default flood limit
    }
  })();

  // Well-behaved echo clients: one request per connection, each checks its own reply.
  const echoStats = { requests: 0, answered: 0, wrong: 0, failed: 0 };
  const echoLoops = Array.from({ length: 4 }, async (_, worker) => {
    let i = 0;
    while (!stopping) {
      const message = `w${worker}-${i++}`;
      echoStats.requests++;
      try {
        const conn = await connect(echo.port);
        await writeAll(conn, encoder.encode(message + "\n"));
        const lines: string[] = [];
        await readLines(conn, (line) => lines.push(line));
        closeQuietly(conn);
        if (lines.length === 1 && lines[0].endsWith(`: ${message}`)) echoStats.answered++;
        else echoStats.wrong++;
      } catch {
        echoStats.failed++;
      }
      await sleep(5); // load
    }
  });

  // Faults and bad input, one every ~100 ms, against one server or the other.
  const FAULTS: Record<string, (port: number) => Promise<void>> = {
    "oversize line": async (port) => {
      const conn = await connect(port);
      const chunk = encoder.encode("x".repeat(65536));
      for (let i = 0; i < 32; i++) await writeAll(conn, chunk).catch(() => {});
      closeQuietly(conn);
    },
    "invalid UTF-8": async (port) => {
      const conn = await connect(port);
      await writeAll(conn, Uint8Array.of(0xff, 0xfe, 0xc0, 0xaf, 0x00, 0x0d, 0x0a));
      // The echo server answers and closes; the chat keeps a valid member: leave after a while.
      await Promise.race([readLines(conn, () => {}), sleep(300)]);
      closeQuietly(conn);
    },
    "escape sequences": async (port) => {
      const conn = await connect(port);
      await writeAll(
        conn,
        encoder.encode("\x1b[2J\x1b]52;c;ZXZpbA==\x07\u009b31m\x1bPq\x1b\\ boo\n"),
      );
      closeQuietly(conn);
    },
    "telnet IAC": async (port) => {
      const conn = await connect(port);
      await writeAll(conn, Uint8Array.of(0xff, 0xfd, 0x18, 0xff, 0xf4, 0x68, 0x69, 0x0a));
      closeQuietly(conn);
    },
    "reset mid-line": async (port) => {
      const conn = await connect(port);
      await writeAll(conn, encoder.encode("half a li"));
      conn.close(); // with the greeting unread (chat), the kernel sends RST
    },
    "half-close early": async (port) => {
      const conn = await connect(port);
      await conn.closeWrite();
      await readLines(conn, () => {});
      closeQuietly(conn);
    },
    "idle, then gone": async (port) => {
      const conn = await connect(port);
      await sleep(1000);
      closeQuietly(conn);
    },
    "flood": async (port) => {
      const conn = await connect(port);
      await writeAll(conn, encoder.encode("/who\n".repeat(500) + "spam\n".repeat(500)));
      closeQuietly(conn);
    },
    "long commands": async (port) => {
      const conn = await connect(port);
      await writeAll(
        conn,
        encoder.encode(`/nick ${"n".repeat(3000)}\n/${"c".repeat(3000)}\n/msg\n/me\n/nick\n`),
      );
      closeQuietly(conn);
    },
    "not reading": async (port) => {
      const conn = await connect(port);
      await writeAll(conn, encoder.encode("/help\n".repeat(15)));
      await sleep(2000);
      conn.close();
    },
  };
  const kinds = Object.keys(FAULTS);
  const faulting = (async () => {
    const inFlight = new Set<Promise<void>>();
    while (!stopping) {
      const kind = kinds[Math.floor(rand() * kinds.length)];
      const target = rand() < 0.5 ? echo : chat;
      count(`${kind} (${target === echo ? "echo" : "chat"})`);
      const job = FAULTS[kind](target.port).catch(() => {}).finally(() => inFlight.delete(job));
      inFlight.add(job);
      await sleep(100);
    }
    await Promise.all(inFlight);
  })();

  // Samples every second; progress every 30 s.
  let lastReport = performance.now();
  while (performance.now() < until && servers.every((s) => !s.exited)) {
    await sleep(1000);
    for (const [i, s] of servers.entries()) {
      if (s.exited) continue;
      const now = await sample(s.child.pid);
      peaks[i].rss = Math.max(peaks[i].rss, now.rss);
      peaks[i].fds = Math.max(peaks[i].fds, now.fds);
    }
    if (performance.now() - lastReport > 30000) {
      lastReport = performance.now();
      const left = Math.round((until - performance.now()) / 1000);
      log(
        `soak: ${left} s left; echo ${echoStats.answered} answered; chat ${
          members.reduce((a, m) => a + m.got, 0)
        } delivered`,
      );
    }
  }
  const survived = servers.map((s) => !s.exited);
  stopping = true;
  await Promise.all([talking, ...echoLoops, faulting]);
  // Let the last messages arrive, then everyone leaves.
  await sleep(1500);
  for (const m of members) closeQuietly(m.conn);
  await Promise.all(readers);
  await sleep(2500); // lingering closes take at most a second
  const after = await Promise.all(
    servers.map((s) => s.exited ? { rss: NaN, fds: NaN } : sample(s.child.pid)),
  );

  const reports: ServerReport[] = [];
  for (const [i, s] of servers.entries()) {
    const t0 = performance.now();
    if (!s.exited) s.child.kill("SIGTERM");
    const status = await s.child.status;
    reports.push({
      name: s.name,
      survived: survived[i],
      exitCode: survived[i] ? status.code : null,
      stopMs: Math.round(performance.now() - t0),
      rss: { baseline: baselines[i].rss, peak: peaks[i].rss, after: after[i].rss },
      fds: { baseline: baselines[i].fds, peak: peaks[i].fds, after: after[i].fds },
    });
  }

  const totalSent = sent.reduce((a, b) => a + b, 0);
  const delivered = members.reduce((a, m) => a + m.got, 0);
  let lost = 0;
  for (const [i, m] of members.entries()) {
    for (let from = 0; from < GOOD; from++) if (from !== i) lost += sent[from] - m.next[from];
    lost += m.lost;
  }
  return {
    duration,
    servers: reports,
    chat: {
      sent: totalSent,
      delivered,
      expected: totalSent * (GOOD - 1),
      lost,
      duplicated: members.reduce((a, m) => a + m.dup, 0),
      reordered: members.reduce((a, m) => a + m.reorder, 0),
    },
    echo: echoStats,
    faults,
  };
}

/** The report as the table the README quotes. */
export function formatReport(report: SoakReport): string {
  const lines = [
    `Soak: ${report.duration} s`,
    "server          survived  SIGTERM  RSS KiB before/peak/after (growth)   fds before/peak/after",
  ];
  for (const s of report.servers) {
    lines.push(
      `${s.name.padEnd(15)} ${(s.survived ? "yes" : "NO").padEnd(9)} ${
        `exit ${s.exitCode} in ${s.stopMs} ms`.padEnd(8)
      } ` +
        `${s.rss.baseline}/${s.rss.peak}/${s.rss.after} (${
          s.rss.after - s.rss.baseline >= 0 ? "+" : ""
        }${s.rss.after - s.rss.baseline})   ${s.fds.baseline}/${s.fds.peak}/${s.fds.after}`,
    );
  }
  const c = report.chat;
  lines.push(
    `chat (well-behaved): ${c.sent} sent, ${c.delivered} of ${c.expected} delivered, ` +
      `${c.lost} lost, ${c.duplicated} duplicated, ${c.reordered} reordered`,
  );
  const e = report.echo;
  lines.push(
    `echo (well-behaved): ${e.answered} of ${e.requests} answered, ${e.wrong} wrong, ${e.failed} failed`,
  );
  lines.push(
    `faults: ${Object.values(report.faults).reduce((a, b) => a + b, 0)} injected: ` +
      Object.entries(report.faults).sort().map(([k, v]) => `${k} ${v}`).join(", "),
  );
  return lines.join("\n");
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: { duration: { type: "string", default: "600" } },
  });
  const duration = Number(values.duration);
  if (!Number.isFinite(duration) || duration < 5) {
    console.error("soak.ts: --duration takes seconds (at least 5)");
    Deno.exit(2);
  }
  console.log(`Command: deno task soak --duration ${duration}`);
  const report = await runSoak(duration, (line) => console.log(line));
  console.log(formatReport(report));
  const ok =
    report.servers.every((s) =>
      s.survived && s.exitCode === 0 && s.fds.after <= s.fds.baseline + 2
    ) &&
    report.chat.lost === 0 && report.chat.duplicated === 0 && report.chat.reordered === 0 &&
    report.echo.wrong === 0;
  console.log(ok ? "soak: OK" : "soak: FAILED");
  if (!ok) Deno.exit(1);
}

if (import.meta.main) await main();
