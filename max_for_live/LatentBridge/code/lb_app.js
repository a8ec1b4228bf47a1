// lb_app.js -- the device's behaviour: buttons, dials and replies -> requests and clips.
// Wire-, Max- and Live-independent: it gets a `live` adapter (lb_live.js), a `send` function
// (OSC out), a `ui(kind, ...)` callback and a clock. latentbridge.js wires it into Max.
// ES5 only (Max `js`).

var IS_NODE = typeof process !== "undefined" && !!(process.versions && process.versions.node);
function load(name) { return IS_NODE ? require("./" + name + ".js") : require(name); }
var notesLib = load("lb_notes");
var clientLib = load("lb_client");
var slotsLib = load("lb_slots");
var schedLib = load("lb_scheduler");
var transportLib = load("lb_transport");
var knobsLib = load("lb_knobs");
var liveLib = load("lb_live");

var MODES = ["once", "loop", "pingpong"];
var STEPS_PER_BEAT = 4;        // the protocol's grid: sixteenth notes (docs/osc-protocol.md, "Notes")
var PROTOCOL_BAR_STEPS = 16;   // a model bar when the daemon does not say (models list steps_per_bar)

// The status line for a song whose meter the models cannot play in time.
function meterMessage(tr) {
    return "the song is in " + tr.numerator + "/" + tr.denominator + ": the models write 4/4 bars, so Morph, " +
        "the dials and Accompany need a 4/4 song (Generate and Interpolate still write clips)";
}

function isFourFour(tr) {
    return !!tr && Number(tr.numerator) === 4 && Number(tr.denominator) === 4;
}

function createApp(opts) {
    var live = opts.live;
    var ui = opts.ui || function () {};
    var log = opts.log || function () {};
    var now = opts.now || function () { return new Date().getTime(); };

    var s = {
        model: opts.model || null,      // selected model name
        models: [],                     // entries of the `models` reply
        temperature: 0.5,
        steps: 5,
        barsPerStep: 1,
        mode: "loop",
        scale: false,                   // the Scale toggle: send the song's scale with requests
        mine: false,                    // the Mine toggle: Generate, Morph and the dials use the palette
        palette: null,                  // the learned palette: {name, model, directions, data (its JSON object)}
        a: null,                        // {slot, id}: a clip on this device's track, by Live API id
        b: null,
        morphRequest: null,             // request id of the running morph
        morphId: null,                  // the daemon's morph job id (from morph's ok reply)
        knobValues: [0, 0, 0, 0, 0, 0, 0, 0],
        knobMap: knobsLib.mapDirections(null),
        livePair: null,                 // the two live playback clips: [{slot, id}, {slot, id}]
        liveNext: 0,
        lastTransport: null,
        meterWarned: null               // the signature last reported as unplayable ("6/8"), or null
    };

    // Hellos nobody answers: maybe another program holds the reply port (where the daemon sends
    // the challenge). Each first-step hello sent while the previous one heard nothing back is
    // reported to opts.onNoHelloAnswer(count), which may move the device to another port.
    var unanswered = 0;
    var heardSinceHello = true;
    function sendOut(address, args) {
        if (address === "/bridge/hello" && String(args[1]).indexOf("\"challenge\"") < 0) {
            if (!heardSinceHello) {
                unanswered++;
                if (opts.onNoHelloAnswer) { opts.onNoHelloAnswer(unanswered); }
            }
            heardSinceHello = false;
        }
        opts.send(address, args);
    }
    function receive(address, args) {
        heardSinceHello = true;
        return client.handleMessage(address, args);
    }
    var client = clientLib.createClient({
        send: sendOut,
        now: now,
        replyPort: opts.replyPort,
        token: opts.token || null,      // the daemon's --token secret, if it has one
        // seqs with numeric notes, no new Max symbol per reply (protocol 1.2; opts.numericWire false: JSON)
        notesFormat: opts.numericWire === false ? null : "numeric",
        log: log,
        onStatus: function (state, info) {
            ui("light", clientLib.STATES[state]);
            ui("status", state + (info ? ": " + info : ""));
        },
        onConnect: function () { unanswered = 0; refreshModels(); importPalette(); }
    });
    var scheduler = schedLib.createScheduler({ marginMs: opts.marginMs || 60 });
    var reporter = transportLib.createReporter({});
    var knobThrottle = knobsLib.createThrottle(opts.knobIntervalMs || 120);

    function status(text) { ui("status", text); }

    function fail(what) {
        return function (code, message) { status(what + " failed: " + code + (message ? " - " + message : "")); };
    }

    // This device's track, asked of Live on every use (this_device canonical_parent): a track
    // inserted or moved before it never redirects a write.
    function track() {
        return live.ownTrack();
    }

    // The slot of A or B now. They are held by the clip's Live API id and found again on every
    // use, so a scene inserted or a clip moved above them does not change which clip they are. A
    // slot restored from a saved set (ids last one Live session) gets its id at first use.
    // -1 (and A/B cleared, with a status line) when the clip is no longer on this track.
    function refSlot(which) {
        var ref = s[which];
        if (!ref) { return -1; }
        var t = track();
        var slot = -1;
        if (ref.id) {
            var loc = live.locateClip(ref.id);
            if (loc && loc.track === t.index) { slot = loc.slot; }
        } else if (live.hasClip(t.path, ref.slot)) {
            ref.id = live.clipId(t.path, ref.slot);
            slot = ref.slot;
        }
        if (slot < 0) {
            s[which] = null;
            ui("slot" + which, "-");
            status("clip " + which.toUpperCase() + " is no longer on this track: select it and press " + which.toUpperCase());
            return -1;
        }
        if (slot !== ref.slot) {
            ref.slot = slot;
            ui("slot" + which, slot + 1);
        }
        return slot;
    }

    function modelInfo(name) {
        for (var i = 0; i < s.models.length; i++) { if (s.models[i].name === name) { return s.models[i]; } }
        return null;
    }

    function refreshModels() {
        client.request("models", {}, {
            ok: function (res) {
                var list = (res && res.models) || (res && res.length !== undefined ? res : []);
                s.models = list;
                var names = [];
                for (var i = 0; i < list.length; i++) { names.push(list[i].name); }
                ui("models", names);
                if (!s.model || !modelInfo(s.model)) { s.model = names.length ? names[0] : null; }
                if (s.model) { ui("model", s.model); }
                loadDirections();
                status("connected, " + names.length + " model(s)");
            },
            error: fail("models")
        });
    }

    // The dials follow the model's latent directions: the `directions` op when the daemon has
    // it, else the directions/attributes listed by `models`.
    function loadDirections() {
        if (!s.model || !client.isConnected()) { applyKnobMap(); return; }
        var name = s.model;
        client.request("directions", { model: name }, {
            ok: function (res) {
                var info = modelInfo(name);
                if (info && res && res.directions) { info.directions = res.directions; }
                if (s.model === name) { applyKnobMap(); }
            },
            error: function () { if (s.model === name) { applyKnobMap(); } }
        });
    }

    function applyKnobMap() {
        var info = modelInfo(s.model);
        if (info && !info.directions && info.attributes) { info = { name: info.name, directions: info.attributes }; }
        s.knobMap = knobsLib.mapDirections(info);
        var labels = [];
        for (var i = 0; i < s.knobMap.length; i++) { labels.push(s.knobMap[i].name); }
        ui("knoblabels", labels);
    }

    function setModel(name) {
        s.model = String(name);
        loadDirections();
        s.livePair = null;
    }

    function setParam(name, value) {
        if (name === "scale") { s.scale = Number(value) !== 0; }
        else if (name === "mine") { s.mine = Number(value) !== 0; }
        else if (name === "temperature") { s.temperature = Math.max(0, Number(value)); }
        else if (name === "steps") { s.steps = Math.max(2, Math.min(32, Math.round(Number(value)))); }
        else if (name === "barsperstep") { s.barsPerStep = Math.max(1, Math.min(16, Math.round(Number(value)))); }
        else if (name === "mode") {
            var m = typeof value === "number" ? MODES[value] : String(value);
            if (MODES.indexOf(m) < 0) { throw new Error("unknown morph mode " + value); }
            s.mode = m;
        } else { throw new Error("unknown parameter " + name); }
    }

    // Capture the highlighted Session slot as A or B (must be a clip on this track).
    function capture(which) {
        var h = live.highlighted();
        var t = track();
        if (!h || h.track !== t.index) { status("select a clip on this track first"); return false; }
        if (!live.hasClip(t.path, h.slot)) { status("slot " + (h.slot + 1) + " is empty"); return false; }
        s[which] = { slot: h.slot, id: live.clipId(t.path, h.slot) };
        ui("slot" + which, h.slot + 1);
        if (which === "a" && s.model && client.isConnected()) {
            // Encoding A gives the daemon this client's live latent, which the knobs move.
            client.request("encode", { model: s.model, notes: live.readClip(t.path, h.slot).rows }, { error: fail("encode A") });
        }
        status(which.toUpperCase() + " = slot " + (h.slot + 1));
        return true;
    }

    function anchorSlot() {
        if (s.a) {
            var a = refSlot("a");
            if (a >= 0) { return a; }
        }
        var h = live.highlighted();
        var t = track();
        if (h && h.track === t.index) { return h.slot; }
        return -1;
    }

    // B defaults to the first clip below A (at slot aSlot).
    function resolveB(aSlot) {
        if (s.b) {
            var b = refSlot("b");
            return b >= 0 ? { slot: b } : null;
        }
        var t = track();
        var list = live.slots(t.path);
        for (var i = aSlot + 1; i < list.length; i++) {
            if (list[i].hasClip && !slotsLib.isLiveClipName(list[i].name)) { return { slot: i }; }
        }
        return null;
    }

    function needModel() {
        if (!s.model) { status("no model selected (is the daemon running?)"); return false; }
        return true;
    }

    // Beats in one bar of a model (its steps_per_bar sixteenths; the shipped models: 16 = 4 beats).
    function modelBarBeats(name) {
        var info = modelInfo(name);
        var steps = info && info.steps_per_bar > 0 ? info.steps_per_bar : PROTOCOL_BAR_STEPS;
        return steps / STEPS_PER_BEAT;
    }

    // The song's transport now (or the last one read); null when Live cannot be read.
    function transportNow() {
        try { return live.transport(); } catch (e) { return s.lastTransport; }
    }

    // False (with a status line) when the song's meter is not 4/4.
    function needFourFour() {
        var tr = transportNow();
        if (tr && !isFourFour(tr)) { status(meterMessage(tr)); return false; }
        return true;
    }

    // payload + the song's scale ({root, intervals}: Live 12's Song.root_note / scale_intervals)
    // when the Scale toggle is on. null (and a status line) when Scale is on but Live has no scale.
    function withScale(payload) {
        if (!s.scale) { return payload; }
        var sc = null;
        try { sc = live.scale(); } catch (e) { sc = null; }
        if (!sc) {
            status("Scale is on, but Live gives no song scale (Song.root_note / scale_intervals need Live 12)");
            return null;
        }
        payload.scale = sc;
        return payload;
    }

    function writeSeqInto(trackPath, slot, seq, name, extra) {
        var o = { lengthBeats: notesLib.seqLengthBeats(seq, modelBarBeats(seq.model || s.model)), name: name };
        var k;
        extra = extra || {};
        for (k in extra) { if (extra.hasOwnProperty(k)) { o[k] = extra[k]; } }
        var liveNotes = notesLib.rowsToLive(seq.notes || [], { track: extra.noteTrack });
        live.writeClip(trackPath, slot, liveNotes, o);
        return liveNotes.length;
    }

    function generate() {
        if (!needModel()) { return null; }
        var payload = withScale(withPalette({ model: s.model, n: 1, temperature: s.temperature }));
        if (!payload) { return null; }
        return client.request("sample", payload, {
            seq: function (seq) {
                var t = track();
                var pick = slotsLib.emptySlotsBelow(live.slots(t.path), anchorSlot(), 1);
                if (!pick.ok) { status(pick.error); return; }
                writeSeqInto(t.path, pick.slots[0], seq, "LB sample " + s.model);
                status("sample written to slot " + (pick.slots[0] + 1));
            },
            error: fail("generate")
        });
    }

    function readA() {
        var hadA = !!s.a;
        var aSlot = refSlot("a");
        if (aSlot < 0) { if (!hadA) { status("set clip A first (select it, press A)"); } return null; }
        var t = track();
        return { t: t, aSlot: aSlot, a: live.readClip(t.path, aSlot) };
    }

    function readAB() {
        var hadA = !!s.a;
        var aSlot = refSlot("a");
        if (aSlot < 0) { if (!hadA) { status("set clip A first (select it, press A)"); } return null; }
        var hadB = !!s.b;
        var b = resolveB(aSlot);
        if (!b) { if (!hadB) { status("set clip B (select it, press B)"); } return null; }
        var t = track();
        return { t: t, aSlot: aSlot, a: live.readClip(t.path, aSlot), b: live.readClip(t.path, b.slot) };
    }

    function interpolate() {
        if (!needModel()) { return null; }
        var ab = readAB();
        if (!ab) { return null; }
        var steps = s.steps;
        var check = slotsLib.emptySlotsBelow(live.slots(ab.t.path), ab.aSlot, steps);
        if (!check.ok) { status(check.error); return null; }
        var payload = withScale({
            model: s.model, a: ab.a.rows, b: ab.b.rows, steps: steps, temperature: s.temperature, method: "slerp"
        });
        if (!payload) { return null; }
        status("interpolating " + steps + " steps...");
        return client.request("interpolate", payload, {
            done: function (seqs) {
                // Re-check now: the user may have filled slots, or moved A, while the daemon worked.
                var t2 = track();
                var a2 = s.a ? refSlot("a") : ab.aSlot;
                if (a2 < 0) { return; }
                var pick = slotsLib.emptySlotsBelow(live.slots(t2.path), a2, seqs.length);
                if (!pick.ok) { status(pick.error); return; }
                seqs.sort(function (x, y) { return x.index - y.index; });
                for (var i = 0; i < seqs.length; i++) {
                    writeSeqInto(t2.path, pick.slots[i], seqs[i], "LB interp " + (i + 1) + "/" + seqs.length);
                }
                status("wrote " + seqs.length + " clips to slots " + (pick.slots[0] + 1) + "-" + (pick.slots[pick.slots.length - 1] + 1));
            },
            error: fail("interpolate")
        });
    }

    function ensureLivePair() {
        var t = track();
        var pick = slotsLib.liveSlots(live.slots(t.path), anchorSlot());
        if (!pick.ok) { status(pick.error); return null; }
        s.livePair = [];
        for (var i = 0; i < pick.slots.length; i++) {
            s.livePair.push({ slot: pick.slots[i], id: live.clipId(t.path, pick.slots[i]) });
        }
        return s.livePair;
    }

    // The live pair now: clips already written are found again by id (a scene inserted above them
    // moves them); when one is gone from this track, a new pair is chosen.
    function livePairNow() {
        if (!s.livePair) { return ensureLivePair(); }
        var t = track();
        var list = null;
        for (var i = 0; i < s.livePair.length; i++) {
            var ref = s.livePair[i];
            if (!ref.id) {
                // not written yet: held by its slot, which must still be empty (or one of ours)
                list = list || live.slots(t.path);
                var sl = list[ref.slot];
                if (!sl || (sl.hasClip && !slotsLib.isLiveClipName(sl.name))) { return ensureLivePair(); }
                continue;
            }
            var loc = live.locateClip(ref.id);
            if (!loc || loc.track !== t.index) { return ensureLivePair(); }
            ref.slot = loc.slot;
        }
        return s.livePair;
    }

    function scheduleSeq(seq, source) {
        if (typeof seq.bar !== "number") { status(source + " reply has no bar"); return; }
        scheduler.add({ bar: seq.bar, seq: seq, source: source });
    }

    function morph() {
        if (!needModel()) { return null; }
        if (!needFourFour()) { return null; }
        var mine = minePalette();
        var ab = mine ? readA() : readAB();         // Mine: from A toward a draw of the palette
        if (!ab) { return null; }
        if (!ensureLivePair()) { return null; }
        var payload = withScale(withPalette({
            model: s.model, a: ab.a.rows, steps: s.steps, bars_per_step: s.barsPerStep,
            mode: s.mode, temperature: s.temperature
        }));
        if (payload && !mine) { payload.b = ab.b.rows; }
        if (!payload) { return null; }
        if (s.morphRequest !== null) { stop(); }
        var tr = transportNow();
        if (!tr) { status("cannot read the song position from Live"); return null; }
        // one full bar (of the song's real length) for the first step to arrive
        payload.start_bar = schedLib.nextBar(tr.beat, schedLib.beatsPerBarOf(tr)) + 1;
        var startBar = payload.start_bar;
        var id = client.request("morph", payload, {
            stream: true,
            timeoutMs: 600000,
            ok: function (res) { if (s.morphRequest === id && res && typeof res.morph === "number") { s.morphId = res.morph; } },
            seq: function (seq) { scheduleSeq(seq, "morph"); },
            done: function () { if (s.morphRequest === id) { s.morphRequest = null; s.morphId = null; } status("morph finished"); },
            error: function (code, message) {
                if (s.morphRequest === id) { s.morphRequest = null; s.morphId = null; }
                fail("morph")(code, message);
            }
        });
        s.morphRequest = id;
        status("morph from bar " + (startBar + 1));
        return id;
    }

    function stop() {
        scheduler.clear();
        if (s.morphRequest === null) { status("stopped"); return null; }
        var rid = s.morphRequest;
        var payload = s.morphId !== null ? { morph: s.morphId } : {}; // the job id from morph's ok
        s.morphRequest = null;
        s.morphId = null;
        client.cancel(rid); // later seqs of this morph are ignored
        client.request("stop", payload, { error: fail("stop") });
        status("morph stopped");
        return rid;
    }

    function knob(index, value) {
        index = Math.round(Number(index));
        if (index < 0 || index >= knobsLib.KNOB_COUNT) { return; }
        s.knobValues[index] = Number(value);
        knobThrottle.push(index, Number(value));
    }

    // A dial value saved with the set: remembered, not sent (nothing to move before A or a morph).
    function restoreKnob(index, value) {
        index = Math.round(Number(index));
        if (index < 0 || index >= knobsLib.KNOB_COUNT || !isFinite(Number(value))) { return; }
        s.knobValues[index] = Number(value);
    }

    // The high-rate requests go as plain numbers when the daemon takes them (protocol 1.2): Max
    // interns every string it sends as a symbol, forever, and a JSON text with a new song position
    // or knob value would be a new one every time. The model and direction are names from a fixed
    // set; the knob's other fields (scale, palette) go in one JSON object that stays the same from
    // move to move. Without typed forms (an older daemon, opts.numericWire false): JSON.
    function reportTransport(p) {
        if (opts.numericWire === false || !client.hasTyped("transport")) { return client.request("transport", p, {}); }
        return client.requestTyped("transport", [p.tempo, p.beat, p.playing ? 1 : 0, p.numerator, p.denominator], {});
    }

    function knobRequest(payload, handlers) {
        if (opts.numericWire === false || !client.hasTyped("knob")) { return client.request("knob", payload, handlers); }
        var options = {};
        for (var k in payload) {
            if (payload.hasOwnProperty(k) && k !== "model" && k !== "direction" && k !== "value") { options[k] = payload[k]; }
        }
        return client.requestTyped("knob", [payload.model, payload.direction, payload.value], handlers, options);
    }

    function sendKnob(index, value) {
        var mine = minePalette();
        var payload = mine && index < mine.directions
            ? { model: s.model, palette: mine.name, direction: index, value: value }   // the palette's own directions
            : knobsLib.knobPayload(s.model, s.knobMap, index, value);
        if (!payload || !client.isConnected()) { return; }
        if (!needFourFour()) { return; }
        if (!s.livePair && !ensureLivePair()) { return; }
        if (!withScale(payload)) { return; }
        knobRequest(payload, {
            stream: true,
            quiet: true, // the daemon decodes only the latest knob value; older requests get no seq
            seq: function (seq) { scheduleSeq(seq, "knob"); },
            error: fail("knob")
        });
    }

    // ---- palettes: the player's own style (docs/osc-protocol.md "Palettes") ----

    // The palette when Mine is on and it was learned for the selected model, else null.
    function minePalette() {
        return s.mine && s.palette && s.palette.model === s.model ? s.palette : null;
    }

    // payload + the palette's name when Mine is on (spread 1: its fitted spread).
    function withPalette(payload) {
        var mine = minePalette();
        if (mine && payload) { payload.palette = mine.name; }
        return payload;
    }

    // The daemon's palette names allow letters, digits, _ . - (from the first letter or digit on).
    function paletteName(trackName) {
        var n = String(trackName || "").replace(/[^A-Za-z0-9_.\-]/g, "_").replace(/^[^A-Za-z0-9]+/, "");
        return (n || "mine").substring(0, 48);
    }

    // Learn a palette from every clip on this track that is not the device's own (LB ...).
    function learn() {
        if (!needModel()) { return null; }
        if (!needFourFour()) { return null; }
        var t = track();
        var list = live.slots(t.path);
        var clips = [];
        for (var i = 0; i < list.length; i++) {
            if (!list[i].hasClip || slotsLib.isDeviceClipName(list[i].name)) { continue; }
            var rows = live.readClip(t.path, i).rows;
            if (rows.length > 0) { clips.push(rows); }
        }
        if (clips.length < 3) {
            status("Learn needs at least 3 clips with notes on this track (the device's own LB clips are left out)");
            return null;
        }
        var name = paletteName(live.trackName ? live.trackName(t.path) : "");
        var model = s.model;
        status("learning '" + name + "' from " + clips.length + " clips...");
        return client.request("learn", { model: model, name: name, clips: clips }, {
            ok: function (res) {
                s.palette = { name: res.palette, model: res.model, directions: res.directions, data: null };
                status("learned '" + res.palette + "': " + res.windows + " windows of " + clips.length +
                       " clips in " + Math.round(Number(res.encode_ms) + Number(res.fit_ms)) + " ms");
                client.request("palette_export", { model: res.model, name: res.palette }, {
                    ok: function (exp) {
                        if (s.palette && exp && exp.palette && exp.palette.name === s.palette.name) { s.palette.data = exp.palette; }
                    },
                    error: fail("palette export")
                });
            },
            error: fail("learn")
        });
    }

    // A palette saved with the set goes back to the daemon on (re)connect.
    function importPalette() {
        if (!s.palette || !s.palette.data) { return; }
        client.request("palette_import", { palette: s.palette.data }, { error: fail("palette import") });
    }

    function accompanyModel() {
        var cur = modelInfo(s.model);
        if (cur && cur.kind === "trio") { return cur.name; }
        for (var i = 0; i < s.models.length; i++) { if (s.models[i].kind === "trio") { return s.models[i].name; } }
        return null;
    }

    function accompany() {
        var model = accompanyModel();
        if (!model) { status("accompany needs a trio model"); return null; }
        var t = track();
        var src = anchorSlot();
        if (src < 0) { status("select the melody clip (or set A) first"); return null; }
        var mel = live.readClip(t.path, src);
        var targets = slotsLib.accompanyTargets(live.tracksAt(src), t.index);
        if (!targets.ok) { status(targets.error); return null; }
        var tr = transportNow();
        if (tr && !isFourFour(tr)) { status(meterMessage(tr)); return null; }
        var payload = withScale({ model: model, notes: mel.rows, temperature: s.temperature });
        if (!payload) { return null; }
        if (tr && tr.numerator > 0 && tr.denominator > 0) {
            payload.time_signature = [tr.numerator, tr.denominator]; // the daemon refuses anything but 4/4
        }
        return client.request("accompany", payload, {
            seq: function (seq) {
                var now2 = slotsLib.accompanyTargets(live.tracksAt(src), t.index);
                if (!now2.ok) { status(now2.error); return; }
                var nb = writeSeqInto("live_set tracks " + now2.bass, src, seq, "LB bass", { noteTrack: 1 });
                var nd = writeSeqInto("live_set tracks " + now2.drums, src, seq, "LB drums", { noteTrack: 2 });
                status("accompany: " + nb + " bass notes, " + nd + " drum hits");
            },
            error: fail("accompany")
        });
    }

    // Start the next scheduled seq: write it into the idle live slot, fire it with 1-bar launch
    // quantization so Live starts it on the bar line.
    function playItem(item) {
        var pair = livePairNow();
        if (!pair) { return; }
        var k = s.liveNext;
        var ref = pair[k];
        s.liveNext = 1 - s.liveNext;
        var t = track();
        writeSeqInto(t.path, ref.slot, item.seq, slotsLib.LIVE_CLIP_PREFIX + " " + (k + 1), {
            replaceLive: true, launchQuantization: liveLib.CLIP_LAUNCH_QUANT_1_BAR, legato: 0
        });
        if (!ref.id) { ref.id = live.clipId(t.path, ref.slot); }
        live.fire(t.path, ref.slot);
    }

    function tick() {
        client.tick();
        var tr = null;
        try { tr = live.transport(); } catch (e) { tr = null; }
        if (tr) {
            s.lastTransport = tr;
            checkMeter(tr);
            var p = reporter.update(tr, now());
            // the daemon serves 4/4 only: in another meter nothing is reported (the status says why)
            if (p && client.isConnected() && isFourFour(tr)) { reportTransport(p); }
        }
        var due = knobThrottle.due(now());
        for (var i = 0; i < due.length; i++) { sendKnob(due[i].knob, due[i].value); }
        if (tr) {
            var actions = scheduler.poll(tr);
            for (var j = 0; j < actions.length; j++) {
                var a = actions[j];
                if (a.type === "fire") {
                    playItem(a.item);
                } else if (a.type === "late") {
                    status("late for bar " + (a.bar + 1) + (a.retargetBar !== null ? ", playing at bar " + (a.retargetBar + 1) : ", skipped"));
                }
            }
        }
    }

    // A change of the song's meter: away from 4/4, a running morph stops and the status says why;
    // back to 4/4, the status says so.
    function checkMeter(tr) {
        if (!(tr.numerator > 0 && tr.denominator > 0)) { return; }
        var sig = tr.numerator + "/" + tr.denominator;
        if (!isFourFour(tr)) {
            if (s.meterWarned !== sig) {
                s.meterWarned = sig;
                if (s.morphRequest !== null) { stop(); }
                scheduler.clear();
                status(meterMessage(tr));
            }
        } else if (s.meterWarned !== null) {
            s.meterWarned = null;
            status("the song is in 4/4 again");
        }
    }

    function start() {
        if (live.observeSong) { live.observeSong(); }   // tempo, play state, meter by LiveAPI callbacks
        client.start();
    }

    // Where A or B is now, for saving with the set (a slot index: ids do not outlive the session).
    function savedSlot(ref) {
        if (!ref) { return null; }
        var loc = null;
        if (ref.id) { try { loc = live.locateClip(ref.id); } catch (e) { loc = null; } }
        return loc ? loc.slot : ref.slot;
    }

    function state() {
        return {
            model: s.model, temperature: s.temperature, steps: s.steps, barsPerStep: s.barsPerStep, mode: s.mode,
            scale: s.scale, a: savedSlot(s.a), b: savedSlot(s.b), knobs: s.knobValues.slice(0),
            mine: s.mine, palette: s.palette && s.palette.data ? s.palette.data : null
        };
    }

    // Restore what getvalueof saved (model, A/B slots, the palette; Mine is a parameter of its own).
    function restore(saved) {
        if (!saved) { return; }
        if (saved.model) { s.model = String(saved.model); }
        var p = saved.palette;
        if (p && typeof p.name === "string" && typeof p.model === "string" && p.directions && p.directions.length !== undefined) {
            s.palette = { name: p.name, model: p.model, directions: p.directions.length, data: p };
            if (client.isConnected()) { importPalette(); }
        }
        if (typeof saved.a === "number") { s.a = { slot: saved.a }; }
        if (typeof saved.b === "number") { s.b = { slot: saved.b }; }
    }

    return {
        start: start,
        tick: tick,
        handleMessage: receive,
        reconnect: client.reconnect,
        setReplyPort: client.setReplyPort,
        setModel: setModel,
        setParam: setParam,
        captureA: function () { return capture("a"); },
        captureB: function () { return capture("b"); },
        generate: generate,
        interpolate: interpolate,
        morph: morph,
        stop: stop,
        knob: knob,
        restoreKnob: restoreKnob,
        accompany: accompany,
        learn: learn,
        state: state,
        restore: restore,
        client: client,
        scheduler: scheduler
    };
}

exports.createApp = createApp;
exports.MODES = MODES;
