"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");
const { code } = require("./helpers");
const notes = code("lb_notes");

test("Live notes -> rows: offset by loop start, sorted, muted and outside notes dropped", () => {
  const live = [
    { pitch: 64, start_time: 5.0, duration: 0.5, velocity: 90.4, mute: 0 },
    { pitch: 60, start_time: 4.0, duration: 1.0, velocity: 100, mute: 0 },
    { pitch: 62, start_time: 4.5, duration: 0.25, velocity: 80, mute: 1 },     // muted
    { pitch: 67, start_time: 3.0, duration: 1.0, velocity: 80, mute: 0 },      // before the loop
    { pitch: 69, start_time: 11.5, duration: 2.0, velocity: 0.2, mute: 0 },    // clipped at loop end
    { pitch: 71, start_time: 12.0, duration: 1.0, velocity: 80, mute: 0 },     // at/after loop end
  ];
  const rows = notes.liveToRows(live, { offset: 4, length: 8, track: 0 });
  assert.deepEqual(rows, [
    [60, 0, 1, 100, 0],
    [64, 1, 0.5, 90, 0],
    [69, 7.5, 0.5, 1, 0],
  ]);
});

test("rows -> Live notes: defaults, track filter, invalid rows skipped and counted", () => {
  const rows = [[36, 0, 0.25, 110, 2], [48, 0.5, 1, 90, 1], [60, 1, 0.5], [200, 0, 1, 90, 0], [60, -1, 1, 90, 0], "x"];
  const bass = notes.rowsToLive(rows, { track: 1 });
  assert.deepEqual(bass.slice(), [{ pitch: 48, start_time: 0.5, duration: 1, velocity: 90, mute: 0 }]);
  const all = notes.rowsToLive(rows);
  assert.equal(all.length, 3);
  assert.equal(all.skipped, 3);
  assert.deepEqual(all[2], { pitch: 60, start_time: 1, duration: 0.5, velocity: 100, mute: 0 });
});

test("round trip rows -> Live -> rows is the identity for valid rows", () => {
  const rows = [[60, 0, 0.5, 100, 0], [62, 0.5, 0.25, 64, 0], [65, 3.75, 0.25, 127, 0]];
  assert.deepEqual(notes.liveToRows(notes.rowsToLive(rows)), rows);
  const shifted = notes.rowsToLive(rows, { offset: 8 });
  assert.deepEqual(notes.liveToRows(shifted, { offset: 8, length: 4 }), rows);
});

test("parseLiveNotes accepts the JSON string, split atoms and objects", () => {
  const obj = { notes: [{ pitch: 60, start_time: 0, duration: 1, velocity: 100 }] };
  assert.equal(notes.parseLiveNotes(JSON.stringify(obj))[0].pitch, 60);
  assert.equal(notes.parseLiveNotes(['{"notes":', '[]}']).length, 0);
  assert.equal(notes.parseLiveNotes(obj).length, 1);
  assert.throws(() => notes.parseLiveNotes("{}"), /no notes/);
});

test("sequence length: the model's bars, else whole bars covering the notes", () => {
  assert.equal(notes.seqLengthBeats({ bars: 2, notes: [] }, 4), 8);
  assert.equal(notes.seqLengthBeats({ notes: [[60, 4, 1, 100, 0]] }, 4), 8);
  assert.equal(notes.seqLengthBeats({ notes: [] }, 4), 4);
  assert.equal(notes.seqLengthBeats({ notes: [[60, 4, 1, 100, 0]] }, 3), 6);   // bars of 3 beats
  assert.throws(() => notes.seqLengthBeats({ bars: 2 }), /bar length/);     // no silent 4/4 default
  assert.deepEqual(notes.tracksOf([[1, 0, 1, 1, 2], [1, 0, 1, 1, 0], [1, 0, 1]]), [0, 2]);
});
