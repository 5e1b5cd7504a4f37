/**
 * LAB.md, the exercises for a class, never goes stale: every command block marked
 * `<!-- check -->` is run and its output compared with the output shown under it.
 *
 * The format, in LAB.md:
 *
 * ````md
 * <!-- check needs=nc,openssl timeout=30 -->
 * ```sh
 * deno task server --port $PORT 2> server.log &
 * ...
 * ```
 *
 * ```text
 * what it printed (stdout and stderr together)
 * ```
 * ````
 *
 * - The `sh` block is one bash script, run with `bash -e` from the project root with stdin from
 *   `/dev/null`, stderr merged into stdout, `NO_COLOR=1`, and `PORT`, `PORT2`, `PORT3` set to
 *   free ports. It starts its own servers in the background, waits for them by a condition (a
 *   port open, a log line) and stops them itself (`trap ... EXIT`); whatever is left of its
 *   process group when it ends (or after `timeout=` seconds, default 60) is killed.
 * - The `text` block is compared line by line after masking what changes from run to run:
 *   timestamps (`YYYY-MM-DD HH:MM:SS`), `--trace`'s seconds since start (`   0.088147 #1 ...`),
 *   times of day (`HH:MM`), ports (`127.0.0.1:PORT`,
 *   `port N`), durations (`12.34 ms`, `3 s`), PIDs and `mktemp` paths. A line `...` matches any
 *   number of lines (none included). Trailing spaces and trailing blank lines are ignored.
 * - `needs=` names the tools the block runs besides `deno` and `bash` (`root` for a block that
 *   must run as root). A missing one skips the block with a printed reason; under `CI=true` it
 *   fails instead (as {@linkcode haveTool} does for the rest of the suite).
 *
 * A failure names the block by its heading and LAB.md line, shows the first differing line
 * and then the whole output, ready to paste. `deno test -A tests/lab_test.ts --filter Flood`
 * runs one exercise's blocks.
 *
 * @module
 */
import assert from "node:assert/strict";
import { haveTool, ROOT } from "./helpers.ts";

const LAB = `${ROOT}LAB.md`;
const DEFAULT_TIMEOUT_S = 60;

/** A heading of LAB.md (outside code blocks). */
export interface Heading {
  level: number;
  text: string;
  /** 1-based line number. */
  line: number;
}

/** A command block marked `<!-- check -->` and the output shown for it. */
export interface CheckedBlock {
  /** The nearest heading above it. */
  heading: string;
  /** 1-based line of the `<!-- check -->` comment. */
  line: number;
  /** Tools it needs besides deno and bash. */
  needs: string[];
  timeoutS: number;
  script: string;
  expected: string[];
}

/** What {@linkcode parseLab} found. */
export interface ParsedLab {
  headings: Heading[];
  blocks: CheckedBlock[];
  /** Malformed check markers, as `line N: what is wrong`. */
  errors: string[];
}

const FENCE = /^(`{3,}|~{3,})\s*([\w-]*)\s*$/;
const MARKER = /^<!--\s*check\b(.*?)-->\s*$/;

/** Reads headings and checked blocks out of LAB.md's text. */
export function parseLab(text: string): ParsedLab {
  const lines = text.replaceAll("\r\n", "\n").split("\n");
  const headings: Heading[] = [];
  const blocks: CheckedBlock[] = [];
  const errors: string[] = [];
  let heading = "(no heading)";

  // Reads the fenced block opening at or after `start` (blank lines allowed before it).
  const fenceAt = (start: number, lang: RegExp): { body: string[]; end: number } | string => {
    let i = start;
    while (i < lines.length && lines[i].trim() === "") i++;
    const open = FENCE.exec(lines[i] ?? "");
    if (!open || !lang.test(open[2])) {
      return `expected a \`\`\`${lang.source.replace(/[^\w|]/g, "")} block at line ${i + 1}`;
    }
    const body: string[] = [];
    for (let j = i + 1; j < lines.length; j++) {
      if (lines[j].trim() === open[1]) return { body, end: j };
      body.push(lines[j]);
    }
    return `the block opened at line ${i + 1} is never closed`;
  };

  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    const fence = FENCE.exec(line);
    if (fence) {
      // Skip an unmarked fenced block, so `# comments` in it are not headings.
      const end = lines.findIndex((l, j) => j > i && l.trim() === fence[1]);
      i = end === -1 ? lines.length : end;
      continue;
    }
    const h = /^(#{1,6})\s+(.*?)\s*#*\s*$/.exec(line);
    if (h) {
      heading = h[2];
      headings.push({ level: h[1].length, text: h[2], line: i + 1 });
      continue;
    }
    const marker = MARKER.exec(line);
    if (!marker) {
      if (/^<!--\s*check/.test(line)) errors.push(`line ${i + 1}: malformed marker ${line}`);
      continue;
    }
    const needs: string[] = [];
    let timeoutS = DEFAULT_TIMEOUT_S;
    for (const attr of marker[1].trim().split(/\s+/).filter(Boolean)) {
      const [key, value = ""] = attr.split("=", 2);
      if (key === "needs" && value) needs.push(...value.split(",").filter(Boolean));
      else if (key === "timeout" && Number(value) > 0) timeoutS = Number(value);
      else errors.push(`line ${i + 1}: unknown attribute ${attr}`);
    }
    const script = fenceAt(i + 1, /^(sh|bash)$/);
    if (typeof script === "string") {
      errors.push(`line ${i + 1} (${heading}): ${script}`);
      continue;
    }
    const expected = fenceAt(script.end + 1, /^text$/);
    if (typeof expected === "string") {
      errors.push(`line ${i + 1} (${heading}): ${expected}`);
      continue;
    }
    blocks.push({
      heading,
      line: i + 1,
      needs,
      timeoutS,
      script: script.body.join("\n") + "\n",
      expected: expected.body,
    });
    i = expected.end;
  }
  return { headings, blocks, errors };
}

/** Masks what changes from run to run in one line of output. */
export function mask(line: string): string {
  return line
    .replace(/\r$/, "")
    .replace(/\s+$/, "")
    .replace(/^\s*\d+\.\d{6}(?= )/, "<elapsed>") // --trace: seconds since the program started
    .replace(/\d{4}-\d\d-\d\d[ T]\d\d:\d\d(:\d\d(\.\d+)?)?Z?/g, "<time>")
    .replace(
      /((?:\d{1,3}\.){3}\d{1,3}|localhost|\[[0-9a-fA-F:]*\]|::1):\d{1,5}\b/g,
      "$1:<port>",
    )
    .replace(/\b(port|--port|-p)([ =])\d{1,5}\b/gi, "$1$2<port>")
    .replace(/\b\d{1,2}:\d\d(:\d\d)?\b/g, "<hh:mm>")
    .replace(/\b\d+(\.\d+)?\s?(ns|µs|us|ms|s)\b/g, "<duration>")
    .replace(/\b(pid|PID|process)( |=|: )\d+\b/g, "$1$2<pid>")
    .replace(/\/tmp\/[\w.-]*tmp[\w.-]*/g, "<tmp>");
}

/** Where `actual` first departs from `expected` (with `...` lines), or `null` if it matches. */
export function firstDifference(
  expected: string[],
  actual: string[],
): { line: number; expected: string; actual: string } | null {
  const trim = (lines: string[]) => {
    const out = lines.map(mask);
    while (out.length > 0 && out[out.length - 1] === "") out.pop();
    return out;
  };
  const want = trim(expected);
  const got = trim(actual);
  // The furthest actual line reached by any partial match, and what was expected there.
  let best = { j: -1, i: 0 };
  const failed = new Set<string>();
  const match = (i: number, j: number): boolean => {
    if (failed.has(`${i},${j}`)) return false;
    if (j > best.j || (j === best.j && i > best.i)) best = { j, i };
    let ok: boolean;
    if (i === want.length) ok = j === got.length;
    else if (want[i] === "...") ok = match(i + 1, j) || (j < got.length && match(i, j + 1));
    else ok = j < got.length && want[i] === got[j] && match(i + 1, j + 1);
    if (!ok) failed.add(`${i},${j}`);
    return ok;
  };
  if (match(0, 0)) return null;
  let i = best.i;
  while (want[i] === "...") i++;
  return {
    line: best.j + 1,
    expected: i < want.length ? want[i] : "(end of output)",
    actual: best.j < got.length ? got[best.j] : "(end of output)",
  };
}

/** A tool (or `root`) a block needs that is missing here, with the reason; `null` if none. */
function missingNeed(needs: string[]): string | null {
  for (const need of needs) {
    if (need === "root") {
      if (Deno.uid() === 0) continue;
      if (Deno.env.get("CI") === "true") throw new Error("this block must run as root under CI");
      return "it must run as root";
    }
    const probe = need === "redis-server" || need === "tshark" ? ["--version"] : ["-h"];
    if (!haveTool(need, probe)) return `${need} not found`;
  }
  return null;
}

/** A free loopback port (bound and released: the block's server takes it right after). */
function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** Runs one block's script; returns its merged output and exit code. */
async function runBlock(block: CheckedBlock): Promise<{ output: string; code: number }> {
  const dir = await Deno.makeTempDir({ prefix: "lab_test_" });
  const file = `${dir}/block.sh`;
  await Deno.writeTextFile(file, block.script);
  const ports = [freePort(), freePort(), freePort()];
  const child = new Deno.Command("setsid", {
    // A session of its own: whatever the script leaves running can be killed as a group.
    args: ["bash", "-c", 'exec bash -e "$1" 2>&1', "lab", file],
    cwd: ROOT,
    env: { NO_COLOR: "1", PORT: `${ports[0]}`, PORT2: `${ports[1]}`, PORT3: `${ports[2]}` },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const killGroup = () => {
    try {
      Deno.kill(-child.pid, "SIGKILL");
    } catch {
      // The group is gone already.
    }
  };
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    killGroup();
  }, block.timeoutS * 1000);
  const stdout = new Response(child.stdout).arrayBuffer();
  const stderr = new Response(child.stderr).arrayBuffer();
  try {
    const status = await child.status;
    killGroup(); // anything the script left behind, so its pipes close
    const decoder = new TextDecoder();
    const output = decoder.decode(await stdout) + decoder.decode(await stderr);
    if (timedOut) throw new Error(`timed out after ${block.timeoutS} s; output:\n${output}`);
    return { output, code: status.code };
  } finally {
    clearTimeout(timer);
    await Deno.remove(dir, { recursive: true });
  }
}

const text = Deno.readTextFileSync(LAB);
const lab = parseLab(text);

/** The learning objectives of both seeds, and the exercises this project adds. */
const OBJECTIVES: [source: string, objective: string, heading: RegExp][] = [
  ["python-socket-lab", "Socket Programming", /socket programming/i],
  ["python-socket-lab", "Network Communication: client-server message exchange", /message/i],
  ["python-socket-lab", "Concurrency: multi-threaded server handling", /concurrency/i],
  ["python-socket-lab", "Error Handling", /error handling/i],
  ["python-socket-lab", "Logging", /logging/i],
  ["python-socket-lab", "Containerization: Docker deployment", /containeri[sz]ation/i],
  ["tcp-chat", "Socket programming fundamentals", /socket programming/i],
  ["tcp-chat", "TCP client-server architecture", /client-server architecture/i],
  ["tcp-chat", "Multithreading in network applications", /multithreading/i],
  ["tcp-chat", "Basic network communication protocols", /protocols?\b/i],
  ["tcp-chat", "Real-time messaging systems", /real-time messaging/i],
  ["this project", "framing and partial reads, with --trace", /framing.*partial reads/i],
  ["this project", "one-shot vs keep-alive, with the bench", /one-shot.*keep-alive/i],
  ["this project", "threads vs an event loop, measured", /threads.*event loop/i],
  ["this project", "errors and exit codes", /exit codes/i],
  ["this project", "a slow reader and the bounded queue", /slow reader.*bounded queue/i],
  ["this project", "escape-sequence injection and sanitising", /escape.*saniti[sz]/i],
  ["this project", "TLS on and off", /\bTLS\b/],
  ["this project", "flood control", /flood control/i],
  ["this project", "Docker", /docker/i],
  ["this project", "scaling out over Redis", /scaling out.*redis/i],
  ["this project", "write your own client", /write your own client/i],
];

const EXERCISE = /^Exercise \d+: /;
const exercises = lab.headings.filter((h) => h.level === 2 && EXERCISE.test(h.text));

Deno.test("LAB.md: every check marker is followed by a sh block and a text block", () => {
  assert.deepEqual(lab.errors, []);
});

Deno.test("LAB.md: an exercise for each learning objective of both seeds, and for ours", () => {
  const missing = OBJECTIVES.filter(([, , pattern]) =>
    !exercises.some((h) => pattern.test(h.text.replace(EXERCISE, "")))
  ).map(([source, objective]) => `${source}: ${objective}`);
  assert.deepEqual(missing, [], `no exercise heading for:\n${missing.join("\n")}`);
  assert.ok(
    exercises.length >= 15 && exercises.length <= 20,
    `15 to 20 exercises, not ${exercises.length}`,
  );
  assert.ok(lab.blocks.length >= 8, `at least 8 checked blocks, not ${lab.blocks.length}`);
  // Numbered 1, 2, 3, ... in order.
  assert.deepEqual(
    exercises.map((h) => Number(/\d+/.exec(h.text)?.[0])),
    exercises.map((_, i) => i + 1),
  );
});

Deno.test("LAB.md: each exercise has a goal, commands, output, questions and an extension", () => {
  const lines = text.split("\n");
  const problems: string[] = [];
  exercises.forEach((h, n) => {
    const next = lab.headings.find((k) => k.line > h.line && k.level <= 2);
    const body = lines.slice(h.line, next ? next.line - 1 : lines.length).join("\n");
    for (const part of ["Goal", "Commands", "What you should see", "Questions", "Extension"]) {
      if (!body.includes(`**${part}.**`)) problems.push(`Exercise ${n + 1}: no **${part}.**`);
    }
    if (!/^```(sh|bash)$/m.test(body)) problems.push(`Exercise ${n + 1}: no command block`);
  });
  assert.deepEqual(problems, []);
});

Deno.test("LAB.md: a teacher's section: one server for a class, TLS, a password, --store", () => {
  const teacher = lab.headings.find((h) => h.level === 2 && /teacher/i.test(h.text));
  assert.ok(teacher, "no ## heading for teachers");
  const next = lab.headings.find((k) => k.line > teacher.line && k.level <= 2);
  const body = text.split("\n").slice(teacher.line, next ? next.line - 1 : undefined).join("\n");
  for (const needle of ["30", "--tls-cert", "--password-file", "--store", "--transcript"]) {
    assert.ok(body.includes(needle), `the teacher's section does not mention ${needle}`);
  }
  assert.ok(
    lab.blocks.some((b) => b.heading === teacher.text),
    "the teacher's section has no checked block",
  );
});

Deno.test("LAB.md: the masks and `...` used by the checked blocks", () => {
  assert.equal(
    mask("2026-12-02 21:40:12 INFO  Connection established with 127.0.0.1:42982"),
    "<time> INFO  Connection established with 127.0.0.1:<port>",
  );
  assert.equal(mask("[history 12:16] alice: hi"), "[history <hh:mm>] alice: hi");
  assert.equal(
    mask('   1.303102 #1 <     8 B "one\\ntwo\\n"'),
    '<elapsed> #1 <     8 B "one\\ntwo\\n"',
  );
  assert.equal(mask("exit in 12.34 ms, then 3 s"), "exit in <duration>, then <duration>");
  assert.equal(mask("bound to [::1]:8080, port 9000"), "bound to [::1]:<port>, port <port>");
  assert.equal(firstDifference(["a", "...", "d"], ["a", "b", "c", "d"]), null);
  assert.equal(firstDifference(["a", "...", "b"], ["a", "b"]), null);
  assert.deepEqual(firstDifference(["a", "...", "d"], ["a", "b", "c"]), {
    line: 4,
    expected: "d",
    actual: "(end of output)",
  });
  assert.deepEqual(firstDifference(["a", "x"], ["a", "b"]), {
    line: 2,
    expected: "x",
    actual: "b",
  });
});

const seen = new Map<string, number>();
for (const block of lab.blocks) {
  const n = (seen.get(block.heading) ?? 0) + 1;
  seen.set(block.heading, n);
  Deno.test({
    name: `LAB.md: ${block.heading}${n > 1 ? ` (block ${n})` : ""}`,
    sanitizeResources: true,
    async fn() {
      const where = `LAB.md:${block.line} (${block.heading})`;
      const missing = missingNeed(block.needs);
      if (missing) {
        console.log(`SKIP: ${where}: ${missing}`);
        return;
      }
      const { output, code } = await runBlock(block);
      const actual = output.replace(/\n$/, "").split("\n");
      const diff = firstDifference(block.expected, actual);
      if (diff || code !== 0) {
        const why = diff
          ? `output differs at line ${diff.line}:\n  expected: ${diff.expected}\n  actual:   ${diff.actual}`
          : `the script exited with status ${code}`;
        throw new Error(`${where}: ${why}\nwhole output (exit ${code}):\n${output}`);
      }
    },
  });
}
