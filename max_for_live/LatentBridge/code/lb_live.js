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

    // The Live API id of the clip in a slot (0: none). Ids stay with the clip while it moves.
    function clipId(trackPath, slot) {
        var c = api(trackPath + " clip_slots " + slot + " clip");
        return exists(c) ? Number(c.id) : 0;
    }

    // Where the clip with this id is now: {track, slot}, or null when it is gone.
    function locateClip(id) {
        if (!(Number(id) > 0)) { return null; }
        var c = api("id " + Number(id));
        if (!exists(c)) { return null; }
        var m = /^live_set tracks (\d+) clip_slots (\d+) clip$/.exec(pathOf(c));
        return m ? { track: Number(m[1]), slot: Number(m[2]) } : null;
    }

    function hasClip(trackPath, slot) {
        return num(api(trackPath + " clip_slots " + slot), "has_clip") === 1;
    }

    // The track's name (the palette Learn names after it).
    function trackName(trackPath) {
        return str(api(trackPath), "name");
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

    // Set a clip property only when it differs: a read is free, every set is an undo step in Live.
    function setIfChanged(c, prop, value) {
        if (num(c, prop) !== Number(value)) { c.set(prop, value); }
    }

    // Write Live note objects into a slot. An occupied slot is only rewritten when it holds one
    // of this device's live clips and opts.replaceLive is set; anything else throws.
    // Edits (each one an undo step in Live): a rewrite of a live clip whose length, name and
    // launch settings are unchanged is remove_notes_extended + add_new_notes only; the first write
    // into a slot also makes create_clip and sets the name and launch settings once.
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
            setIfChanged(c, "loop_end", length);
            setIfChanged(c, "end_marker", length);
        } else {
            s.call("create_clip", length);
            c = api(clipPath);
        }
        if (liveNotes.length) {
            c.call("add_new_notes", { notes: liveNotes });
        }
        setIfChanged(c, "looping", 1);
        if (opts.name && str(c, "name") !== opts.name) { c.set("name", opts.name); }
        if (opts.launchQuantization !== undefined) { setIfChanged(c, "launch_quantization", opts.launchQuantization); }
        if (opts.legato !== undefined) { setIfChanged(c, "legato", opts.legato); }
        return clipPath;
    }

    function fire(trackPath, slot) {
        api(trackPath + " clip_slots " + slot).call("fire");
    }

    // The transport. Tempo, play state and signature come from observers (LiveAPI callbacks,
    // started by observeSong): Live calls them when a value changes. Only the song position is
    // read per call, on one LiveAPI object kept for it: no new object and one get per tick.
    var songApi = null;
    var observed = null;     // {tempo, is_playing, signature_numerator, signature_denominator}
    var observers = [];
    var OBSERVED = ["tempo", "is_playing", "signature_numerator", "signature_denominator"];

    function onObserved(args) {
        var a = args && typeof args === "object" && typeof args.length === "number" ? args : arguments;
        if (observed && a.length >= 2 && OBSERVED.indexOf(String(a[0])) >= 0) { observed[String(a[0])] = Number(a[1]); }
    }

    function observeSong() {
        if (observed) { return; }
        songApi = api("live_set");
        observed = {};
        for (var i = 0; i < OBSERVED.length; i++) {
            observed[OBSERVED[i]] = num(songApi, OBSERVED[i]);     // the value now; later ones by callback
            var o = new LiveAPIClass(onObserved, "live_set");
            o.property = OBSERVED[i];
            observers.push(o);
        }
    }

    function transport() {
        if (!observed) {
            var song = api("live_set");
            return {
                beat: num(song, "current_song_time"),
                tempo: num(song, "tempo"),
                playing: num(song, "is_playing") === 1,
                numerator: num(song, "signature_numerator"),
                denominator: num(song, "signature_denominator")
            };
        }
        return {
            beat: num(songApi, "current_song_time"),
            tempo: observed.tempo,
            playing: observed.is_playing === 1,
            numerator: observed.signature_numerator,
            denominator: observed.signature_denominator
        };
    }

    // The song's scale (Live 12: Song.root_note 0..11, Song.scale_intervals, semitones from the root):
    // {root, intervals} or null when this Live has none (Live 11) or the values make no scale.
    function scale() {
        var song = api("live_set");
        var root = num(song, "root_note");
        var raw = song.get("scale_intervals");
        var list = raw && typeof raw === "object" && typeof raw.length === "number" ? raw : [raw];
        var intervals = [];
        for (var i = 0; i < list.length; i++) {
            var v = Number(list[i]);
            if (isFinite(v) && Math.floor(v) === v && v >= 0 && v <= 11 && intervals.indexOf(v) < 0) { intervals.push(v); }
        }
        if (!(root >= 0 && root <= 11 && Math.floor(root) === root) || !intervals.length) { return null; }
        intervals.sort(function (a, b) { return a - b; });
        return { root: root, intervals: intervals };
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
        clipId: clipId,
        locateClip: locateClip,
        readClip: readClip,
        trackName: trackName,
        writeClip: writeClip,
        fire: fire,
        transport: transport,
        observeSong: observeSong,
        scale: scale,
        tracksAt: tracksAt,
        deviceId: deviceId
    };
}

exports.createLive = createLive;
exports.CLIP_LAUNCH_QUANT_1_BAR = CLIP_LAUNCH_QUANT_1_BAR;
