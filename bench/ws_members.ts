/**
 * WebSocket members for the benchmark's mixed chat run (`bench/bench.ts` drives it): opens
 * COUNT WebSockets to `chat_server.ts --web-port`, waits for every welcome and prints
 * `{"ready":JOINED}`; then, like the load generator's TCP members, checks every line its chat
 * senders send (`b SENDER SEQ T_NS`, here the `text` of a `message` frame) for loss,
 * duplication and order, and measures its latency from the stamp, which must be
 * CLOCK_REALTIME (`loadgen chat ... realtime`): Deno cannot read CLOCK_MONOTONIC.
 *
 * ```sh
 * deno run --allow-net=127.0.0.1 bench/ws_members.ts WEBPORT COUNT SECONDS SENDERS RATE
 * ```
 *
 * Stops when stdin ends; the number of lines the senders sent, written on stdin before that,
 * gives `expected` and `lost`. Prints one JSON object on stdout, with loadgen's fields.
 *
 * @module
 */
const [port, count, seconds, senders, rate] = Deno.args.map(Number);
if (![port, count, seconds, senders, rate].every(Number.isInteger)) {
  console.error("usage: ws_members.ts WEBPORT COUNT SECONDS SENDERS RATE");
  Deno.exit(2);
}
const maxSeq = rate * seconds + 64; // as loadgen
const latencies: number[] = [];
let received = 0;
let duplicated = 0;
let reordered = 0;
let errors = 0;
let stopping = false;
/** The name each sender's lines came from: one sender, one name. */
const senderNames: string[] = [];

/** Wall-clock milliseconds with sub-millisecond precision, as CLOCK_REALTIME. */
const nowMs = (): number => performance.timeOrigin + performance.now();

interface Member {
  socket: WebSocket;
  /** Per sender, a byte per sequence number received. */
  seen: Uint8Array[];
  /** Per sender, the highest sequence received. */
  last: number[];
}

function onFrame(member: Member, data: unknown): void {
  if (typeof data !== "string") return;
  const frame = JSON.parse(data);
  if (frame.type !== "message" || !frame.text.startsWith("b ")) return;
  const [, s, seq, t] = frame.text.split(" ").map(Number);
  if (!(s >= 0 && s < senders && seq >= 0 && seq < maxSeq)) return;
  received++;
  latencies.push(nowMs() - t / 1e6);
  senderNames[s] ??= frame.from;
  if (senderNames[s] !== frame.from) errors++;
  if (member.seen[s][seq]) duplicated++;
  member.seen[s][seq] = 1;
  if (seq < member.last[s]) reordered++;
  else member.last[s] = seq;
}

/** Opens one member; resolves true once it is welcomed, false if it never is. */
function join(member: Member): Promise<boolean> {
  const { promise, resolve } = Promise.withResolvers<boolean>();
  const timer = setTimeout(() => resolve(false), 10_000);
  const { socket } = member;
  socket.onmessage = (message) => {
    if (JSON.parse(message.data).type !== "welcome") return;
    clearTimeout(timer);
    resolve(true);
    socket.onmessage = (message) => onFrame(member, message.data);
  };
  socket.onerror = () => {}; // the close event follows
  socket.onclose = () => {
    clearTimeout(timer);
    resolve(false);
    if (!stopping) errors++;
  };
  return promise;
}

const members: Member[] = Array.from({ length: count }, () => ({
  socket: new WebSocket(`ws://127.0.0.1:${port}/ws`),
  seen: Array.from({ length: senders }, () => new Uint8Array(maxSeq)),
  last: new Array(senders).fill(-1),
}));
const joined = (await Promise.all(members.map(join))).filter(Boolean).length;
console.log(JSON.stringify({ ready: joined }));

// Until stdin ends (the load generator is done), or long past the run if nobody says so.
const input = new Response(Deno.stdin.readable).text();
const said = await Promise.race([
  input,
  new Promise<string>((resolve) => setTimeout(() => resolve(""), (seconds + 60) * 1000)),
]);
const sent = said.trim() ? Number(said) : NaN;
stopping = true;
const held = members.filter((m) => m.socket.readyState === WebSocket.OPEN).length;
const expected = sent * count; // every line reaches every WebSocket member (none is a sender)
const sorted = Float64Array.from(latencies).sort();
/** The `q` quantile in ms, to the microsecond as loadgen prints it. */
const at = (q: number): number =>
  sorted.length ? Math.round(sorted[Math.floor(sorted.length * q)] * 1000) / 1000 : 0;
console.log(JSON.stringify({
  clients: count,
  held,
  senders,
  rate,
  sent,
  expected,
  delivered: received,
  deliveries_per_s: Math.round(received / seconds),
  offered_per_s: senders * rate * count,
  lost: expected - (received - duplicated),
  duplicated,
  reordered,
  p50_ms: at(0.5),
  p99_ms: at(0.99),
  errors,
}));
for (const { socket } of members) socket.close();
Deno.exit(0);
