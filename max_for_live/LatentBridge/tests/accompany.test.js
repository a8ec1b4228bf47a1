"use strict";
// The Accompany button (lb_app.accompany) against the fake Live set and a scripted daemon: what it
// sends, where the bass and drum clips go, and what it does when it cannot or the daemon refuses.
const test = require("node:test");
const assert = require("node:assert/strict");
const { code, clock, startDaemon, connectDevice } = require("./helpers");
const { createLiveSet } = require("./fake_live");
const { createApp } = code("lb_app");
const { createLive } = code("lb_live");

const MELODY = { name: "melody", length: 16, notes: [
  { pitch: 67, start_time: 0, duration: 1.5, velocity: 96 },
  { pitch: 69, start_time: 2, duration: 0.5, velocity: 80 },
  { pitch: 71, start_time: 8, duration: 4, velocity: 100 },
] };
const ROWS = [[67, 0, 1.5, 96, 0], [69, 2, 0.5, 80, 0], [71, 8, 4, 100, 0]];
// what the daemon's accompany op answers: the melody back on track 0, bass on 1, drums on 2
const BAND = { model: "trio_16bar", index: 0, bars: 4, tracks: ["melody", "bass", "drums"], part: 0, parts: 1,
  notes: ROWS.concat([[43, 0, 2, 100, 1], [38, 2, 1, 100, 1], [36, 0, 0.25, 100, 2], [42, 0.5, 0.25, 100, 2],
    [38, 1, 0.25, 100, 2]]) };

function setup(tracks, models, song) {
  const c = clock();
  const live = createLiveSet({ tracks, highlighted: { track: 0, slot: 0 } });
  Object.assign(live.set.song, song || {});
  const requests = [];
  const ui = [];
  let app;
  const reply = (address, args) => app.handleMessage(address, args);
  app = createApp({
    live: createLive(live.LiveAPI), now: c.now, replyPort: 17002,
    ui: (kind, ...args) => ui.push([kind, ...args]),
    send: (address, args) => {
      const [id, json] = args;
      const op = address.replace("/bridge/", "");
      if (op === "hello") return reply("/bridge/ok", [id, "{}"]);
      if (op === "models") return reply("/bridge/ok", [id, JSON.stringify({ models })]);
      if (op === "directions") return reply("/bridge/error", [id, "unknown_op", "no directions"]);
      requests.push({ op, id, payload: JSON.parse(json) });
    },
  });
  app.start();
  return { live, app, requests, reply, status: () => ui.filter((u) => u[0] === "status").map((u) => u[1]) };
}

const TRIO_AND_MEL = [{ name: "mel_2bar", kind: "melody", bars: 2 }, { name: "trio_16bar", kind: "trio", bars: 16 }];
const band = () => [
  { name: "Lead", slots: [MELODY, null] },
  { name: "Keys", midi: false, slots: [null, null] },      // audio track: never a target
  { name: "Drums", slots: [null, null] },
  { name: "Bass", slots: [null, null] },
];

test("accompany sends the melody clip with the trio model and the song's time signature", () => {
  const h = setup(band(), TRIO_AND_MEL);
  h.app.setParam("temperature", 0.3);
  h.app.accompany();
  const req = h.requests.find((r) => r.op === "accompany");
  assert.deepEqual(req.payload, { model: "trio_16bar", notes: ROWS, temperature: 0.3, time_signature: [4, 4] });
});

test("bass and drums go to the named tracks in the melody's scene; the melody is not copied", () => {
  const h = setup(band(), TRIO_AND_MEL);
  h.app.accompany();
  const req = h.requests.find((r) => r.op === "accompany");
  h.reply("/bridge/seq", [req.id, 0, 1, JSON.stringify(BAND)]);
  h.reply("/bridge/done", [req.id]);
  const t = h.live.set.tracks;
  assert.equal(t[1].slots[0], null);                                   // audio track untouched
  assert.equal(t[3].slots[0].name, "LB bass");
  assert.deepEqual(t[3].slots[0].notes.map((n) => [n.pitch, n.start_time, n.duration]), [[43, 0, 2], [38, 2, 1]]);
  assert.equal(t[2].slots[0].name, "LB drums");
  assert.deepEqual(t[2].slots[0].notes.map((n) => n.pitch), [36, 42, 38]);
  assert.equal(t[2].slots[0].loop_end, 16);                            // the melody's 4 bars
  assert.equal(t[0].slots[0].name, "melody");                          // the melody clip as it was
  assert.equal(t[0].slots[1], null);
  assert.match(h.status().pop(), /2 bass notes, 3 drum hits/);
});

test("a 3/4 song is refused by the device with the meter message; a daemon refusal is shown; nothing is written", () => {
  const h = setup(band(), TRIO_AND_MEL, { signature_numerator: 3 });
  assert.equal(h.app.accompany(), null);
  assert.equal(h.requests.filter((r) => r.op === "accompany").length, 0);
  assert.match(h.status().pop(), /the song is in 3\/4: the models write 4\/4 bars/);
  const h2 = setup(band(), TRIO_AND_MEL);
  h2.app.accompany();
  const req = h2.requests.find((r) => r.op === "accompany");
  assert.deepEqual(req.payload.time_signature, [4, 4]);
  h2.reply("/bridge/error", [req.id, "bad_request", "the melody has no pitched notes"]);
  assert.match(h2.status().pop(), /accompany failed: bad_request - the melody has no pitched notes/);
  for (const x of [h, h2]) {
    assert.equal(x.live.set.tracks[2].slots[0], null);
    assert.equal(x.live.set.tracks[3].slots[0], null);
  }
});

test("no request without a trio model, or without two free MIDI tracks to the right", () => {
  const noTrio = setup(band(), [{ name: "mel_2bar", kind: "melody", bars: 2 }]);
  assert.equal(noTrio.app.accompany(), null);
  assert.equal(noTrio.requests.length, 0);
  assert.match(noTrio.status().pop(), /needs a trio model/);

  const full = setup([{ name: "Lead", slots: [MELODY] }, { name: "Bass", slots: [{ name: "mine", length: 4 }] },
    { name: "Drums", slots: [null] }], TRIO_AND_MEL);
  assert.equal(full.app.accompany(), null);
  assert.equal(full.requests.filter((r) => r.op === "accompany").length, 0);
  assert.match(full.status().pop(), /two MIDI tracks to the right/);
  assert.equal(full.live.set.tracks[1].slots[0].name, "mine");
});

test("a clip recorded into a target slot while the daemon works is not overwritten", () => {
  const h = setup(band(), TRIO_AND_MEL);
  h.app.accompany();
  const req = h.requests.find((r) => r.op === "accompany");
  h.live.set.tracks[3].slots[0] = { name: "recorded meanwhile", notes: [], loop_end: 4 };   // Bass
  h.live.set.tracks[2].slots[0] = { name: "also recorded", notes: [], loop_end: 4 };       // Drums
  h.reply("/bridge/seq", [req.id, 0, 1, JSON.stringify(BAND)]);
  h.reply("/bridge/done", [req.id]);
  assert.equal(h.live.set.tracks[3].slots[0].name, "recorded meanwhile");
  assert.equal(h.live.set.tracks[2].slots[0].name, "also recorded");
  assert.match(h.status().pop(), /two MIDI tracks/);
});

// END-TO-END: the same button against a real `python -m bridge serve` over loopback UDP, serving the
// tiny trio package with a surrogate encoder (tests/bridge/runtime/test_accompany.py builds and caches it).
const fs = require("fs");
const path = require("path");
const dgram = require("dgram");
const { execFileSync } = require("child_process");

const ROOT = path.resolve(__dirname, "..", "..", "..");
const PY = path.join(ROOT, ".venv", "bin", "python");
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function accompanyModels() {
  const script = "import sys; sys.path[:0] = ['tests', 'tests/bridge/runtime']; " +
    "from conftest import build_cached_tiny_models as b; from test_accompany import build_cached_accompany_models as a; " +
    "print(a(b(('mel_2bar', 'trio_16bar'))))";
  const out = execFileSync(PY, ["-c", script], { cwd: ROOT, encoding: "utf8", timeout: 600000, stdio: ["ignore", "pipe", "pipe"] });
  return out.trim().split("\n").pop();
}

test("e2e: Accompany against a real daemon writes bass and drums clips into the fake Live set",
  { skip: fs.existsSync(PY) ? false : "no .venv (run `make setup-dev`)", timeout: 600000 }, async (t) => {
    let dir;
    try {
      dir = accompanyModels();
    } catch (e) {
      // a package that does not build is a failure, never a skip
      throw new Error(`building the tiny accompany package failed:\n${String(e.stderr || e.message).split("\n").slice(-15).join("\n")}`);
    }
    const port = await new Promise((resolve) => {
      const s = dgram.createSocket("udp4");
      s.bind(0, "127.0.0.1", () => { const p = s.address().port; s.close(() => resolve(p)); });
    });
    const daemon = startDaemon(t, PY, ROOT, ["--port", String(port), "--models", dir, "--no-default-models", "--workers", "1"]);
    const log = daemon.log;

    const live = createLiveSet({ tracks: band(), highlighted: { track: 0, slot: 0 } });
    const { app, statuses } = await connectDevice(t, port, live);
    const until = async (pred, ms, what) => {
      const end = Date.now() + ms;
      while (Date.now() < end) {
        if (daemon.exited !== null) throw new Error("daemon exited:\n" + log.join(""));
        app.tick();
        if (pred()) return;
        await sleep(20);
      }
      throw new Error(`timed out waiting for ${what}\n${statuses.join("\n")}\n${log.join("")}`);
    };
    await until(() => statuses.some((s) => /model\(s\)/.test(s)), 120000, "connection + models");
    app.setParam("temperature", 1.0);
    app.accompany();
    await until(() => statuses.some((s) => /^accompany/.test(s)), 60000, "the accompaniment");
    assert.ok(!statuses.some((s) => /failed/.test(s)), statuses.join("\n"));
    const t2 = live.set.tracks;
    const bass = t2[3].slots[0];
    const drums = t2[2].slots[0];
    assert.equal(bass.name, "LB bass");
    assert.equal(drums.name, "LB drums");
    assert.equal(bass.loop_end, 12);                       // the melody's notes span 3 bars
    assert.ok(drums.notes.length > 0 && bass.notes.length > 0);
    for (const n of bass.notes.concat(drums.notes)) {
      assert.ok(n.start_time >= 0 && n.start_time + n.duration <= 12 + 1e-9);
    }
    assert.equal(t2[0].slots[0].name, "melody");
    assert.equal(t2[1].slots[0], null);

    // a 3/4 song: the device says why and sends nothing (the daemon would refuse it too)
    live.set.song.signature_numerator = 3;
    t2[2].slots[0] = null;
    t2[3].slots[0] = null;
    assert.equal(app.accompany(), null);
    assert.match(statuses[statuses.length - 1], /the song is in 3\/4/);
    await sleep(300);
    assert.equal(t2[2].slots[0], null);
  });
