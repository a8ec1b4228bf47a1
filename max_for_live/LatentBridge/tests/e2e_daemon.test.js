"use strict";
// END-TO-END: the device code (lb_app + lb_client + lb_live, the modules the [js] object loads)
// talks OSC over loopback UDP to a real `python -m bridge serve`, and writes into a fake Live set.
// max_wire.js stands in for Max's [udpsend]/[udpreceive] (their i/f/s type tags, Max atoms).
//
// Needs from the daemon: `python -m bridge serve --port P --models DIR --no-default-models`;
// ops hello (reply_port), ping, models, directions, transport, encode, interpolate (seq+done),
// morph (ok with {"morph": id}, seqs tagged "bar", done) and stop. Needs tiny model packages:
// $LB_E2E_MODELS, else tests/conftest.py build_cached_tiny_models() (builds them with torch once).
// `make test` sets up the venv first; a missing venv or model build fails the test.
const test = require("node:test");
const assert = require("node:assert/strict");
const fs = require("fs");
const path = require("path");
const { execFileSync } = require("child_process");
const { startDaemon, connectDevice, freePort, until } = require("./helpers");
const { createLiveSet } = require("./fake_live");

const ROOT = path.resolve(__dirname, "..", "..", "..");
const PY = path.join(ROOT, ".venv", "bin", "python");

function modelsDir() {
  if (process.env.LB_E2E_MODELS) return process.env.LB_E2E_MODELS;
  const out = execFileSync(PY, ["-c", "import sys; sys.path.insert(0, 'tests'); from conftest import build_cached_tiny_models as b; print(b(('mel_2bar',)))"],
    { cwd: ROOT, encoding: "utf8", timeout: 600000, stdio: ["ignore", "pipe", "pipe"] });
  return out.trim().split("\n").pop();
}

test("e2e: interpolate and morph against a real daemon, written into a fake Live set", { timeout: 900000 }, async (t) => {
  assert.ok(fs.existsSync(PY), "no .venv: run `make setup-dev` first");
  const dir = modelsDir();
  const port = await freePort();
  const daemon = startDaemon(t, PY, ROOT, ["--port", String(port), "--models", dir, "--no-default-models", "--workers", "1"]);
  const log = daemon.log;

  const A = { name: "A", length: 8, notes: [0, 1, 2, 3, 4, 5, 6, 7].map((i) => ({ pitch: 60 + (i % 4) * 2, start_time: i, duration: 0.5, velocity: 100 })) };
  const B = { name: "B", length: 8, notes: [0, 2, 4, 6].map((i) => ({ pitch: 72 - i, start_time: i, duration: 1, velocity: 90 })) };
  const live = createLiveSet({ tracks: [{ name: "Lead", slots: [A, B, null, { name: "user clip", length: 4, notes: [] }, null, null, null, null, null] }],
    highlighted: { track: 0, slot: 0 } });
  live.set.song.tempo = 240;
  const { app, statuses } = await connectDevice(t, port, live);
  const tick = () => { if (daemon.exited !== null) throw new Error("daemon exited:\n" + log.join("")); app.tick(); };
  await until(() => statuses.some((s) => /model\(s\)/.test(s)), 120000, tick, "connection + models\n" + log.join(""));
  app.setModel("mel_2bar");

  // Interpolate: 3 clips into the empty slots below A (2, 4, 5), slot 3 (a user clip) untouched.
  assert.equal(app.captureA(), true);
  live.set.highlighted = { track: 0, slot: 1 };
  assert.equal(app.captureB(), true);
  app.setParam("steps", 3);
  app.interpolate();
  await until(() => statuses.some((s) => /^wrote 3 clips/.test(s) || /failed/.test(s)), 120000, tick, "interpolation");
  assert.ok(!statuses.some((s) => /failed/.test(s)), statuses.join("\n"));
  const slots = live.set.tracks[0].slots;
  assert.deepEqual(slots.map((s) => (s ? s.name : null)),
    ["A", "B", "LB interp 1/3", "user clip", "LB interp 2/3", "LB interp 3/3", null, null, null]);
  for (const i of [2, 4, 5]) {
    assert.equal(slots[i].loop_end, 8); // mel_2bar: 2 bars
    for (const n of slots[i].notes) {
      assert.ok(Number.isInteger(n.pitch) && n.pitch >= 0 && n.pitch < 128);
      assert.ok(n.start_time >= 0 && n.start_time < 8 && n.duration > 0);
    }
  }
  assert.ok(slots[2].notes.length > 0, "the first interpolation step (reconstruction of A) has notes");

  // Morph: the song plays at 240 BPM (a bar per second); the device is the clock.
  live.set.song.is_playing = 1;
  const t0 = Date.now();
  const songTick = () => { live.set.song.current_song_time = (Date.now() - t0) / 250; tick(); };
  await until(() => false || Date.now() - t0 > 300, 1000, songTick, "transport warm-up").catch(() => {});
  app.setParam("steps", 2);
  app.setParam("barsperstep", 1);
  app.setParam("mode", 0); // once
  const fired = live.set.tracks[0].fired;
  const fireAt = [];
  const watch = () => { const n = fired.length; songTick(); if (fired.length > n) fireAt.push(live.set.song.current_song_time); };
  app.morph();
  await until(() => fired.length >= 2 || statuses.some((s) => /morph failed/.test(s)), 20000, watch, "two morph steps fired");
  assert.ok(!statuses.some((s) => /morph failed/.test(s)), statuses.join("\n"));
  assert.deepEqual(fired.slice(0, 2), [6, 7]); // the empty slots below the interpolation results
  // each fire happened inside the bar before the target and the target bars are consecutive
  const bars = fireAt.map((b) => Math.floor(b / 4) + 1);
  assert.equal(bars[1], bars[0] + 1);
  assert.ok(!statuses.some((s) => /^late/.test(s)), statuses.join("\n"));
  assert.equal(slots[6].name, "LB live 1");
  assert.equal(slots[7].name, "LB live 2");
  app.stop();
  await until(() => app.client.pendingCount() === 0, 5000, songTick, "stop acknowledged");
});

test("e2e: Learn a palette from the track's clips, then Generate with Mine, against a real daemon", { timeout: 900000 }, async (t) => {
  const dir = modelsDir();
  const port = await freePort();
  const daemon = startDaemon(t, PY, ROOT, ["--port", String(port), "--models", dir, "--no-default-models", "--workers", "1"]);
  const clip = (name, base) => ({ name, length: 8, notes: [0, 1, 2, 3, 4, 5, 6, 7].map((i) => ({ pitch: base + (i % 3) * 2, start_time: i, duration: 0.5, velocity: 100 })) });
  const live = createLiveSet({ tracks: [{ name: "My Lead", slots: [clip("verse", 60), clip("chorus", 64), clip("bridge", 67), null] }],
    highlighted: { track: 0, slot: 0 } });
  const { app, statuses } = await connectDevice(t, port, live);
  const tick = () => { if (daemon.exited !== null) throw new Error("daemon exited:\n" + daemon.log.join("")); app.tick(); };
  await until(() => statuses.some((s) => /model\(s\)/.test(s)), 120000, tick, "connection + models");
  app.setModel("mel_2bar");
  app.learn();
  await until(() => app.state().palette !== null || statuses.some((s) => /failed/.test(s)), 60000, tick, "learn + export");
  assert.ok(!statuses.some((s) => /failed/.test(s)), statuses.join("\n"));
  assert.ok(statuses.some((s) => /^learned 'My_Lead': \d+ windows of 3 clips/.test(s)), statuses.join("\n"));
  const saved = app.state().palette;
  assert.equal(saved.format, "latent-bridge-palette");
  assert.equal(saved.name, "My_Lead");
  assert.equal(saved.mean.length, saved.z_size);
  app.setParam("mine", 1);
  app.generate();
  await until(() => statuses.some((s) => /^sample written to slot 4/.test(s) || /failed/.test(s)), 60000, tick, "a sample from the palette");
  assert.ok(!statuses.some((s) => /failed/.test(s)), statuses.join("\n"));
  assert.equal(live.set.tracks[0].slots[3].name, "LB sample mel_2bar");
});
