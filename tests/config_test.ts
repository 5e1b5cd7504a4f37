import assert from "node:assert/strict";
import {
  ADDRESS_OPTIONS,
  type CommandSpec,
  helpText,
  LOG_OPTIONS,
  type OptionSpecs,
  parseCommand,
  parseDotEnv,
  UsageError,
} from "../lib/config.ts";
import { SERVER_COMMAND } from "../server.ts";
import { runDeno } from "./helpers.ts";

const SPEC = {
  name: "test.ts",
  summary: "test",
  usage: ["test"],
  options: {
    ...ADDRESS_OPTIONS,
    ...LOG_OPTIONS,
    keepAlive: { type: "boolean", default: false, description: "k" },
    idleTimeout: { type: "number", default: 60, min: 0, max: 100, description: "i" },
  },
} as const satisfies CommandSpec<OptionSpecs>;

function parse(
  args: string[],
  env: Record<string, string> = {},
  dotenv: Record<string, string> = {},
) {
  return parseCommand(SPEC, args, { env: (name) => env[name], dotenv }).values;
}

Deno.test("config: defaults are 127.0.0.1:8080", () => {
  const values = parse([]);
  assert.equal(values.host, "127.0.0.1");
  assert.equal(values.port, 8080);
  assert.equal(values.logLevel, "info");
  assert.equal(values.keepAlive, false);
});

Deno.test("config: flags beat environment beat .env beat defaults", () => {
  const env = { SERVER_PORT: "9001", SERVER_HOST: "::1" };
  const dotenv = { SERVER_PORT: "9002", SERVER_HOST: "0.0.0.0", LOG_LEVEL: "debug" };
  assert.equal(parse(["--port", "9000"], env, dotenv).port, 9000);
  assert.equal(parse([], env, dotenv).port, 9001);
  assert.equal(parse([], {}, dotenv).port, 9002);
  assert.equal(parse([], env, dotenv).host, "::1");
  assert.equal(parse([], {}, dotenv).logLevel, "debug");
  assert.equal(parse(["--log-level", "WARN"], {}, dotenv).logLevel, "warn");
  assert.equal(parse(["-p", "0"]).port, 0);
});

Deno.test("config: bad values are one-line usage errors naming the source", () => {
  const cases: [string[], Record<string, string>, Record<string, string>, RegExp][] = [
    [["--port", "abc"], {}, {}, /^--port: 'abc' is not a whole number from 0 to 65535$/],
    [["--port", "70000"], {}, {}, /70000/],
    [["--port", "-1"], {}, {}, /port/],
    [["--port", "80x"], {}, {}, /80x/],
    [["--port"], {}, {}, /^--port needs a value$/],
    [["--bogus"], {}, {}, /^unknown flag --bogus$/],
    [["extra"], {}, {}, /^unexpected argument 'extra'$/],
    [["--keep-alive=yes"], {}, {}, /^--keep-alive takes no value$/],
    [[], { SERVER_PORT: "x" }, {}, /^SERVER_PORT \(environment\): 'x'/],
    [[], {}, { SERVER_PORT: "99999" }, /^SERVER_PORT \(\.env\): '99999'/],
    [[], {}, { LOG_LEVEL: "loud" }, /not one of debug, info, warn, error/],
    [["--host", ""], {}, {}, /^--host: must not be empty$/],
    [["--idle-timeout", "1e3"], {}, {}, /not a number/],
  ];
  for (const [args, env, dotenv, pattern] of cases) {
    assert.throws(() => parse(args, env, dotenv), (error: unknown) => {
      assert.ok(error instanceof UsageError, String(error));
      assert.match(error.message, pattern);
      assert.ok(!error.message.includes("\n"));
      return true;
    }, JSON.stringify(args));
  }
});

Deno.test("config: .env parsing accepts comments, export, quotes; rejects junk", () => {
  const table = parseDotEnv(
    '# comment\n\nexport SERVER_PORT=9000\nSERVER_HOST="::1"\nLOG_LEVEL=\'warn\'\nMULTI="a\nb"\n',
  );
  assert.equal(table.SERVER_PORT, "9000");
  assert.equal(table.SERVER_HOST, "::1");
  assert.equal(table.LOG_LEVEL, "warn");
  assert.throws(() => parseDotEnv("SERVER_PORT=1\nthis is not a setting\n"), /\.env line 2/);
  assert.throws(() => parseDotEnv('A="open\n'), /unterminated/);
});

Deno.test("config: --help lists every flag of the server", () => {
  const text = helpText(SERVER_COMMAND);
  for (
    const flag of [
      "--host",
      "--port",
      "--keep-alive",
      "--flush-ms",
      "--max-bytes",
      "--idle-timeout",
      "--max-connections",
      "--log-level",
      "--quiet",
      "--help",
      "--version",
    ]
  ) {
    assert.ok(text.includes(flag), flag);
  }
});

Deno.test("config: .env in the working directory is read; a malformed one exits 2", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const script = new URL("../client.ts", import.meta.url).pathname;
    await Deno.writeTextFile(`${dir}/.env`, "SERVER_PORT=1\n");
    const refused = await runDeno(
      ["run", "-N", "--allow-read=.env", "--allow-env", script, "hi"],
      { cwd: dir },
    );
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /127\.0\.0\.1:1: connection refused/);

    await Deno.writeTextFile(`${dir}/.env`, "SERVER_PORT=1\nnot a setting\n");
    const bad = await runDeno(["run", "-N", "--allow-read=.env", script, "hi"], { cwd: dir });
    assert.equal(bad.code, 2);
    assert.equal(bad.stderr.trim().split("\n").length, 1);
    assert.match(bad.stderr, /\.env line 2: expected KEY=VALUE/);

    // Without read permission the file is skipped silently (and no prompt appears).
    const skipped = await runDeno(["run", "-N", script, "--port", "1", "hi"], { cwd: dir });
    assert.equal(skipped.code, 1);
    assert.match(skipped.stderr, /connection refused/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("config: flags named --no-* are ordinary switches", () => {
  const spec = {
    name: "t.ts",
    summary: "t",
    usage: ["t"],
    options: { noColor: { type: "boolean", default: false, description: "c" } },
  } as const satisfies CommandSpec<OptionSpecs>;
  const sources = { env: () => undefined, dotenv: {} };
  assert.equal(parseCommand(spec, ["--no-color"], sources).values.noColor, true);
  assert.equal(parseCommand(spec, [], sources).values.noColor, false);
});
