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
        a: null,                        // {slot} on this device's track
        b: null,
        morphRequest: null,             // request id of the running morph
        morphId: null,                  // the daemon's morph job id (from morph's ok reply)
        knobValues: [0, 0, 0, 0, 0, 0, 0, 0],
        knobMap: knobsLib.mapDirections(null),
        livePair: null,                 // the two slots used for live playback
        liveNext: 0,
        track: null,
        lastTransport: null
    };

    var client = clientLib.createClient({
        send: opts.send,
        now: now,
        replyPort: opts.replyPort,
        log: log,
        onStatus: function (state, info) {
            ui("light", clientLib.STATES[state]);
            ui("status", state + (info ? ": " + info : ""));
        },
        onConnect: function () { refreshModels(); }
    });
    var scheduler = schedLib.createScheduler({ marginMs: opts.marginMs || 60 });
    var reporter = transportLib.createReporter({});
    var knobThrottle = knobsLib.createThrottle(opts.knobIntervalMs || 120);

    function status(text) { ui("status", text); }

    function fail(what) {
        return function (code, message) { status(what + " failed: " + code + (message ? " - " + message : "")); };
    }

    function track() {
        if (!s.track) { s.track = live.ownTrack(); }
        return s.track;
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
        if (name === "temperature") { s.temperature = Math.max(0, Number(value)); }
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
        s[which] = { slot: h.slot };
        ui("slot" + which, h.slot + 1);
        if (which === "a" && s.model && client.isConnected()) {
            // Encoding A gives the daemon this client's live latent, which the knobs move.
            client.request("encode", { model: s.model, notes: live.readClip(t.path, h.slot).rows }, { error: fail("encode A") });
        }
        status(which.toUpperCase() + " = slot " + (h.slot + 1));
        return true;
    }

    function anchorSlot() {
        if (s.a) { return s.a.slot; }
        var h = live.highlighted();
        var t = track();
        if (h && h.track === t.index) { return h.slot; }
        return -1;
    }

    // B defaults to the first clip below A.
    function resolveB() {
        if (s.b) { return s.b; }
        var t = track();
        var list = live.slots(t.path);
        for (var i = s.a.slot + 1; i < list.length; i++) {
            if (list[i].hasClip && !slotsLib.isLiveClipName(list[i].name)) { return { slot: i }; }
        }
        return null;
    }

    function needModel() {
        if (!s.model) { status("no model selected (is the daemon running?)"); return false; }
        return true;
    }

    function writeSeqInto(trackPath, slot, seq, name, extra) {
        var o = { lengthBeats: notesLib.seqLengthBeats(seq), name: name };
        var k;
        extra = extra || {};
        for (k in extra) { if (extra.hasOwnProperty(k)) { o[k] = extra[k]; } }
        var liveNotes = notesLib.rowsToLive(seq.notes || [], { track: extra.noteTrack });
        live.writeClip(trackPath, slot, liveNotes, o);
        return liveNotes.length;
    }

    function generate() {
        if (!needModel()) { return null; }
        var payload = { model: s.model, n: 1, temperature: s.temperature };
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

    function readAB() {
        if (!s.a) { status("set clip A first (select it, press A)"); return null; }
        var b = resolveB();
        if (!b) { status("set clip B (select it, press B)"); return null; }
        var t = track();
        return { t: t, a: live.readClip(t.path, s.a.slot), b: live.readClip(t.path, b.slot) };
    }

    function interpolate() {
        if (!needModel()) { return null; }
        var ab = readAB();
        if (!ab) { return null; }
        var steps = s.steps;
        var check = slotsLib.emptySlotsBelow(live.slots(ab.t.path), s.a.slot, steps);
        if (!check.ok) { status(check.error); return null; }
        status("interpolating " + steps + " steps...");
        return client.request("interpolate", {
            model: s.model, a: ab.a.rows, b: ab.b.rows, steps: steps, temperature: s.temperature, method: "slerp"
        }, {
            done: function (seqs) {
                // Re-check now: the user may have filled slots while the daemon worked.
                var pick = slotsLib.emptySlotsBelow(live.slots(ab.t.path), s.a.slot, seqs.length);
                if (!pick.ok) { status(pick.error); return; }
                seqs.sort(function (x, y) { return x.index - y.index; });
                for (var i = 0; i < seqs.length; i++) {
                    writeSeqInto(ab.t.path, pick.slots[i], seqs[i], "LB interp " + (i + 1) + "/" + seqs.length);
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
        s.livePair = pick.slots;
        return s.livePair;
    }

    function scheduleSeq(seq, source) {
        if (typeof seq.bar !== "number") { status(source + " reply has no bar"); return; }
        scheduler.add({ bar: seq.bar, seq: seq, source: source });
    }

    function morph() {
        if (!needModel()) { return null; }
        var ab = readAB();
        if (!ab) { return null; }
        if (!ensureLivePair()) { return null; }
        if (s.morphRequest !== null) { stop(); }
        var tr = s.lastTransport || live.transport();
        var startBar = schedLib.nextBar(tr.beat) + 1; // one full bar for the first step to arrive
        var id = client.request("morph", {
            model: s.model, a: ab.a.rows, b: ab.b.rows, steps: s.steps, bars_per_step: s.barsPerStep,
            mode: s.mode, temperature: s.temperature, start_bar: startBar
        }, {
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

    function sendKnob(index, value) {
        var payload = knobsLib.knobPayload(s.model, s.knobMap, index, value);
        if (!payload || !client.isConnected()) { return; }
        if (!s.livePair && !ensureLivePair()) { return; }
        client.request("knob", payload, {
            stream: true,
            quiet: true, // the daemon decodes only the latest knob value; older requests get no seq
            seq: function (seq) { scheduleSeq(seq, "knob"); },
            error: fail("knob")
        });
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
        var src = s.a ? s.a.slot : anchorSlot();
        if (src < 0) { status("select the melody clip (or set A) first"); return null; }
        var mel = live.readClip(t.path, src);
        var targets = slotsLib.accompanyTargets(live.tracksAt(src), t.index);
        if (!targets.ok) { status(targets.error); return null; }
        var payload = { model: model, notes: mel.rows, temperature: s.temperature };
        var tr = null;
        try { tr = live.transport(); } catch (e) { tr = s.lastTransport; }
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
        var pair = s.livePair || ensureLivePair();
        if (!pair) { return; }
        var slot = pair[s.liveNext];
        s.liveNext = 1 - s.liveNext;
        var t = track();
        writeSeqInto(t.path, slot, item.seq, slotsLib.LIVE_CLIP_PREFIX + " " + (slot === pair[0] ? "1" : "2"), {
            replaceLive: true, launchQuantization: liveLib.CLIP_LAUNCH_QUANT_1_BAR, legato: 0
        });
        live.fire(t.path, slot);
    }

    function tick() {
        client.tick();
        var tr = null;
        try { tr = live.transport(); } catch (e) { tr = null; }
        if (tr) {
            s.lastTransport = tr;
            var p = reporter.update(tr, now());
            if (p && client.isConnected()) { client.request("transport", p, {}); }
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

    function start() {
        client.start();
    }

    function state() {
        return {
            model: s.model, temperature: s.temperature, steps: s.steps, barsPerStep: s.barsPerStep, mode: s.mode,
            a: s.a ? s.a.slot : null, b: s.b ? s.b.slot : null, knobs: s.knobValues.slice(0)
        };
    }

    // Restore what getvalueof saved (model and A/B slots).
    function restore(saved) {
        if (!saved) { return; }
        if (saved.model) { s.model = String(saved.model); }
        if (typeof saved.a === "number") { s.a = { slot: saved.a }; }
        if (typeof saved.b === "number") { s.b = { slot: saved.b }; }
    }

    return {
        start: start,
        tick: tick,
        handleMessage: client.handleMessage,
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
        accompany: accompany,
        state: state,
        restore: restore,
        client: client,
        scheduler: scheduler
    };
}

exports.createApp = createApp;
exports.MODES = MODES;
