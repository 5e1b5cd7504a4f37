/**
 * The soak, 30 seconds of it (`deno task soak` runs it for 10 minutes): both servers as real
 * processes under well-behaved clients and every fault and bad input at once.
 */
import assert from "node:assert/strict";
import { formatReport, runSoak } from "../bench/soak.ts";

Deno.test({
  name: "soak (30 s): no crash, nothing lost, descriptors back to baseline, clean SIGTERM",
  async fn() {
    const report = await runSoak(30);
    console.log(formatReport(report));
    for (const server of report.servers) {
      assert.ok(server.survived, `${server.name} crashed`);
      assert.equal(server.exitCode, 0, `${server.name} did not stop cleanly`);
      assert.ok(server.stopMs < 3000, `${server.name} took ${server.stopMs} ms to stop`);
      assert.ok(
        server.fds.after <= server.fds.baseline + 2,
        `${server.name} kept descriptors: ${JSON.stringify(server.fds)}`,
      );
      // Memory: a leak of even a few KiB per connection would show over thousands of them.
      assert.ok(
        server.rss.after - server.rss.baseline < 64 * 1024,
        `${server.name} grew: ${JSON.stringify(server.rss)}`,
      );
    }
    assert.ok(report.chat.sent > 500, "the well-behaved members talked");
    assert.equal(report.chat.lost, 0);
    assert.equal(report.chat.duplicated, 0);
    assert.equal(report.chat.reordered, 0);
    assert.equal(report.chat.delivered, report.chat.expected);
    assert.ok(report.echo.answered > 100, "the echo clients were served");
    assert.equal(report.echo.wrong, 0);
    assert.equal(report.echo.failed, 0);
    assert.ok(Object.keys(report.faults).length >= 15, "most fault kinds were tried on both");
  },
});
