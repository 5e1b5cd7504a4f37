/**
 * The page's logic without a browser: `web/app.js` is a module whose pure parts (colours,
 * how an event is shown, input history, reconnection back-off) Deno imports directly.
 */
import assert from "node:assert/strict";
import {
  Backoff,
  describe,
  InputHistory,
  isLeaving,
  nameClass,
  nameColor,
  ownEcho,
} from "../web/app.js";
import { nameColor as terminalColor } from "../lib/chat_display.ts";
import { type ChatEvent, renderLine } from "../lib/chat_frames.ts";

Deno.test("nameColor matches the terminal", () => {
  for (
    const n of [
      "alice",
      "Bob",
      "guest-1",
      "guest-22",
      "ÄÖü",
      "😀x",
      "Server",
      "carol",
      "x".repeat(24),
    ]
  ) {
    assert.equal(nameColor(n), terminalColor(n), n);
  }
  assert.equal(nameClass("Server"), "c-server");
  assert.equal(nameClass("alice"), `c-${terminalColor("alice")}`);
});

Deno.test("describe", () => {
  const m = describe({ type: "message", from: "bob", text: "<b>hi</b>" }, "alice");
  assert.equal(m.kind, "message");
  assert.equal(m.parts.map((p) => p.text).join(""), "bob: <b>hi</b>");
  const own = describe({ type: "message", from: "alice", text: "x" }, "alice");
  assert.ok(own.own);
  const h = describe({
    type: "history",
    stamp: "12:34",
    event: { type: "action", from: "bob", text: "waves" },
  }, null);
  assert.equal(h.type, "history");
  assert.ok(h.history);
  assert.equal(h.kind, "action");
  assert.equal(h.parts.map((p) => p.text).join(""), "[12:34] * bob waves");
  const s = describe({ type: "message", from: "Server", text: "hello" }, null);
  assert.equal(s.kind, "server");
  const p = describe({ type: "private", from: "alice", to: "bob", text: "x", sent: true }, "alice");
  assert.equal(p.parts.map((x) => x.text).join(""), "* (private to bob) x");
  const w = describe({ type: "welcome", version: 1, name: "g", others: ["a"], count: 3 }, "g");
  assert.equal(
    w.parts.map((x) => x.text).join("").split("\n")[1],
    "* 3 others here: a and 2 more (/who lists everyone)",
  );
  const n = describe({ type: "notice", text: "a\nb" }, null);
  assert.equal(n.parts[0].text, "* a\n* b");
  const who = describe({ type: "who", names: ["a", "b"], you: "b" }, "b");
  assert.equal(who.parts.map((x) => x.text).join(""), "* 2 here: a, b (you)");
  const l = describe({ type: "leave", name: "a", reason: "kicked" }, null);
  assert.equal(l.parts.map((x) => x.text).join(""), "* a was removed by Server");
  const u = describe({ type: "newthing" }, null);
  assert.equal(u.kind, "notice");
});

Deno.test("ownEcho / isLeaving", () => {
  assert.deepEqual(ownEcho("hi  ", "a"), { type: "message", from: "a", text: "hi" });
  assert.deepEqual(ownEcho("//nick x", "a"), { type: "message", from: "a", text: "/nick x" });
  assert.deepEqual(ownEcho("/ME waves", "a"), { type: "action", from: "a", text: "waves" });
  assert.equal(ownEcho("/me", "a"), null);
  assert.equal(ownEcho("/nick bob", "a"), null);
  assert.equal(ownEcho("BYE", "a"), null);
  assert.ok(isLeaving(" Bye "));
  assert.ok(isLeaving("/quit now"));
  assert.ok(!isLeaving("/quitter"));
});

Deno.test("InputHistory", () => {
  const h = new InputHistory(3);
  assert.equal(h.up("draft"), null);
  for (const l of ["one", "two", "two", "three", "four"]) h.push(l);
  assert.equal(h.up("draft"), "four");
  assert.equal(h.up("four"), "three");
  assert.equal(h.up("three"), "two");
  assert.equal(h.up("two"), null);
  assert.equal(h.down(), "three");
  assert.equal(h.down(), "four");
  assert.equal(h.down(), "draft");
  assert.equal(h.down(), null);
});

Deno.test("Backoff", () => {
  const b = new Backoff({ random: () => 0 });
  assert.deepEqual([1, 2, 3, 4, 5, 6, 7].map(() => b.next()), [
    500,
    1000,
    2000,
    4000,
    8000,
    10000,
    10000,
  ]);
  b.reset();
  assert.equal(b.next(), 500);
  const j = new Backoff({ random: () => 0.999 });
  assert.ok(j.next() >= 400);
});

Deno.test("the page shows every event as the TCP line says it (history stamped shorter)", () => {
  const events: ChatEvent[] = [
    { type: "message", from: "ann", text: "hi <b>" },
    { type: "message", from: "Server", text: "hello" },
    { type: "action", from: "ann", text: "waves" },
    { type: "private", from: "ann", to: "bob", text: "psst" },
    { type: "private", from: "ann", to: "bob", text: "psst", sent: true },
    { type: "join", name: "ann" },
    ...(["bye", "disconnected", "slow", "kicked", "idle"] as const).map((reason) => ({
      type: "leave" as const,
      name: "ann",
      reason,
    })),
    { type: "rename", from: "a", to: "b" },
    { type: "rename", from: "a", to: "b", you: true },
    { type: "who", names: ["a", "b"], you: "b" },
    { type: "notice", text: "one\ntwo" },
    { type: "error", code: "usage", text: "usage: /me ACTION" },
    { type: "auth", state: "wrong", text: "wrong password" },
    { type: "welcome", version: 1, name: "g", others: ["a"], count: 3 },
  ];
  for (const event of events) {
    const shown = describe(event, "zed").parts.map((p: { text: string }) => p.text).join("");
    assert.equal(shown, renderLine(event), JSON.stringify(event));
  }
  const history: ChatEvent = {
    type: "history",
    stamp: "12:34",
    event: { type: "message", from: "a", text: "x" },
  };
  assert.equal(
    describe(history, null).parts.map((p: { text: string }) => p.text).join(""),
    renderLine(history).replace("[history ", "["),
  );
});
