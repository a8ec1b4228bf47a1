"use strict";
// The device logic (lb_app + lb_live) against a fake Live set and a scripted daemon.
const test = require("node:test");
const assert = require("node:assert/strict");
const { code, clock } = require("./helpers");
const { createLiveSet } = require("./fake_live");
const { createApp } = code("lb_app");
const { createLive } = code("lb_live");

const MODELS = { models: [
  { name: "mel_2bar", kind: "melody", bars: 2, attributes: ["density"] },
  { name: "trio_16bar", kind: "trio", bars: 16, attributes: [] },
] };

const clipA = { name: "A", length: 8, notes: [{ pitch: 60, start_time: 0, duration: 1, velocity: 100 }, { pitch: 64, start_time: 4, duration: 1, velocity: 100 }] };
const clipB = { name: "B", length: 8, notes: [{ pitch: 72, start_time: 0, duration: 2, velocity: 90 }] };

// A scripted daemon: answers hello/models/directions/transport/encode; other requests are kept
// so the test can reply to them.
function setup(layout, extra = {}) {
  const c = clock();
  const live = createLiveSet(Object.assign({ tracks: [{ name: "Lead", slots: layout }], highlighted: { track: 0, slot: 0 } }, extra));
  const requests = [];
  const transports = [];
  const ui = [];
  let app;
  const reply = (address, args) => app.handleMessage(address, args);
  app = createApp({
    live: createLive(live.LiveAPI), now: c.now, replyPort: 17001,
    ui: (kind, ...args) => ui.push([kind, ...args]),
    send: (address, args) => {
      const [id, json] = args;
      const op = address.replace("/bridge/", "");
      const payload = JSON.parse(json);
      if (op === "hello") return reply("/bridge/ok", [id, "{}"]);
      if (op === "models") return reply("/bridge/ok", [id, JSON.stringify(MODELS)]);
      if (op === "directions") return reply("/bridge/ok", [id, JSON.stringify({ directions: [{ index: 0, name: "density" }, { index: 1, name: "register" }] })]);
      if (op === "transport") transports.push(payload);
      if (op === "transport" || op === "encode") return reply("/bridge/ok", [id, "{}"]);
      requests.push({ op, id, payload });
    },
  });
  app.start();
  return { c, live, app, requests, transports, ui, reply, status: () => ui.filter((u) => u[0] === "status").map((u) => u[1]) };
}

const seq = (index, notes, extra = {}) => JSON.stringify(Object.assign({ model: "mel_2bar", index, bars: 2, notes }, extra));

test("connects, fills the model menu and labels the dials with the model's directions", () => {
  const h = setup([clipA]);
  assert.deepEqual(h.ui.find((u) => u[0] === "models"), ["models", ["mel_2bar", "trio_16bar"]]);
  assert.deepEqual(h.ui.find((u) => u[0] === "model"), ["model", "mel_2bar"]);
  const labels = h.ui.filter((u) => u[0] === "knoblabels").pop()[1];
  assert.deepEqual(labels, ["density", "register", "-", "-", "-", "-", "-", "-"]);
  assert.equal(h.ui.filter((u) => u[0] === "light").pop()[1], 2); // green
});

test("interpolate sends A and B as rows and writes N clips into empty slots below A only", () => {
  const h = setup([clipA, null, { name: "keep me", length: 4, notes: [] }, clipB, null, null, null, { name: "user", length: 4 }, null]);
  assert.equal(h.app.captureA(), true);
  h.live.set.highlighted = { track: 0, slot: 3 };
  assert.equal(h.app.captureB(), true);
  h.app.setParam("steps", 4);
  h.app.interpolate();
  const req = h.requests.find((r) => r.op === "interpolate");
  assert.deepEqual(req.payload.a, [[60, 0, 1, 100, 0], [64, 4, 1, 100, 0]]);
  assert.deepEqual(req.payload.b, [[72, 0, 2, 90, 0]]);
  assert.equal(req.payload.steps, 4);
  for (let i = 0; i < 4; i++) h.reply("/bridge/seq", [req.id, i, 4, seq(i, [[60 + i, i * 0.5, 0.5, 100, 0]])]);
  h.reply("/bridge/done", [req.id]);
  const slots = h.live.set.tracks[0].slots;
  assert.deepEqual(slots.map((s) => (s ? s.name : null)),
    ["A", "LB interp 1/4", "keep me", "B", "LB interp 2/4", "LB interp 3/4", "LB interp 4/4", "user", null]);
  assert.deepEqual(slots[5].notes, [{ pitch: 62, start_time: 1, duration: 0.5, velocity: 100, mute: 0 }]);
  assert.equal(slots[5].loop_end, 8);
  assert.equal(slots[2].notes.length, 0); // untouched
  const noteCalls = h.live.set.calls.filter((c) => c[0] === "call").map((c) => c[2]);
  assert.ok(noteCalls.includes("get_notes_extended") && noteCalls.includes("add_new_notes"));
  assert.ok(!noteCalls.some((f) => f === "set_notes" || f === "get_notes"));
});

test("interpolate refuses (and sends nothing) when there are not enough empty slots", () => {
  const h = setup([clipA, clipB, null, { name: "x", length: 4 }]);
  h.app.captureA();
  h.app.setParam("steps", 3);
  h.app.interpolate();
  assert.equal(h.requests.filter((r) => r.op === "interpolate").length, 0);
  assert.match(h.status().pop(), /need 3 empty clip slots/);
  assert.equal(h.live.set.calls.filter((c) => c[2] === "create_clip").length, 0);
});

test("slots filled while the daemon works are not overwritten", () => {
  const h = setup([clipA, clipB, null, null]);
  h.app.captureA();
  h.app.setParam("steps", 2);
  h.app.interpolate();
  const req = h.requests.find((r) => r.op === "interpolate");
  h.live.set.tracks[0].slots[3] = { name: "recorded meanwhile", notes: [], loop_end: 4 };
  h.reply("/bridge/seq", [req.id, 0, 2, seq(0, [])]);
  h.reply("/bridge/seq", [req.id, 1, 2, seq(1, [])]);
  h.reply("/bridge/done", [req.id]);
  assert.equal(h.live.set.tracks[0].slots[3].name, "recorded meanwhile");
  assert.equal(h.live.set.tracks[0].slots[2], null);
  assert.match(h.status().pop(), /need 2 empty clip slots/);
});

test("generate writes the sample into the first empty slot below the selection", () => {
  const h = setup([clipA, clipB, null]);
  h.app.setParam("temperature", 0.8);
  h.app.generate();
  const req = h.requests.find((r) => r.op === "sample");
  assert.deepEqual(req.payload, { model: "mel_2bar", n: 1, temperature: 0.8 });
  h.reply("/bridge/seq", [req.id, 0, 1, seq(0, [[67, 0, 1, 100, 0]])]);
  h.reply("/bridge/done", [req.id]);
  assert.equal(h.live.set.tracks[0].slots[2].notes[0].pitch, 67);
});

test("morph: transport is reported, seqs are fired one bar ahead into alternating live slots, stop cancels", () => {
  const h = setup([clipA, clipB, null, null, null]);
  h.live.set.song.is_playing = 1;
  h.live.set.song.current_song_time = 2.0; // bar 0
  h.app.tick();
  const tr = h.live.set.calls.filter((c) => c[0] === "get" && c[2] === "current_song_time");
  assert.ok(tr.length > 0);
  h.app.captureA();
  h.app.setParam("steps", 3);
  h.app.setParam("barsperstep", 1);
  h.app.setParam("mode", 1);
  h.app.morph();
  const req = h.requests.find((r) => r.op === "morph");
  assert.equal(req.payload.start_bar, 2);
  assert.equal(req.payload.mode, "loop");
  h.reply("/bridge/ok", [req.id, JSON.stringify({ morph: 11 })]);
  h.reply("/bridge/seq", [req.id, 0, 3, seq(0, [[60, 0, 1, 100, 0]], { bar: 2, step: 0 })]);
  h.reply("/bridge/seq", [req.id, 1, 3, seq(1, [[62, 0, 1, 100, 0]], { bar: 3, step: 1 })]);
  const fired = h.live.set.tracks[0].fired;
  // walk the song forward at 120 BPM in 50 ms ticks
  const fireBeats = [];
  for (let beat = 2.0; beat < 16; beat += 0.1) {
    h.live.set.song.current_song_time = beat;
    h.c.advance(50);
    const before = fired.length;
    h.app.tick();
    if (fired.length > before) fireBeats.push(beat);
  }
  assert.deepEqual(fired, [2, 3]); // the two empty slots below A, alternating
  assert.deepEqual(fireBeats.map((b) => Math.floor(b / 4) + 1), [2, 3]); // fired in the bar before bar 2 and 3
  const slots = h.live.set.tracks[0].slots;
  assert.equal(slots[2].name, "LB live 1");
  assert.equal(slots[2].launch_quantization, 5);
  assert.deepEqual(slots[3].notes.map((n) => n.pitch), [62]);
  // a third seq reuses slot 2: old notes removed, new written -- and nothing else is edited
  const before = h.live.set.calls.length;
  h.reply("/bridge/seq", [req.id, 2, 3, seq(2, [[65, 0, 1, 100, 0]], { bar: 5, step: 2 })]);
  for (let beat = 16; beat < 20; beat += 0.1) { h.live.set.song.current_song_time = beat; h.c.advance(50); h.app.tick(); }
  assert.deepEqual(slots[2].notes.map((n) => n.pitch), [65]);
  assert.deepEqual(fired, [2, 3, 2]);
  const edits = h.live.set.calls.slice(before).filter((c) => c[0] === "set" || (c[0] === "call" && c[2] !== "get_notes_extended"))
    .map((c) => (c[0] === "set" ? "set " + c[2] : c[2]));
  assert.deepEqual(edits, ["remove_notes_extended", "add_new_notes", "fire"], "a morph step edits the notes only (2 undo steps) and fires");
  h.app.stop();
  const stop = h.requests.find((r) => r.op === "stop");
  assert.deepEqual(stop.payload, { morph: 11 });
  h.reply("/bridge/seq", [req.id, 0, 3, seq(0, [], { bar: 7 })]); // after stop: ignored
  assert.equal(h.app.scheduler.size(), 0);
});

test("knobs: throttled knob requests with the direction name; pushed seq plays on its bar", () => {
  const h = setup([clipA, null, null]);
  h.live.set.song.is_playing = 1;
  h.live.set.song.current_song_time = 4.5;
  h.app.knob(1, 0.3);
  h.app.knob(1, 0.6);
  h.app.knob(5, 0.9); // no direction on dial 6: nothing sent
  h.app.tick();
  const knobReqs = h.requests.filter((r) => r.op === "knob");
  assert.deepEqual(knobReqs.map((r) => r.payload), [{ model: "mel_2bar", direction: "register", value: 0.6 }]);
  h.reply("/bridge/ok", [knobReqs[0].id, "{}"]);
  h.reply("/bridge/seq", [knobReqs[0].id, 0, 1, seq(0, [[70, 0, 1, 100, 0]], { bar: 2 })]);
  h.reply("/bridge/done", [knobReqs[0].id]);
  for (let beat = 4.5; beat < 9; beat += 0.1) { h.live.set.song.current_song_time = beat; h.c.advance(50); h.app.tick(); }
  assert.deepEqual(h.live.set.tracks[0].fired, [1]);
  assert.deepEqual(h.live.set.tracks[0].slots[1].notes.map((n) => n.pitch), [70]);
});

test("accompany writes bass and drums next to the melody clip, never over existing clips", () => {
  const h = setup(null, { tracks: [
    { name: "Lead", slots: [clipA, null] },
    { name: "Bass", slots: [{ name: "taken", length: 4 }, null] },
    { name: "Other", slots: [null, null] },
    { name: "Drums", slots: [null, null] },
  ] });
  h.app.accompany();
  const req = h.requests.find((r) => r.op === "accompany");
  assert.equal(req.payload.model, "trio_16bar");
  assert.deepEqual(req.payload.notes, [[60, 0, 1, 100, 0], [64, 4, 1, 100, 0]]);
  const trio = JSON.stringify({ model: "trio_16bar", index: 0, bars: 16,
    notes: [[60, 0, 1, 100, 0], [36, 0, 2, 90, 1], [43, 2, 2, 90, 1], [36, 0, 0.25, 110, 2], [38, 1, 0.25, 100, 2]] });
  h.reply("/bridge/seq", [req.id, 0, 1, trio]);
  h.reply("/bridge/done", [req.id]);
  const t = h.live.set.tracks;
  assert.equal(t[1].slots[0].name, "taken");
  assert.deepEqual(t[2].slots[0].notes.map((n) => n.pitch), [36, 43]);  // bass on the first free MIDI track
  assert.equal(t[2].slots[0].name, "LB bass");
  assert.deepEqual(t[3].slots[0].notes.map((n) => n.pitch), [36, 38]);  // drums on "Drums"
  assert.equal(t[3].slots[0].loop_end, 64);
});

test("a song not in 4/4: Morph and the dials refuse with a clear status; nothing is scheduled on wrong bars", () => {
  const h = setup([clipA, clipB, null, null, null]);
  h.live.set.song.is_playing = 1;
  h.live.set.song.signature_numerator = 3;
  h.live.set.song.current_song_time = 2.0;
  h.c.advance(50);
  h.app.tick();
  assert.match(h.status().pop(), /the song is in 3\/4: the models write 4\/4 bars/);
  h.app.captureA();
  assert.equal(h.app.morph(), null);
  assert.match(h.status().pop(), /song is in 3\/4/);
  assert.equal(h.requests.filter((r) => r.op === "morph").length, 0);
  h.app.knob(0, 0.5);
  h.c.advance(200);
  h.app.tick();
  assert.equal(h.requests.filter((r) => r.op === "knob").length, 0);
  assert.equal(h.app.accompany(), null);
  assert.equal(h.requests.filter((r) => r.op === "accompany").length, 0);
  // Generate still writes a clip: the model's 2 bars of 4 beats (8 beats), not 2 bars of 3
  h.app.generate();
  const req = h.requests.find((r) => r.op === "sample");
  h.reply("/bridge/seq", [req.id, 0, 1, seq(0, [[67, 0, 1, 100, 0]])]);
  h.reply("/bridge/done", [req.id]);
  assert.equal(h.live.set.tracks[0].slots[2].loop_end, 8);
  // back in 4/4 the status says so
  h.live.set.song.signature_numerator = 4;
  h.c.advance(50);
  h.app.tick();
  assert.match(h.status().pop(), /4\/4 again/);
});

test("the meter changing to 6/8 during a morph stops it; the morph's start bar uses the real bar length", () => {
  const h = setup([clipA, clipB, null, null, null]);
  h.live.set.song.is_playing = 1;
  h.live.set.song.current_song_time = 5.0; // bar 1 of 4/4
  h.app.tick();
  h.app.captureA();
  h.app.morph();
  const req = h.requests.find((r) => r.op === "morph");
  assert.equal(req.payload.start_bar, 3);
  h.reply("/bridge/ok", [req.id, JSON.stringify({ morph: 4 })]);
  h.reply("/bridge/seq", [req.id, 0, 3, seq(0, [[60, 0, 1, 100, 0]], { bar: 3, step: 0 })]);
  assert.equal(h.app.scheduler.size(), 1);
  h.live.set.song.signature_numerator = 6;
  h.live.set.song.signature_denominator = 8;
  h.c.advance(50);
  h.app.tick();
  assert.deepEqual(h.requests.find((r) => r.op === "stop").payload, { morph: 4 });
  assert.equal(h.app.scheduler.size(), 0);
  assert.match(h.status().pop(), /the song is in 6\/8/);
});

test("Scale on: sample, interpolate, morph, knob and accompany carry the song's scale; off: none do", () => {
  const tracks = [{ name: "Lead", slots: [clipA, clipB, null, null, null, null, null] }, { name: "Bass", slots: [null] }, { name: "Drums", slots: [null] }];
  for (const on of [true, false]) {
    const h = setup(null, { tracks, song: { root_note: 9, scale_intervals: [0, 2, 3, 5, 7, 8, 10] } });
    h.live.set.song.is_playing = 1;
    h.app.tick();
    h.app.setParam("scale", on ? 1 : 0);
    h.app.captureA();
    h.app.generate();
    h.app.interpolate();
    h.app.morph();
    h.app.accompany();
    h.app.knob(0, 0.2);
    h.c.advance(200);
    h.app.tick();
    const ops = ["sample", "interpolate", "morph", "accompany", "knob"];
    for (const op of ops) {
      const r = h.requests.find((x) => x.op === op);
      assert.ok(r, `${op} was sent`);
      if (on) assert.deepEqual(r.payload.scale, { root: 9, intervals: [0, 2, 3, 5, 7, 8, 10] }, op);
      else assert.ok(!("scale" in r.payload), `${op} has no scale when Scale is off`);
    }
  }
});

test("Scale on in a Live without a song scale (Live 11): a status line, no request", () => {
  const h = setup([clipA, null]);
  delete h.live.set.song.root_note;
  delete h.live.set.song.scale_intervals;
  h.app.setParam("scale", 1);
  assert.equal(h.app.generate(), null);
  assert.match(h.status().pop(), /Scale is on, but Live gives no song scale/);
  assert.equal(h.requests.filter((r) => r.op === "sample").length, 0);
});

test("transport: tempo, play state and meter come from observers; a tick reads only the song position", () => {
  const h = setup([clipA, null, null]);
  assert.deepEqual(h.live.set.observers.map((o) => o.prop).sort(), ["is_playing", "signature_denominator", "signature_numerator", "tempo"]);
  h.live.set.song.is_playing = 1;
  h.live.set.song.tempo = 133;
  h.live.set.song.current_song_time = 3.25;
  const created = h.live.set.created;
  const calls = h.live.set.calls.length;
  h.c.advance(50);
  h.app.tick();
  assert.equal(h.live.set.created, created, "no LiveAPI object is created per tick");
  assert.deepEqual(h.live.set.calls.slice(calls), [["get", "live_set", "current_song_time"]]);
  h.live.set.calls.length = 0;
  h.live.set.song.current_song_time = 3.5;
  h.c.advance(50);
  h.app.tick();
  assert.equal(h.live.set.calls.filter((c) => c[0] === "get").length, 1);
  // what the daemon is told carries the observed tempo and play state
  const last = h.transports[h.transports.length - 1];
  assert.deepEqual([last.tempo, last.playing, last.numerator, last.denominator], [133, true, 4, 4]);
});

test("A, B and the live clips are held by Live API id: a scene inserted above them does not redirect anything", () => {
  const h = setup([clipA, clipB, null, null, null, null]);
  h.live.set.song.is_playing = 1;
  h.live.set.song.current_song_time = 1.0;
  h.app.tick();
  h.app.captureA();
  h.live.set.highlighted = { track: 0, slot: 1 };
  h.app.captureB();
  h.app.setParam("steps", 3);
  h.app.morph();
  const req = h.requests.find((r) => r.op === "morph");
  h.reply("/bridge/ok", [req.id, JSON.stringify({ morph: 1 })]);
  h.reply("/bridge/seq", [req.id, 0, 3, seq(0, [[60, 0, 1, 100, 0]], { bar: 2, step: 0 })]);
  for (let beat = 1.0; beat < 8; beat += 0.1) { h.live.set.song.current_song_time = beat; h.c.advance(50); h.app.tick(); }
  const slots = h.live.set.tracks[0].slots;
  assert.equal(slots[2].name, "LB live 1");
  // the user inserts two scenes at the top: everything moves down by two
  h.live.set.insertScene(0);
  h.live.set.insertScene(0);
  assert.equal(slots[4].name, "LB live 1");
  h.reply("/bridge/seq", [req.id, 1, 3, seq(1, [[62, 0, 1, 100, 0]], { bar: 3, step: 1 })]);
  h.reply("/bridge/seq", [req.id, 2, 3, seq(2, [[64, 0, 1, 100, 0]], { bar: 4, step: 2 })]);
  for (let beat = 8; beat < 16; beat += 0.1) { h.live.set.song.current_song_time = beat; h.c.advance(50); h.app.tick(); }
  assert.deepEqual(slots.map((c) => (c ? c.name : null)), [null, null, "A", "B", "LB live 1", "LB live 2", null, null]);
  assert.deepEqual(slots[4].notes.map((n) => n.pitch), [64]);   // step 2 went into LB live 1 where it is now
  assert.deepEqual(h.live.set.tracks[0].fired, [2, 5, 4]);
  // Interpolate reads A and B where they are now, and writes below A's new slot
  h.app.stop();
  h.app.setParam("steps", 2);
  h.app.interpolate();
  const ip = h.requests.find((r) => r.op === "interpolate");
  assert.deepEqual(ip.payload.a, [[60, 0, 1, 100, 0], [64, 4, 1, 100, 0]]);
  assert.deepEqual(ip.payload.b, [[72, 0, 2, 90, 0]]);
  assert.deepEqual(JSON.parse(JSON.stringify(h.app.state())).a, 2);   // saved with the set as the slot it is in now
  // A deleted: a clear status, nothing read from whatever is in its old slot
  slots[2] = null;
  assert.equal(h.app.interpolate(), null);
  assert.match(h.status().pop(), /clip A is no longer on this track/);
});

// ---- palettes: Learn and Mine ----------------------------------------------------------------

const userClip = (name, pitch) => ({ name, length: 8, notes: [{ pitch, start_time: 0, duration: 1, velocity: 100 }, { pitch: pitch + 2, start_time: 4, duration: 1, velocity: 100 }] });
const PALETTE = { format: "latent-bridge-palette", format_version: 1, name: "Lead_1", model: "mel_2bar", z_size: 2, windows: 5,
  mean: [0, 0], directions: [[1, 0], [0, 1]], scales: [1, 1], rest: 0.1, info: {} };

function learned(layout) {
  const h = setup(layout, { tracks: [{ name: "Lead 1", slots: layout }] });
  h.app.learn();
  const req = h.requests.find((r) => r.op === "learn");
  assert.ok(req, h.status().join("\n"));
  h.reply("/bridge/ok", [req.id, JSON.stringify({ palette: "Lead_1", model: "mel_2bar", windows: 5, directions: 2, clips: 3, encode_ms: 40, fit_ms: 1 })]);
  const exp = h.requests.find((r) => r.op === "palette_export");
  h.reply("/bridge/ok", [exp.id, JSON.stringify({ palette: PALETTE })]);
  return { h, req, exp };
}

test("Learn sends every user clip of the track (not the device's LB clips) under the track's name", () => {
  const { h, req, exp } = learned([userClip("verse", 60), userClip("LB sample mel_2bar", 40), userClip("chorus", 64), null, userClip("bridge", 67)]);
  assert.equal(req.payload.model, "mel_2bar");
  assert.equal(req.payload.name, "Lead_1");                          // "Lead 1" made a palette name
  assert.deepEqual(req.payload.clips.map((c) => c[0][0]), [60, 64, 67]);   // the LB clip is left out
  assert.deepEqual(exp.payload, { model: "mel_2bar", name: "Lead_1" });
  assert.match(h.status().pop(), /learned 'Lead_1': 5 windows of 3 clips in 41 ms/);
  assert.deepEqual(h.app.state().palette, PALETTE);                   // saved with the set
});

test("Learn with fewer than 3 clips: a status line, no request", () => {
  const h = setup([userClip("verse", 60), userClip("LB live 1", 60), userClip("chorus", 64), null]);
  assert.equal(h.app.learn(), null);
  assert.equal(h.requests.filter((r) => r.op === "learn").length, 0);
  assert.match(h.status().pop(), /at least 3 clips/);
});

test("Mine on: Generate, Morph (no B needed) and the dials use the palette; off: none do", () => {
  const { h } = learned([userClip("verse", 60), userClip("chorus", 64), userClip("bridge", 67), null, null, null]);
  h.live.set.song.is_playing = 1;
  h.live.set.song.current_song_time = 2.0;
  h.app.tick();
  h.app.generate();
  assert.equal(h.requests.filter((r) => r.op === "sample").pop().payload.palette, undefined);   // Mine is off
  h.app.setParam("mine", 1);
  h.app.generate();
  assert.deepEqual(h.requests.filter((r) => r.op === "sample").pop().payload, { model: "mel_2bar", n: 1, temperature: 0.5, palette: "Lead_1" });
  h.app.captureA();                                                   // A = slot 0; no B set
  h.app.morph();
  const morph = h.requests.filter((r) => r.op === "morph").pop().payload;
  assert.equal(morph.palette, "Lead_1");
  assert.equal(morph.b, undefined);
  assert.equal(morph.a[0][0], 60);
  h.app.knob(0, 0.4);
  h.app.knob(4, 0.2);               // dial 5: the palette has 2 directions, and the model none there
  h.app.tick();
  assert.deepEqual(h.requests.filter((r) => r.op === "knob").map((r) => r.payload),
    [{ model: "mel_2bar", palette: "Lead_1", direction: 0, value: 0.4 }]);
  h.app.setParam("mine", 0);
  h.app.generate();
  assert.equal(h.requests.filter((r) => r.op === "sample").pop().payload.palette, undefined);
});

test("a palette saved with the set is imported into the daemon when the device connects", () => {
  const h = setup([clipA]);
  const restored = setup([clipA]);
  restored.app.restore({ model: "mel_2bar", palette: PALETTE });
  const imp = restored.requests.filter((r) => r.op === "palette_import");
  assert.equal(imp.length, 1);
  assert.deepEqual(imp[0].payload, { palette: PALETTE });
  restored.app.setParam("mine", 1);
  restored.app.generate();
  assert.equal(restored.requests.filter((r) => r.op === "sample").pop().payload.palette, "Lead_1");
  assert.equal(h.requests.filter((r) => r.op === "palette_import").length, 0);   // nothing saved: nothing imported
});
