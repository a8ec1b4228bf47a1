"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");
const { code } = require("./helpers");
const sch = code("lb_scheduler");

test("bar length from the time signature (song time counts quarter notes)", () => {
  assert.equal(sch.barBeats(4, 4), 4);
  assert.equal(sch.barBeats(3, 4), 3);
  assert.equal(sch.barBeats(6, 8), 3);
  assert.equal(sch.barBeats(7, 8), 3.5);
  assert.equal(sch.barBeats(5, 4), 5);
  assert.equal(sch.barBeats(2, 2), 4);
  assert.equal(sch.barBeats(0, 4), null);
  assert.equal(sch.barBeats(4, 0), null);
  assert.equal(sch.beatsPerBarOf({ numerator: 12, denominator: 8 }), 6);
  assert.throws(() => sch.beatsPerBarOf({ beat: 0 }), /time signature/);
  assert.throws(() => sch.barOf(3, undefined), /beatsPerBar/); // no silent 4/4 default
});

test("time to bar at several tempos, positions and meters", () => {
  // 120 BPM, 4/4: a beat is 500 ms, a bar 2000 ms
  assert.equal(sch.timeToBarMs(0, 120, 1, 4), 2000);
  assert.equal(sch.timeToBarMs(3, 120, 1, 4), 500);
  assert.equal(sch.timeToBarMs(6.5, 120, 2, 4), 750);
  // 90 BPM: a beat is 666.67 ms
  assert.ok(Math.abs(sch.timeToBarMs(2, 90, 1, 4) - 1333.333) < 0.01);
  // 174 BPM
  assert.ok(Math.abs(sch.timeToBarMs(15.25, 174, 4, 4) - 0.75 * 60000 / 174) < 1e-9);
  // 60 BPM, bar already started
  assert.equal(sch.timeToBarMs(9, 60, 2, 4), -1000);
  assert.equal(sch.barOf(7.999, 4), 1);
  assert.equal(sch.barOf(8, 4), 2);
  assert.equal(sch.nextBar(8, 4), 3);
  assert.equal(sch.nextBar(7.5, 4), 2);
  // 3/4: bar 2 starts at beat 6; 6/8 likewise (3 quarter notes); 7/8: bar 2 at beat 7
  assert.equal(sch.barOf(5.9, 3), 1);
  assert.equal(sch.barOf(6, 3), 2);
  assert.equal(sch.timeToBarMs(5, 120, 2, 3), 500);
  assert.equal(sch.barOf(6.99, 3.5), 1);
  assert.equal(sch.nextBar(7, 3.5), 3);
  assert.equal(sch.timeToBarMs(6, 60, 2, 3.5), 1000);
});

// Drive the scheduler with a simulated transport, polling every `pollMs`, and report at which
// beat each item was fired. Live starts a fired clip at the next bar line (1-bar launch
// quantization), so "started at" = bar line following the fire position.
function simulate(tempo, sig, startBeat, items, pollMs, untilBeat) {
  const s = sch.createScheduler({ marginMs: 60 });
  const bpb = sch.barBeats(sig[0], sig[1]);
  items.forEach((it) => s.add(it));
  const fired = [];
  const late = [];
  for (let beat = startBeat; beat < untilBeat; beat += pollMs * tempo / 60000) {
    for (const a of s.poll({ beat, tempo, playing: true, numerator: sig[0], denominator: sig[1] })) {
      if (a.type === "fire") fired.push({ name: a.item.name, bar: a.bar, firedAt: beat, startsAt: sch.nextBar(beat, bpb) });
      else late.push({ name: a.item.name, bar: a.bar, retarget: a.retargetBar });
    }
  }
  return { fired, late };
}

for (const sig of [[4, 4], [3, 4], [6, 8], [7, 8]]) {
  for (const tempo of [60, 90, 120, 174, 240]) {
    for (const start of [0, 1.3, 7.99, 30.5]) {
      test(`each seq starts exactly on its bar (${sig[0]}/${sig[1]}, tempo ${tempo}, from beat ${start})`, () => {
        const bpb = sch.barBeats(sig[0], sig[1]);
        const first = sch.nextBar(start, bpb) + 1;
        const items = [0, 1, 2, 3].map((k) => ({ name: "step" + k, bar: first + 2 * k }));
        const { fired, late } = simulate(tempo, sig, start, items, 50, (first + 8) * bpb);
        assert.deepEqual(late, []);
        assert.deepEqual(fired.map((f) => f.name), ["step0", "step1", "step2", "step3"]);
        for (const f of fired) {
          assert.equal(f.startsAt, f.bar, `${f.name} fired at beat ${f.firedAt} would start at bar ${f.startsAt}, wanted ${f.bar}`);
          // fired in the bar before, with at least the safety margin left
          assert.ok(sch.timeToBarMs(f.firedAt, tempo, f.bar, bpb) > 60);
          assert.ok(sch.timeToBarMs(f.firedAt, tempo, f.bar, bpb) <= bpb * 60000 / tempo);
        }
      });
    }
  }
}

const playing = (beat, extra = {}) => Object.assign({ beat, tempo: 120, playing: true, numerator: 4, denominator: 4 }, extra);

test("nothing fires while stopped; a newer seq for the same bar replaces the old one", () => {
  const s = sch.createScheduler();
  s.add({ bar: 3, name: "old" });
  s.add({ bar: 3, name: "new" });
  assert.equal(s.size(), 1);
  assert.deepEqual(s.poll(playing(10, { playing: false })), []);
  const a = s.poll(playing(10));
  assert.equal(a.length, 1);
  assert.equal(a[0].type, "fire");
  assert.equal(a[0].item.name, "new");
  assert.equal(a[0].msUntil, 1000);
});

test("in 3/4 bar 3 is fired in bar 2 (beats 6..9), not at 4/4's beat 8..12", () => {
  const s = sch.createScheduler();
  s.add({ bar: 3, name: "x" });
  assert.deepEqual(s.poll(playing(5.5, { numerator: 3 })), []);          // still in bar 1
  const a = s.poll(playing(7, { numerator: 3 }));                        // bar 2, 2 beats before bar 3 (beat 9)
  assert.deepEqual(a.map((x) => [x.type, x.bar, x.msUntil]), [["fire", 3, 1000]]);
});

test("a seq that arrives too late is dropped when newer ones are queued, else retargeted", () => {
  const s = sch.createScheduler({ marginMs: 60 });
  s.add({ bar: 2, name: "late" });
  s.add({ bar: 4, name: "later" });
  // beat 8.5: bar 2 has started, bar 3 is next -> 'late' is dropped, 'later' waits
  let a = s.poll(playing(8.5));
  assert.deepEqual(a.map((x) => [x.type, x.item.name, x.retargetBar]), [["late", "late", null]]);
  assert.equal(s.peek().name, "later");
  s.clear();
  s.add({ bar: 3, name: "only" });
  // 20 ms before bar 3 (inside the margin) -> cannot make it; retargeted to bar 4, fired in bar 3
  a = s.poll(playing(12 - 0.04));
  assert.deepEqual(a.map((x) => [x.type, x.item.name, x.retargetBar]), [["late", "only", 4]]);
  a = s.poll(playing(12.1));
  assert.deepEqual(a.map((x) => [x.type, x.item.name, x.bar]), [["fire", "only", 4]]);
});
