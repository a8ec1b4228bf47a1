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

var STATES = { disconnected: 0, connecting: 1, connected: 2 };

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
                if (h.ok) { h.ok(parseJson(args[1])); }
            } else if (kind === "seq") {
                var obj = mergeParts(p, parseJson(args[3]));
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
