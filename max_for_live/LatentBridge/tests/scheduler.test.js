"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");
const { code } = require("./helpers");
const sch = code("lb_scheduler");

test("time to bar at several tempos and positions", () => {
  // 120 BPM: a beat is 500 ms, a bar 2000 ms
  assert.equal(sch.timeToBarMs(0, 120, 1), 2000);
  assert.equal(sch.timeToBarMs(3, 120, 1), 500);
  assert.equal(sch.timeToBarMs(6.5, 120, 2), 750);
  // 90 BPM: a beat is 666.67 ms
  assert.ok(Math.abs(sch.timeToBarMs(2, 90, 1) - 1333.333) < 0.01);
  // 174 BPM
  assert.ok(Math.abs(sch.timeToBarMs(15.25, 174, 4) - 0.75 * 60000 / 174) < 1e-9);
  // 60 BPM, bar already started
  assert.equal(sch.timeToBarMs(9, 60, 2), -1000);
  assert.equal(sch.barOf(7.999), 1);
  assert.equal(sch.barOf(8), 2);
  assert.equal(sch.nextBar(8), 3);
  assert.equal(sch.nextBar(7.5), 2);
});

// Drive the scheduler with a simulated transport, polling every `pollMs`, and report at which
// beat each item was fired. Live starts a fired clip at the next bar line (1-bar launch
// quantization), so "started at" = bar line following the fire position.
function simulate(tempo, startBeat, items, pollMs, untilBeat) {
  const s = sch.createScheduler({ marginMs: 60 });
  items.forEach((it) => s.add(it));
  const fired = [];
  const late = [];
  for (let beat = startBeat; beat < untilBeat; beat += pollMs * tempo / 60000) {
    for (const a of s.poll({ beat, tempo, playing: true })) {
      if (a.type === "fire") fired.push({ name: a.item.name, bar: a.bar, firedAt: beat, startsAt: sch.nextBar(beat) });
      else late.push({ name: a.item.name, bar: a.bar, retarget: a.retargetBar });
    }
  }
  return { fired, late };
}

for (const tempo of [60, 90, 120, 174, 240]) {
  for (const start of [0, 1.3, 7.99, 30.5]) {
    test(`each seq starts exactly on its bar (tempo ${tempo}, from beat ${start})`, () => {
      const first = sch.nextBar(start) + 1;
      const items = [0, 1, 2, 3].map((k) => ({ name: "step" + k, bar: first + 2 * k }));
      const { fired, late } = simulate(tempo, start, items, 50, (first + 8) * 4);
      assert.deepEqual(late, []);
      assert.deepEqual(fired.map((f) => f.name), ["step0", "step1", "step2", "step3"]);
      for (const f of fired) {
        assert.equal(f.startsAt, f.bar, `${f.name} fired at beat ${f.firedAt} would start at bar ${f.startsAt}, wanted ${f.bar}`);
        // fired in the bar before, with at least the safety margin left
        assert.ok(sch.timeToBarMs(f.firedAt, tempo, f.bar) > 60);
      }
    });
  }
}

test("nothing fires while stopped; a newer seq for the same bar replaces the old one", () => {
  const s = sch.createScheduler();
  s.add({ bar: 3, name: "old" });
  s.add({ bar: 3, name: "new" });
  assert.equal(s.size(), 1);
  assert.deepEqual(s.poll({ beat: 10, tempo: 120, playing: false }), []);
  const a = s.poll({ beat: 10, tempo: 120, playing: true });
  assert.equal(a.length, 1);
  assert.equal(a[0].type, "fire");
  assert.equal(a[0].item.name, "new");
  assert.equal(a[0].msUntil, 1000);
});

test("a seq that arrives too late is dropped when newer ones are queued, else retargeted", () => {
  const s = sch.createScheduler({ marginMs: 60 });
  s.add({ bar: 2, name: "late" });
  s.add({ bar: 4, name: "later" });
  // beat 8.5: bar 2 has started, bar 3 is next -> 'late' is dropped, 'later' waits
  let a = s.poll({ beat: 8.5, tempo: 120, playing: true });
  assert.deepEqual(a.map((x) => [x.type, x.item.name, x.retargetBar]), [["late", "late", null]]);
  assert.equal(s.peek().name, "later");
  s.clear();
  s.add({ bar: 3, name: "only" });
  // 20 ms before bar 3 (inside the margin) -> cannot make it; retargeted to bar 4, fired in bar 3
  a = s.poll({ beat: 12 - 0.04, tempo: 120, playing: true });
  assert.deepEqual(a.map((x) => [x.type, x.item.name, x.retargetBar]), [["late", "only", 4]]);
  a = s.poll({ beat: 12.1, tempo: 120, playing: true });
  assert.deepEqual(a.map((x) => [x.type, x.item.name, x.bar]), [["fire", "only", 4]]);
});
