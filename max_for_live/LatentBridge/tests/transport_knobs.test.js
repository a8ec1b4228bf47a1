"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");
const { code } = require("./helpers");
const { createReporter } = code("lb_transport");
const knobs = code("lb_knobs");

test("transport reporter: several reports per beat while playing, slow heartbeat when stopped", () => {
  for (const tempo of [60, 120, 180]) {
    const r = createReporter({ perBeat: 4, maxIntervalMs: 250 });
    let sent = 0;
    const beatMs = 60000 / tempo;
    for (let t = 0; t < 4 * beatMs; t += 10) {
      if (r.update({ tempo, beat: t / beatMs, playing: true }, t)) sent++;
    }
    const perBeat = sent / 4;
    assert.ok(perBeat >= 3.5 && perBeat <= 5, `tempo ${tempo}: ${perBeat} reports per beat`);
  }
  const r = createReporter({ idleIntervalMs: 1000 });
  let sent = 0;
  for (let t = 0; t < 3000; t += 50) if (r.update({ tempo: 120, beat: 4, playing: false }, t)) sent++;
  assert.equal(sent, 3);
});

test("transport reporter: immediate report on start, tempo change and position jump", () => {
  const r = createReporter({ maxIntervalMs: 250 });
  assert.ok(r.update({ tempo: 120, beat: 0, playing: false }, 0));
  assert.deepEqual(r.update({ tempo: 120, beat: 0, playing: true, numerator: 4, denominator: 4 }, 10),
    { tempo: 120, beat: 0, playing: true, numerator: 4, denominator: 4 });
  assert.equal(r.update({ tempo: 120, beat: 0.04, playing: true }, 30), null);
  assert.ok(r.update({ tempo: 128, beat: 0.08, playing: true }, 50));       // tempo change
  assert.ok(r.update({ tempo: 128, beat: 32, playing: true }, 60));         // jump
});

test("dials map to the model's directions; extra dials are disabled", () => {
  const m = knobs.mapDirections({ name: "mel", directions: ["density", { name: "range" }] });
  assert.equal(m.length, 8);
  assert.deepEqual(m.slice(0, 3).map((x) => [x.name, x.enabled]), [["density", true], ["range", true], ["-", false]]);
  assert.deepEqual(knobs.knobPayload("mel", m, 1, 1.7), { model: "mel", direction: "range", value: 1 });
  assert.equal(knobs.knobPayload("mel", m, 5, 0.3), null);
});

test("dial throttle sends the latest value per dial at most once per interval", () => {
  const th = knobs.createThrottle(100);
  th.push(0, 0.1); th.push(0, 0.2); th.push(3, -0.5);
  assert.deepEqual(th.due(0), [{ knob: 0, value: 0.2 }, { knob: 3, value: -0.5 }]);
  th.push(0, 0.3);
  assert.deepEqual(th.due(50), []);
  th.push(0, 0.4);
  assert.deepEqual(th.due(100), [{ knob: 0, value: 0.4 }]);
  assert.deepEqual(th.due(300), []);
});
