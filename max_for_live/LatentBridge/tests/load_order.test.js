"use strict";
// Reopening a Live set: Live outputs every saved parameter value of the device while it loads,
// BEFORE [live.thisdevice] bangs `init` (the js object's own blob parameter arrives through
// setvalueof). The device must keep those values and apply them in init.
const test = require("node:test");
const assert = require("node:assert/strict");
const { loadMaxEntry } = require("./helpers");
const { createLiveSet } = require("./fake_live");

const clip = (pitch) => ({ name: "c" + pitch, length: 8, notes: [{ pitch, start_time: 0, duration: 1, velocity: 100 }] });

test("Live's load order: parameter outputs first, then the live.thisdevice bang; saved values come back", () => {
  const live = createLiveSet({ tracks: [{ name: "Lead", slots: [clip(60), clip(64), null, null, null] }], deviceId: 7 });
  live.set.song.is_playing = 1;
  const { entry, out } = loadMaxEntry(live);
  // 1. what Live sends while the device loads (the order Live uses among them is not specified)
  entry.setvalueof(JSON.stringify({ model: "mel_2bar", a: 0, b: 1 }));
  entry.param("temperature", 0.9);
  entry.param("steps", 7);
  entry.param("barsperstep", 4);
  entry.param("mode", 2);
  entry.param("scale", 1);
  entry.knob(2, -0.4);
  assert.equal(entry.getApp(), null, "nothing is created before init");
  assert.equal(out.filter((o) => String(o[0]).startsWith("/bridge/")).length, 0, "nothing is sent before init");
  // 2. the bang
  entry.init();
  const st = entry.getApp().state();
  assert.equal(st.temperature, 0.9);
  assert.equal(st.steps, 7);
  assert.equal(st.barsPerStep, 4);
  assert.equal(st.mode, "pingpong");
  assert.equal(st.scale, true);
  assert.equal(st.knobs[2], -0.4);
  assert.equal(st.model, "mel_2bar");
  assert.deepEqual([st.a, st.b], [0, 1]);
  // 3. and they are what the requests carry: connect, then Morph
  const hello = out.find((o) => o[0] === "/bridge/hello");
  entry.receive("/bridge/ok", hello[1], JSON.stringify({ protocol: "1.1" }));
  const models = out.find((o) => o[0] === "/bridge/models");
  entry.receive("/bridge/ok", models[1], JSON.stringify({ models: [{ name: "mel_2bar", kind: "melody", bars: 2, steps_per_bar: 16 }] }));
  entry.morph(1);
  const morph = out.find((o) => o[0] === "/bridge/morph");
  assert.ok(morph, "a morph request went out");
  const p = JSON.parse(morph[2]);
  assert.equal(p.model, "mel_2bar");
  assert.equal(p.temperature, 0.9);
  assert.equal(p.steps, 7);
  assert.equal(p.bars_per_step, 4);
  assert.equal(p.mode, "pingpong");
  assert.deepEqual(p.scale, { root: 0, intervals: [0, 2, 4, 5, 7, 9, 11] });
  // no knob request was sent for the restored dial value
  assert.equal(out.filter((o) => o[0] === "/bridge/knob").length, 0);
});

test("without saved values the parameters keep the device's defaults; values after init apply at once", () => {
  const live = createLiveSet({ tracks: [{ name: "Lead", slots: [null] }] });
  const { entry } = loadMaxEntry(live);
  entry.init();
  const st = entry.getApp().state();
  assert.deepEqual([st.temperature, st.steps, st.barsPerStep, st.mode, st.scale], [0.5, 5, 1, "loop", false]);
  entry.param("steps", 9);
  assert.equal(entry.getApp().state().steps, 9);
});

test("a bad early value is reported after init, the others still apply", () => {
  const live = createLiveSet({ tracks: [{ name: "Lead", slots: [null] }] });
  const { entry, out } = loadMaxEntry(live);
  entry.param("mode", 7);          // no such mode
  entry.param("steps", 3);
  entry.init();
  assert.equal(entry.getApp().state().steps, 3);
  assert.ok(out.some((o) => o[0] === "status" && /unknown morph mode/.test(o[1])));
});

test("reply ports: two devices never share one, the port is announced in hello, a deleted device frees it", () => {
  const store = {};
  global.Global = function (name) { if (!store[name]) store[name] = {}; return store[name]; };   // Max's shared Global
  try {
    const devices = [];
    for (const id of [5, 1005, 2005]) {   // equal modulo 1000: the old scheme gave all three port 17405
      const live = createLiveSet({ tracks: [{ name: "T", slots: [null] }], deviceId: id });
      const d = loadMaxEntry(live);
      d.entry.init();
      const hello = d.out.find((o) => o[0] === "/bridge/hello");
      assert.equal(JSON.parse(hello[2]).reply_port, d.entry.getReplyPort());
      assert.deepEqual(d.out.find((o) => o[0] === "replyport"), ["replyport", d.entry.getReplyPort()]);
      devices.push(d);
    }
    assert.deepEqual(devices.map((d) => d.entry.getReplyPort()), [17405, 17406, 17407]);
    devices[0].entry.notifydeleted();
    const live = createLiveSet({ tracks: [{ name: "T", slots: [null] }], deviceId: 3005 });
    const again = loadMaxEntry(live);
    again.entry.init();
    assert.equal(again.entry.getReplyPort(), 17405);
    assert.equal(again.entry.choosePort({ 18399: 1 }, 999), 17400);   // wraps around the range
  } finally {
    delete global.Global;
  }
});

test("hellos nobody answers: after two the device moves to another reply port and says hello from there", () => {
  const { code, clock } = require("./helpers");
  const { createApp } = code("lb_app");
  const { createLive } = code("lb_live");
  const c = clock();
  const live = createLiveSet({ tracks: [{ name: "T", slots: [null] }] });
  const sent = [];
  const moves = [];
  let port = 17400;
  let app = null;
  app = createApp({
    live: createLive(live.LiveAPI), now: c.now, replyPort: port,
    send: (a, args) => sent.push([a, JSON.parse(args[1])]),
    onNoHelloAnswer: (n) => { moves.push(n); if (n % 2 === 0) { port++; app.setReplyPort(port); } },
  });
  app.start();
  for (let t = 0; t < 16000; t += 50) { c.advance(50); app.tick(); }
  const hellos = sent.filter((m) => m[0] === "/bridge/hello").map((m) => m[1].reply_port);
  assert.ok(moves.length >= 2, `unanswered hellos reported: ${moves}`);
  assert.equal(hellos[0], 17400);
  assert.ok(hellos.includes(17401), `a later hello announces the new port: ${hellos}`);
});
