#!/usr/bin/env -S deno run --allow-read --allow-write=dist --allow-run --allow-env
/**
 * Builds the four roles into single binaries with `deno compile`, each with exactly the
 * permissions it needs baked in and `--no-prompt`, so a binary never stops to ask.
 *
 * ```sh
 * deno task compile          # dist/server, dist/client, dist/chat_server, dist/chat_client
 * deno task compile:all      # dist/<target>/... for Linux, macOS and Windows
 * ```
 *
 * `deno compile` downloads a `denort` runtime per target; where that is not possible, point
 * `DENORT_BIN` at a `denort` binary for this machine.
 *
 * This file is the one place the roles' permissions are written down: `deno.json`'s run tasks
 * and each script's shebang are checked against it by `tests/compile_test.ts`.
 *
 * @module
 */
import { parseArgs } from "node:util";

/** A program of the lab and what it may do. */
export interface Role {
  /** Binary name, also the name used in the Docker image (`docker run IMAGE chat_server`). */
  name: string;
  /** The script, relative to the project root. */
  script: string;
  /** Deno permission flags, exactly as `deno run` and `deno compile` take them. */
  permissions: string[];
  /** Files the program reads at run time that the binary must carry (`--include`). */
  include?: string[];
}

/**
 * Reading is not scoped to `.env`: the roles also read the files their flags name (TLS
 * certificate and key, `--ca`, `--password-file`), which can be anywhere, and a compiled
 * binary cannot be given more later. Only the chat server writes (its `--store` file, which
 * can be anywhere too); none runs programs or reads other variables.
 */
const READ = "--allow-read";
const SERVER_ENV = "SERVER_HOST,SERVER_PORT,LOG_LEVEL,TLS_CERT,TLS_KEY";
const CLIENT_ENV = "SERVER_HOST,SERVER_PORT";

/** The four roles. */
export const ROLES: readonly Role[] = [
  {
    name: "server",
    script: "server.ts",
    permissions: ["--allow-net", `--allow-env=${SERVER_ENV}`, READ],
  },
  {
    name: "client",
    script: "client.ts",
    permissions: ["--allow-net", `--allow-env=${CLIENT_ENV}`, READ],
  },
  {
    name: "chat_server",
    script: "chat_server.ts",
    permissions: [
      "--allow-net",
      `--allow-env=${SERVER_ENV},CHAT_PASSWORD,WEB_PORT,WEB_ORIGIN,CHAT_STORE,REDIS_URL`,
      READ,
      "--allow-write", // the --store file, wherever the operator keeps it
    ],
    include: ["web"], // the page served by --web-port
  },
  {
    name: "chat_client",
    script: "chat_client.ts",
    permissions: ["--allow-net", `--allow-env=${CLIENT_ENV}`, READ],
  },
];

/** Targets of `deno task compile:all`. */
export const TARGETS: readonly string[] = [
  "x86_64-unknown-linux-gnu",
  "aarch64-unknown-linux-gnu",
  "x86_64-apple-darwin",
  "aarch64-apple-darwin",
  "x86_64-pc-windows-msvc",
];

/** Where a role's binary goes: `dist/NAME`, or `dist/TARGET/NAME[.exe]` when cross-building. */
export function outputPath(role: Role, target?: string): string {
  if (!target) return `dist/${role.name}`;
  return `dist/${target}/${role.name}${target.includes("windows") ? ".exe" : ""}`;
}

/** The `deno` arguments that build one role. */
export function compileArgs(role: Role, target?: string): string[] {
  return [
    "compile",
    "--no-prompt",
    ...role.permissions,
    ...(role.include ?? []).flatMap((path) => ["--include", path]),
    "--output",
    outputPath(role, target),
    ...(target ? ["--target", target] : []),
    role.script,
  ];
}

async function build(role: Role, target?: string): Promise<boolean> {
  const { code, stderr } = await new Deno.Command(Deno.execPath(), {
    args: compileArgs(role, target),
    env: { NO_COLOR: "1" }, // plain error text to quote
    stdout: "null",
    stderr: "piped",
  }).output();
  const where = outputPath(role, target);
  if (code === 0) {
    console.log(`built ${where}`);
    return true;
  }
  const reason = new TextDecoder().decode(stderr).trim().split("\n").find((l) => l.trim()) ?? "";
  console.error(`compile.ts: could not build ${where}: ${reason}`);
  return false;
}

async function main(): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({
      args: Deno.args,
      options: { all: { type: "boolean" }, target: { type: "string" } },
    }));
  } catch (error) {
    console.error(`compile.ts: ${(error as Error).message} (use --all or --target TARGET)`);
    Deno.exit(2);
  }
  const targets = values.all ? [...TARGETS] : [values.target];
  let ok = true;
  for (const target of targets) {
    for (const role of ROLES) ok = await build(role, target) && ok;
  }
  if (!ok) {
    console.error(
      "compile.ts: deno compile needs a denort runtime for each target; without network access, " +
        "set DENORT_BIN to a denort binary for this machine (host target only)",
    );
    Deno.exit(1);
  }
}

if (import.meta.main) await main();
