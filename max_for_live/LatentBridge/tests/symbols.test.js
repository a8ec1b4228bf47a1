"use strict";
// Max symbols (issue #22): Max interns every symbol it sees for the life of the process, and every
// string that goes out through [udpsend] or comes in from [udpreceive] is one. A device that sends
// its song position and knob values as JSON text, and gets its sequences back as JSON text, makes a
// new symbol with almost every message while the song plays. Protocol 1.2 carries that traffic as
// plain numbers (docs/osc-protocol.md, "Typed forms"); these tests count the distinct strings on the
// wire -- the symbols Max would intern -- and check that playing adds none.
//
// 1. the client's typed requests and numeric replies, unit by unit;
// 2. the device (lb_app) against a scripted daemon, every message encoded as [udpsend] would;
// 3. END-TO-END: the device against a real `python -m bridge serve` (the shipped mel_2bar) over
//    loopback UDP through max_wire.js: N seconds of a playing song with transport reports, dial
//    moves and a looping morph, then a stopped song; no new symbol after the warm-up. The same run
//    in the JSON forms (numericWire: false) shows the growth the typed forms remove.
const test = require("node:test");
const assert = require("node:assert/strict");
const fs = require("fs");
const path = require("path");
const { code, clock, startDaemon, connectDevice, freePort, sleep, until } = require("./helpers");
const { createLiveSet } = require("./fake_live");
const { udpsendEncode } = require("./max_wire");
const osc = code("lb_osc");
const { createClient, decodeNumericSeq } = code("lb_client");
const { createApp } = code("lb_app");
const { createLive } = code("lb_live");

const ROOT = path.resolve(__dirname, "..", "..", "..");
const PY = path.join(ROOT, ".venv", "bin", "python");

// The strings of one OSC datagram as [udpsend] would send it or [udpreceive] hand it over: its
// address and every 's' argument (Max symbols).
function stringsOf(address, args) {
  return [String(address)].concat(args.filter((a) => typeof a === "string"));
}

// ---- 1. the client -------------------------------------------------------------------------------

function connected(opts = {}) {
  const c = clock();
  const sent = [];
  const client = createClient(Object.assign({ send: (address, args) => sent.push([address, args]), now: c.now, replyPort: 17442 }, opts));
  client.start();
  const hello = sent[sent.length - 1];
  client.handleMessage("/bridge/ok", [hello[1][0], JSON.stringify({ protocol: "1.2", notes_format: "numeric", typed: ["knob", "transport"] })]);
  return { c, sent, client, hello };
}

test("client: hello asks for numeric notes; typed requests go out as plain atoms, their typed ok comes back as an object", () => {
  const h = connected({ notesFormat: "numeric" });
  assert.deepEqual(JSON.parse(h.hello[1][1]), { reply_port: 17442, notes_format: "numeric" });
  assert.equal(h.client.hasTyped("transport"), true);
  assert.equal(h.client.hasTyped("sample"), false);
  let got = null;
  const id = h.client.requestTyped("transport", [120, 9.25, 1, 4, 4], { ok: (r) => { got = r; } });
  assert.deepEqual(h.sent.pop(), ["/bridge/transport", [id, 120, 9.25, 1, 4, 4]]);
  h.client.handleMessage("/bridge/ok", [id, 120, 9.25, 2, 1]);
  assert.deepEqual(got, { tempo: 120, beat: 9.25, bar: 2, playing: 1 });
  // knob: the fields that stay the same go in one JSON object, the same text every time
  const k1 = h.client.requestTyped("knob", ["mel_2bar", "pc1", 0.5], {}, { scale: { root: 2, intervals: [0, 2] } });
  const k2 = h.client.requestTyped("knob", ["mel_2bar", "pc1", -0.25], {}, { scale: { root: 2, intervals: [0, 2] } });
  const [m1, m2] = h.sent.slice(-2);
  assert.deepEqual(m1, ["/bridge/knob", [k1, "mel_2bar", "pc1", 0.5, '{"scale":{"root":2,"intervals":[0,2]}}']]);
  assert.equal(m2[1][4], m1[1][4]);
  // every message is something [udpsend] can send
  for (const [address, args] of h.sent) udpsendEncode(address, args);
});

test("client: a token rides in the typed request's JSON object; a daemon without typed forms is not sent any", () => {
  const h = connected({ token: "correct-horse-battery" });
  const id = h.client.requestTyped("transport", [120, 0, 0, 4, 4], {});
  assert.deepEqual(h.sent.pop()[1], [id, 120, 0, 0, 4, 4, '{"token":"correct-horse-battery"}']);
  const old = createClient({ send: () => {}, now: clock().now, replyPort: 1 });
  old.start();
  assert.equal(old.hasTyped("transport"), false);
});

test("client: numeric seqs decode to the JSON form's object, extras nested again, parts merged", () => {
  const h = connected({ notesFormat: "numeric" });
  const seqs = [];
  const id = h.client.request("knob", {}, { stream: true, seq: (s, i, n) => seqs.push([s, i, n]) });
  const head = [id, 0, 1, "mel_2bar", 2];
  const extras = [5, "knob.direction", "pc1", "knob.index", 1, "knob.value", 0.5, "knobs.pc1", 0.5, "bar", 17];
  h.client.handleMessage("/bridge/seq", head.concat([1, 2], extras, [1, 62, 1, 0.5, 90, 0]));   // part 1 first
  assert.equal(seqs.length, 0);
  h.client.handleMessage("/bridge/seq", head.concat([0, 2], extras, [2, 60, 0, 0.5, 100, 0, 61, 0.5, 0.5, 100, 0]));
  assert.equal(seqs.length, 1);
  assert.deepEqual(seqs[0][0], { model: "mel_2bar", index: 0, bars: 2, knob: { direction: "pc1", index: 1, value: 0.5 },
    knobs: { pc1: 0.5 }, bar: 17, notes: [[60, 0, 0.5, 100, 0], [61, 0.5, 0.5, 100, 0], [62, 1, 0.5, 90, 0]] });
  assert.deepEqual(decodeNumericSeq([1, 0, 1, "trio", 4, 0, 1, 2, "tracks[0]", "melody", "tracks[1]", "bass", 0]).tracks, ["melody", "bass"]);
  // a seq whose note count lies is a bad reply, not a crash
  let err = null;
  const bad = h.client.request("sample", {}, { error: (c) => { err = c; } });
  h.client.handleMessage("/bridge/seq", [bad, 0, 1, "mel_2bar", 2, 0, 1, 0, 2, 60, 0, 1, 100, 0]);
  assert.equal(err, "bad_reply");
});

// ---- 2. the device against a scripted daemon -----------------------------------------------------

const clipA = { name: "A", length: 8, notes: [{ pitch: 60, start_time: 0, duration: 1, velocity: 100 }] };
const clipB = { name: "B", length: 8, notes: [{ pitch: 72, start_time: 0, duration: 2, velocity: 90 }] };

// The device with a daemon that speaks protocol 1.2 (typed: true) or 1.1. Every message the device
// sends is encoded as [udpsend] would; replies are what the daemon would send in the forms it was
// asked for. Returns the strings of every message, in order, with a mark per tick.
function scriptedPlay(typed, seconds) {
  const c = clock();
  const live = createLiveSet({ tracks: [{ name: "Lead", slots: [clipA, clipB, null, null] }], highlighted: { track: 0, slot: 0 } });
  const strings = [];       // [tick, string]
  let tick = 0;
  let app;
  let helloFormat = null;
  const reply = (address, args) => { strings.push(...stringsOf(address, args).map((x) => [tick, x])); app.handleMessage(address, args); };
  app = createApp({
    live: createLive(live.LiveAPI), now: c.now, replyPort: 17001, ui: () => {},
    send: (address, args) => {
      udpsendEncode(address, args);                 // throws on anything Max cannot send
      strings.push(...stringsOf(address, args).map((x) => [tick, x]));
      const op = address.replace("/bridge/", "");
      const id = args[0];
      const json = typeof args[1] === "string" && args[1].charAt(0) === "{" && args.length === 2 ? JSON.parse(args[1]) : null;
      if (op === "hello") {
        helloFormat = json.notes_format || "json";
        return reply("/bridge/ok", [id, JSON.stringify(typed ? { protocol: "1.2", session: "s", notes_format: helloFormat, typed: ["knob", "transport"] } : { protocol: "1.1", session: "s" })]);
      }
      if (op === "models") return reply("/bridge/ok", [id, JSON.stringify({ models: [{ name: "mel_2bar", kind: "melody", bars: 2, steps_per_bar: 16 }] })]);
      if (op === "directions") return reply("/bridge/ok", [id, JSON.stringify({ directions: [{ index: 0, name: "density" }, { index: 1, name: "register" }] })]);
      if (op === "transport") {
        const beat = json ? json.beat : args[2];
        return json ? reply("/bridge/ok", [id, JSON.stringify({ tempo: 120, beat, bar: Math.floor(beat / 4), playing: true })])
          : reply("/bridge/ok", [id, 120, beat, Math.floor(beat / 4), 1]);
      }
      if (op === "knob") {
        const value = json ? json.value : args[3];
        if (json) reply("/bridge/ok", [id, JSON.stringify({ direction: json.direction, index: 0, value })]);
        else reply("/bridge/ok", [id, args[2], 0, value]);
        const bar = Math.floor(live.set.song.current_song_time / 4) + 1;
        const notes = [[60 + Math.round(value * 10), 0, 0.5, 100, 0]];
        if (helloFormat === "numeric") {
          reply("/bridge/seq", [id, 0, 1, "mel_2bar", 2, 0, 1, 4, "knob.direction", "density", "knob.value", value, "knobs.density", value, "bar", bar, 1].concat(notes[0]));
        } else {
          reply("/bridge/seq", [id, 0, 1, JSON.stringify({ model: "mel_2bar", index: 0, bars: 2, part: 0, parts: 1,
            knob: { direction: "density", value }, knobs: { density: value }, bar, notes })]);
        }
        return reply("/bridge/done", [id]);
      }
      if (op === "encode") return reply("/bridge/ok", [id, JSON.stringify({ model: "mel_2bar", z: [0.5, 0.25] })]);
      if (op === "ping") return reply("/bridge/ok", [id, JSON.stringify({ pong: true, time: c.t / 1000 })]);
      return undefined;
    },
  });
  app.start();
  app.setModel("mel_2bar");
  assert.equal(app.captureA(), true);
  live.set.song.tempo = 120;
  live.set.song.is_playing = 1;
  const t0 = c.t;
  for (tick = 1; tick <= seconds * 20; tick++) {           // the [metro 50]
    c.advance(50);
    live.set.song.current_song_time = (c.t - t0) / 500;   // 120 bpm
    if (tick % 3 === 0) app.knob(tick % 2, Math.sin(tick / 7));
    app.tick();
  }
  return strings;
}

function growth(strings, splitTick) {
  const before = new Set(strings.filter(([t]) => t <= splitTick).map(([, s]) => s));
  const after = new Set(strings.filter(([t]) => t > splitTick).map(([, s]) => s));
  return { before: before.size, added: [...after].filter((s) => !before.has(s)) };
}

test("device vs a scripted 1.2 daemon: transport and dial traffic while playing adds no string after the first second", () => {
  const strings = scriptedPlay(true, 6);
  const { before, added } = growth(strings, 20);
  assert.deepEqual(added, [], "new symbols after the first second");
  assert.ok(strings.filter(([, s]) => s === "/bridge/transport").length >= 40, "the song position was reported");
  assert.ok(strings.filter(([, s]) => s === "/bridge/knob").length >= 20, "the dials were sent");
  assert.ok(before < 30, `${before} distinct strings`);
});

test("device vs a scripted 1.1 daemon: the JSON forms still work (and make a string per message)", () => {
  const strings = scriptedPlay(false, 6);
  const { added } = growth(strings, 20);
  assert.ok(strings.some(([, s]) => /^\{"tempo":120,"beat":/.test(s)), "JSON transport");
  assert.ok(added.length > 100, `only ${added.length} new strings in the JSON forms`);
});

// ---- 3. END-TO-END: the real daemon, the shipped mel_2bar ------------------------------------------

// The symbols of a Max-like wire from the given positions in its sent / received logs on.
function wireSymbols(wire, from = { sent: 0, received: 0 }) {
  const out = new Set();
  for (const buf of wire.sent.slice(from.sent)) for (const m of osc.decode([...buf])) for (const s of stringsOf(m.address, m.args)) out.add(s);
  for (const m of wire.received.slice(from.received)) for (const s of stringsOf(m.address, m.args)) out.add(s);
  return out;
}

const mark = (wire) => ({ sent: wire.sent.length, received: wire.received.length });

// One device session: connect, A and B, a looping morph, then WARM_S of play (warm-up) and PLAY_S
// more of play with the dials moving, then STOP_S with the song stopped and nothing touched (a ping
// would be a new symbol: its reply carries the server's time). Returns the distinct symbols after
// each phase and what the play phase sent and received.
const WARM_S = 3;
const PLAY_S = 5;
const STOP_S = 3;

async function playSession(t, port, daemon, appOpts) {
  const A = { name: "A", length: 8, notes: [0, 1, 2, 3, 4, 5, 6, 7].map((i) => ({ pitch: 60 + (i % 4) * 2, start_time: i, duration: 0.5, velocity: 100 })) };
  const B = { name: "B", length: 8, notes: [0, 2, 4, 6].map((i) => ({ pitch: 72 - i, start_time: i, duration: 1, velocity: 90 })) };
  const live = createLiveSet({ tracks: [{ name: "Lead", slots: [A, B, null, null, null] }], highlighted: { track: 0, slot: 0 } });
  live.set.song.tempo = 240;                                   // a bar per second
  const { app, statuses, ui, wire } = await connectDevice(t, port, live, appOpts);
  const tick = () => { if (daemon.exited !== null) throw new Error("daemon exited:\n" + daemon.log.join("")); app.tick(); };
  await until(() => statuses.some((s) => /model\(s\)/.test(s)), 60000, tick, "connection + models\n" + daemon.log.join(""));
  app.setModel("mel_2bar");
  await until(() => ui.some((u) => u[0] === "knoblabels" && u[1][0] === "note_density"), 20000, tick, "the dials' directions");
  assert.equal(app.captureA(), true);
  live.set.highlighted = { track: 0, slot: 1 };
  assert.equal(app.captureB(), true);
  app.setParam("steps", 2);
  app.setParam("barsperstep", 1);
  app.setParam("mode", 1);                                     // loop: a step every bar, for as long as it plays
  live.set.song.is_playing = 1;
  let songAt = Date.now();
  let songBeat = 0;
  const songTick = () => {
    if (live.set.song.is_playing) live.set.song.current_song_time = songBeat + (Date.now() - songAt) / 250;
    tick();
  };
  await until(() => false, 300, songTick, "").catch(() => {});
  app.morph();
  let moves = 0;
  const run = async (ms, dials) => {
    const end = Date.now() + ms;
    let next = 0;
    while (Date.now() < end) {
      if (dials && Date.now() >= next) {                      // a dial move every 150 ms, always a new value
        moves++;
        app.knob(moves % 3, Math.round(1000 * Math.sin(moves * 0.77)) / 1000);
        next = Date.now() + 150;
      }
      songTick();
      await sleep(20);
    }
  };
  await run(WARM_S * 1000, true);
  const m1 = mark(wire);
  const s1 = wireSymbols(wire);
  await run(PLAY_S * 1000, true);
  const m2 = mark(wire);
  const s2 = wireSymbols(wire);
  songBeat = live.set.song.current_song_time;
  live.set.song.is_playing = 0;
  await run(STOP_S * 1000, false);     // idle: only the transport heartbeat keeps the connection heard
  const s3 = wireSymbols(wire);
  const played = { sent: wire.sent.slice(m1.sent, m2.sent).map((b) => osc.decode([...b])[0]), received: wire.received.slice(m1.received, m2.received) };
  app.stop();
  await until(() => app.client.pendingCount() === 0, 5000, songTick, "stop acknowledged").catch(() => {});
  assert.ok(!statuses.some((s) => /failed/.test(s)), statuses.join("\n"));
  return { s1, s2, s3, played, wire };
}

test("e2e: a playing song with dial moves and a looping morph interns no new symbol after the warm-up", { timeout: 600000 }, async (t) => {
  assert.ok(fs.existsSync(PY), "no .venv: run `make setup-dev` first");
  const port = await freePort();
  const daemon = startDaemon(t, PY, ROOT, ["--port", String(port), "--models", path.join(ROOT, "bridge", "models", "mel_2bar"),
    "--no-default-models", "--workers", "1"]);

  const typed = await playSession(t, port, daemon, {});
  const count = (list, address) => list.filter((m) => m.address === address).length;
  // the play phase did carry the traffic the count is about
  assert.ok(count(typed.played.sent, "/bridge/transport") >= 4 * PLAY_S, `transport reports: ${count(typed.played.sent, "/bridge/transport")}`);
  assert.ok(count(typed.played.sent, "/bridge/knob") >= 2 * PLAY_S, `knob requests: ${count(typed.played.sent, "/bridge/knob")}`);
  assert.ok(count(typed.played.received, "/bridge/seq") >= PLAY_S, `seqs: ${count(typed.played.received, "/bridge/seq")}`);
  assert.ok(typed.played.sent.filter((m) => m.address === "/bridge/transport").every((m) => m.args.every((a) => typeof a === "number")));
  const newWhilePlaying = [...typed.s2].filter((s) => !typed.s1.has(s));
  const newWhileStopped = [...typed.s3].filter((s) => !typed.s2.has(s));
  assert.deepEqual(newWhilePlaying, [], "symbols new while playing");
  assert.deepEqual(newWhileStopped, [], "symbols new while stopped");
  t.diagnostic(`the ${typed.s3.size} symbols of the typed forms: ${[...typed.s3].map((x) => (x.length > 40 ? x.slice(0, 37) + "..." : x)).join(" | ")}`);

  const json = await playSession(t, port, daemon, { numericWire: false });
  const jsonNew = [...json.s2].filter((s) => !json.s1.has(s)).length;
  t.diagnostic(`distinct symbols, typed forms: ${typed.s1.size} after ${WARM_S} s of play, ${typed.s2.size} after ` +
    `${WARM_S + PLAY_S} s, ${typed.s3.size} after ${STOP_S} s stopped; JSON forms: ${json.s1.size}, ${json.s2.size} ` +
    `(+${jsonNew} in ${PLAY_S} s, ${(jsonNew / PLAY_S).toFixed(1)}/s), ${json.s3.size}`);
  assert.ok(jsonNew >= 4 * PLAY_S, `the JSON forms made only ${jsonNew} new symbols: the count would not see growth`);
});
