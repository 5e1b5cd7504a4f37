/**
 * TLS for both services: the echo and chat servers in-process (port 0) with a certificate made
 * by `tools/cert.ts` in a temporary folder per test, the clients' command lines, `openssl
 * s_client` and `ncat --ssl` as chat clients, the servers' TLS flags and environment, `deno
 * task cert`, and the clear-text warnings.
 */
import assert from "node:assert/strict";
import { startServer } from "../server.ts";
import { type ChatServer, startChatServer } from "../chat_server.ts";
import { makeCertificate } from "../tools/cert.ts";
import { certificateWarnings, describeTlsFailure } from "../lib/tls.ts";
import { writeAll } from "../lib/io.ts";
import { ownNameFrom } from "../lib/chat_protocol.ts";
import {
  captureLog,
  haveTool,
  LineClient,
  REPLY,
  ROOT,
  runCommand,
  runDeno,
  runTool,
  Spawned,
  withTimeout,
} from "./helpers.ts";

const hasOpenssl = haveTool("openssl", ["version"]);
const hasNcat = hasOpenssl && haveTool("ncat", ["--version"]);
const encoder = new TextEncoder();

/** A certificate and key made for a test, in a folder of its own. */
interface Pki {
  dir: string;
  certPath: string;
  keyPath: string;
  cert: string;
  key: string;
}

/**
 * Runs `body` with a fresh certificate (valid for `names`, by default localhost, 127.0.0.1
 * and ::1) in a temporary folder that is removed afterwards.
 */
async function withCert(
  body: (pki: Pki) => Promise<void>,
  names?: readonly string[],
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "tls_test_" });
  try {
    const files = await makeCertificate(dir, names);
    await body({
      dir,
      certPath: files.cert,
      keyPath: files.key,
      cert: await Deno.readTextFile(files.cert),
      key: await Deno.readTextFile(files.key),
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** A CA:TRUE certificate and its key, as made by the openssl command most guides give. */
interface CaCert {
  caPath: string;
  keyPath: string;
  ca: string;
  key: string;
}

/**
 * Runs `body` with a certificate made by exactly `openssl req -x509 -newkey rsa:2048 -nodes
 * -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1` (which marks it
 * CA:TRUE) in a temporary folder that is removed afterwards.
 */
async function withCaCert(body: (ca: CaCert) => void | Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "tls_ca_test_" });
  try {
    const caPath = `${dir}/ca.pem`;
    const keyPath = `${dir}/key.pem`;
    const made = await runCommand("openssl", [
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-subj",
      "/CN=localhost",
      "-addext",
      "subjectAltName=DNS:localhost,IP:127.0.0.1",
      "-days",
      "30",
      "-keyout",
      keyPath,
      "-out",
      caPath,
    ]);
    assert.equal(made.code, 0, made.stderr);
    const ca = await Deno.readTextFile(caPath);
    // What the issue is about: this certificate says it is a CA.
    const constraints = await runCommand("openssl", [
      "x509",
      "-in",
      caPath,
      "-noout",
      "-ext",
      "basicConstraints",
    ]);
    assert.match(constraints.stdout, /CA:TRUE/, constraints.stdout + constraints.stderr);
    await body({ caPath, keyPath, ca, key: await Deno.readTextFile(keyPath) });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** The one line a client prints for a server whose certificate is a CA's. */
const CA_REFUSED = /CA certificate \(CA:TRUE\).*refuse.*`deno task cert`/;
/** The server's warning at start about such a certificate. */
const CA_WARNING = /WARN .*CA certificate \(CA:TRUE\).*s_client.*refuse.*`deno task cert`/;
/** What must not reach a person: rustls's error text or a stack trace. */
const RAW_ERROR = /OtherError|CaUsedAsEndEntity\)|^\s+at /m;

/** A TLS line client to 127.0.0.1:`port`, trusting `ca`. */
function connectTls(port: number, ca: string): Promise<LineClient<Deno.TlsConn>> {
  return LineClient.connectTls(port, ca, { maxLine: 1024 * 1024 });
}

/** Reads the welcome and the who-else line; returns the name given. */
async function welcome(client: LineClient<Deno.TlsConn>): Promise<string> {
  const first = await client.readLine() ?? "";
  const name = ownNameFrom(first);
  assert.ok(name, `welcome: ${JSON.stringify(first)}`);
  assert.match(await client.readLine() ?? "", /^\* (You are the only one here\.|\d+ others? here)/);
  return name;
}

/**
 * Runs `body` with a fresh certificate, a TLS chat server (no history) using it, and a
 * watcher that has joined over TLS first (guest-1); closes both afterwards.
 */
async function withTlsChatWatcher(
  body: (ctx: {
    server: ChatServer;
    watcher: LineClient<Deno.TlsConn>;
    certPath: string;
  }) => Promise<void>,
): Promise<void> {
  await withCert(async ({ cert, key, certPath }) => {
    const server = startChatServer({
      port: 0,
      history: 0,
      tls: { cert, key },
      logger: captureLog().logger,
    });
    let watcher: LineClient<Deno.TlsConn> | null = null;
    try {
      watcher = await connectTls(server.addr.port, cert);
      await welcome(watcher);
      await body({ server, watcher, certPath });
    } finally {
      watcher?.close();
      await server.close();
    }
  });
}

/** The non-empty lines of `text`. */
function linesOf(text: string): string[] {
  return text.split("\n").filter((line) => line !== "");
}

/** Asserts `stderr` is exactly one line matching every pattern. */
function assertOneLine(stderr: string, ...patterns: RegExp[]): void {
  const lines = linesOf(stderr);
  assert.equal(lines.length, 1, `expected one line on stderr, got:\n${stderr}`);
  for (const pattern of patterns) assert.match(lines[0], pattern);
}

/** Stops a spawned server, however the test went. */
async function stop(server: Spawned): Promise<void> {
  try {
    server.child.kill("SIGTERM");
  } catch {
    // already exited
  }
  await server.exit().catch(() => {});
}

Deno.test({
  name: "tls: the echo server answers a TLS client in-process",
  ignore: !hasOpenssl,
  async fn() {
    await withCert(async ({ cert, key }) => {
      const log = captureLog();
      const server = startServer({ port: 0, tls: { cert, key }, logger: log.logger });
      let client: LineClient<Deno.TlsConn> | null = null;
      try {
        await log.waitFor(/INFO .*Server bound to 127\.0\.0\.1:\d+ \(TLS\)/);
        client = await connectTls(server.addr.port, cert);
        await client.send("hello over tls\n");
        const reply = await client.readLine() ?? "";
        assert.match(reply, REPLY);
        assert.ok(reply.endsWith(": hello over tls"), reply);
        // One message per connection: the server then closes.
        assert.equal(await client.readLine(), null);
        await log.waitFor(/Received from 127\.0\.0\.1:\d+: hello over tls/);
      } finally {
        client?.close();
        await server.close();
      }
    });
  },
});

Deno.test({
  name: "tls: client.ts --ca cert.pem prints the reply, exit 0",
  ignore: !hasOpenssl,
  async fn() {
    await withCert(async ({ cert, key, certPath }) => {
      const server = startServer({ port: 0, tls: { cert, key }, logger: captureLog().logger });
      try {
        const run = await runDeno([
          "run",
          "-N",
          "--allow-read",
          "client.ts",
          "--port",
          String(server.addr.port),
          "--ca",
          certPath,
          "hi",
        ]);
        assert.equal(run.code, 0, run.stderr);
        assert.equal(run.stderr, "");
        const out = linesOf(run.stdout);
        assert.equal(out.length, 1, run.stdout);
        assert.match(out[0], REPLY);
        assert.ok(out[0].endsWith(": hi"), out[0]);
      } finally {
        await server.close();
      }
    });
  },
});

Deno.test({
  name: "tls: client.ts --tls without --ca: a self-signed certificate is not trusted, exit 1",
  ignore: !hasOpenssl,
  async fn() {
    await withCert(async ({ cert, key }) => {
      const log = captureLog();
      const server = startServer({ port: 0, tls: { cert, key }, logger: log.logger });
      try {
        const run = await runDeno(
          ["run", "-N", "--allow-read", "client.ts", "--port", String(server.addr.port), "--tls"],
          { stdin: "hi\n" },
        );
        assert.equal(run.code, 1, run.stdout);
        assert.equal(run.stdout, "");
        assertOneLine(run.stderr, /^client\.ts: /, /not trusted/, /--ca/);
        // The server, for its part, says the client does not trust it.
        await log.waitFor(/WARN .*TLS handshake with 127\.0\.0\.1:\d+ failed: .*does not trust/);
      } finally {
        await server.close();
      }
    });
  },
});

Deno.test({
  name: "tls: a certificate for another name is refused: 'not valid for that name', exit 1",
  ignore: !hasOpenssl,
  async fn() {
    await withCert(async ({ cert, key, certPath }) => {
      const server = startServer({ port: 0, tls: { cert, key }, logger: captureLog().logger });
      try {
        const run = await runDeno([
          "run",
          "-N",
          "--allow-read",
          "client.ts",
          "--host",
          "127.0.0.1",
          "--port",
          String(server.addr.port),
          "--ca",
          certPath,
          "hi",
        ]);
        assert.equal(run.code, 1, run.stdout);
        assert.equal(run.stdout, "");
        assertOneLine(run.stderr, /^client\.ts: /, /not valid for that name/);
      } finally {
        await server.close();
      }
    }, ["other.test"]);
  },
});

Deno.test({
  name: "tls: a plain client.ts against a TLS server is told to use --tls; no binary on stdout",
  ignore: !hasOpenssl,
  async fn() {
    await withCert(async ({ cert, key }) => {
      const server = startServer({ port: 0, tls: { cert, key }, logger: captureLog().logger });
      try {
        const run = await runDeno(
          ["run", "-N", "--allow-read", "client.ts", "--port", String(server.addr.port), "hi"],
        );
        assert.equal(run.code, 1);
        assert.equal(run.stdout, "", "nothing (binary or not) on stdout");
        assertOneLine(run.stderr, /^client\.ts: /, /speaks TLS: run with --tls/);
        // deno-lint-ignore no-control-regex -- asserting the TLS alert's bytes are not shown
        assert.doesNotMatch(run.stderr.trimEnd(), /[\x00-\x08\x0b-\x1f\x7f\ufffd]/);
      } finally {
        await server.close();
      }
    });
  },
});

Deno.test({
  name: "tls: a plain TCP connection is turned away with a WARN; TLS clients are still served",
  ignore: !hasOpenssl,
  async fn() {
    await withCert(async ({ cert, key }) => {
      const log = captureLog();
      const server = startServer({ port: 0, tls: { cert, key }, logger: log.logger });
      let plain: Deno.TcpConn | null = null;
      let client: LineClient<Deno.TlsConn> | null = null;
      try {
        plain = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
        await writeAll(plain, encoder.encode("hello in clear text\n"));
        // Whatever comes back (a TLS alert at most) is not a reply, and the server closes.
        const received: number[] = [];
        const buffer = new Uint8Array(4096);
        await withTimeout(
          (async () => {
            while (true) {
              let n: number | null;
              try {
                n = await plain.read(buffer);
              } catch (error) {
                if (error instanceof Deno.errors.ConnectionReset) return;
                throw error;
              }
              if (n === null) return;
              received.push(...buffer.subarray(0, n));
            }
          })(),
          5000,
          "the server to close the plain connection",
        );
        assert.ok(received.length < 64, `got ${received.length} bytes`);
        assert.doesNotMatch(new TextDecoder().decode(Uint8Array.from(received)), /Server received/);
        const warning = await log.waitFor(/WARN .*TLS handshake with 127\.0\.0\.1:\d+ failed/);
        assert.match(warning, /is the client using TLS\?/);
        assert.ok(!log.lines.some((line) => line.includes("hello in clear text")));

        client = await connectTls(server.addr.port, cert);
        await client.send("still there?\n");
        const reply = await client.readLine() ?? "";
        assert.match(reply, REPLY);
        assert.ok(reply.endsWith(": still there?"), reply);
      } finally {
        try {
          plain?.close();
        } catch {
          // closed already
        }
        client?.close();
        await server.close();
      }
    });
  },
});

Deno.test({
  name: "tls: chat over TLS: two members, a message reaches the other",
  ignore: !hasOpenssl,
  async fn() {
    await withCert(async ({ cert, key }) => {
      const log = captureLog();
      const server = startChatServer({ port: 0, tls: { cert, key }, logger: log.logger });
      const clients: LineClient<Deno.TlsConn>[] = [];
      try {
        await log.waitFor(/INFO .*Chat server bound to 127\.0\.0\.1:\d+ \(TLS\)/);
        const a = await connectTls(server.addr.port, cert);
        clients.push(a);
        assert.equal(await welcome(a), "guest-1");
        const b = await connectTls(server.addr.port, cert);
        clients.push(b);
        assert.equal(await welcome(b), "guest-2");
        assert.equal(await a.readLine(), "* guest-2 joined");
        await a.send("hello over tls\n");
        assert.equal(await b.readLine(), "guest-1: hello over tls");
        await b.send("/who\n");
        assert.equal(await b.readLine(), "* 2 here: guest-1, guest-2 (you)");
        await b.send("bye\n");
        assert.deepEqual(await b.readUntil(/^\* Goodbye/), ["* Goodbye, guest-2!"]);
        assert.equal(await b.readLine(), null, "the server closes after bye");
        assert.equal(await a.readLine(), "* guest-2 left");
      } finally {
        for (const client of clients) client.close();
        await server.close();
      }
    });
  },
});

Deno.test({
  name: "tls: openssl s_client joins the TLS chat",
  ignore: !hasOpenssl,
  async fn() {
    await withTlsChatWatcher(async ({ server, watcher, certPath }) => {
      const run = await runTool("openssl", [
        "s_client",
        "-quiet",
        "-verify_return_error",
        "-connect",
        `127.0.0.1:${server.addr.port}`,
        "-CAfile",
        certPath,
      ], "/nick ossl\nhello\nbye\n");
      assert.equal(run.code, 0, run.stderr);
      const out = linesOf(run.stdout);
      assert.match(out[0] ?? "", /^\* Welcome to the chat, guest-2!/);
      assert.ok(out.includes("* you are now known as ossl"), run.stdout);
      assert.equal(out.at(-1), "* Goodbye, ossl!");
      assert.deepEqual(await watcher.readUntil(/^\* ossl left$/), [
        "* guest-2 joined",
        "* guest-2 is now known as ossl",
        "ossl: hello",
        "* ossl left",
      ]);
    });
  },
});

Deno.test({
  name: "tls: ncat --ssl --ssl-trustfile joins the TLS chat by name (localhost)",
  ignore: !hasNcat,
  async fn() {
    await withTlsChatWatcher(async ({ server, watcher, certPath }) => {
      // ncat ends the TLS session as soon as its input ends, so the input stays open until
      // the room has seen it leave; only then is stdin closed and the output collected.
      const ncat = new Deno.Command("ncat", {
        args: ["-4", "--ssl", "--ssl-trustfile", certPath, "localhost", String(server.addr.port)],
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const input = ncat.stdin.getWriter();
      await input.write(new TextEncoder().encode("/nick ncat\nhello\nbye\n"));
      assert.deepEqual(await watcher.readUntil(/^\* ncat left$/), [
        "* guest-2 joined",
        "* guest-2 is now known as ncat",
        "ncat: hello",
        "* ncat left",
      ]);
      await input.close();
      const run = await withTimeout(ncat.output(), 10000, "ncat to exit");
      assert.equal(run.code, 0, new TextDecoder().decode(run.stderr));
      const out = linesOf(new TextDecoder().decode(run.stdout));
      assert.match(out[0] ?? "", /^\* Welcome to the chat, guest-2!/);
      assert.equal(out.at(-1), "* Goodbye, ncat!");
    });
  },
});

Deno.test({
  name: "tls: chat_client.ts --ca over TLS sends piped lines, exit 0",
  ignore: !hasOpenssl,
  async fn() {
    await withTlsChatWatcher(async ({ server, watcher, certPath }) => {
      const run = await runDeno(
        [
          "run",
          "-N",
          "--allow-read",
          "chat_client.ts",
          "--port",
          String(server.addr.port),
          "--ca",
          certPath,
        ],
        { stdin: "hi\nbye\n", timeoutMs: 10000 },
      );
      assert.equal(run.code, 0, run.stderr);
      assert.equal(run.stderr, "");
      const out = linesOf(run.stdout);
      assert.match(out[0] ?? "", /^\* Welcome to the chat, guest-2!/);
      assert.equal(out.at(-1), "* Goodbye, guest-2!");
      assert.deepEqual(await watcher.readUntil(/^\* guest-2 left$/), [
        "* guest-2 joined",
        "guest-2: hi",
        "* guest-2 left",
      ]);
    });
  },
});

Deno.test({
  name: "tls: server CLIs: --tls-cert without --tls-key, or a missing file, is one line, exit 1",
  ignore: !hasOpenssl,
  async fn() {
    await withCert(async ({ dir, certPath }) => {
      for (const script of ["server.ts", "chat_server.ts"]) {
        const half = await runDeno(
          ["run", "-N", "--allow-read", script, "--port", "0", "--tls-cert", certPath],
        );
        assert.equal(half.code, 1, `${script}: ${half.stderr}`);
        assertOneLine(
          half.stderr,
          new RegExp(`^${script.replace(".", "\\.")}: `),
          /--tls-cert/,
          /--tls-key/,
        );

        const missing = `${dir}/missing.pem`;
        const none = await runDeno([
          "run",
          "-N",
          "--allow-read",
          script,
          "--port",
          "0",
          "--tls-cert",
          missing,
          "--tls-key",
          `${dir}/key.pem`,
        ]);
        assert.equal(none.code, 1, `${script}: ${none.stderr}`);
        assertOneLine(none.stderr, /--tls-cert/, /missing\.pem/, /deno task cert/);
      }
    });
  },
});

Deno.test({
  name: "tls: server.ts takes TLS_CERT and TLS_KEY from the environment",
  ignore: !hasOpenssl,
  async fn() {
    await withCert(async ({ cert, certPath, keyPath }) => {
      const server = new Spawned(
        [
          "run",
          "-N",
          "--allow-read",
          "--allow-env=SERVER_HOST,SERVER_PORT,LOG_LEVEL,TLS_CERT,TLS_KEY",
          "server.ts",
          "--port",
          "0",
        ],
        { env: { TLS_CERT: certPath, TLS_KEY: keyPath } },
      );
      let client: LineClient<Deno.TlsConn> | null = null;
      try {
        const port = await server.port();
        assert.ok(
          server.stderrLines.some((line) => /bound to 127\.0\.0\.1:\d+ \(TLS\)/.test(line)),
        );
        client = await connectTls(port, cert);
        await client.send("from the environment\n");
        const reply = await client.readLine() ?? "";
        assert.match(reply, REPLY);
        assert.ok(reply.endsWith(": from the environment"), reply);
        client.close();
        server.child.kill("SIGTERM");
        assert.equal((await server.exit()).code, 0);
      } finally {
        client?.close();
        await stop(server);
      }
    });
  },
});

Deno.test({
  name: "tls: deno task cert DIR makes cert.pem and a 0600 key.pem for localhost, 127.0.0.1, ::1",
  ignore: !hasOpenssl,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "tls_task_" });
    try {
      const run = await runDeno(["task", "cert", dir], { cwd: ROOT });
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stdout, /made .*cert\.pem and .*key\.pem/);
      const cert = await Deno.stat(`${dir}/cert.pem`);
      const key = await Deno.stat(`${dir}/key.pem`);
      assert.ok(cert.isFile && key.isFile);
      assert.equal((key.mode ?? 0) & 0o777, 0o600, `key mode ${(key.mode ?? 0).toString(8)}`);
      assert.match(await Deno.readTextFile(`${dir}/key.pem`), /-----BEGIN [A-Z ]*PRIVATE KEY-----/);
      const san = await runCommand("openssl", [
        "x509",
        "-in",
        `${dir}/cert.pem`,
        "-noout",
        "-ext",
        "subjectAltName",
      ]);
      assert.equal(san.code, 0, san.stderr);
      assert.match(san.stdout, /DNS:localhost\b/);
      assert.match(san.stdout, /IP Address:127\.0\.0\.1\b/);
      assert.match(san.stdout, /IP Address:(::1|0:0:0:0:0:0:0:1)\b/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "tls: listening beyond loopback without TLS warns of clear text (chat: passwords too)",
  ignore: !hasOpenssl,
  async fn() {
    // 0.0.0.0 is bound only to read the warning: each server is closed at once, never reached.
    const warnings = (log: ReturnType<typeof captureLog>): string[] =>
      log.lines.filter((line) => / WARN /.test(line));

    const open = captureLog();
    await startServer({ host: "0.0.0.0", port: 0, logger: open.logger }).close();
    const [clear, ...more] = warnings(open);
    assert.ok(clear, open.lines.join("\n"));
    assert.match(clear, /without TLS/);
    assert.match(clear, /clear text/);
    assert.deepEqual(more, []);

    const loopback = captureLog();
    await startServer({ host: "127.0.0.1", port: 0, logger: loopback.logger }).close();
    assert.deepEqual(warnings(loopback), []);

    await withCert(async ({ cert, key }) => {
      const tls = captureLog();
      await startServer({ host: "0.0.0.0", port: 0, tls: { cert, key }, logger: tls.logger })
        .close();
      assert.deepEqual(warnings(tls), []);

      const chatTls = captureLog();
      await startChatServer({
        host: "0.0.0.0",
        port: 0,
        password: "x",
        tls: { cert, key },
        logger: chatTls.logger,
      }).close();
      assert.deepEqual(warnings(chatTls), []);
    });

    const chat = captureLog();
    await startChatServer({ host: "0.0.0.0", port: 0, password: "x", logger: chat.logger })
      .close();
    const chatWarnings = warnings(chat);
    assert.equal(chatWarnings.length, 2, chat.lines.join("\n"));
    assert.match(chatWarnings[0], /without TLS.*clear text/);
    assert.match(chatWarnings[1], /chat password and account passwords .* clear text/);

    // Accounts exist in every chat: their passwords are named even without a room password.
    const chatNoPassword = captureLog();
    await startChatServer({ host: "0.0.0.0", port: 0, logger: chatNoPassword.logger }).close();
    const noPassword = warnings(chatNoPassword);
    assert.equal(noPassword.length, 2, chatNoPassword.lines.join("\n"));
    assert.doesNotMatch(noPassword[0], /password/);
    assert.match(
      noPassword[1],
      /^.*WARN +account passwords \(\/register, \/login\) travel in clear text/,
    );
  },
});

Deno.test({
  name:
    "tls: a CA:TRUE certificate: certificateWarnings warns, describeTlsFailure says so in one line",
  ignore: !hasOpenssl,
  async fn() {
    const rustls = new Error(
      "invalid peer certificate: Other(OtherError(CaUsedAsEndEntity))",
    );
    const line = describeTlsFailure(rustls, "127.0.0.1:8080") ?? "";
    assert.match(line, /^127\.0\.0\.1:8080's certificate is a CA certificate \(CA:TRUE\)/);
    assert.match(line, CA_REFUSED);
    assert.ok(!line.includes("\n"), line);
    assert.doesNotMatch(line, RAW_ERROR);

    // A proper certificate (`deno task cert`'s) gives no warning until it expires.
    await withCert(async ({ cert, key }) => {
      assert.deepEqual(certificateWarnings({ cert, key }), []);
      const [expired, ...moreExpired] = certificateWarnings({ cert, key }, new Date(2200, 0, 1));
      assert.match(expired ?? "", /expired on \d{4}-\d\d-\d\d \d\d:\d\d:\d\d/);
      assert.match(expired ?? "", /`deno task cert`/);
      assert.deepEqual(moreExpired, []);
      const [early, ...moreEarly] = certificateWarnings({ cert, key }, new Date(2000, 0, 1));
      assert.match(early ?? "", /not valid until \d{4}-\d\d-\d\d/);
      assert.deepEqual(moreEarly, []);

      await withCaCert(({ ca }) => {
        const warnings = certificateWarnings({ cert: ca, key });
        assert.equal(warnings.length, 1, warnings.join("\n"));
        assert.match(warnings[0], /CA certificate \(CA:TRUE\)/);
        assert.match(warnings[0], /ncat and openssl s_client accept it/);
        assert.match(warnings[0], /client\.ts and chat_client\.ts refuse it/);
        assert.match(warnings[0], /`deno task cert`/);
        // Only the first certificate of a chain is the server's: a CA after it is no warning.
        assert.deepEqual(certificateWarnings({ cert: cert + ca, key }), []);
        assert.equal(certificateWarnings({ cert: ca + cert, key }).length, 1);
      });
    });

    // Nothing to parse: no warning, no exception (listenTls reports a bad certificate).
    assert.deepEqual(certificateWarnings(null), []);
    assert.deepEqual(certificateWarnings({ cert: "not a certificate", key: "" }), []);
    assert.deepEqual(
      certificateWarnings({
        cert: "-----BEGIN CERTIFICATE-----\nbm90IGRlcg==\n-----END CERTIFICATE-----\n",
        key: "",
      }),
      [],
    );
  },
});

Deno.test({
  name: "tls: server.ts with a CA:TRUE certificate warns at start, still serves s_client; " +
    "client.ts says why it refuses it in one line, exit 1",
  ignore: !hasOpenssl,
  async fn() {
    await withCaCert(async ({ caPath, keyPath }) => {
      const server = new Spawned([
        "run",
        "-N",
        "--allow-read",
        "server.ts",
        "--tls-cert",
        caPath,
        "--tls-key",
        keyPath,
        "--port",
        "0",
      ]);
      try {
        const port = await server.port();
        const warning = await server.waitFor(CA_WARNING);
        assert.match(warning, /client\.ts and chat_client\.ts/);
        assert.equal(server.stderrLines.filter((l) => CA_WARNING.test(l)).length, 1);

        const run = await runDeno([
          "run",
          "-N",
          "--allow-read",
          "client.ts",
          "--tls",
          "--ca",
          caPath,
          "--port",
          String(port),
          "hello",
        ]);
        assert.equal(run.code, 1, run.stderr);
        assert.equal(run.stdout, "");
        assertOneLine(
          run.stderr,
          new RegExp(`^client\\.ts: 127\\.0\\.0\\.1:${port}'s certificate is a CA certificate`),
          CA_REFUSED,
        );
        assert.doesNotMatch(run.stderr, RAW_ERROR);
        await server.waitFor(/WARN .*TLS handshake with 127\.0\.0\.1:\d+ failed/);

        // openssl verifies it against itself and is answered: the server kept serving.
        const ossl = await runTool("openssl", [
          "s_client",
          "-quiet",
          "-verify_return_error",
          "-connect",
          `127.0.0.1:${port}`,
          "-CAfile",
          caPath,
        ], "hello\n");
        assert.equal(ossl.code, 0, ossl.stderr);
        const out = linesOf(ossl.stdout);
        assert.equal(out.length, 1, ossl.stdout);
        assert.match(out[0], REPLY);
        assert.ok(out[0].endsWith(": hello"), out[0]);

        server.child.kill("SIGTERM");
        assert.equal((await server.exit()).code, 0);
      } finally {
        await stop(server);
      }
    });
  },
});

Deno.test({
  name: "tls: chat_server.ts with a CA:TRUE certificate warns at start, still serves s_client; " +
    "chat_client.ts says why it refuses it in one line, exit 1",
  ignore: !hasOpenssl,
  async fn() {
    await withCaCert(async ({ caPath, keyPath }) => {
      const server = new Spawned([
        "run",
        "-N",
        "--allow-read",
        "chat_server.ts",
        "--tls-cert",
        caPath,
        "--tls-key",
        keyPath,
        "--port",
        "0",
      ]);
      try {
        const port = await server.port();
        const warning = await server.waitFor(CA_WARNING);
        assert.match(warning, /client\.ts and chat_client\.ts/);
        assert.equal(server.stderrLines.filter((l) => CA_WARNING.test(l)).length, 1);

        const run = await runDeno(
          [
            "run",
            "-N",
            "--allow-read",
            "chat_client.ts",
            "--tls",
            "--ca",
            caPath,
            "--port",
            String(port),
          ],
          { stdin: "hi\nbye\n", timeoutMs: 10000 },
        );
        assert.equal(run.code, 1, run.stderr);
        assert.equal(run.stdout, "");
        assertOneLine(
          run.stderr,
          new RegExp(
            `^chat_client\\.ts: 127\\.0\\.0\\.1:${port}'s certificate is a CA certificate`,
          ),
          CA_REFUSED,
        );
        assert.doesNotMatch(run.stderr, RAW_ERROR);
        await server.waitFor(/WARN .*TLS handshake with 127\.0\.0\.1:\d+ failed/);

        // openssl verifies it against itself and joins the room: the server kept serving.
        const ossl = await runTool("openssl", [
          "s_client",
          "-quiet",
          "-verify_return_error",
          "-connect",
          `127.0.0.1:${port}`,
          "-CAfile",
          caPath,
        ], "/nick ossl\nhello\nbye\n");
        assert.equal(ossl.code, 0, ossl.stderr);
        const out = linesOf(ossl.stdout);
        assert.match(out[0] ?? "", /^\* Welcome to the chat, guest-\d+!/);
        assert.ok(out.includes("* you are now known as ossl"), ossl.stdout);
        assert.equal(out.at(-1), "* Goodbye, ossl!");

        server.child.kill("SIGTERM");
        assert.equal((await server.exit()).code, 0);
      } finally {
        await stop(server);
      }
    });
  },
});
