/**
 * `tools/lab_net.ts` (`deno task lab-net`): flags, `--dry-run` and the undo logic run
 * anywhere; the real lab (namespaces, veth, netem, an echo round trip across it, cleanup on
 * Ctrl+C and after a failed `up`) runs when this machine lets us make network namespaces
 * (root, iproute2) and, for the delay, has `tc netem`. Otherwise those tests are skipped with
 * a printed `SKIP:` reason; under `CI=true` a machine that cannot make namespaces fails
 * instead (CI runs as root: it must install iproute2). A kernel without netem (`sch_netem`)
 * skips visibly even under CI: no package can add it to a kernel that loads no modules.
 *
 * The round trips are measured by this file itself, run as a script inside the client's
 * namespace (`deno run tests/lab_net_test.ts probe HOST PORT COUNT`). Only the lab's own
 * addresses are ever contacted.
 */
import assert from "node:assert/strict";
import denoConfig from "../deno.json" with { type: "json" };
import {
  labDown,
  LabError,
  labSet,
  labUp,
  layout,
  netemArgs,
  parseLabArgs,
  type Runner,
  type RunResult,
  shellLine,
  UsageError,
} from "../tools/lab_net.ts";
import { LineClient, REPLY, ROOT, runCommand, runDeno, Spawned } from "./helpers.ts";

const decoder = new TextDecoder();

/** `deno run <permissions> tools/lab_net.ts`, exactly as the task runs it. */
const TASK_ARGS: string[] = (denoConfig.tasks as Record<string, string>)["lab-net"].split(" ")
  .slice(1);

function labNet(args: string[], permissions = TASK_ARGS): ReturnType<typeof runDeno> {
  return runDeno([...permissions, ...args], { timeoutMs: 30000 });
}

// ---------------------------------------------------------------------------------------------
// What this machine can do

interface LabSupport {
  /** Network namespaces can be made (root, `ip`). */
  netns: boolean;
  /** `tc netem` works in them. */
  netem: boolean;
}

function probeSync(argv: string[]): { ok: boolean; why: string } {
  try {
    const out = new Deno.Command(argv[0], {
      args: argv.slice(1),
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).outputSync();
    return { ok: out.success, why: decoder.decode(out.stderr).trim().split("\n")[0] };
  } catch (error) {
    return { ok: false, why: (error as Error).message };
  }
}

function unsupported(reason: string, requiredUnderCi: boolean): false {
  if (requiredUnderCi && Deno.env.get("CI") === "true") {
    throw new Error(`${reason}: required under CI=true (run as root, with iproute2 installed)`);
  }
  console.log(`SKIP: ${reason}; those lab-net tests are skipped`);
  return false;
}

/** Makes and deletes a throwaway namespace, and tries netem in it. */
function probeLab(): LabSupport {
  const ns = `lnprobe${crypto.randomUUID().slice(0, 8)}`;
  const add = probeSync(["ip", "netns", "add", ns]);
  if (!add.ok) {
    return {
      netns: unsupported(
        `cannot make a network namespace (${add.why}): needs root and iproute2`,
        true,
      ),
      netem: false,
    };
  }
  try {
    probeSync(["ip", "-n", ns, "link", "set", "lo", "up"]);
    const netem = probeSync(["tc", "-n", ns, "qdisc", "add", "dev", "lo", "root", "netem"]);
    return {
      netns: true,
      netem: netem.ok ||
        unsupported(`tc netem does not work in this kernel (${netem.why}): no delay tests`, false),
    };
  } finally {
    probeSync(["ip", "netns", "del", ns]);
  }
}

/** Not probed when this file runs as the round-trip script. */
const support: LabSupport = import.meta.main ? { netns: false, netem: false } : probeLab();

async function namespaces(): Promise<string[]> {
  const result = await runCommand("ip", ["netns", "list"]);
  assert.equal(result.code, 0, result.stderr);
  return result.stdout.split("\n").map((l) => l.trim().split(/\s+/)[0]).filter(Boolean);
}

/** A fresh lab: a name no one else uses and a /24 of its own. */
function freshLab(): { name: string; subnet: string; server: string; client: string } {
  const name = `t${crypto.randomUUID().slice(0, 7)}`;
  const subnet = `10.99.${1 + Math.floor(Math.random() * 250)}`;
  return { name, subnet, server: `${name}-server`, client: `${name}-client` };
}

/** Last resort in `finally`: whatever the tool did or did not do, nothing of the lab stays. */
async function forceRemove(name: string): Promise<void> {
  for (const ns of [`${name}-client`, `${name}-server`]) {
    await runCommand("ip", ["netns", "del", ns]).catch(() => {});
  }
}

/** The echo server, run inside the server's namespace; resolves once it logs "bound to". */
async function startServerIn(ns: string, host: string): Promise<{ proc: Spawned; port: number }> {
  const proc = new Spawned(
    ["netns", "exec", ns, Deno.execPath(), "run", "-N", "server.ts", "--host", host, "--port", "0"],
    { command: "ip" },
  );
  try {
    return { proc, port: await proc.port() };
  } catch (error) {
    await stopServer(proc);
    throw error;
  }
}

async function stopServer(proc: Spawned): Promise<void> {
  try {
    proc.child.kill("SIGTERM");
  } catch {
    // exited already
  }
  await proc.exit();
}

interface Probe {
  /** ms from connect() to connected, each time (one round trip: SYN, SYN-ACK). */
  connect: number[];
  /** ms from sending a line to its reply, each time. */
  roundTrip: number[];
  /** The last reply line. */
  reply: string;
}

/** Runs this file as a script in the client's namespace: `count` echo round trips. */
async function probeFrom(ns: string, host: string, port: number, count = 3): Promise<Probe> {
  const result = await runCommand("ip", [
    "netns",
    "exec",
    ns,
    Deno.execPath(),
    "run",
    `--allow-net=${host}:${port}`,
    "tests/lab_net_test.ts",
    "probe",
    host,
    String(port),
    String(count),
  ], { cwd: ROOT, env: { NO_COLOR: "1" }, timeoutMs: 30000 });
  assert.equal(result.code, 0, result.stderr);
  return JSON.parse(result.stdout) as Probe;
}

/** The script side of {@linkcode probeFrom}. */
async function probeMain(host: string, port: number, count: number): Promise<void> {
  const probe: Probe = { connect: [], roundTrip: [], reply: "" };
  for (let i = 0; i < count; i++) {
    const started = performance.now();
    const client = await LineClient.connect({ transport: "tcp", hostname: host, port });
    const connected = performance.now();
    try {
      await client.send(`ping ${i}\n`);
      probe.reply = (await client.readLine(10000)) ?? "";
      probe.roundTrip.push(performance.now() - connected);
      probe.connect.push(connected - started);
    } finally {
      client.close();
    }
  }
  console.log(JSON.stringify(probe));
}

// ---------------------------------------------------------------------------------------------
// Anywhere: flags, --dry-run, the undo logic with a fake `ip`

Deno.test("lab-net: flags become netem arguments; mistakes are UsageErrors", () => {
  const up = parseLabArgs(["up", "--delay", "100ms", "--jitter", "20ms", "--loss", "5%"]);
  assert.equal(up.command, "up");
  assert.deepEqual(up.lab, { name: "lab", subnet: "10.99.0" });
  assert.deepEqual(netemArgs({ ...up.netem, rate: "1mbit" }), [
    "delay",
    "100ms",
    "20ms",
    "loss",
    "5%",
    "rate",
    "1mbit",
  ]);
  assert.deepEqual(layout(up.lab), {
    serverNs: "lab-server",
    clientNs: "lab-client",
    serverIf: "veth-server",
    clientIf: "veth-client",
    serverIp: "10.99.0.1",
    clientIp: "10.99.0.2",
  });
  for (
    const bad of [
      [],
      ["sideways"],
      ["up", "extra"],
      ["up", "--bogus"],
      ["up", "--delay", "100"],
      ["up", "--jitter", "5ms"],
      ["up", "--loss", "150%"],
      ["up", "--rate", "fast"],
      ["up", "--subnet", "8.8.8"],
      ["up", "--subnet", "10.99.0.0/24"],
      ["up", "--name", "a b"],
      ["up", "--clear"],
      ["down", "--delay", "5ms"],
      ["set"],
      ["set", "--clear", "--loss", "1%"],
    ]
  ) {
    assert.throws(() => parseLabArgs(bad), UsageError, JSON.stringify(bad));
  }
});

Deno.test("lab-net: a bad flag is one line and exit 2; --help is the usage", async () => {
  for (
    const [args, pattern] of [
      [["up", "--delay", "lots"], /--delay: "lots" is not like 100ms/],
      [["up", "--bogus"], /Unknown option '--bogus'/],
      [["status", "--loss", "5%"], /status does not take --loss/],
      [[], /say what to do: up, down, set or status/],
    ] as const
  ) {
    const run = await labNet([...args]);
    assert.equal(run.code, 2, JSON.stringify(args));
    assert.equal(run.stdout, "");
    assert.equal(run.stderr.trimEnd().split("\n").length, 1, run.stderr);
    assert.match(run.stderr, pattern);
    assert.match(run.stderr, /^lab_net\.ts: .* \(see --help\)\n$/);
  }
  const help = await labNet(["--help"]);
  assert.equal(help.code, 0, help.stderr);
  assert.match(help.stdout, /^Usage: deno task lab-net COMMAND/);
  assert.match(help.stdout, /--delay TIME/);
});

Deno.test("lab-net: --dry-run prints the commands, runs nothing, needs no root", async () => {
  const up = await labNet([
    "up",
    "--dry-run",
    "--name",
    "demo",
    "--subnet",
    "10.42.7",
    "--delay",
    "100ms",
    "--jitter",
    "20ms",
    "--loss",
    "5%",
    "--rate",
    "1mbit",
  ]);
  assert.equal(up.code, 0, up.stderr);
  assert.deepEqual(up.stdout.trimEnd().split("\n"), [
    "ip netns add demo-server",
    "ip netns add demo-client",
    "ip link add veth-server netns demo-server type veth peer name veth-client netns demo-client",
    "ip -n demo-server addr add 10.42.7.1/24 dev veth-server",
    "ip -n demo-client addr add 10.42.7.2/24 dev veth-client",
    "ip -n demo-server link set lo up",
    "ip -n demo-server link set veth-server up",
    "ip -n demo-client link set lo up",
    "ip -n demo-client link set veth-client up",
    "tc -n demo-server qdisc add dev veth-server root netem delay 100ms 20ms loss 5% rate 1mbit",
    "tc -n demo-client qdisc add dev veth-client root netem delay 100ms 20ms loss 5% rate 1mbit",
    "# then waits; on Ctrl+C, SIGTERM or SIGHUP (or a failure above) it runs:",
    "# ip -n demo-server link del veth-server",
    "# ip netns del demo-client",
    "# ip netns del demo-server",
  ]);
  // No netem flags: no tc at all.
  const plain = await labNet(["up", "--dry-run", "--detach"]);
  assert.equal(plain.code, 0, plain.stderr);
  assert.doesNotMatch(plain.stdout, /^tc /m);
  const down = await labNet(["down", "--dry-run", "--name", "demo"]);
  assert.deepEqual(down.stdout.trimEnd().split("\n"), [
    "ip -n demo-server link del veth-server",
    "ip netns del demo-client",
    "ip netns del demo-server",
  ]);
  const set = await labNet(["set", "--dry-run", "--delay", "0ms"]);
  assert.deepEqual(set.stdout.trimEnd().split("\n"), [
    "# on each end: the netem that is there (if any) goes, the new one comes",
    "tc -n lab-server qdisc del dev veth-server root",
    "tc -n lab-server qdisc add dev veth-server root netem delay 0ms",
    "tc -n lab-client qdisc del dev veth-client root",
    "tc -n lab-client qdisc add dev veth-client root netem delay 0ms",
  ]);
});

/** A fake `ip`/`tc`: records every command; `answer` decides what each returns. */
function fakeRunner(answer: (line: string) => Partial<RunResult> | undefined = () => undefined): {
  run: Runner;
  calls: string[];
} {
  const calls: string[] = [];
  const run: Runner = (argv) => {
    const line = shellLine(argv);
    calls.push(line);
    return Promise.resolve({ code: 0, stdout: "", stderr: "", ...answer(line) });
  };
  return { run, calls };
}

const LAB = { name: "x", subnet: "10.99.0" };

Deno.test("lab-net: a failure halfway through up removes what up made, and only that", async () => {
  // netem missing from the kernel: fails at the first tc, after both namespaces were made.
  const noNetem = fakeRunner((line) =>
    line.startsWith("tc ")
      ? { code: 2, stderr: "Error: Specified qdisc kind is unknown.\n" }
      : undefined
  );
  await assert.rejects(labUp(LAB, { delay: "50ms" }, noNetem.run), (error: Error) => {
    assert.ok(error instanceof LabError);
    assert.match(error.message, /^tc netem is not available in this kernel/);
    assert.match(error.message, /\(removed what was made: x-server, x-client\)$/);
    return true;
  });
  assert.deepEqual(noNetem.calls.slice(-3), [
    "tc -n x-server qdisc add dev veth-server root netem delay 50ms",
    "ip netns del x-client",
    "ip netns del x-server",
  ]);

  // A namespace of that name is there already: nothing is made, nothing is removed.
  const taken = fakeRunner((line) =>
    line === "ip netns list" ? { stdout: "x-client (id: 3)\nother\n" } : undefined
  );
  await assert.rejects(labUp(LAB, {}, taken.run), /namespace x-client exists already/);
  assert.deepEqual(taken.calls, ["ip netns list"]);

  // Ctrl+C while it is being made: stops between steps and undoes.
  const interrupted = fakeRunner();
  await assert.rejects(
    labUp(LAB, {}, interrupted.run, () => interrupted.calls.length >= 3),
    /^LabError: interrupted \(removed what was made: x-server, x-client\)$/,
  );
  assert.deepEqual(interrupted.calls, [
    "ip netns list",
    "ip netns add x-server",
    "ip netns add x-client",
    "ip netns del x-client",
    "ip netns del x-server",
  ]);

  // Not root: "Operation not permitted" becomes the one line that says so.
  const notRoot = fakeRunner((line) =>
    line.startsWith("ip netns add")
      ? { code: 1, stderr: "mount --make-shared /run/netns failed: Operation not permitted\n" }
      : undefined
  );
  await assert.rejects(labUp(LAB, {}, notRoot.run), /^LabError: needs root: run with sudo$/);
  assert.deepEqual(notRoot.calls, ["ip netns list", "ip netns add x-server"]);
});

Deno.test("lab-net: down removes what is there, warns about processes; set --clear", async () => {
  const nothing = fakeRunner();
  assert.deepEqual(await labDown(LAB, nothing.run), []);
  assert.deepEqual(nothing.calls, ["ip netns list"]);

  const warnings: string[] = [];
  const half = fakeRunner((line) => {
    if (line === "ip netns list") return { stdout: "x-server\n" };
    if (line === "ip netns pids x-server") return { stdout: "4242\n" };
    return undefined;
  });
  const removed = await labDown(LAB, half.run, { out: () => {}, err: (l) => warnings.push(l) });
  assert.deepEqual(removed, ["x-server"]);
  assert.deepEqual(half.calls, [
    "ip netns list",
    "ip netns pids x-server",
    "ip -n x-server link del veth-server",
    "ip netns del x-server",
  ]);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0], /1 process\(es\) still run in x-server \(pid 4242\)/);

  const clear = fakeRunner((line) => {
    if (line === "ip netns list") return { stdout: "x-server\nx-client\n" };
    if (line.includes("x-server qdisc show")) {
      return { stdout: "qdisc netem 8001: root refcnt 2 limit 1000 delay 50ms\n" };
    }
    if (line.includes("x-client qdisc show")) return { stdout: "qdisc noqueue 0: root\n" };
    return undefined;
  });
  await labSet(LAB, {}, true, clear.run);
  assert.deepEqual(clear.calls.filter((l) => / (del|add) /.test(l)), [
    "tc -n x-server qdisc del dev veth-server root",
  ]);
  // set: what is there goes first, so no old setting (a rate) survives.
  clear.calls.length = 0;
  await labSet(LAB, { delay: "20ms" }, false, clear.run);
  assert.deepEqual(clear.calls.filter((l) => / (del|add) /.test(l)), [
    "tc -n x-server qdisc del dev veth-server root",
    "tc -n x-server qdisc add dev veth-server root netem delay 20ms",
    "tc -n x-client qdisc add dev veth-client root netem delay 20ms",
  ]);
});

Deno.test("lab-net: not root is one line and exit 1", async () => {
  if (Deno.uid() !== 0) {
    const run = await labNet(["up"]);
    assert.equal(run.code, 1);
    assert.equal(run.stderr, "lab_net.ts: needs root: run with sudo\n");
    return;
  }
  // As root: the same run as user nobody, if setpriv is there.
  if (!probeSync(["setpriv", "--version"]).ok) {
    console.log("SKIP: running as root and no setpriv to drop it; the non-root path is untested");
    return;
  }
  const home = await Deno.makeTempDir({ prefix: "lab_net_nobody_" });
  try {
    await Deno.chown(home, 65534, 65534);
    const run = await runCommand("setpriv", [
      "--reuid=65534",
      "--regid=65534",
      "--clear-groups",
      Deno.execPath(),
      ...TASK_ARGS,
      "up",
      "--delay",
      "50ms",
    ], {
      cwd: ROOT,
      env: { NO_COLOR: "1", HOME: home, DENO_DIR: `${home}/deno` },
      timeoutMs: 30000,
    });
    assert.equal(run.code, 1, run.stderr);
    assert.equal(run.stdout, "");
    assert.equal(run.stderr, "lab_net.ts: needs root: run with sudo\n");
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});

// ---------------------------------------------------------------------------------------------
// Root: the real lab

Deno.test({
  name: "lab-net: up --detach makes an isolated link the echo works across; down twice",
  ignore: !support.netns,
  async fn() {
    const lab = freshLab();
    const serverIp = `${lab.subnet}.1`;
    let server: Spawned | null = null;
    try {
      const up = await labNet(["up", "--detach", "--name", lab.name, "--subnet", lab.subnet]);
      assert.equal(up.code, 0, up.stderr);
      assert.match(up.stdout, /no netem/);
      assert.ok(
        up.stdout.includes(`ip netns exec ${lab.server} deno task server --host ${serverIp}\n`),
        up.stdout,
      );
      assert.ok(
        up.stdout.includes(`ip netns exec ${lab.client} deno task client --host ${serverIp} hi`),
      );
      const names = await namespaces();
      assert.ok(names.includes(lab.server) && names.includes(lab.client), names.join(" "));
      // Isolated: the client's only route is the lab's /24 (no default route, no other link).
      const routes = await runCommand("ip", ["-n", lab.client, "-4", "route", "show"]);
      assert.equal(routes.stdout.trim().split("\n").length, 1, routes.stdout);
      assert.match(
        routes.stdout,
        new RegExp(`^${lab.subnet.replaceAll(".", "\\.")}\\.0/24 dev veth-client`),
      );

      const status = await labNet(["status", "--name", lab.name]);
      assert.equal(status.code, 0, status.stderr);
      assert.match(status.stdout, new RegExp(`veth-server\\S*\\s+UP\\s+${serverIp}/24`));
      assert.match(status.stdout, /qdisc /);

      const again = await labNet(["up", "--detach", "--name", lab.name, "--subnet", lab.subnet]);
      assert.equal(again.code, 1);
      assert.match(again.stderr, /^lab_net\.ts: namespace \S+-server exists already/);
      assert.equal(again.stderr.trimEnd().split("\n").length, 1);

      const started = await startServerIn(lab.server, serverIp);
      server = started.proc;
      const probe = await probeFrom(lab.client, serverIp, started.port);
      console.log(
        `  no delay: echo round trip ${fmt(probe.roundTrip)} ms, connect ${fmt(probe.connect)} ms`,
      );
      assert.match(probe.reply, REPLY);
      assert.ok(probe.reply.endsWith(": ping 2"), probe.reply);
      assert.ok(Math.min(...probe.roundTrip) < 50, `no delay set: ${fmt(probe.roundTrip)} ms`);

      const down = await labNet(["down", "--name", lab.name]);
      assert.equal(down.code, 0, down.stderr);
      assert.match(down.stdout, /^removed lab "t\w+" \(t\w+-server, t\w+-client\)\n$/);
      // The server was still running inside: down says so.
      assert.match(down.stderr, /still run in t\w+-server/);
      const after = await namespaces();
      assert.ok(!after.includes(lab.server) && !after.includes(lab.client), after.join(" "));
      const twice = await labNet(["down", "--name", lab.name]);
      assert.equal(twice.code, 0, twice.stderr);
      assert.match(twice.stdout, /is not up: nothing to remove/);
      const gone = await labNet(["status", "--name", lab.name]);
      assert.equal(gone.code, 1);
      assert.match(gone.stderr, /is not up/);
    } finally {
      if (server) await stopServer(server);
      await labDown({ name: lab.name, subnet: lab.subnet }, undefined, quiet).catch(() => {});
      await forceRemove(lab.name);
    }
  },
});

const quiet = { out: () => {}, err: () => {} };

function fmt(values: number[]): string {
  return values.map((v) => v.toFixed(1)).join(", ");
}

Deno.test({
  name: "lab-net: up in the foreground removes everything on SIGINT, SIGTERM and SIGHUP",
  ignore: !support.netns,
  async fn() {
    // A closed terminal's SIGHUP comes twice (to `deno task` and to the tool, and `deno task`
    // passes its own on): that is one request to stop, not "stop now, skip the cleanup".
    for (const [signal, times] of [["SIGINT", 1], ["SIGTERM", 1], ["SIGHUP", 2]] as const) {
      const lab = freshLab();
      const proc = new Spawned([...TASK_ARGS, "up", "--name", lab.name, "--subnet", lab.subnet]);
      try {
        await proc.waitFor(/^Ctrl\+C here removes the lab\.$/, "stdout", 20000);
        const names = await namespaces();
        assert.ok(names.includes(lab.server) && names.includes(lab.client), signal);
        for (let i = 0; i < times; i++) proc.child.kill(signal);
        const status = await proc.exit(20000);
        assert.equal(status.code, 0, proc.stderrLines.join("\n"));
        assert.ok(proc.stdoutLines.includes(`${signal}: removing lab "${lab.name}"...`));
        assert.ok(
          proc.stdoutLines.includes(`removed lab "${lab.name}" (${lab.server}, ${lab.client})`),
          proc.stdoutLines.join("\n"),
        );
        const after = await namespaces();
        assert.ok(!after.includes(lab.server) && !after.includes(lab.client), signal);
      } finally {
        try {
          proc.child.kill("SIGKILL");
        } catch {
          // exited
        }
        await proc.exit().catch(() => {});
        await forceRemove(lab.name);
      }
    }
  },
});

Deno.test({
  name: "lab-net: a failed up leaves nothing behind (and keeps a namespace it did not make)",
  ignore: !support.netns,
  async fn() {
    // Fails at the netem step, after both namespaces and the veth pair were made: here, by
    // not letting it run tc (the same path as a kernel without netem).
    const lab = freshLab();
    try {
      const noTc = TASK_ARGS.map((a) => a.startsWith("--allow-run=") ? "--allow-run=ip" : a);
      const run = await labNet(
        ["up", "--detach", "--name", lab.name, "--subnet", lab.subnet, "--delay", "50ms"],
        noTc,
      );
      assert.equal(run.code, 1, run.stdout);
      assert.equal(run.stderr.trimEnd().split("\n").length, 1, run.stderr);
      assert.match(run.stderr, /^lab_net\.ts: no permission to run tc/);
      assert.match(run.stderr, /\(removed what was made: t\w+-server, t\w+-client\)\n$/);
      const after = await namespaces();
      assert.ok(!after.includes(lab.server) && !after.includes(lab.client), after.join(" "));
    } finally {
      await forceRemove(lab.name);
    }

    // Someone else's namespace of that name: up refuses and leaves it alone.
    const other = freshLab();
    try {
      assert.equal((await runCommand("ip", ["netns", "add", other.client])).code, 0);
      const run = await labNet(["up", "--detach", "--name", other.name]);
      assert.equal(run.code, 1);
      assert.equal(
        run.stderr,
        `lab_net.ts: namespace ${other.client} exists already: remove it with deno task ` +
          `lab-net down --name ${other.name}, or pick another --name\n`,
      );
      const after = await namespaces();
      assert.ok(after.includes(other.client));
      assert.ok(!after.includes(other.server));
    } finally {
      await forceRemove(other.name);
    }
  },
});

Deno.test({
  name: "lab-net: --delay 50ms makes the echo round trip take >= 100 ms; set --delay 0ms undoes it",
  ignore: !support.netem,
  async fn() {
    const lab = freshLab();
    const serverIp = `${lab.subnet}.1`;
    let server: Spawned | null = null;
    try {
      const up = await labNet([
        "up",
        "--detach",
        "--name",
        lab.name,
        "--subnet",
        lab.subnet,
        "--delay",
        "50ms",
        "--rate",
        "100mbit", // far more than a line of text needs: here only so set must drop it
      ]);
      assert.equal(up.code, 0, up.stderr);
      assert.match(up.stdout, /netem on both ends.*delay 50ms, rate 100mbit/);
      const status = await labNet(["status", "--name", lab.name]);
      assert.equal(status.code, 0, status.stderr);
      assert.equal(status.stdout.match(/qdisc netem .*delay 50ms.* rate /g)?.length, 2);

      const started = await startServerIn(lab.server, serverIp);
      server = started.proc;
      // 50 ms each way (netem on both ends): a round trip cannot take less than 100 ms.
      const slow = await probeFrom(lab.client, serverIp, started.port);
      console.log(
        `  --delay 50ms: echo round trip ${fmt(slow.roundTrip)} ms, connect ${
          fmt(slow.connect)
        } ms`,
      );
      assert.match(slow.reply, REPLY);
      assert.ok(Math.min(...slow.roundTrip) >= 100, `round trip ${fmt(slow.roundTrip)} ms`);
      assert.ok(Math.min(...slow.connect) >= 100, `connect ${fmt(slow.connect)} ms`);

      const set = await labNet(["set", "--name", lab.name, "--delay", "0ms"]);
      assert.equal(set.code, 0, set.stderr);
      const changed = await labNet(["status", "--name", lab.name]);
      assert.equal(changed.stdout.match(/qdisc netem /g)?.length, 2, changed.stdout);
      assert.doesNotMatch(changed.stdout, /delay [1-9]| rate /, "set replaces every setting");
      const fast = await probeFrom(lab.client, serverIp, started.port);
      console.log(
        `  set --delay 0ms: echo round trip ${fmt(fast.roundTrip)} ms, connect ${
          fmt(fast.connect)
        } ms`,
      );
      assert.match(fast.reply, REPLY);
      assert.ok(Math.min(...fast.roundTrip) < 50, `round trip ${fmt(fast.roundTrip)} ms`);

      await stopServer(server);
      server = null;
      const down = await labNet(["down", "--name", lab.name]);
      assert.equal(down.code, 0, down.stderr);
      const after = await namespaces();
      assert.ok(!after.includes(lab.server) && !after.includes(lab.client));
      assert.equal((await labNet(["down", "--name", lab.name])).code, 0);
    } finally {
      if (server) await stopServer(server);
      await forceRemove(lab.name);
    }
  },
});

if (import.meta.main && Deno.args[0] === "probe") {
  await probeMain(Deno.args[1], Number(Deno.args[2]), Number(Deno.args[3] ?? 3));
}
