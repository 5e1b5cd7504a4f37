/**
 * The Dockerfile, checked without a Docker engine: parsed and linted by the parser and linter
 * behind VS Code's Docker support (pinned npm packages), and every command the image runs is
 * run here outside Docker with the image's environment.
 */
import assert from "node:assert/strict";
import { DockerfileParser } from "npm:dockerfile-ast@0.7.1";
import { validate } from "npm:dockerfile-utils@0.16.3";
import { ADDRESS_OPTIONS, parseCommand } from "../lib/config.ts";
import { ROLES } from "../tools/compile.ts";
import { SERVER_COMMAND, startServer } from "../server.ts";
import { startChatServer } from "../chat_server.ts";
import denoConfig from "../deno.json" with { type: "json" };
import { captureLog, LineClient, ROOT, runDeno, Spawned } from "./helpers.ts";

const text = await Deno.readTextFile(`${ROOT}Dockerfile`);
const dockerfile = DockerfileParser.parse(text);
const DENO_VERSION = "2.9.6";

/** The arguments of an exec-form (JSON array) instruction. */
function execForm(args: string[]): string[] {
  const parsed = JSON.parse(args.join(" "));
  assert.ok(Array.isArray(parsed), `exec form expected, got ${args.join(" ")}`);
  return parsed;
}

function instructionArgs(keyword: string): string[][] {
  return dockerfile.getInstructions()
    .filter((i) => i.getKeyword() === keyword)
    .map((i) => i.getArguments().map((a) => a.getValue()));
}

/** The image's environment (ENV of the final stage). */
function imageEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const args of instructionArgs("ENV")) {
    for (const pair of args) {
      const [key, ...value] = pair.split("=");
      env[key] = value.join("=");
    }
  }
  return env;
}

/** Maps a command the image runs (`client --check ...`) to `deno run PERMS script ...`. */
function asDenoRun(command: string[]): string[] {
  const role = ROLES.find((r) => r.name === command[0]);
  assert.ok(role, `the image runs ${command[0]}, which is not one of the roles`);
  return ["run", "--no-prompt", ...role.permissions, role.script, ...command.slice(1)];
}

Deno.test("docker: the linter finds nothing to report", () => {
  assert.deepEqual(validate(text).map((d) => `${d.range.start.line + 1}: ${d.message}`), []);
});

Deno.test("docker: every stage is an official denoland/deno image pinned to the project's Deno", () => {
  const froms = dockerfile.getFROMs();
  assert.ok(froms.length >= 2, "multi-stage: build the binaries, ship only them");
  for (const from of froms) {
    assert.equal(from.getImageName(), "denoland/deno");
    assert.match(
      from.getImageTag() ?? "",
      new RegExp(`^([a-z]+-)?${DENO_VERSION.replaceAll(".", "\\.")}$`),
    );
  }
  // The build stage compiles with the project's own task (the same flags as `deno task compile`).
  assert.ok(instructionArgs("RUN").some((args) => args.join(" ") === "deno task compile"));
  assert.match((denoConfig.tasks as Record<string, string>).compile, /tools\/compile\.ts/);
});

Deno.test("docker: runs as a non-root user, exposes the default port, listens on every interface", () => {
  const users = instructionArgs("USER");
  assert.ok(users.length > 0, "a USER instruction");
  const user = users.at(-1)?.[0] ?? "";
  assert.doesNotMatch(user, /^(0|root)(:|$)/);
  assert.deepEqual(instructionArgs("EXPOSE"), [[String(ADDRESS_OPTIONS.port.default)]]);
  const env = imageEnv();
  assert.equal(env.SERVER_HOST, "0.0.0.0");
  assert.equal(env.SERVER_PORT, String(ADDRESS_OPTIONS.port.default));
  // Those variables really configure the server: the config layer turns them into 0.0.0.0:8080.
  const values = parseCommand(SERVER_COMMAND, [], { env: (name) => env[name], dotenv: {} }).values;
  assert.equal(values.host, "0.0.0.0");
  assert.equal(values.port, 8080);
});

Deno.test("docker: CMD and HEALTHCHECK are exec form (no shell) and name the roles' binaries", () => {
  assert.deepEqual(execForm(instructionArgs("CMD")[0]), ["server"]);
  assert.deepEqual(execForm(instructionArgs("ENTRYPOINT")[0]), []);
  const health = dockerfile.getHEALTHCHECKs()[0];
  assert.ok(health, "a HEALTHCHECK");
  const args = health.getArguments().map((a) => a.getValue());
  assert.equal(args[0], "CMD");
  const command = execForm(args.slice(1));
  assert.equal(command[0], "client");
  assert.ok(command.includes("--check"));
  const path = imageEnv().PATH.split(":");
  assert.ok(path.includes("/app/bin"), "the binaries are on PATH");
  assert.ok(instructionArgs("COPY").some((a) => a.join(" ").includes("/app/bin/")));
});

Deno.test("docker: .dockerignore keeps tests, caches, dist/ and .env out of the context", async () => {
  const rules = (await Deno.readTextFile(`${ROOT}.dockerignore`)).split("\n")
    .map((l) => l.trim()).filter((l) => l && !l.startsWith("#"));
  // Docker's rule: the last matching pattern wins; `!` re-includes.
  const included = (path: string): boolean => {
    let keep = true;
    for (const rule of rules) {
      const negated = rule.startsWith("!");
      const pattern = negated ? rule.slice(1) : rule;
      const dir = pattern.replace(/\/$/, "");
      if (pattern === "*" || path === dir || path.startsWith(dir + "/")) keep = negated;
    }
    return keep;
  };
  for (
    const path of [
      "tests/server_test.ts",
      "dist/server",
      ".git/HEAD",
      ".env",
      "coverage/x",
      "README.md",
    ]
  ) {
    assert.equal(included(path), false, path);
  }
  for (
    const path of ["deno.json", "server.ts", "chat_client.ts", "lib/framing.ts", "tools/compile.ts"]
  ) {
    assert.equal(included(path), true, path);
  }
  // Everything the Dockerfile copies is in the context.
  const fromContext = dockerfile.getCOPYs().filter((copy) =>
    !copy.getFlags().some((flag) => flag.getName() === "from")
  );
  assert.ok(fromContext.length > 0);
  for (const copy of fromContext) {
    for (const source of copy.getArguments().slice(0, -1).map((a) => a.getValue())) {
      assert.ok(included(source.replace(/\/$/, "")), source);
    }
  }
});

Deno.test("docker: the image's default command serves, and its health check passes against it", async () => {
  const cmd = execForm(instructionArgs("CMD")[0]);
  // The image's environment, on loopback and a free port here (and without its PATH).
  const { PATH: _path, ...imageVars } = imageEnv();
  const env = { ...imageVars, SERVER_HOST: "127.0.0.1", SERVER_PORT: "0" };
  const server = new Spawned(asDenoRun(cmd), { env });
  try {
    const port = await server.port();
    const health = dockerfile.getHEALTHCHECKs()[0].getArguments().map((a) => a.getValue());
    const check = execForm(health.slice(1));
    const healthy = await runDeno(asDenoRun(check), { env: { SERVER_PORT: String(port) } });
    assert.equal(healthy.code, 0, healthy.stderr);
    assert.equal(healthy.stdout, "");
  } finally {
    server.child.kill("SIGTERM");
    assert.equal((await server.exit()).code, 0, "SIGTERM stops the role with status 0");
  }
});

Deno.test("docker: the health check fails when nothing listens", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  const health = dockerfile.getHEALTHCHECKs()[0].getArguments().map((a) => a.getValue());
  const run = await runDeno(asDenoRun(execForm(health.slice(1))), {
    env: { SERVER_PORT: String(port) },
  });
  assert.equal(run.code, 1);
});

Deno.test("docker: the health check against the chat role is invisible to the room", async () => {
  const chat = startChatServer({ port: 0, logger: captureLog().logger });
  const member = await LineClient.connect(chat.addr);
  try {
    await member.readUntil(/^\* You are the only one here\.$/);
    const health = dockerfile.getHEALTHCHECKs()[0].getArguments().map((a) => a.getValue());
    const run = await runDeno(asDenoRun(execForm(health.slice(1))), {
      env: { SERVER_PORT: String(chat.addr.port) },
    });
    assert.equal(run.code, 0, run.stderr);
    // The probe never joined: the next thing the member hears is the next real event.
    chat.room.say("after the probe");
    assert.equal(await member.readLine(), "Server: after the probe");
  } finally {
    member.close();
    await chat.close();
  }
});

Deno.test("docker: the echo role also answers a client run the way the README runs it from the image", async () => {
  const echo = startServer({ port: 0, logger: captureLog().logger });
  try {
    const run = await runDeno(
      asDenoRun(["client", "--port", String(echo.addr.port), "from container"]),
    );
    assert.match(run.stdout, /: from container\n$/);
  } finally {
    await echo.close();
  }
});
