// lb_slots.js -- choosing clip slots to write into. Pure functions over plain data, so the
// "never overwrite a non-empty slot" rule is tested without Live.
// ES5 only (Max `js`).

var LIVE_CLIP_PREFIX = "LB live";
var DEVICE_CLIP_PREFIX = "LB ";

// slots: array of {hasClip: bool, name: string} (index = scene index).
// Returns {ok: true, slots: [indices]} with the first n EMPTY slots strictly below anchor, or
// {ok: false, error, found} when there are not enough. Occupied slots are skipped, never used.
function emptySlotsBelow(slots, anchor, n) {
    var found = [];
    for (var i = anchor + 1; i < slots.length && found.length < n; i++) {
        if (!slots[i].hasClip) { found.push(i); }
    }
    if (found.length < n) {
        return {
            ok: false,
            found: found.length,
            error: "need " + n + " empty clip slots below slot " + (anchor + 1) + " on this track, found " +
                found.length + " (add scenes or clear slots)"
        };
    }
    return { ok: true, slots: found };
}

function isLiveClipName(name) {
    return typeof name === "string" && name.indexOf(LIVE_CLIP_PREFIX) === 0;
}

// Every clip the device writes is named "LB ..." (samples, interpolations, live clips, parts):
// Learn leaves them out, so a palette is learned from the player's own clips only.
function isDeviceClipName(name) {
    return typeof name === "string" && name.indexOf(DEVICE_CLIP_PREFIX) === 0;
}

// Two slots for live playback (morph / knobs), alternated so the one being rewritten is never
// the one playing. Reuses slots that already hold this device's live clips (named
// "LB live ..."), then empty slots below anchor. Never returns a slot with any other clip.
function liveSlots(slots, anchor) {
    var chosen = [];
    var i;
    for (i = 0; i < slots.length && chosen.length < 2; i++) {
        if (slots[i].hasClip && isLiveClipName(slots[i].name)) { chosen.push(i); }
    }
    for (i = anchor + 1; i < slots.length && chosen.length < 2; i++) {
        if (!slots[i].hasClip && chosen.indexOf(i) < 0) { chosen.push(i); }
    }
    if (chosen.length < 2) {
        return { ok: false, error: "live playback needs 2 empty clip slots below slot " + (anchor + 1) + " on this track" };
    }
    return { ok: true, slots: chosen };
}

// tracks: array of {index, name, isMidi, slotHasClip: bool (at the melody's scene)}.
// Bass and drum clips go on MIDI tracks to the right of the melody track whose slot in the
// melody's scene is empty: a track whose name mentions bass / drums|beat|perc is preferred for
// that part, otherwise the first free MIDI tracks to the right in order.
function accompanyTargets(tracks, melodyTrack) {
    var free = [];
    for (var i = 0; i < tracks.length; i++) {
        var t = tracks[i];
        if (t.index > melodyTrack && t.isMidi && !t.slotHasClip) { free.push(t); }
    }
    var bass = null;
    var drums = null;
    for (i = 0; i < free.length; i++) {
        if (bass === null && /bass/i.test(free[i].name || "")) { bass = free[i].index; }
    }
    for (i = 0; i < free.length; i++) {
        if (drums === null && free[i].index !== bass && /drum|beat|perc|kit/i.test(free[i].name || "")) { drums = free[i].index; }
    }
    for (i = 0; i < free.length; i++) {
        var idx = free[i].index;
        if (idx === bass || idx === drums) { continue; }
        if (bass === null) { bass = idx; } else if (drums === null) { drums = idx; }
    }
    if (bass === null || drums === null) {
        return {
            ok: false,
            error: "accompany needs two MIDI tracks to the right of this one with an empty slot in this scene"
        };
    }
    return { ok: true, bass: bass, drums: drums };
}

exports.LIVE_CLIP_PREFIX = LIVE_CLIP_PREFIX;
exports.emptySlotsBelow = emptySlotsBelow;
exports.liveSlots = liveSlots;
exports.isLiveClipName = isLiveClipName;
exports.isDeviceClipName = isDeviceClipName;
exports.accompanyTargets = accompanyTargets;
