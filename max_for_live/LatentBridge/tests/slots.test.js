"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");
const { code } = require("./helpers");
const slots = code("lb_slots");

const S = (spec) => spec.split("").map((c) => ({ hasClip: c !== ".", name: c === "L" ? "LB live 1" : c === "." ? "" : "user clip" }));

test("empty slots below A skip occupied slots and never return one", () => {
  const layout = S("A.x..x.B.");
  const r = slots.emptySlotsBelow(layout, 0, 4);
  assert.equal(r.ok, true);
  assert.deepEqual(r.slots, [1, 3, 4, 6]);
  for (const i of r.slots) assert.equal(layout[i].hasClip, false);
});

test("not enough empty slots is an error, not an overwrite", () => {
  const r = slots.emptySlotsBelow(S("Ax.x."), 0, 3);
  assert.equal(r.ok, false);
  assert.equal(r.found, 2);
  assert.match(r.error, /need 3 empty clip slots below slot 1.*found 2/);
  assert.equal(slots.emptySlotsBelow(S("xxA"), 2, 1).ok, false); // nothing below the last slot
});

test("exhaustive: for every layout up to 8 slots, chosen slots are empty and below the anchor", () => {
  for (let mask = 0; mask < 256; mask++) {
    const layout = Array.from({ length: 8 }, (_, i) => ({ hasClip: !!(mask & (1 << i)), name: "" }));
    for (let anchor = -1; anchor < 8; anchor++) {
      for (let n = 1; n <= 8; n++) {
        const r = slots.emptySlotsBelow(layout, anchor, n);
        const free = layout.filter((s, i) => i > anchor && !s.hasClip).length;
        assert.equal(r.ok, free >= n);
        if (r.ok) {
          assert.equal(r.slots.length, n);
          for (const i of r.slots) { assert.ok(i > anchor); assert.equal(layout[i].hasClip, false); }
        }
      }
    }
  }
});

test("live playback slots reuse the device's own clips, else empty slots, never user clips", () => {
  assert.deepEqual(slots.liveSlots(S("AxL.L"), 0).slots, [2, 4]);
  assert.deepEqual(slots.liveSlots(S("AxL.x"), 0).slots, [2, 3]);
  assert.deepEqual(slots.liveSlots(S("Ax..x"), 0).slots, [2, 3]);
  assert.equal(slots.liveSlots(S("Axx.x"), 0).ok, false);
});

test("accompany targets: MIDI tracks to the right with a free slot, named tracks preferred", () => {
  const tracks = [
    { index: 0, name: "Lead", isMidi: true, slotHasClip: true },
    { index: 1, name: "Audio", isMidi: false, slotHasClip: false },
    { index: 2, name: "Keys", isMidi: true, slotHasClip: true },
    { index: 3, name: "808 Drums", isMidi: true, slotHasClip: false },
    { index: 4, name: "Pad", isMidi: true, slotHasClip: false },
    { index: 5, name: "Bass", isMidi: true, slotHasClip: false },
  ];
  assert.deepEqual(slots.accompanyTargets(tracks, 0), { ok: true, bass: 5, drums: 3 });
  const plain = tracks.map((t) => Object.assign({}, t, { name: "T" + t.index }));
  assert.deepEqual(slots.accompanyTargets(plain, 0), { ok: true, bass: 3, drums: 4 });
  assert.equal(slots.accompanyTargets(tracks, 4).ok, false); // only one track right of 4
});
