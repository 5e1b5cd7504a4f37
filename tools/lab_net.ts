#!/usr/bin/env -S deno run --allow-run=ip,tc --allow-sys=uid
/**
 * A small network on one Linux machine, to watch what latency, loss and a slow link do to the
 * lab's programs: two network namespaces, `<name>-server` (10.99.0.1) and `<name>-client`
 * (10.99.0.2), joined by a veth pair, with `tc netem` adding delay, jitter, loss and a
 * bandwidth limit. Needs root (network namespaces need it) and iproute2 (`ip`, `tc`).
 *
 * ```sh
 * sudo deno task lab-net up --delay 100ms --loss 5%    # builds it; Ctrl+C removes it
 * sudo deno task lab-net up --detach --rate 1mbit      # builds it and leaves it up
 * sudo deno task lab-net set --delay 20ms --jitter 5ms # changes netem on a running lab
 * sudo deno task lab-net status                        # what is there (ip addr, tc qdisc show)
 * sudo deno task lab-net down                          # removes it (harmless if it is not up)
 * deno task lab-net up --dry-run --delay 100ms         # prints the commands, runs nothing
 * ```
 *
 * Then, in other terminals, the server in one namespace and clients in the other:
 * `ip netns exec lab-server deno task server --host 10.99.0.1` and
 * `ip netns exec lab-client deno task client --host 10.99.0.1 hi` (`up` prints these).
 *
 * netem sits on both ends of the veth pair, so every setting applies in each direction:
 * `--delay 100ms` makes a round trip (ping, the echo's reply) about 200 ms slower, `--loss 5%`
 * drops 5% of the packets each way, `--rate 1mbit` limits each direction to 1 Mbit/s. With
 * `--jitter`, netem reorders packets (a later one may draw a shorter delay); TCP copes, which
 * is part of what there is to see. The namespaces have no other link: they reach only each
 * other, never the host's network or the internet.
 *
 * `set` replaces all of netem's settings: a flag not given is off (`set --delay 20ms` after
 * `up --delay 100ms --loss 5%` leaves no loss); `set --clear` removes netem altogether.
 *
 * Exit status: 0 when done, 1 when it could not be done (not root, iproute2 missing, a
 * namespace that exists already, no netem in this kernel...), 2 for a bad flag.
 *
 * @module
 */
import { parseArgs } from "node:util";

/** A mistake in the command line: one line, exit 2. */
export class UsageError extends Error {
  /** Builds the error from a one-line description of the mistake. */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** Something that could not be done (not root, a namespace exists...): one line, exit 1. */
export class LabError extends Error {
  /** Builds the error from a one-line description that says what to do. */
  constructor(message: string) {
    super(message);
    this.name = "LabError";
  }
}

/** What netem adds on each end of the link; a field left out is off. */
export interface Netem {
  /** Added to every packet, each way: `100ms`, `1s`, `500us`. */
  delay?: string;
  /** Spread of the delay, ± (needs `delay`): `20ms`. */
  jitter?: string;
  /** Share of the packets dropped, each way: `5%`. */
  loss?: string;
  /** Bandwidth of each direction, in tc's units: `1mbit`, `500kbit` (`kbps` is kilobytes/s). */
  rate?: string;
}

/** One lab: its name and addresses. */
export interface Lab {
  /** The prefix of the namespaces' names. */
  name: string;
  /** The first three numbers of the lab's /24: `10.99.0`. */
  subnet: string;
}

/** The names and addresses that make up a lab. */
export interface LabLayout {
  /** The server's namespace: `<name>-server`. */
  serverNs: string;
  /** The client's namespace: `<name>-client`. */
  clientNs: string;
  /** The veth end in the server's namespace. */
  serverIf: string;
  /** The veth end in the client's namespace. */
  clientIf: string;
  /** The server's address (`.1` of the subnet). */
  serverIp: string;
  /** The client's address (`.2` of the subnet). */
  clientIp: string;
}

/** The lab's name unless `--name` says otherwise. */
export const DEFAULT_NAME = "lab";
/** The lab's /24 unless `--subnet` says otherwise (private, and rarely used by real networks). */
export const DEFAULT_SUBNET = "10.99.0";

/**
 * The names of a lab. The veth ends are made inside the namespaces, so their names never
 * clash with the host's interfaces or another lab's, and removing the namespaces removes them.
 */
export function layout(lab: Lab): LabLayout {
  return {
    serverNs: `${lab.name}-server`,
    clientNs: `${lab.name}-client`,
    serverIf: "veth-server",
    clientIf: "veth-client",
    serverIp: `${lab.subnet}.1`,
    clientIp: `${lab.subnet}.2`,
  };
}

/** Whether any netem setting is given. */
export function hasNetem(netem: Netem): boolean {
  return [netem.delay, netem.jitter, netem.loss, netem.rate].some((v) => v !== undefined);
}

/** netem's arguments for `netem` (after `... root netem`). */
export function netemArgs(netem: Netem): string[] {
  const args: string[] = [];
  if (netem.delay !== undefined) {
    args.push("delay", netem.delay);
    if (netem.jitter !== undefined) args.push(netem.jitter);
  }
  if (netem.loss !== undefined) args.push("loss", netem.loss);
  if (netem.rate !== undefined) args.push("rate", netem.rate);
  return args;
}

/** netem's settings in words, for the line `up` and `set` print. */
export function describeNetem(netem: Netem): string {
  if (!hasNetem(netem)) return "no netem: the link is as fast as the kernel makes it";
  const parts: string[] = [];
  if (netem.delay !== undefined) {
    parts.push(`delay ${netem.delay}${netem.jitter === undefined ? "" : ` ± ${netem.jitter}`}`);
  }
  if (netem.loss !== undefined) parts.push(`loss ${netem.loss}`);
  if (netem.rate !== undefined) parts.push(`rate ${netem.rate}`);
  return `netem on both ends, so each direction gets it: ${parts.join(", ")}` +
    (netem.delay === undefined || parseFloat(netem.delay) === 0
      ? ""
      : ` (a round trip takes 2 × ${netem.delay} more)`);
}

/** A command to run, and how to undo it if a later step of `up` fails. */
export interface Step {
  /** The command, as argv (`ip ...` or `tc ...`). */
  argv: string[];
  /** What removes what it made (the namespaces: removing them removes all the rest). */
  undo?: string[];
}

/** The two ends of the link: each namespace with its veth end. */
export function ends(lab: Lab): [ns: string, dev: string][] {
  const l = layout(lab);
  return [[l.serverNs, l.serverIf], [l.clientNs, l.clientIf]];
}

/** The commands that put netem on both ends (which have none yet). */
export function netemSteps(lab: Lab, netem: Netem): Step[] {
  const args = netemArgs(netem);
  return ends(lab).map(([ns, dev]) => ({
    argv: ["tc", "-n", ns, "qdisc", "add", "dev", dev, "root", "netem", ...args],
  }));
}

/** The command that removes netem from one end. */
function netemDelArgv(ns: string, dev: string): string[] {
  return ["tc", "-n", ns, "qdisc", "del", "dev", dev, "root"];
}

/** The commands `up` runs, in order. */
export function upSteps(lab: Lab, netem: Netem): Step[] {
  const l = layout(lab);
  const steps: Step[] = [
    { argv: ["ip", "netns", "add", l.serverNs], undo: ["ip", "netns", "del", l.serverNs] },
    { argv: ["ip", "netns", "add", l.clientNs], undo: ["ip", "netns", "del", l.clientNs] },
    {
      argv: [
        "ip",
        "link",
        "add",
        l.serverIf,
        "netns",
        l.serverNs,
        "type",
        "veth",
        "peer",
        "name",
        l.clientIf,
        "netns",
        l.clientNs,
      ],
    },
    { argv: ["ip", "-n", l.serverNs, "addr", "add", `${l.serverIp}/24`, "dev", l.serverIf] },
    { argv: ["ip", "-n", l.clientNs, "addr", "add", `${l.clientIp}/24`, "dev", l.clientIf] },
    { argv: ["ip", "-n", l.serverNs, "link", "set", "lo", "up"] },
    { argv: ["ip", "-n", l.serverNs, "link", "set", l.serverIf, "up"] },
    { argv: ["ip", "-n", l.clientNs, "link", "set", "lo", "up"] },
    { argv: ["ip", "-n", l.clientNs, "link", "set", l.clientIf, "up"] },
  ];
  return hasNetem(netem) ? [...steps, ...netemSteps(lab, netem)] : steps;
}

/**
 * The commands `down` runs when the whole lab is there (it skips what is missing). Deleting
 * one veth end deletes the other; deleting it before the namespaces cuts the link even for
 * processes still running inside them (a namespace lives on, nameless, until they exit).
 */
export function downSteps(lab: Lab): Step[] {
  const l = layout(lab);
  return [
    { argv: ["ip", "-n", l.serverNs, "link", "del", l.serverIf] },
    { argv: ["ip", "netns", "del", l.clientNs] },
    { argv: ["ip", "netns", "del", l.serverNs] },
  ];
}

/** A command as a shell would take it (for `--dry-run` and messages). */
export function shellLine(argv: readonly string[]): string {
  return argv.map((a) => /^[\w.,:%=@+\/-]+$/.test(a) ? a : `'${a.replaceAll("'", `'\\''`)}'`)
    .join(" ");
}

// ---------------------------------------------------------------------------------------------
// Flags

/** What the command line asks for. */
export interface LabCommand {
  /** The subcommand. */
  command: "up" | "down" | "set" | "status";
  /** The lab. */
  lab: Lab;
  /** The netem settings (`up`, `set`). */
  netem: Netem;
  /** `up`: leave the lab up and exit. */
  detach: boolean;
  /** `set`: remove netem. */
  clear: boolean;
  /** Print the commands instead of running them. */
  dryRun: boolean;
  /** `--help`. */
  help: boolean;
}

const COMMANDS = ["up", "down", "set", "status"] as const;
const NETEM_FLAGS = ["delay", "jitter", "loss", "rate"] as const;
/** Which flags each subcommand takes (`--help` and `--dry-run` go with all). */
const FLAGS_OF: Record<LabCommand["command"], readonly string[]> = {
  up: ["name", "subnet", "detach", ...NETEM_FLAGS],
  down: ["name"],
  set: ["name", "clear", ...NETEM_FLAGS],
  status: ["name"],
};

const TIME = /^\d+(\.\d+)?(us|ms|s)$/;
const PERCENT = /^\d+(\.\d+)?%$/;
const RATE = /^\d+(\.\d+)?([kmgt]?bit|[kmgt]?bps)$/i;
const NAME = /^[a-z0-9][a-z0-9_-]{0,23}$/i;

/** Parses the command line; throws a {@linkcode UsageError} for any mistake. */
export function parseLabArgs(args: readonly string[]): LabCommand {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...args],
      allowPositionals: true,
      options: {
        name: { type: "string" },
        subnet: { type: "string" },
        delay: { type: "string" },
        jitter: { type: "string" },
        loss: { type: "string" },
        rate: { type: "string" },
        detach: { type: "boolean" },
        clear: { type: "boolean" },
        "dry-run": { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (error) {
    // node:util's messages end with advice for its own API; the first sentence is the point.
    throw new UsageError((error as Error).message.split(". ")[0].replace(/\.$/, ""));
  }
  const { values, positionals } = parsed;
  const help = values.help ?? false;
  const word = positionals[0];
  if (word === undefined) {
    if (help) return { ...emptyCommand("up"), help };
    throw new UsageError("say what to do: up, down, set or status");
  }
  if (!(COMMANDS as readonly string[]).includes(word)) {
    throw new UsageError(`unknown command ${JSON.stringify(word)}: use up, down, set or status`);
  }
  const command = word as LabCommand["command"];
  if (positionals.length > 1) {
    throw new UsageError(`unexpected argument ${JSON.stringify(positionals[1])}`);
  }
  for (const [flag, value] of Object.entries(values)) {
    if (value === undefined || flag === "help" || flag === "dry-run") continue;
    if (!FLAGS_OF[command].includes(flag)) {
      throw new UsageError(`${command} does not take --${flag}`);
    }
  }

  const name = values.name ?? DEFAULT_NAME;
  if (!NAME.test(name)) {
    throw new UsageError(
      `--name: ${JSON.stringify(name)} is not a name (1-24 letters, digits, _ or -)`,
    );
  }
  const subnet = values.subnet ?? DEFAULT_SUBNET;
  if (!isPrivateSubnet(subnet)) {
    throw new UsageError(
      `--subnet: ${
        JSON.stringify(subnet)
      } is not the first three numbers of a private /24 (10.x.y, 172.16-31.x.y, 192.168.x), like ${DEFAULT_SUBNET}`,
    );
  }
  const netem: Netem = {};
  if (values.delay !== undefined) netem.delay = checked("delay", values.delay, TIME, "100ms");
  if (values.jitter !== undefined) {
    if (values.delay === undefined) {
      throw new UsageError("--jitter needs --delay (the jitter is spread around the delay)");
    }
    netem.jitter = checked("jitter", values.jitter, TIME, "20ms");
  }
  if (values.loss !== undefined) {
    netem.loss = checked("loss", values.loss, PERCENT, "5%");
    if (parseFloat(netem.loss) > 100) throw new UsageError("--loss: at most 100%");
  }
  if (values.rate !== undefined) netem.rate = checked("rate", values.rate, RATE, "1mbit");
  const clear = values.clear ?? false;
  if (command === "set" && !help) {
    if (clear && hasNetem(netem)) throw new UsageError("set: --clear takes no netem flags");
    if (!clear && !hasNetem(netem)) {
      throw new UsageError("set: give --delay, --jitter, --loss or --rate (or --clear)");
    }
  }
  return {
    command,
    lab: { name, subnet },
    netem,
    detach: values.detach ?? false,
    clear,
    dryRun: values["dry-run"] ?? false,
    help,
  };
}

function emptyCommand(command: LabCommand["command"]): LabCommand {
  return {
    command,
    lab: { name: DEFAULT_NAME, subnet: DEFAULT_SUBNET },
    netem: {},
    detach: false,
    clear: false,
    dryRun: false,
    help: false,
  };
}

function checked(flag: string, value: string, pattern: RegExp, example: string): string {
  if (!pattern.test(value)) {
    throw new UsageError(`--${flag}: ${JSON.stringify(value)} is not like ${example}`);
  }
  return value;
}

function isPrivateSubnet(subnet: string): boolean {
  const m = subnet.match(/^(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/);
  if (!m) return false;
  const [a, b, c] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (a > 255 || b > 255 || c > 255) return false;
  return a === 10 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168);
}

/** The help text. */
export const USAGE = `Usage: deno task lab-net COMMAND [OPTIONS]      (needs root: sudo)

Builds two network namespaces joined by a veth pair, with tc netem on both ends, so the lab's
servers and clients talk over a link with delay, jitter, loss and a bandwidth limit.

Commands:
  up       make NAME-server (SUBNET.1) and NAME-client (SUBNET.2); stays in the foreground
           and removes everything on Ctrl+C (or SIGTERM, SIGHUP)
  down     remove the lab (harmless if it is not up)
  set      change netem on a running lab (replaces all settings: flags not given are off)
  status   show the lab's namespaces, addresses, netem (tc qdisc show) and processes

Options:
  --name NAME      the lab's name, the prefix of its namespaces (default ${DEFAULT_NAME})
  --subnet A.B.C   up: the lab's private /24 (default ${DEFAULT_SUBNET}: ${DEFAULT_SUBNET}.1 and .2)
  --delay TIME     up, set: delay each way, like 100ms (a round trip takes twice as long)
  --jitter TIME    up, set: ± spread of the delay, like 20ms (needs --delay; reorders packets)
  --loss PCT       up, set: packets dropped each way, like 5%
  --rate RATE      up, set: bandwidth each way, like 1mbit or 500kbit (kbps = kilobytes/s)
  --detach         up: leave the lab up and exit (remove it with down)
  --clear          set: remove netem (the link is as fast as the kernel makes it)
  --dry-run        print the commands instead of running them (no root needed)
  -h, --help       show this help

Examples:
  sudo deno task lab-net up --delay 100ms --loss 5%
  sudo ip netns exec lab-server deno task server --host 10.99.0.1
  sudo ip netns exec lab-client deno task client --host 10.99.0.1 hi
  sudo deno task lab-net set --delay 20ms --jitter 5ms --rate 1mbit

Exit status: 0 when done, 1 when it could not be done, 2 for a bad flag.
`;

// ---------------------------------------------------------------------------------------------
// Running commands

/** What a finished command printed. */
export interface RunResult {
  /** Exit status. */
  code: number;
  /** Its stdout. */
  stdout: string;
  /** Its stderr. */
  stderr: string;
}

/** Runs one command (argv) to completion. */
export type Runner = (argv: readonly string[]) => Promise<RunResult>;

const decoder = new TextDecoder();

/** Runs a command with `Deno.Command`; a missing or forbidden program is a {@linkcode LabError}. */
export async function runSystem(argv: readonly string[]): Promise<RunResult> {
  let output: Deno.CommandOutput;
  try {
    output = await new Deno.Command(argv[0], {
      args: argv.slice(1),
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new LabError(`${argv[0]} not found: apt-get install iproute2`);
    }
    if (error instanceof Deno.errors.NotCapable || error instanceof Deno.errors.PermissionDenied) {
      throw new LabError(
        `no permission to run ${argv[0]}: run with --allow-run=ip,tc (deno task lab-net does), ` +
          `or ${argv[0]} is not installed (apt-get install iproute2)`,
      );
    }
    throw error;
  }
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

/** One line saying why `argv` failed and what to do. */
export function explainFailure(argv: readonly string[], result: RunResult): string {
  const why = result.stderr.trim().split("\n")[0] || result.stdout.trim().split("\n")[0] ||
    `exit status ${result.code}`;
  if (/Operation not permitted|Permission denied/i.test(why)) return "needs root: run with sudo";
  if (/Specified qdisc kind is unknown|Unknown qdisc "netem"/i.test(why)) {
    return "tc netem is not available in this kernel (no sch_netem): modprobe sch_netem, or " +
      "install the kernel's extra modules (Ubuntu: apt-get install linux-modules-extra-$(uname -r))";
  }
  return `${shellLine(argv)} failed: ${why}`;
}

/** Runs `argv`; throws a {@linkcode LabError} saying why if it fails. */
async function must(run: Runner, argv: readonly string[]): Promise<RunResult> {
  const result = await run(argv);
  if (result.code !== 0) throw new LabError(explainFailure(argv, result));
  return result;
}

/** The network namespaces that exist (`ip netns list`). */
export async function listNamespaces(run: Runner): Promise<string[]> {
  const result = await must(run, ["ip", "netns", "list"]);
  return result.stdout.split("\n").map((line) => line.trim().split(/\s+/)[0]).filter(Boolean);
}

/** The processes running in a namespace (`ip netns pids`), or none if it cannot tell. */
async function pidsIn(run: Runner, ns: string): Promise<string[]> {
  const result = await run(["ip", "netns", "pids", ns]);
  return result.code === 0 ? result.stdout.split(/\s+/).filter(Boolean) : [];
}

/** What the lab's commands print while they work. */
export interface Output {
  /** A line for stdout. */
  out(line: string): void;
  /** A line for stderr (warnings). */
  err(line: string): void;
}

/**
 * Prints a line to stdout. A terminal that is gone (closed window: SIGHUP) makes writes fail;
 * that must not stop the cleanup that comes next.
 */
function say(line: string): void {
  try {
    console.log(line);
  } catch {
    // nowhere to say it
  }
}

/** Prints a line to stderr, like {@linkcode say}. */
function warn(line: string): void {
  try {
    console.error(line);
  } catch {
    // nowhere to say it
  }
}

const consoleOutput: Output = { out: say, err: warn };

/**
 * Makes the lab. On any failure, or when `interrupted()` turns true between steps, it removes
 * what it made (never a namespace that was there before) and throws a {@linkcode LabError}.
 */
export async function labUp(
  lab: Lab,
  netem: Netem,
  run: Runner = runSystem,
  interrupted: () => boolean = () => false,
): Promise<void> {
  const l = layout(lab);
  const existing = await listNamespaces(run);
  for (const ns of [l.serverNs, l.clientNs]) {
    if (existing.includes(ns)) {
      throw new LabError(
        `namespace ${ns} exists already: remove it with deno task lab-net down${
          nameFlag(lab.name)
        }, or pick another --name`,
      );
    }
  }
  const undo: string[][] = [];
  try {
    for (const step of upSteps(lab, netem)) {
      if (interrupted()) throw new LabError("interrupted");
      await must(run, step.argv);
      if (step.undo) undo.unshift(step.undo);
    }
    if (interrupted()) throw new LabError("interrupted");
  } catch (error) {
    const left: string[] = [];
    for (const argv of undo) {
      try {
        if ((await run(argv)).code !== 0) left.push(argv[argv.length - 1]);
      } catch {
        left.push(argv[argv.length - 1]);
      }
    }
    const what = error instanceof Error ? error.message : String(error);
    if (left.length > 0) {
      throw new LabError(
        `${what}; could not remove ${left.join(", ")}: deno task lab-net down${nameFlag(lab.name)}`,
      );
    }
    throw new LabError(
      undo.length > 0 ? `${what} (removed what was made: ${undoneNames(undo)})` : what,
    );
  }
}

function undoneNames(undo: readonly string[][]): string {
  return undo.map((argv) => argv[argv.length - 1]).reverse().join(", ");
}

/**
 * Removes the lab: what of it exists (so running it twice is harmless). Returns the
 * namespaces removed. Warns about processes still running inside them.
 */
export async function labDown(
  lab: Lab,
  run: Runner = runSystem,
  output: Output = consoleOutput,
): Promise<string[]> {
  const l = layout(lab);
  const existing = await listNamespaces(run);
  const present = [l.serverNs, l.clientNs].filter((ns) => existing.includes(ns));
  if (present.length === 0) return [];
  for (const ns of present) {
    const pids = await pidsIn(run, ns);
    if (pids.length > 0) {
      output.err(
        `note: ${pids.length} process(es) still run in ${ns} (pid ${
          pids.join(", ")
        }): they lose the network now; stop them with kill ${pids.join(" ")}`,
      );
    }
  }
  // Deleting one veth end deletes its peer; if one namespace is gone, try the other's end.
  for (const [ns, dev] of ends(lab)) {
    if (!present.includes(ns)) continue;
    const result = await run(["ip", "-n", ns, "link", "del", dev]);
    if (result.code === 0) break;
    if (/Operation not permitted/i.test(result.stderr)) {
      throw new LabError(explainFailure(["ip", "-n", ns, "link", "del", dev], result));
    }
  }
  for (const ns of [l.clientNs, l.serverNs]) {
    if (!present.includes(ns)) continue;
    const argv = ["ip", "netns", "del", ns];
    const result = await run(argv);
    // Someone else removed it meanwhile: that is what was wanted.
    if (result.code !== 0 && !/No such file/i.test(result.stderr)) {
      throw new LabError(explainFailure(argv, result));
    }
  }
  return present;
}

/** Checks that the whole lab is there, or throws a {@linkcode LabError} saying what to do. */
async function requireLab(lab: Lab, run: Runner): Promise<void> {
  const l = layout(lab);
  const existing = await listNamespaces(run);
  const missing = [l.serverNs, l.clientNs].filter((ns) => !existing.includes(ns));
  if (missing.length === 2) {
    throw new LabError(
      `lab ${JSON.stringify(lab.name)} is not up: deno task lab-net up${nameFlag(lab.name)}`,
    );
  }
  if (missing.length === 1) {
    throw new LabError(
      `lab ${JSON.stringify(lab.name)} is half there (no ${missing[0]}): ` +
        `deno task lab-net down${nameFlag(lab.name)}, then up`,
    );
  }
}

/**
 * Changes netem on both ends of a running lab: removes what is there, then adds `netem`
 * (nothing with `clear`). Not `tc qdisc change`, which keeps settings it is not given (a
 * rate, for one), where `set` promises that a flag not given is off.
 */
export async function labSet(
  lab: Lab,
  netem: Netem,
  clear = false,
  run: Runner = runSystem,
): Promise<void> {
  await requireLab(lab, run);
  const add = netemSteps(lab, netem);
  for (const [i, [ns, dev]] of ends(lab).entries()) {
    const shown = await must(run, ["tc", "-n", ns, "qdisc", "show", "dev", dev, "root"]);
    if (/\bnetem\b/.test(shown.stdout)) await must(run, netemDelArgv(ns, dev));
    if (!clear) await must(run, add[i].argv);
  }
}

/** What `status` shows: the lab's addresses, qdiscs and processes, or `null` if it is not up. */
export async function labStatus(lab: Lab, run: Runner = runSystem): Promise<string | null> {
  const existing = await listNamespaces(run);
  const lines: string[] = [];
  for (const [ns, dev] of ends(lab)) {
    if (!existing.includes(ns)) {
      lines.push(`${ns}: missing`);
      continue;
    }
    lines.push(`${ns}:`);
    const addr = await run(["ip", "-n", ns, "-br", "addr", "show", "dev", dev]);
    lines.push(`  ${addr.code === 0 ? addr.stdout.trim() : `no ${dev}`}`);
    const qdisc = await run(["tc", "-n", ns, "qdisc", "show", "dev", dev]);
    if (qdisc.code === 0) {
      for (const line of qdisc.stdout.trim().split("\n")) lines.push(`  ${line}`);
    }
    const pids = await pidsIn(run, ns);
    lines.push(`  processes: ${pids.length === 0 ? "none" : pids.join(" ")}`);
  }
  if (lines.every((line) => line.endsWith(": missing"))) return null;
  return lines.join("\n");
}

function nameFlag(name: string): string {
  return name === DEFAULT_NAME ? "" : ` --name ${name}`;
}

/** What `up` prints once the lab is there: what was made and the commands to run next. */
export function nextSteps(lab: Lab, netem: Netem, detached: boolean): string {
  const l = layout(lab);
  const flag = nameFlag(lab.name);
  const inServer = `ip netns exec ${l.serverNs}`;
  const inClient = `ip netns exec ${l.clientNs}`;
  return [
    `lab ${JSON.stringify(lab.name)} is up: ${l.serverNs} (${l.serverIp}, ${l.serverIf}) <-> ` +
    `${l.clientNs} (${l.clientIp}, ${l.clientIf}); they reach only each other`,
    describeNetem(netem),
    "",
    "Next, in other terminals (as root):",
    `  ${inServer} deno task server --host ${l.serverIp}`,
    `  ${inClient} deno task client --host ${l.serverIp} hi`,
    `  ${inServer} deno task chat-server --host ${l.serverIp}`,
    `  ${inClient} deno task chat-client --host ${l.serverIp} --name alice`,
    `  ${inClient} ping -c 3 ${l.serverIp}`,
    `  ${inServer} tshark -i ${l.serverIf} -f 'tcp port 8080'    # or tcpdump -ni ${l.serverIf}`,
    `  ${inClient} ss -tin    # rtt, cwnd and retransmits of the open connections`,
    `Under sudo, deno may not be on root's PATH: sudo ${inServer} "$(command -v deno)" task server ...`,
    `Change the link: deno task lab-net set${flag} --delay 200ms --loss 1%   (or --clear)`,
    `See it:          deno task lab-net status${flag}`,
    detached ? `Remove it:       deno task lab-net down${flag}` : "Ctrl+C here removes the lab.",
  ].join("\n");
}

// ---------------------------------------------------------------------------------------------
// main

const SIGNALS: Deno.Signal[] = ["SIGINT", "SIGTERM", "SIGHUP"];
/** A signal within this long of the first is the same request; later, it means "stop now". */
const REPEAT_MS = 1000;

/**
 * Watches for SIGINT, SIGTERM and SIGHUP (which then no longer end the process by default:
 * it exits itself once the lab is removed). A second signal, a second or more after the
 * first, calls `onSecond` (which exits at once).
 */
class StopSignals {
  signal: Deno.Signal | null = null;
  readonly stopped: Promise<Deno.Signal>;
  #resolve!: (signal: Deno.Signal) => void;
  #onSignal: Map<Deno.Signal, () => void> = new Map();
  #firstAt = 0;

  constructor(onSecond: (signal: Deno.Signal) => void) {
    this.stopped = new Promise((resolve) => this.#resolve = resolve);
    for (const signal of SIGNALS) {
      const listener = (): void => {
        if (this.signal === null) {
          this.signal = signal;
          this.#firstAt = Date.now();
          this.#resolve(signal);
        } else if (Date.now() - this.#firstAt >= REPEAT_MS) {
          onSecond(signal);
        }
        // Else the same event twice (a closed terminal's SIGHUP reaches both `deno task` and
        // this process, and `deno task` passes its own on): not a second request.
      };
      this.#onSignal.set(signal, listener);
      Deno.addSignalListener(signal, listener);
    }
  }

  /** Gives the signals back their default (ending the process). */
  remove(): void {
    for (const [signal, listener] of this.#onSignal) Deno.removeSignalListener(signal, listener);
    this.#onSignal.clear();
  }
}

function isRoot(): boolean {
  try {
    return Deno.uid() === 0;
  } catch {
    return true; // no --allow-sys=uid: let ip say "Operation not permitted" if it is not
  }
}

function printDryRun(cmd: LabCommand): void {
  const lines: string[] = [];
  switch (cmd.command) {
    case "up":
      lines.push(...upSteps(cmd.lab, cmd.netem).map((s) => shellLine(s.argv)));
      lines.push(
        cmd.detach
          ? `# left up; deno task lab-net down${nameFlag(cmd.lab.name)} runs:`
          : "# then waits; on Ctrl+C, SIGTERM or SIGHUP (or a failure above) it runs:",
      );
      lines.push(...downSteps(cmd.lab).map((s) => `# ${shellLine(s.argv)}`));
      break;
    case "down":
      lines.push(...downSteps(cmd.lab).map((s) => shellLine(s.argv)));
      break;
    case "set": {
      lines.push("# on each end: the netem that is there (if any) goes, the new one comes");
      const add = netemSteps(cmd.lab, cmd.netem);
      for (const [i, [ns, dev]] of ends(cmd.lab).entries()) {
        lines.push(shellLine(netemDelArgv(ns, dev)));
        if (!cmd.clear) lines.push(shellLine(add[i].argv));
      }
      break;
    }
    case "status":
      for (const [ns, dev] of ends(cmd.lab)) {
        lines.push(
          shellLine(["ip", "-n", ns, "-br", "addr", "show", "dev", dev]),
          shellLine(["tc", "-n", ns, "qdisc", "show", "dev", dev]),
          shellLine(["ip", "netns", "pids", ns]),
        );
      }
      break;
  }
  say(lines.join("\n"));
}

async function main(args: readonly string[]): Promise<void> {
  const cmd = parseLabArgs(args);
  if (cmd.help) {
    say(USAGE.trimEnd());
    return;
  }
  if (cmd.dryRun) {
    printDryRun(cmd);
    return;
  }
  if (Deno.build.os !== "linux") throw new LabError("needs Linux (network namespaces and tc)");
  if (!isRoot()) throw new LabError("needs root: run with sudo");
  const { lab } = cmd;
  switch (cmd.command) {
    case "up":
      return await up(cmd);
    case "down": {
      const removed = await labDown(lab);
      say(
        removed.length > 0
          ? `removed lab ${JSON.stringify(lab.name)} (${removed.join(", ")})`
          : `lab ${JSON.stringify(lab.name)} is not up: nothing to remove`,
      );
      return;
    }
    case "set":
      await labSet(lab, cmd.netem, cmd.clear);
      say(
        `lab ${JSON.stringify(lab.name)}: ${
          cmd.clear ? describeNetem({}) : describeNetem(cmd.netem)
        }`,
      );
      return;
    case "status": {
      const status = await labStatus(lab);
      if (status === null) {
        throw new LabError(
          `lab ${JSON.stringify(lab.name)} is not up: deno task lab-net up${nameFlag(lab.name)}`,
        );
      }
      say(status);
      return;
    }
  }
}

async function up(cmd: LabCommand): Promise<void> {
  const { lab } = cmd;
  const again = `deno task lab-net down${nameFlag(lab.name)}`;
  // Listening from the start: Ctrl+C while the lab is being made undoes what was made.
  const signals = new StopSignals((signal) => {
    warn(`lab_net.ts: ${signal} again: stopped; whatever is left goes with: ${again}`);
    Deno.exit(1);
  });
  await labUp(lab, cmd.netem, runSystem, () => signals.signal !== null);
  say(nextSteps(lab, cmd.netem, cmd.detach));
  if (cmd.detach) {
    signals.remove();
    return;
  }
  const signal = await signals.stopped;
  say(`${signal}: removing lab ${JSON.stringify(lab.name)}...`);
  const removed = await labDown(lab);
  say(
    removed.length > 0
      ? `removed lab ${JSON.stringify(lab.name)} (${removed.join(", ")})`
      : `lab ${JSON.stringify(lab.name)} was removed already`,
  );
  Deno.exit(0);
}

if (import.meta.main) {
  try {
    await main(Deno.args);
  } catch (error) {
    // One line, never a stack trace: the user can fix whatever this says.
    const message = error instanceof Error ? error.message : String(error);
    const hint = error instanceof UsageError ? " (see --help)" : "";
    warn(`lab_net.ts: ${message}${hint}`);
    Deno.exit(error instanceof UsageError ? 2 : 1);
  }
}
