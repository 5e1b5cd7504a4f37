/**
 * The compile tasks: each role's permission set (the same in `tools/compile.ts`, `deno.json`
 * and the shebangs, and enough to run), the compile flags, `--version`. Building real binaries
 * needs a `denort` runtime: those tests run when `DENORT_BIN` is set or the download works,
 * and are skipped with the reason otherwise.
 */
import assert from "node:assert/strict";
import { compileArgs, outputPath, ROLES, TARGETS } from "../tools/compile.ts";
import { startServer } from "../server.ts";
import denoConfig from "../deno.json" with { type: "json" };
import { captureLog, ROOT, runCommand, runDeno, Spawned } from "./helpers.ts";

const TASK_OF: Record<string, string> = {
  server: "server",
  client: "client",
  chat_server: "chat-server",
  chat_client: "chat-client",
};

Deno.test("compile: every role's permissions are exact, and the same in tasks and shebangs", async () => {
  for (const role of ROLES) {
    const perms = role.permissions;
    assert.ok(perms.includes("--allow-net"), role.name);
    for (const perm of perms) {
      assert.doesNotMatch(perm, /^(-A|--allow-all|--allow-run|--allow-ffi|--allow-sys)/);
    }
    // Only the chat server writes: its --store file.
    assert.equal(perms.includes("--allow-write"), role.name === "chat_server", role.name);
    // The environment is scoped to the variables the configuration layer reads.
    const env = perms.find((p) => p.startsWith("--allow-env="))?.split("=")[1].split(",") ?? [];
    assert.deepEqual(env.slice(0, 2), ["SERVER_HOST", "SERVER_PORT"]);
    const isServer = role.name.endsWith("server");
    assert.equal(env.includes("LOG_LEVEL"), isServer);
    assert.equal(env.includes("TLS_CERT") && env.includes("TLS_KEY"), isServer);
    assert.equal(env.includes("CHAT_PASSWORD"), role.name === "chat_server");
    assert.ok(perms.includes("--allow-read")); // .env, and the files flags name (certs, keys)

    const task = (denoConfig.tasks as Record<string, string>)[TASK_OF[role.name]];
    assert.equal(
      task,
      `deno run ${perms.join(" ")} ${role.script}`,
      `deno task ${TASK_OF[role.name]}`,
    );

    const firstLine = (await Deno.readTextFile(`${ROOT}${role.script}`)).split("\n")[0];
    assert.equal(
      firstLine,
      `#!/usr/bin/env -S deno run ${perms.join(" ")}`,
      `${role.script} shebang`,
    );
  }
  assert.deepEqual(ROLES.map((r) => r.name).sort(), [
    "chat_client",
    "chat_server",
    "client",
    "server",
  ]);
});

Deno.test("compile: deno compile flags bake in permissions and --no-prompt, never -A", () => {
  for (const role of ROLES) {
    const args = compileArgs(role);
    assert.equal(args[0], "compile");
    assert.ok(args.includes("--no-prompt"));
    for (const perm of role.permissions) assert.ok(args.includes(perm), perm);
    assert.ok(!args.includes("-A") && !args.includes("--allow-all"));
    assert.equal(args.at(-1), role.script);
    assert.equal(args[args.indexOf("--output") + 1], `dist/${role.name}`);
    assert.ok(!args.includes("--target"));
  }
  assert.deepEqual(
    [...TARGETS].sort(),
    [
      "aarch64-apple-darwin",
      "aarch64-unknown-linux-gnu",
      "x86_64-apple-darwin",
      "x86_64-pc-windows-msvc",
      "x86_64-unknown-linux-gnu",
    ],
  );
  const win = compileArgs(ROLES[0], "x86_64-pc-windows-msvc");
  assert.equal(win[win.indexOf("--target") + 1], "x86_64-pc-windows-msvc");
  assert.equal(
    outputPath(ROLES[0], "x86_64-pc-windows-msvc"),
    "dist/x86_64-pc-windows-msvc/server.exe",
  );
  assert.equal(outputPath(ROLES[1], "aarch64-apple-darwin"), "dist/aarch64-apple-darwin/client");
  const tasks = denoConfig.tasks as Record<string, string>;
  assert.match(tasks.compile, /tools\/compile\.ts$/);
  assert.match(tasks["compile:all"], /tools\/compile\.ts --all$/);
});

Deno.test("compile: every role answers --version with deno.json's version, under its own permissions", async () => {
  for (const role of ROLES) {
    const run = await runDeno([
      "run",
      "--no-prompt",
      ...role.permissions,
      role.script,
      "--version",
    ]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, `${role.script} ${denoConfig.version}\n`);
  }
});

Deno.test("compile: the permission sets are enough to run, and .env is read from the working directory", async () => {
  const [serverRole, clientRole] = [ROLES[0], ROLES[1]];
  const dir = await Deno.makeTempDir();
  const server = new Spawned(
    ["run", "--no-prompt", ...serverRole.permissions, `${ROOT}server.ts`, "--port", "0"],
    { cwd: dir },
  );
  try {
    const port = await server.port();
    await Deno.writeTextFile(`${dir}/.env`, `SERVER_PORT=${port}\n`);
    const run = await runDeno(
      ["run", "--no-prompt", ...clientRole.permissions, `${ROOT}client.ts`, "from .env"],
      { cwd: dir },
    );
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /: from \.env\n$/);
  } finally {
    server.child.kill("SIGTERM");
    await server.exit();
    await Deno.remove(dir, { recursive: true });
  }
});

/** Whether `deno compile` works here (DENORT_BIN set, or the runtime can be downloaded). */
async function compileWorks(): Promise<{ ok: boolean; reason: string }> {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/probe.ts`, "console.log('ok');\n");
    const run = await runCommand(Deno.execPath(), [
      "compile",
      "--output",
      `${dir}/probe`,
      `${dir}/probe.ts`,
    ], {
      cwd: dir,
      env: { NO_COLOR: "1" },
      timeoutMs: 120000,
    });
    const reason = run.stderr.split("\n").filter((l) => /error|dns|lookup/i.test(l)).slice(0, 2)
      .join(" / ");
    return { ok: run.code === 0, reason };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const compiling = await compileWorks();
if (!compiling.ok) {
  console.log(
    `SKIP: compiled-binary tests: deno compile cannot get a denort runtime here (${compiling.reason}); ` +
      "set DENORT_BIN to a denort binary to run them",
  );
}

Deno.test({
  name: "compile: the four binaries build, answer --version, and serve each other",
  ignore: !compiling.ok,
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      for (const role of ROLES) {
        const args = compileArgs(role).map((a) =>
          a === `dist/${role.name}` ? `${dir}/${role.name}` : a
        );
        const built = await runDeno(args, { timeoutMs: 300000 });
        assert.equal(built.code, 0, built.stderr);
        const version = await runCommand(`${dir}/${role.name}`, ["--version"]);
        assert.equal(version.stdout, `${role.script} ${denoConfig.version}\n`);
      }
      const echo = startServer({ port: 0, logger: captureLog().logger });
      try {
        const reply = await runCommand(`${dir}/client`, [
          "--port",
          String(echo.addr.port),
          "binary",
        ]);
        assert.equal(reply.code, 0, reply.stderr);
        assert.match(reply.stdout, /: binary\n$/);
        const check = await runCommand(`${dir}/client`, [
          "--check",
          "--port",
          String(echo.addr.port),
        ]);
        assert.equal(check.code, 0);
      } finally {
        await echo.close();
      }
      // The binary server, stopped the way `docker stop` stops it.
      const server = new Spawned(["--port", "0"], { command: `${dir}/server` });
      const port = await server.port();
      const reply = await runCommand(`${dir}/client`, ["--port", String(port), "to binary"]);
      assert.match(reply.stdout, /: to binary\n$/);
      server.child.kill("SIGTERM");
      assert.equal((await server.exit()).code, 0);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
