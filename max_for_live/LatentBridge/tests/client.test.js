"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");
const { code, clock } = require("./helpers");
const { createClient } = code("lb_client");

function harness(opts = {}) {
  const c = clock();
  const sent = [];
  const states = [];
  const client = createClient(Object.assign({
    send: (address, args) => sent.push({ address, id: args[0], json: JSON.parse(args[1]) }),
    now: c.now, replyPort: 17442, onStatus: (s) => states.push(s),
  }, opts));
  const last = (op) => [...sent].reverse().find((m) => m.address === "/bridge/" + op);
  return { c, sent, states, client, last };
}

test("hello carries the reply port; ok => connected; request ids are distinct int32", () => {
  const h = harness();
  h.client.start();
  const hello = h.last("hello");
  assert.deepEqual(hello.json, { reply_port: 17442 });
  assert.equal(h.client.state(), "connecting");
  h.client.handleMessage("/bridge/ok", [hello.id, JSON.stringify({ server: "latent-bridge" })]);
  assert.equal(h.client.state(), "connected");
  const ids = [1, 2, 3].map(() => h.client.request("stats", {}, {}));
  assert.equal(new Set(ids.concat([hello.id])).size, 4);
  ids.forEach((id) => assert.ok(Number.isInteger(id) && id > 0 && id < 2 ** 31));
});

test("hello handshake: the challenge that came to the reply port is echoed; then connected", () => {
  const h = harness();
  h.client.start();
  const first = h.last("hello");
  assert.deepEqual(first.json, { reply_port: 17442 });
  h.client.handleMessage("/bridge/ok", [first.id, JSON.stringify({ challenge: "0123abcd0123abcd", reply_to: "127.0.0.1:17442" })]);
  assert.equal(h.client.state(), "connecting");             // not yet: the daemon has not bound the port
  const second = h.last("hello");
  assert.notEqual(second.id, first.id);
  assert.deepEqual(second.json, { reply_port: 17442, challenge: "0123abcd0123abcd" });
  h.client.handleMessage("/bridge/ok", [second.id, JSON.stringify({ protocol: "1.1", session: "s" })]);
  assert.equal(h.client.state(), "connected");
  assert.equal(h.sent.filter((m) => m.address === "/bridge/hello").length, 2);
});

test("token: every request carries the daemon's shared secret", () => {
  const h = harness({ token: "correct-horse-battery" });
  h.client.start();
  assert.equal(h.last("hello").json.token, "correct-horse-battery");
  h.client.handleMessage("/bridge/ok", [h.last("hello").id, "{}"]);
  h.client.request("stats", { x: 1 }, {});
  assert.deepEqual(h.last("stats").json, { x: 1, token: "correct-horse-battery" });
  h.client.setToken(null);
  h.client.request("stats", {}, {});
  assert.deepEqual(h.last("stats").json, {});
});

test("seq / done / error replies reach the right request; parts are merged", () => {
  const h = harness();
  h.client.start();
  h.client.handleMessage("/bridge/ok", [h.last("hello").id, "{}"]);
  const got = { seqs: [], done: null, err: null };
  const id = h.client.request("interpolate", { steps: 2 }, {
    seq: (s, i, n) => got.seqs.push([s.index, i, n, s.notes.length]),
    done: (all) => { got.done = all.length; },
  });
  const other = h.client.request("sample", {}, { error: (code, msg) => { got.err = [code, msg]; } });
  const part = (p, notes) => JSON.stringify({ model: "m", index: 0, bars: 2, part: p, parts: 2, notes });
  h.client.handleMessage("/bridge/seq", [id, 0, 2, part(1, [[62, 1, 1, 100, 0]])]);
  assert.equal(got.seqs.length, 0); // waiting for part 0
  h.client.handleMessage("/bridge/seq", [id, 0, 2, part(0, [[60, 0, 1, 100, 0]])]);
  h.client.handleMessage("/bridge/seq", [id, 1, 2, JSON.stringify({ model: "m", index: 1, bars: 2, notes: [] })]);
  h.client.handleMessage("/bridge/done", [id]);
  h.client.handleMessage("/bridge/error", [other, "unknown_model", "no model x"]);
  assert.deepEqual(got.seqs, [[0, 0, 2, 2], [1, 1, 2, 0]]);
  assert.equal(got.done, 2);
  assert.deepEqual(got.err, ["unknown_model", "no model x"]);
  assert.equal(h.client.pendingCount(), 0);
  assert.equal(h.client.handleMessage("/other/thing", [1]), false);
  h.client.handleMessage("/bridge/ok", [999999, "{}"]); // unknown id: ignored, counted
  assert.equal(h.client.stats().unknownReplies, 1);
});

test("streaming requests stay open after ok until done", () => {
  const h = harness();
  h.client.start();
  h.client.handleMessage("/bridge/ok", [h.last("hello").id, "{}"]);
  const seen = [];
  const id = h.client.request("morph", {}, { stream: true, ok: (r) => seen.push("ok" + r.morph), seq: (s) => seen.push("seq" + s.bar), done: () => seen.push("done") });
  h.client.handleMessage("/bridge/ok", [id, JSON.stringify({ morph: 7 })]);
  h.client.handleMessage("/bridge/seq", [id, 0, 2, JSON.stringify({ bar: 5, notes: [] })]);
  h.client.handleMessage("/bridge/done", [id]);
  assert.deepEqual(seen, ["ok7", "seq5", "done"]);
});

test("requests while disconnected fail at once; timeouts are reported", () => {
  const h = harness();
  let err = null;
  h.client.request("sample", {}, { error: (code) => { err = code; } });
  assert.equal(err, "disconnected");
  assert.equal(h.sent.length, 0);
  h.client.start();
  h.client.handleMessage("/bridge/ok", [h.last("hello").id, "{}"]);
  h.client.request("stats", {}, { timeoutMs: 500, error: (code) => { err = code; } });
  h.c.advance(400); h.client.tick();
  h.client.handleMessage("/bridge/ok", [h.last("ping") ? h.last("ping").id : -1, "{}"]);
  h.c.advance(200); h.client.tick();
  assert.equal(err, "timeout");
});

test("reconnect: missed pings => disconnected (light red), pending fail, hello retried with backoff, recovers", () => {
  const h = harness({ pingIntervalMs: 1000, pingTimeoutMs: 2000, maxMissedPings: 2, helloTimeoutMs: 1000, backoffMs: [500, 1000, 2000] });
  h.client.start();
  h.client.handleMessage("/bridge/ok", [h.last("hello").id, "{}"]);
  assert.equal(h.client.stateCode(), 2);
  // healthy: pings answered
  for (let i = 0; i < 5; i++) {
    h.c.advance(1000); h.client.tick();
    const p = h.last("ping");
    h.client.handleMessage("/bridge/ok", [p.id, '{"pong":true}']);
  }
  assert.equal(h.client.state(), "connected");
  let failed = null;
  h.client.request("interpolate", {}, { error: (code) => { failed = code; } });
  // daemon dies: nothing answers any more
  for (let t = 0; t < 8000 && h.client.state() === "connected"; t += 100) { h.c.advance(100); h.client.tick(); }
  assert.equal(h.client.state(), "disconnected");
  assert.equal(h.client.stateCode(), 0);
  assert.equal(failed, "disconnected");
  // hello retries while nobody answers: the first after backoffMs[0], then each one helloTimeoutMs
  // (unanswered) plus the next backoff step, growing 500 -> 1000 -> 2000 and staying at the last
  const downAt = h.c.t;
  const helloTimes = [];
  let seen = h.sent.length;
  for (let t = 0; t < 14000; t += 50) {
    h.c.advance(50); h.client.tick();
    for (; seen < h.sent.length; seen++) if (h.sent[seen].address === "/bridge/hello") helloTimes.push(h.c.t);
  }
  const near = (got, want, what) => assert.ok(Math.abs(got - want) <= 100, `${what}: ${got} ms, want ${want} ms (hellos at ${helloTimes.map((t) => t - downAt)})`);
  assert.ok(helloTimes.length >= 4, `hellos: ${helloTimes.length}`);
  near(helloTimes[0] - downAt, 500, "first retry after the disconnect");
  const gaps = helloTimes.slice(1).map((t, i) => t - helloTimes[i]);
  const want = [1000 + 1000, 1000 + 2000, 1000 + 2000];          // hello timeout + backoff step
  want.forEach((w, i) => near(gaps[i], w, `gap ${i + 1} between hellos`));
  assert.ok(gaps[1] - gaps[0] >= 900, `the backoff grows: gaps ${gaps}`);
  // daemon back: the next hello is answered
  const before = h.sent.length;
  while (!h.sent.slice(before).some((m) => m.address === "/bridge/hello")) { h.c.advance(50); h.client.tick(); }
  const hello = h.last("hello");
  h.client.handleMessage("/bridge/ok", [hello.id, "{}"]);
  assert.equal(h.client.state(), "connected");
  assert.equal(h.client.stats().reconnects, 1);
  assert.deepEqual(h.states.filter((s, i, a) => a[i - 1] !== s).slice(0, 4), ["connecting", "connected", "disconnected", "connecting"]);
});
