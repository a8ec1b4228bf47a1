// lb_live.js -- everything that touches the Live Object Model, behind a small adapter.
// Takes the LiveAPI constructor as an argument so tests can pass a fake Live set.
// Live 11+ note API only: get_notes_extended / add_new_notes / remove_notes_extended.
// ES5 only (Max `js`; LiveAPI exists only there, not in node.script).

var IS_NODE = typeof process !== "undefined" && !!(process.versions && process.versions.node);
var notesLib = IS_NODE ? require("./lb_notes.js") : require("lb_notes");
var slotsLib = IS_NODE ? require("./lb_slots.js") : require("lb_slots");

var CLIP_LAUNCH_QUANT_1_BAR = 5; // Clip.launch_quantization: 0 global, 1 none, 2 8 bars, 3 4, 4 2, 5 1 bar

function first(v) {
    if (v && typeof v === "object" && typeof v.length === "number") { return v[0]; }
    return v;
}

function num(api, prop) {
    return Number(first(api.get(prop)));
}

function str(api, prop) {
    var v = api.get(prop);
    if (v && typeof v === "object" && typeof v.length === "number") { return v.join(" "); }
    return v === undefined || v === null ? "" : String(v);
}

function pathOf(api) {
    return String(api.unquotedpath !== undefined ? api.unquotedpath : api.path).replace(/"/g, "");
}

function exists(api) {
    return api && Number(api.id) !== 0;
}

function createLive(LiveAPIClass) {
    function api(path) {
        return new LiveAPIClass(path);
    }

    function ownTrack() {
        var t = api("this_device canonical_parent");
        if (!exists(t)) { throw new Error("cannot find the track this device is on"); }
        var p = pathOf(t);
        var m = /tracks (\d+)$/.exec(p);
        if (!m) { throw new Error("the device must sit directly on a MIDI track (found " + p + ")"); }
        return { path: p, index: Number(m[1]) };
    }

    function slots(trackPath) {
        var t = api(trackPath);
        var n = Number(t.getcount("clip_slots"));
        var out = [];
        for (var i = 0; i < n; i++) {
            var s = api(trackPath + " clip_slots " + i);
            var has = num(s, "has_clip") === 1;
            out.push({ hasClip: has, name: has ? str(api(trackPath + " clip_slots " + i + " clip"), "name") : "" });
        }
        return out;
    }

    // The slot highlighted in Session view: {track, slot, trackPath} or null.
    function highlighted() {
        var s = api("live_set view highlighted_clip_slot");
        if (!exists(s)) { return null; }
        var m = /^live_set tracks (\d+) clip_slots (\d+)$/.exec(pathOf(s));
        if (!m) { return null; }
        return { track: Number(m[1]), slot: Number(m[2]), trackPath: "live_set tracks " + m[1] };
    }

    function hasClip(trackPath, slot) {
        return num(api(trackPath + " clip_slots " + slot), "has_clip") === 1;
    }

    // Notes of the clip's loop region as protocol rows (times relative to loop_start).
    function readClip(trackPath, slot, track) {
        if (!hasClip(trackPath, slot)) { throw new Error("slot " + (slot + 1) + " is empty"); }
        var c = api(trackPath + " clip_slots " + slot + " clip");
        if (num(c, "is_midi_clip") !== 1) { throw new Error("slot " + (slot + 1) + " holds an audio clip"); }
        var start = num(c, "loop_start");
        var end = num(c, "loop_end");
        var res = c.call("get_notes_extended", 0, 128, start, end - start);
        var rows = notesLib.liveToRows(notesLib.parseLiveNotes(res), { offset: start, length: end - start, track: track || 0 });
        return { rows: rows, lengthBeats: end - start, name: str(c, "name") };
    }

    // Write Live note objects into a slot. An occupied slot is only rewritten when it holds one
    // of this device's live clips and opts.replaceLive is set; anything else throws.
    function writeClip(trackPath, slot, liveNotes, opts) {
        opts = opts || {};
        var length = opts.lengthBeats > 0 ? opts.lengthBeats : 4;
        var s = api(trackPath + " clip_slots " + slot);
        var clipPath = trackPath + " clip_slots " + slot + " clip";
        var c;
        if (num(s, "has_clip") === 1) {
            c = api(clipPath);
            var name = str(c, "name");
            if (!(opts.replaceLive && slotsLib.isLiveClipName(name))) {
                throw new Error("refusing to overwrite the clip in slot " + (slot + 1) + " (" + name + ")");
            }
            var oldEnd = Math.max(num(c, "loop_end"), num(c, "end_marker"), length);
            c.call("remove_notes_extended", 0, 128, 0, oldEnd + 1);
            c.set("loop_end", length);
            c.set("end_marker", length);
        } else {
            s.call("create_clip", length);
            c = api(clipPath);
        }
        if (liveNotes.length) {
            c.call("add_new_notes", { notes: liveNotes });
        }
        c.set("looping", 1);
        if (opts.name) { c.set("name", opts.name); }
        if (opts.launchQuantization !== undefined) { c.set("launch_quantization", opts.launchQuantization); }
        if (opts.legato !== undefined) { c.set("legato", opts.legato); }
        return clipPath;
    }

    function fire(trackPath, slot) {
        api(trackPath + " clip_slots " + slot).call("fire");
    }

    function transport() {
        var song = api("live_set");
        return {
            beat: num(song, "current_song_time"),
            tempo: num(song, "tempo"),
            playing: num(song, "is_playing") === 1,
            numerator: num(song, "signature_numerator"),
            denominator: num(song, "signature_denominator")
        };
    }

    // For accompany: every track with its MIDI-ness and whether its slot at `scene` is taken.
    function tracksAt(scene) {
        var song = api("live_set");
        var n = Number(song.getcount("tracks"));
        var out = [];
        for (var i = 0; i < n; i++) {
            var p = "live_set tracks " + i;
            var t = api(p);
            var slotCount = Number(t.getcount("clip_slots"));
            out.push({
                index: i,
                path: p,
                name: str(t, "name"),
                isMidi: num(t, "has_midi_input") === 1,
                slotHasClip: scene < slotCount ? hasClip(p, scene) : true
            });
        }
        return out;
    }

    function deviceId() {
        return Number(api("this_device").id);
    }

    return {
        ownTrack: ownTrack,
        slots: slots,
        highlighted: highlighted,
        hasClip: hasClip,
        readClip: readClip,
        writeClip: writeClip,
        fire: fire,
        transport: transport,
        tracksAt: tracksAt,
        deviceId: deviceId
    };
}

exports.createLive = createLive;
exports.CLIP_LAUNCH_QUANT_1_BAR = CLIP_LAUNCH_QUANT_1_BAR;
