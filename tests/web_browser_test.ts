/**
 * The web page in a real browser: Debian's Chromium, driven by playwright-core (pinned, no
 * browser download), against `chat_server.ts --web-port` run as a process. Two pages and the
 * system `nc` chat together; each sees the others' messages in the same order; `/nick` and a
 * private message from the page; an XSS string from nc shows as text; the page shows the
 * disconnect when the server stops and reconnects, keeping its name, when it is back.
 *
 * A missing Chromium skips visibly; under `CI=true` it fails (`.ci/run` installs it). With
 * `UPDATE_SCREENSHOTS=1` the screenshot of two chatting pages is written to
 * `docs/web-chat.png` (shown in the README).
 */
import assert from "node:assert/strict";
import { type Browser, chromium, type Page } from "npm:playwright-core@1.64.1";
import { haveTool, ROOT, Spawned, withTimeout } from "./helpers.ts";

const CHROMIUM = "/usr/bin/chromium";
const hasChromium = haveTool(CHROMIUM, ["--version"]);
const hasNc = haveTool("nc");

/** Two free loopback ports (bound and released; the server takes them right after). */
function freePorts(): [number, number] {
  const a = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const b = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const ports: [number, number] = [(a.addr as Deno.NetAddr).port, (b.addr as Deno.NetAddr).port];
  a.close();
  b.close();
  return ports;
}

function startServer(tcpPort: number, webPort: number): Spawned {
  return new Spawned([
    "run",
    "-N",
    "--allow-read",
    "chat_server.ts",
    "--port",
    String(tcpPort),
    "--web-port",
    String(webPort),
    "--history",
    "0",
  ]);
}

Deno.test({
  name: "web browser: two pages and nc in one room, in one order; nick, private, XSS, reconnect",
  ignore: !hasChromium || !hasNc,
  sanitizeResources: true,
  async fn() {
    const [tcpPort, webPort] = freePorts();
    let server = startServer(tcpPort, webPort);
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
    });
    let nc: Spawned | null = null;
    try {
      await server.waitFor(/Web page on http:\/\/127\.0\.0\.1:\d+\//);
      const url = `http://127.0.0.1:${webPort}/`;
      const problems: string[] = [];
      const open = async (width: number) => {
        const context = await browser.newContext({ viewport: { width, height: 640 } });
        const page = await context.newPage();
        // Chromium logs each refused reconnection attempt; the page cannot prevent that.
        page.on("console", (m) => {
          const text = m.text();
          if (m.type() === "error" && !/WebSocket connection to .* failed/.test(text)) {
            problems.push(text);
          }
        });
        page.on("pageerror", (e) => problems.push(String(e)));
        await page.goto(url);
        await page.locator("#status").filter({ hasText: /Connected as guest-\d+/ }).waitFor();
        const status = await page.locator("#status").textContent() ?? "";
        return { page, name: status.match(/guest-\d+/)?.[0] ?? "" };
      };
      const a = await open(1280);
      const b = await open(375);
      nc = new Spawned(["127.0.0.1", String(tcpPort)], { command: "nc" });
      const welcome = await nc.waitFor(/^\* Welcome to the chat, guest-\d+!/, "stdout");
      const ncName = welcome.match(/guest-\d+/)?.[0] ?? "";
      const logOf = (page: Page) => page.locator("#log > *").allTextContents();
      const seen = (page: typeof a.page, text: string) =>
        page.locator("#log > *").filter({ hasText: text }).first().waitFor();

      // Keyboard only: type and press Enter.
      await a.page.locator("#message").fill("hello from A");
      await a.page.locator("#message").press("Enter");
      await nc.waitFor(new RegExp(`^${a.name}: hello from A$`), "stdout");
      await nc.write("hello from nc\n");
      await seen(a.page, "hello from nc");
      await b.page.locator("#message").fill("hello from B");
      await b.page.locator("#send").click();
      await nc.waitFor(new RegExp(`^${b.name}: hello from B$`), "stdout");
      await seen(a.page, "hello from B");
      await seen(b.page, "hello from A");
      // One order: the three messages appear in the same order on both pages.
      const order = (lines: string[]) =>
        lines.map((l) =>
          ["hello from A", "hello from nc", "hello from B"].find((m) => l.includes(m))
        )
          .filter(Boolean);
      await seen(b.page, "hello from nc");
      assert.deepEqual(order(await logOf(a.page)), order(await logOf(b.page)));
      assert.deepEqual(order(await logOf(a.page)), [
        "hello from A",
        "hello from nc",
        "hello from B",
      ]);

      // /nick from the page; a private message both ways.
      await a.page.locator("#message").fill("/nick alice");
      await a.page.locator("#message").press("Enter");
      await nc.waitFor(new RegExp(`^\\* ${a.name} is now known as alice$`), "stdout");
      await a.page.locator("#status").filter({ hasText: "Connected as alice" }).waitFor();
      await b.page.locator("#who li").filter({ hasText: "alice" }).waitFor();
      await a.page.locator("#message").fill(`/msg ${ncName} just between us`);
      await a.page.locator("#message").press("Enter");
      await nc.waitFor(/^alice \(private\): just between us$/, "stdout");
      await nc.write("/msg alice back to you\n");
      await a.page.locator("#log > [data-type=private]").filter({ hasText: "back to you" })
        .waitFor();
      assert.equal(
        await b.page.locator("#log > *").filter({ hasText: "back to you" }).count(),
        0,
        "a private message reaches only its addressee",
      );

      // Up recalls what you sent.
      await a.page.locator("#message").press("ArrowUp");
      assert.equal(await a.page.locator("#message").inputValue(), `/msg ${ncName} just between us`);
      await a.page.locator("#message").fill("");

      // The XSS string from nc is shown as those characters, and runs nothing.
      const xss = "<img src=x onerror=window.__pwned=1>";
      await nc.write(`${xss}\n`);
      await seen(a.page, xss);
      assert.equal(await a.page.evaluate("window.__pwned"), undefined);
      assert.equal(await a.page.locator("#log img").count(), 0);

      await screenshot(browser, [a.page, b.page]);

      // The server stops: the page says so; it comes back: the page reconnects as alice.
      server.child.kill("SIGTERM");
      assert.equal((await server.exit()).code, 0);
      await nc.exit();
      nc = null;
      await a.page.locator("#status").filter({ hasText: /Disconnected/ }).waitFor();
      server = startServer(tcpPort, webPort);
      await server.waitFor(/Web page on /);
      await withTimeout(
        a.page.locator("#status").filter({ hasText: "Connected as alice" }).waitFor({
          timeout: 20000,
        }),
        25000,
        "the page to reconnect as alice",
      );
      assert.deepEqual(problems, [], "no errors or CSP violations in the console");
    } finally {
      await browser.close();
      if (nc) {
        nc.child.kill("SIGTERM");
        await nc.exit().catch(() => {});
      }
      server.child.kill("SIGTERM");
      await server.exit().catch(() => {});
    }
  },
});

/**
 * Puts screenshots of `pages` side by side in one image (a page of their images), so the
 * README shows two chatting pages at once.
 */
async function screenshot(browser: Browser, pages: Page[]): Promise<void> {
  const shots = await Promise.all(pages.map((page) => page.screenshot()));
  const sheet = await browser.newPage();
  try {
    await sheet.setViewportSize({ width: 1280 + 375 + 48, height: 680 });
    await sheet.setContent(
      `<body style="margin:0;padding:16px;background:#888;display:flex;gap:16px;align-items:flex-start">${
        shots.map((png) => `<img src="data:image/png;base64,${toBase64(png)}">`).join("")
      }</body>`,
    );
    const png = await sheet.screenshot();
    assert.ok(png.length > 10_000, "a real screenshot");
    const target = Deno.env.get("UPDATE_SCREENSHOTS") === "1"
      ? `${ROOT}docs/web-chat.png`
      : await Deno.makeTempFile({ suffix: ".png" });
    await Deno.writeFile(target, png);
    if (!target.startsWith(ROOT)) await Deno.remove(target);
  } finally {
    await sheet.close();
  }
}

function toBase64(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}
