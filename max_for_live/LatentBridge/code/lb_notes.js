// lb_notes.js -- note conversion between Live's note dictionaries and protocol rows.
//
// Live 11+ note API (get_notes_extended / add_new_notes) uses objects
//   {pitch, start_time, duration, velocity, mute, probability, ...}
// The latent-bridge OSC protocol uses rows
//   [pitch, start_beat, duration_beats, velocity, track]
// ES5 only: this file is loaded by Max's classic `js` object (require) and by Node.
//
// Times are in beats (quarter notes). A bar's length is not assumed here: callers pass it (the
// model's bar for generated sequences, see lb_app.js).

function isFiniteNumber(v) {
    return typeof v === "number" && isFinite(v);
}

function round6(v) {
    return Math.round(v * 1e6) / 1e6;
}

function clampInt(v, lo, hi) {
    var r = Math.round(v);
    if (r < lo) { return lo; }
    if (r > hi) { return hi; }
    return r;
}

// Parse what get_notes_extended returns (a JSON string in Max js, or an object).
function parseLiveNotes(result) {
    var obj = result;
    if (result && typeof result === "object" && result.length !== undefined && typeof result[0] === "string") {
        obj = result.join(" "); // LiveAPI.call may hand back the string split into atoms
    }
    if (typeof obj === "string") {
        obj = JSON.parse(obj);
    }
    if (!obj || !obj.notes || typeof obj.notes.length !== "number") {
        throw new Error("get_notes_extended result has no notes array");
    }
    return obj.notes;
}

// Live note objects -> protocol rows.
// opts.offset: beat subtracted from start_time (the clip's loop_start), default 0
// opts.length: notes starting at or after offset+length are dropped, default none
// opts.track: track number written into the rows, default 0
// opts.includeMuted: keep muted notes (default false)
function liveToRows(liveNotes, opts) {
    opts = opts || {};
    var offset = isFiniteNumber(opts.offset) ? opts.offset : 0;
    var length = isFiniteNumber(opts.length) ? opts.length : null;
    var track = isFiniteNumber(opts.track) ? opts.track : 0;
    var rows = [];
    for (var i = 0; i < liveNotes.length; i++) {
        var n = liveNotes[i];
        if (!n || !isFiniteNumber(n.pitch) || !isFiniteNumber(n.start_time) || !isFiniteNumber(n.duration)) {
            continue;
        }
        if (n.mute && !opts.includeMuted) { continue; }
        var start = n.start_time - offset;
        var dur = n.duration;
        if (start < -1e-9 || dur <= 0) { continue; }
        if (length !== null && start >= length - 1e-9) { continue; }
        if (length !== null && start + dur > length) { dur = length - start; }
        if (start < 0) { start = 0; }
        var vel = isFiniteNumber(n.velocity) ? n.velocity : 100;
        rows.push([clampInt(n.pitch, 0, 127), round6(start), round6(dur), clampInt(vel, 1, 127), track]);
    }
    rows.sort(function (a, b) { return (a[1] - b[1]) || (a[0] - b[0]); });
    return rows;
}

function validRow(row) {
    if (!row || typeof row.length !== "number" || row.length < 3 || row.length > 5) { return false; }
    for (var i = 0; i < row.length; i++) {
        if (!isFiniteNumber(row[i])) { return false; }
    }
    return row[0] >= 0 && row[0] <= 127 && row[1] >= 0 && row[2] > 0;
}

// Protocol rows -> Live note objects ready for add_new_notes({notes: [...]}).
// opts.track: keep only rows of this track (rows without a track count as 0); default all
// opts.offset: beat added to every start (default 0)
// Invalid rows are skipped; the count of skipped rows is returned as .skipped on the array.
function rowsToLive(rows, opts) {
    opts = opts || {};
    var offset = isFiniteNumber(opts.offset) ? opts.offset : 0;
    var want = isFiniteNumber(opts.track) ? opts.track : null;
    var out = [];
    var skipped = 0;
    for (var i = 0; i < rows.length; i++) {
        var r = rows[i];
        if (!validRow(r)) { skipped++; continue; }
        var track = r.length > 4 ? r[4] : 0;
        if (want !== null && track !== want) { continue; }
        out.push({
            pitch: clampInt(r[0], 0, 127),
            start_time: r[1] + offset,
            duration: r[2],
            velocity: r.length > 3 ? clampInt(r[3], 1, 127) : 100,
            mute: 0
        });
    }
    out.skipped = skipped;
    return out;
}

// Which tracks appear in a list of rows, ascending.
function tracksOf(rows) {
    var seen = {};
    var list = [];
    for (var i = 0; i < rows.length; i++) {
        var t = rows[i] && rows[i].length > 4 ? rows[i][4] : 0;
        if (!seen[t]) { seen[t] = true; list.push(t); }
    }
    list.sort(function (a, b) { return a - b; });
    return list;
}

// Length in beats a clip for this seq needs: seq.bars bars of beatsPerBar beats when the seq says
// how many bars it has, else whole bars covering the last note end (at least one bar).
function seqLengthBeats(seq, beatsPerBar) {
    if (!(isFiniteNumber(beatsPerBar) && beatsPerBar > 0)) {
        throw new Error("seqLengthBeats needs the bar length in beats, got " + beatsPerBar);
    }
    if (seq && isFiniteNumber(seq.bars) && seq.bars > 0) {
        return seq.bars * beatsPerBar;
    }
    var end = 0;
    var notes = (seq && seq.notes) || [];
    for (var i = 0; i < notes.length; i++) {
        if (validRow(notes[i])) { end = Math.max(end, notes[i][1] + notes[i][2]); }
    }
    return Math.max(1, Math.ceil(end / beatsPerBar - 1e-9)) * beatsPerBar;
}

exports.parseLiveNotes = parseLiveNotes;
exports.liveToRows = liveToRows;
exports.rowsToLive = rowsToLive;
exports.validRow = validRow;
exports.tracksOf = tracksOf;
exports.seqLengthBeats = seqLengthBeats;
