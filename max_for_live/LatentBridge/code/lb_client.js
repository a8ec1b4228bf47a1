// lb_client.js -- latent-bridge OSC request/reply state, independent of the wire.
//
// The wire is injected: send(address, argsArray). In the device the `js` object forwards it to
// [udpsend] (Max encodes OSC); on Node (tests, node.script) lb_udp.js encodes with lb_osc.js and
// sends with dgram. Replies are fed back with handleMessage(address, argsArray).
//
// Protocol: request /bridge/<op> (int32 id, string json). Replies: /bridge/ok id json,
// /bridge/seq id index count json, /bridge/done id, /bridge/error id code message.
// Connection: the hello handshake (protocol 1.1): hello {"reply_port"} -> ok {"challenge"} arrives
// on the reply port -> hello {"reply_port", "challenge"} -> ok => connected (a 1.0 daemon answers
// the first hello directly). Pings keep it alive; missed pings => disconnected, pending requests
// fail with code "disconnected", hello is retried with backoff. opts.token: the daemon's shared
// secret (`serve --token`), added to every request. ES5 only (Max `js`).
//
// Protocol 1.2, no new Max symbol per message: Max interns every string it sends or receives as a
// symbol, forever, so the high-rate traffic avoids per-message strings. opts.notesFormat "numeric"
// asks in hello for /bridge/seq with numeric notes (decodeNumericSeq turns one back into the JSON
// form's object); requestTyped(op, args) sends a request as plain numbers when the daemon's hello
// reply lists the op under "typed" (hasTyped), and its typed /bridge/ok is read back into an object
// (TYPED_REPLIES). The names left (model, direction, extras keys) come from a fixed set.

var STATES = { disconnected: 0, connecting: 1, connected: 2 };

// The fields of the typed /bridge/ok to a typed request, in order (docs/osc-protocol.md, "Typed forms").
var TYPED_REPLIES = {
    transport: ["tempo", "beat", "bar", "playing"],
    knob: ["direction", "index", "value"]
};
var NOTE_ARGS = 5;   // pitch, start_beat, duration_beats, velocity, track

// Put `value` at a flattened extras path ("knob.value", "tracks[1]") of obj.
function setPath(obj, path, value) {
    var names = String(path).split(".");
    var cur = obj;
    for (var i = 0; i < names.length; i++) {
        var last = i === names.length - 1;
        var m = /^(.*)\[(\d+)\]$/.exec(names[i]);
        if (m) {
            var list = cur[m[1]];
            if (!list || typeof list !== "object" || typeof list.length !== "number") { list = cur[m[1]] = []; }
            var idx = Number(m[2]);
            if (last) { list[idx] = value; return; }
            if (!list[idx] || typeof list[idx] !== "object") { list[idx] = {}; }
            cur = list[idx];
        } else if (last) {
            cur[names[i]] = value;
        } else {
            if (!cur[names[i]] || typeof cur[names[i]] !== "object") { cur[names[i]] = {}; }
            cur = cur[names[i]];
        }
    }
}

// A numeric /bridge/seq's arguments (id, index, count, model, bars, part, parts, n_extras,
// key/value x n_extras, n_notes, 5 numbers per note) -> the object the JSON form carries
// ({model, index, bars, part, parts, notes: [[pitch, start, duration, velocity, track]], extras}).
function decodeNumericSeq(args) {
    var obj = { model: String(args[3]), index: Number(args[1]), bars: Number(args[4]),
                part: Number(args[5]), parts: Number(args[6]) };
    var pos = 8;
    var nExtras = Number(args[7]);
    for (var i = 0; i < nExtras; i++) {
        setPath(obj, args[pos], args[pos + 1]);
        pos += 2;
    }
    var nNotes = Number(args[pos]);
    pos += 1;
    if (!(nNotes >= 0) || args.length - pos !== nNotes * NOTE_ARGS) {
        throw new Error("numeric seq: " + nNotes + " notes announced, " + (args.length - pos) + " values present");
    }
    obj.notes = [];
    for (var k = pos; k < args.length; k += NOTE_ARGS) {
        obj.notes.push([Number(args[k]), Number(args[k + 1]), Number(args[k + 2]), Number(args[k + 3]), Number(args[k + 4])]);
    }
    return obj;
}

// The arguments of a typed /bridge/ok (after the id) to a typed request of `op` -> an object.
function decodeTypedOk(op, values) {
    var names = TYPED_REPLIES[op];
    if (!names || values.length !== names.length) { throw new Error("typed reply to " + op + " has " + values.length + " values"); }
    var out = {};
    for (var i = 0; i < names.length; i++) { out[names[i]] = values[i]; }
    return out;
}

var DEFAULTS = {
    pingIntervalMs: 1000,    // send a ping when nothing was heard for this long
    pingTimeoutMs: 2500,     // a ping unanswered for this long counts as missed
    maxMissedPings: 2,       // this many missed pings in a row => disconnected
    helloTimeoutMs: 1500,    // hello unanswered for this long => retry
    backoffMs: [500, 1000, 2000, 4000, 5000],
    requestTimeoutMs: 60000, // default for requests without replies for this long
    opTimeoutMs: { ping: 2500, hello: 1500, models: 5000, stats: 5000, transport: 2000, stop: 5000, knob: 10000 }
};

function copyDefaults(opts) {
    var o = {};
    var k;
    for (k in DEFAULTS) { if (DEFAULTS.hasOwnProperty(k)) { o[k] = DEFAULTS[k]; } }
    opts = opts || {};
    for (k in opts) { if (opts.hasOwnProperty(k)) { o[k] = opts[k]; } }
    return o;
}

function parseJson(text) {
    if (text === undefined || text === null || text === "") { return {}; }
    if (typeof text === "object") { return text; }
    return JSON.parse(String(text));
}

// opts: send (required), now (ms clock, default Date.now), replyPort (int, the port replies
// should come to; required for hello), onStatus(stateName, info), onConnect(), log(text), plus
// any of DEFAULTS.
function createClient(opts) {
    var cfg = copyDefaults(opts);
    if (typeof cfg.send !== "function") { throw new Error("createClient needs a send function"); }
    var now = cfg.now || function () { return new Date().getTime(); };
    var log = cfg.log || function () {};

    var nextId = 1;
    var pending = {};   // id -> {op, sentAt, timeoutMs, handlers, seqs, lastAt}
    var state = "disconnected";
    var started = false;
    var helloId = null;
    var helloSentAt = 0;
    var retryAt = 0;
    var attempts = 0;
    var pingId = null;
    var pingSentAt = 0;
    var missed = 0;
    var lastHeard = 0;
    var stats = { sent: 0, received: 0, unknownReplies: 0, timeouts: 0, reconnects: 0 };
    var typedOps = [];   // ops the daemon takes as plain numbers (its hello reply's "typed")

    function setState(s, info) {
        if (s === state) { return; }
        state = s;
        if (cfg.onStatus) { cfg.onStatus(s, info || ""); }
    }

    function allocId() {
        var id = nextId;
        nextId = nextId >= 2147483647 ? 1 : nextId + 1;
        return id;
    }

    function rawSend(op, id, payload) {
        stats.sent++;
        payload = payload || {};
        if (cfg.token) {
            var withToken = {};
            for (var k in payload) { if (payload.hasOwnProperty(k)) { withToken[k] = payload[k]; } }
            withToken.token = cfg.token;
            payload = withToken;
        }
        cfg.send("/bridge/" + op, [id, JSON.stringify(payload)]);
    }

    // A typed request: /bridge/<op> id args..., then one JSON object of the fields that stay the same
    // from one request to the next (options, the token), when there are any: the same text each
    // time, one symbol in Max.
    function rawSendTyped(op, id, args, options) {
        stats.sent++;
        var extra = {};
        var any = false;
        var k;
        options = options || {};
        for (k in options) { if (options.hasOwnProperty(k)) { extra[k] = options[k]; any = true; } }
        if (cfg.token) { extra.token = cfg.token; any = true; }
        var out = [id].concat(args);
        if (any) { out.push(JSON.stringify(extra)); }
        cfg.send("/bridge/" + op, out);
    }

    function timeoutFor(op, handlers) {
        if (handlers && typeof handlers.timeoutMs === "number") { return handlers.timeoutMs; }
        if (cfg.opTimeoutMs && typeof cfg.opTimeoutMs[op] === "number") { return cfg.opTimeoutMs[op]; }
        return cfg.requestTimeoutMs;
    }

    // Send a request. handlers: ok(result), seq(obj, index, count), done(seqs), error(code, message),
    // timeoutMs, stream (ok does not end the request: seqs follow until done), quiet (a timeout is
    // not reported; for coalesced knob requests that may never get a seq). Returns the request id. When not connected, non-connection ops fail at once
    // (error "disconnected") instead of being sent into the void.
    function request(op, payload, handlers) {
        handlers = handlers || {};
        var id = allocId();
        if (state !== "connected" && op !== "hello" && op !== "ping") {
            if (handlers.error) { handlers.error("disconnected", "not connected to the latent-bridge daemon"); }
            return id;
        }
        var t = now();
        pending[id] = { op: op, sentAt: t, lastAt: t, timeoutMs: timeoutFor(op, handlers), handlers: handlers, seqs: [] };
        rawSend(op, id, payload);
        return id;
    }

    // A request in its typed form (args: the numbers, model and direction names of the op's typed
    // layout; options: the other fields, see rawSendTyped). Handlers as for request; a typed ok
    // reaches ok() as an object (TYPED_REPLIES). Use only when hasTyped(op).
    function requestTyped(op, args, handlers, options) {
        handlers = handlers || {};
        var id = allocId();
        if (state !== "connected") {
            if (handlers.error) { handlers.error("disconnected", "not connected to the latent-bridge daemon"); }
            return id;
        }
        var t = now();
        pending[id] = { op: op, sentAt: t, lastAt: t, timeoutMs: timeoutFor(op, handlers), handlers: handlers, seqs: [] };
        rawSendTyped(op, id, args, options);
        return id;
    }

    function cancel(id) {
        delete pending[id];
    }

    function finish(id) {
        var p = pending[id];
        delete pending[id];
        return p;
    }

    function failAll(code, message) {
        var ids = [];
        var k;
        for (k in pending) { if (pending.hasOwnProperty(k)) { ids.push(k); } }
        for (var i = 0; i < ids.length; i++) {
            var p = finish(ids[i]);
            if (p && p.handlers.error) { p.handlers.error(code, message); }
        }
    }

    // hello; with `challenge` the second half of the handshake (the challenge came to the reply port)
    function sendHello(challenge) {
        helloSentAt = now();
        var payload = { reply_port: cfg.replyPort };
        if (cfg.notesFormat) { payload.notes_format = cfg.notesFormat; }
        if (challenge !== undefined) { payload.challenge = challenge; }
        helloId = request("hello", payload, {
            ok: function (res) {
                helloId = null;
                if (res && typeof res.challenge === "string" && challenge === undefined) {
                    sendHello(res.challenge);   // echo it: proves the reply port receives
                    return;
                }
                attempts = 0;
                missed = 0;
                pingId = null;
                typedOps = (res && res.typed && typeof res.typed.length === "number") ? res.typed.slice(0) : [];
                setState("connected", res && res.version ? ("daemon " + res.version) : "");
                if (cfg.onConnect) { cfg.onConnect(res); }
            },
            error: function (code, message) {
                helloId = null;
                scheduleRetry("hello failed: " + code + " " + message);
            }
        });
        if (state !== "connected") { setState("connecting", "hello sent"); }
    }

    function scheduleRetry(why) {
        var delay = cfg.backoffMs[Math.min(attempts, cfg.backoffMs.length - 1)];
        attempts++;
        retryAt = now() + delay;
        log("latent-bridge: " + why + "; retrying in " + delay + " ms");
    }

    function disconnect(why) {
        if (state === "connected") { stats.reconnects++; }
        pingId = null;
        missed = 0;
        setState("disconnected", why);
        failAll("disconnected", why);
        helloId = null;
        scheduleRetry(why);
    }

    function start() {
        started = true;
        attempts = 0;
        retryAt = 0;
        if (state !== "connected") { sendHello(); }
    }

    function stop() {
        started = false;
        failAll("disconnected", "client stopped");
        helloId = null;
        pingId = null;
        setState("disconnected", "stopped");
    }

    // Change where requests go (e.g. new daemon port): force a fresh hello.
    function reconnect() {
        if (state === "connected") { stats.reconnects++; }
        failAll("disconnected", "reconnecting");
        helloId = null;
        pingId = null;
        missed = 0;
        attempts = 0;
        setState("disconnected", "reconnecting");
        if (started) { sendHello(); }
    }

    // Call regularly (every 50-250 ms): timeouts, pings, reconnects.
    function tick() {
        var t = now();
        var k;
        var expired = [];
        for (k in pending) {
            if (pending.hasOwnProperty(k) && t - pending[k].lastAt > pending[k].timeoutMs) { expired.push(k); }
        }
        for (var i = 0; i < expired.length; i++) {
            var p = finish(expired[i]);
            stats.timeouts++;
            if (p.op === "ping" || p.handlers.quiet) { continue; } // pings are handled below
            if (p.handlers.error) { p.handlers.error("timeout", p.op + " got no reply in " + p.timeoutMs + " ms"); }
        }
        if (!started) { return; }
        if (state === "connected") {
            if (pingId !== null && t - pingSentAt > cfg.pingTimeoutMs) {
                pingId = null;
                missed++;
                if (missed >= cfg.maxMissedPings) {
                    disconnect("daemon stopped answering (" + missed + " pings missed)");
                    return;
                }
            }
            if (pingId === null && t - Math.max(lastHeard, pingSentAt) >= cfg.pingIntervalMs) {
                pingSentAt = t;
                pingId = request("ping", {}, {
                    timeoutMs: cfg.pingTimeoutMs + 1000,
                    ok: function () { pingId = null; missed = 0; }
                });
            }
        } else if (helloId !== null) {
            if (t - helloSentAt > cfg.helloTimeoutMs) {
                cancel(helloId);
                helloId = null;
                setState("disconnected", "no answer to hello");
                scheduleRetry("no answer to hello");
            }
        } else if (t >= retryAt) {
            sendHello();
        }
    }

    // Feed one received OSC message. Returns true when it was a latent-bridge reply.
    function handleMessage(address, args) {
        args = args || [];
        var kind = String(address).replace(/^\/bridge\//, "");
        if (kind === String(address)) { return false; }
        stats.received++;
        lastHeard = now();
        missed = 0;
        var id = Number(args[0]);
        var p = pending[id];
        if (!p) {
            stats.unknownReplies++;
            return true;
        }
        p.lastAt = lastHeard;
        var h = p.handlers;
        try {
            if (kind === "ok") {
                // Streaming ops (morph, knob) answer ok first and keep sending seqs until done.
                if (!h.stream) { finish(id); }
                var typed = args.length !== 2 || typeof args[1] !== "string";   // the answer to a typed request
                var res = typed ? decodeTypedOk(p.op, args.slice(1)) : parseJson(args[1]);
                if (h.ok) { h.ok(res); }
            } else if (kind === "seq") {
                var obj = mergeParts(p, args.length > 4 ? decodeNumericSeq(args) : parseJson(args[3]));
                if (obj) {
                    p.seqs.push(obj);
                    if (h.seq) { h.seq(obj, Number(args[1]), Number(args[2])); }
                }
            } else if (kind === "done") {
                finish(id);
                if (h.done) { h.done(p.seqs); }
            } else if (kind === "error") {
                finish(id);
                if (h.error) { h.error(String(args[1]), String(args[2] === undefined ? "" : args[2])); }
            } else {
                stats.unknownReplies++;
            }
        } catch (e) {
            finish(id);
            if (h.error) { h.error("bad_reply", "could not handle /bridge/" + kind + ": " + e.message); }
        }
        return true;
    }

    // A seq too big for one datagram arrives in parts ("part", "parts"), each repeating the
    // header; the notes are concatenated. Returns the whole seq once every part is in, else null.
    function mergeParts(p, obj) {
        if (!(obj.parts > 1)) { return obj; }
        var key = String(obj.index) + ":" + String(obj.bar);
        p.parts = p.parts || {};
        var acc = p.parts[key] || (p.parts[key] = { got: {}, n: 0, pieces: [] });
        if (!acc.got[obj.part]) {
            acc.got[obj.part] = true;
            acc.n++;
            acc.pieces[obj.part] = obj;
        }
        if (acc.n < obj.parts) { return null; }
        delete p.parts[key];
        var whole = {};
        for (var k in obj) { if (obj.hasOwnProperty(k) && k !== "part" && k !== "parts") { whole[k] = obj[k]; } }
        whole.notes = [];
        for (var i = 0; i < acc.pieces.length; i++) { whole.notes = whole.notes.concat(acc.pieces[i].notes || []); }
        return whole;
    }

    function pendingCount() {
        var n = 0;
        for (var k in pending) { if (pending.hasOwnProperty(k)) { n++; } }
        return n;
    }

    return {
        start: start,
        stop: stop,
        reconnect: reconnect,
        tick: tick,
        request: request,
        requestTyped: requestTyped,
        hasTyped: function (op) { return typedOps.indexOf(op) >= 0; },
        cancel: cancel,
        handleMessage: handleMessage,
        state: function () { return state; },
        stateCode: function () { return STATES[state]; },
        isConnected: function () { return state === "connected"; },
        pendingCount: pendingCount,
        stats: function () { return stats; },
        setReplyPort: function (p) { cfg.replyPort = p; },
        setToken: function (t) { cfg.token = t || null; }
    };
}

exports.createClient = createClient;
exports.STATES = STATES;
exports.DEFAULTS = DEFAULTS;
exports.TYPED_REPLIES = TYPED_REPLIES;
exports.decodeNumericSeq = decodeNumericSeq;
exports.decodeTypedOk = decodeTypedOk;
