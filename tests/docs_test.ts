/**
 * The documentation against the code. Each role's flags come from the command spec its script
 * exports (the same table `--help` is rendered from), and each role's flag table lives in
 * exactly one page of `docs/`: every flag (and its short alias) must have a row there, with the
 * default `--help` gives, and every flag written in the table must exist. Every environment
 * variable a role reads is in the table of `docs/configuration.md`. Every relative link in
 * `README.md` and `docs/*.md` must point to a file that exists, and an `#anchor` to a heading
 * of that file.
 *
 * Added a flag? Add a row to the role's table (the failure says which page and what to write).
 */
import assert from "node:assert/strict";
import { SERVER_COMMAND } from "../server.ts";
import { CLIENT_COMMAND } from "../client.ts";
import { CHAT_SERVER_COMMAND } from "../chat_server.ts";
import { CHAT_CLIENT_COMMAND } from "../chat_client.ts";
import {
  type CommandSpec,
  flagName,
  helpText,
  type OptionSpec,
  type OptionSpecs,
} from "../lib/config.ts";
import { ROOT } from "./helpers.ts";

/** A role, the spec its `--help` is made from, and the one page that holds its flag table. */
interface Role {
  script: string;
  spec: CommandSpec<OptionSpecs>;
  page: string;
}

const ROLES: readonly Role[] = [
  { script: "server.ts", spec: SERVER_COMMAND, page: "docs/echo.md" },
  { script: "client.ts", spec: CLIENT_COMMAND, page: "docs/echo.md" },
  { script: "chat_server.ts", spec: CHAT_SERVER_COMMAND, page: "docs/chat.md" },
  { script: "chat_client.ts", spec: CHAT_CLIENT_COMMAND, page: "docs/chat.md" },
];

/** Files linked from the docs that someone else is still writing: checked once they exist. */
const PLANNED = new Set(["LAB.md"]);

/** Beyond this the README is reference again: move it to a page of `docs/`. */
const README_MAX_BYTES = 10_000;

/** One flag as the command line accepts it. */
interface Flag {
  long: string;
  short?: string;
  /** Absent for the built-in `--help` and `--version`. */
  option?: OptionSpec;
}

/** Every flag of a role: `--help`, `--version` (built into `lib/config.ts`), then its options. */
function flagsOf(spec: CommandSpec<OptionSpecs>): Flag[] {
  const flags: Flag[] = [{ long: "--help", short: "-h" }, { long: "--version", short: "-V" }];
  for (const [key, option] of Object.entries(spec.options)) {
    if (option.envOnly) continue; // e.g. CHAT_PASSWORD: never a flag
    flags.push({
      long: `--${flagName(key)}`,
      ...(option.short ? { short: `-${option.short}` } : {}),
      option,
    });
  }
  return flags;
}

/** The flags (long and short) named in the left-hand column of `--help`. */
function helpFlags(spec: CommandSpec<OptionSpecs>): string[] {
  const lines = helpText(spec).split("\n");
  const start = lines.indexOf("Options:") + 1;
  assert.ok(start > 0, `${spec.name} --help has no Options: section`);
  const end = lines.indexOf("", start);
  const names: string[] = [];
  for (const line of lines.slice(start, end === -1 ? undefined : end)) {
    const named = namedFlags(line.trim().split(/\s{2,}/)[0]);
    names.push(...named.long, ...named.short);
  }
  return names;
}

/** The long (`--port`) and short (`-p`) flags written in a piece of text. */
function namedFlags(text: string): { long: string[]; short: string[] } {
  return {
    long: text.match(/(?<![\w-])--[a-z][a-z0-9-]*/g) ?? [],
    short: text.match(/(?<![\w-])-[A-Za-z](?![\w-])/g) ?? [],
  };
}

function read(path: string): string {
  return Deno.readTextFileSync(ROOT + path);
}

/** The Markdown files whose links are checked, and that may hold flag tables. */
function markdownFiles(): string[] {
  const docs = [...Deno.readDirSync(ROOT + "docs")]
    .filter((entry) => entry.isFile && entry.name.endsWith(".md"))
    .map((entry) => `docs/${entry.name}`)
    .sort();
  return ["README.md", ...docs];
}

/** The lines of a Markdown text with fenced code blocks blanked (same line numbers). */
function proseLines(text: string): string[] {
  let fence: string | null = null;
  return text.split("\n").map((line) => {
    const marker = line.match(/^\s{0,3}(`{3,}|~{3,})/)?.[1];
    if (fence === null && marker) {
      fence = marker;
      return "";
    }
    if (fence !== null) {
      if (marker && marker[0] === fence[0] && marker.length >= fence.length) fence = null;
      return "";
    }
    return line;
  });
}

interface Heading {
  level: number;
  text: string;
  line: number;
}

function headingsOf(text: string): Heading[] {
  const out: Heading[] = [];
  proseLines(text).forEach((line, index) => {
    const match = line.match(/^(#{1,6})\s+(.*?)\s*#*\s*$/);
    if (match) out.push({ level: match[1].length, text: match[2], line: index });
  });
  return out;
}

/** A heading's text as rendered: links become their text, code loses its backticks. */
function plain(heading: string): string {
  return heading.replace(/!?\[([^\]]*)\]\([^)]*\)/g, "$1").replace(/<[^>]+>/g, "")
    .replace(/`/g, "");
}

/** The anchors GitHub gives a file's headings (`## chat_server.ts` is `#chat_serverts`). */
function anchorsOf(text: string): Set<string> {
  const seen = new Map<string, number>();
  const anchors = new Set<string>();
  for (const heading of headingsOf(text)) {
    const base = plain(heading.text).trim().toLowerCase()
      .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, "")
      .replace(/ /g, "-");
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    anchors.add(count === 0 ? base : `${base}-${count}`);
  }
  return anchors;
}

/** The cells of a table row (`| a | b |`), unescaping `\|`. */
function cells(line: string): string[] {
  return line.trim().replace(/^\|/, "").replace(/\|$/, "").split(/(?<!\\)\|/)
    .map((cell) => cell.trim().replace(/\\\|/g, "|"));
}

interface Table {
  /** The heading the table sits under. */
  heading: string;
  header: string[];
  rows: string[][];
}

/** Every table of a Markdown text, with the heading it is under. */
function tablesOf(text: string): Table[] {
  const lines = proseLines(text);
  const headings = headingsOf(text);
  const tables: Table[] = [];
  for (let i = 0; i + 1 < lines.length; i++) {
    if (!lines[i].trim().startsWith("|") || !/^\s*\|[\s:|-]+\|\s*$/.test(lines[i + 1])) continue;
    if (i > 0 && lines[i - 1].trim().startsWith("|")) continue;
    const heading = headings.filter((h) => h.line < i).at(-1)?.text ?? "";
    const rows: string[][] = [];
    let j = i + 2;
    for (; j < lines.length && lines[j].trim().startsWith("|"); j++) rows.push(cells(lines[j]));
    tables.push({ heading: plain(heading), header: cells(lines[i]), rows });
    i = j;
  }
  return tables;
}

/** A table whose first column is `flag`: a role's flag table. */
function isFlagTable(table: Table): boolean {
  return table.header[0]?.toLowerCase() === "flag";
}

function describe(flag: Flag): string {
  if (!flag.option) return flag.long === "--help" ? "show this help and exit" : "print the version";
  const option = flag.option;
  const value = option.type === "boolean" ? "" : ` ${option.valueName ?? "N"}`;
  const fallback = option.type === "boolean"
    ? "off"
    : option.default === ""
    ? ""
    : `\`${option.default}\``;
  const env = option.env ? ` (env \`${option.env}\`)` : "";
  const names = (flag.short ? `${flag.short}, ` : "") + flag.long + value;
  return `| \`${names}\` | ${fallback} | ${option.description}${env} |`;
}

/** The flag table of one role in its page. */
function flagTable(role: Role): Table {
  const tables = tablesOf(read(role.page)).filter((t) => t.heading === role.script);
  const found = tables.filter(isFlagTable);
  assert.equal(
    found.length,
    1,
    `${role.page} needs exactly one flag table (first column "flag") under the heading ` +
      `"${role.script}"; found ${found.length}`,
  );
  return found[0];
}

Deno.test("docs: the flags this test reads from each spec are the ones --help lists", () => {
  for (const role of ROLES) {
    const fromSpec = flagsOf(role.spec).flatMap((f) => [f.long, ...(f.short ? [f.short] : [])]);
    assert.deepEqual(helpFlags(role.spec).sort(), fromSpec.sort(), role.script);
  }
});

for (const role of ROLES) {
  Deno.test(`docs: every flag of ${role.script} is in its table in ${role.page}`, () => {
    const table = flagTable(role);
    for (const flag of flagsOf(role.spec)) {
      const row = table.rows.find((r) => namedFlags(r[0] ?? "").long.includes(flag.long));
      assert.ok(
        row,
        `${role.page}: the ${role.script} flag table has no row for ${flag.long}. ` +
          `Add one, as --help says:\n${describe(flag)}`,
      );
      if (flag.short) {
        assert.ok(
          namedFlags(row[0]).short.includes(flag.short),
          `${role.page}: the ${role.script} row for ${flag.long} must show its alias ` +
            `${flag.short} (\`${flag.short}, ${flag.long}\`)`,
        );
      }
    }
  });

  Deno.test(`docs: the ${role.script} table in ${role.page} has no stale flag or default`, () => {
    const flags = flagsOf(role.spec);
    const longs = new Map(flags.map((f) => [f.long, f]));
    const shorts = new Set(flags.flatMap((f) => f.short ? [f.short] : []));
    for (const row of flagTable(role).rows) {
      const named = namedFlags(row[0] ?? "");
      assert.ok(named.long.length > 0, `${role.page}: a ${role.script} row names no flag: ${row}`);
      for (const long of named.long) {
        assert.ok(longs.has(long), `${role.page}: ${role.script} has no flag ${long}`);
      }
      for (const short of named.short) {
        assert.ok(shorts.has(short), `${role.page}: ${role.script} has no alias ${short}`);
      }
      // The default column, where the row is about one valued option.
      const option = named.long.length === 1 ? longs.get(named.long[0])?.option : undefined;
      if (!option) continue;
      const cell = row[1] ?? "";
      const where = `${role.page}: default of ${named.long[0]} (${role.script})`;
      if (option.type === "boolean") {
        assert.equal(cell, option.default ? "on" : "off", where);
      } else if (option.default === "") {
        assert.doesNotMatch(cell, /`/, `${where}: --help gives none`);
      } else {
        assert.ok(
          cell.includes(`\`${option.default}\``),
          `${where}: --help says ${option.default}`,
        );
      }
    }
  });
}

Deno.test("docs: each role's flag table is in its page and nowhere else", () => {
  const scripts = new Set(ROLES.map((r) => r.script));
  const found = new Map<string, string[]>();
  for (const file of markdownFiles()) {
    for (const table of tablesOf(read(file)).filter(isFlagTable)) {
      if (scripts.has(table.heading)) {
        found.set(table.heading, [...found.get(table.heading) ?? [], file]);
      }
    }
  }
  for (const role of ROLES) {
    assert.deepEqual(found.get(role.script), [role.page], `flag tables of ${role.script}`);
  }
});

Deno.test("docs: every environment variable is in docs/configuration.md, by its flag", () => {
  const page = "docs/configuration.md";
  const table = tablesOf(read(page)).find((t) => t.header[0]?.toLowerCase() === "variable");
  assert.ok(table, `${page} needs a table whose first column is "variable"`);
  const rows = new Map(table.rows.map((row) => [row[0].replace(/`/g, ""), row]));
  const readBy = new Set<string>();
  for (const role of ROLES) {
    for (const [key, option] of Object.entries(role.spec.options)) {
      if (!option.env) continue;
      readBy.add(option.env);
      const row = rows.get(option.env);
      assert.ok(row, `${page}: no row for ${option.env} (${role.script} --${flagName(key)})`);
      if (option.envOnly) {
        assert.match(row[1], /^none\b/, `${page}: ${option.env} has no flag: say "none"`);
      } else {
        assert.ok(
          namedFlags(row[1]).long.includes(`--${flagName(key)}`),
          `${page}: ${option.env} sets --${flagName(key)}`,
        );
      }
      const mentioned = row[2].includes(role.script) || /all four/.test(row[2]);
      assert.ok(mentioned, `${page}: the ${option.env} row must say ${role.script} reads it`);
    }
  }
  for (const name of rows.keys()) {
    assert.ok(readBy.has(name), `${page}: no script reads ${name}`);
  }
});

/** Every link target in a Markdown text, outside code: inline, images, references. */
function linksOf(text: string): string[] {
  const targets: string[] = [];
  for (const raw of proseLines(text)) {
    const line = raw.replace(/`+[^`]*`+/g, "");
    for (const match of line.matchAll(/!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) {
      targets.push(match[1]);
    }
    const reference = line.match(/^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)/);
    if (reference) targets.push(reference[1]);
  }
  return targets;
}

Deno.test("docs: every relative link in README.md and docs/*.md resolves", () => {
  const problems: string[] = [];
  let checked = 0;
  for (const file of markdownFiles()) {
    const base = new URL(file, `file://${ROOT}`);
    for (const target of linksOf(read(file))) {
      if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto:
      checked++;
      const [path, anchor] = target.split("#", 2);
      const url = new URL(path || file.split("/").at(-1) || file, base);
      const relative = decodeURIComponent(url.pathname).slice(ROOT.length);
      let stat: Deno.FileInfo | undefined;
      try {
        stat = Deno.statSync(url);
      } catch {
        if (!PLANNED.has(relative)) problems.push(`${file}: ${target}: no file ${relative}`);
        continue;
      }
      if (anchor !== undefined && stat.isFile && relative.endsWith(".md")) {
        if (!anchorsOf(Deno.readTextFileSync(url)).has(anchor)) {
          problems.push(`${file}: ${target}: ${relative} has no heading #${anchor}`);
        }
      }
    }
  }
  assert.ok(checked > 20, `only ${checked} links found: is the link parser broken?`);
  assert.deepEqual(problems, []);
});

Deno.test("docs: the README stays short, links every page, and keeps the two set-up commands", () => {
  const readme = read("README.md");
  const size = new TextEncoder().encode(readme).length;
  assert.ok(
    size <= README_MAX_BYTES,
    `README.md is ${size} bytes (at most ${README_MAX_BYTES}): move reference to docs/`,
  );
  const links = new Set(linksOf(readme).map((t) => t.split("#")[0]));
  for (const file of markdownFiles().filter((f) => f.startsWith("docs/"))) {
    assert.ok(links.has(file), `README.md does not link ${file}`);
  }
  assert.ok(links.has("LAB.md"), "README.md does not link LAB.md");
  for (const command of ["npx --yes deno@2.9.6 task server", "npx --yes deno@2.9.6 task test"]) {
    assert.ok(readme.includes(command), `README.md lost the set-up command ${command}`);
  }
  // CI runs the README's test command verbatim.
  const ci = read(".ci/run").split("\n").filter((l) => l.trim() && !l.trim().startsWith("#"));
  assert.ok(readme.includes(ci.at(-1)?.trim() ?? "?"), ".ci/run's last command is the README's");
});

Deno.test("docs: the parsers above see what they should", () => {
  assert.deepEqual(namedFlags("`-p, --port PORT`, `--tls`, `--ca FILE`, x-y"), {
    long: ["--port", "--tls", "--ca"],
    short: ["-p"],
  });
  const sample = "# A\n\n## chat_server.ts\n\n```\n# not a heading\n```\n\n## Typed frames (v1)\n" +
    "\n## A\n\n| flag | default |\n| --- | --- |\n| `--x N` | `1` |\n";
  assert.deepEqual([...anchorsOf(sample)], ["a", "chat_serverts", "typed-frames-v1", "a-1"]);
  assert.deepEqual(tablesOf(sample), [{
    heading: "A",
    header: ["flag", "default"],
    rows: [["`--x N`", "`1`"]],
  }]);
  assert.deepEqual(linksOf("[a](x.md#b) `[c](d)` ![e](f.png)\n```\n[g](h)\n```\n[i]: j.md"), [
    "x.md#b",
    "f.png",
    "j.md",
  ]);
});
