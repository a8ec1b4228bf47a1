// latentbridge.js -- the device's [js] object: Max messages in, Max messages out.
//
// Why [js] and not [node.script] here: the Live API (LiveAPI) only exists in [js]. node.script
// runs in a separate Node process with no Live Object Model, so clip reading/writing, slot
// selection, transport polling and clip firing must live here. OSC on the wire is done by
// [udpsend]/[udpreceive] (Max encodes/decodes it), so this object only sees plain Max messages:
//   out 0 -> [udpsend]:  /bridge/<op> <id> <json>
//   in     <- [udpreceive]: /bridge/ok|seq|done|error ...
//   out 1 -> UI: status <text> | light <r g b a> | menu clear/append/setsymbol | replyport <n> | daemonport <n>
// ES5 only (classic Max js engine).

autowatch = 1;
inlets = 1;
outlets = 2;

var IS_NODE = typeof process !== "undefined" && !!(process.versions && process.versions.node);
var appLib = IS_NODE ? require("./lb_app.js") : require("lb_app");
var liveLib = IS_NODE ? require("./lb_live.js") : require("lb_live");

var DEFAULT_DAEMON_PORT = 9000; // `python -m bridge serve` default
var REPLY_PORT_BASE = 17400;    // reply ports are chosen in REPLY_PORT_BASE .. + REPLY_PORT_COUNT - 1
var REPLY_PORT_COUNT = 1000;
var MOVE_AFTER_UNANSWERED = 2;  // unanswered hellos before moving to another reply port

var app = null;
var daemonPort = DEFAULT_DAEMON_PORT;
var replyPort = 0;
var pendingRestore = null;
// Live outputs the saved values of the device's parameters (dials, number boxes, menus) while the
// device loads, BEFORE [live.thisdevice] bangs `init`: they are kept here and applied in init.
var early = { params: {}, knobs: {}, model: null };
var earlyToken = null;
var PARAM_ORDER = ["temperature", "steps", "barsperstep", "mode", "scale", "mine"];

var LIGHTS = [[0.85, 0.2, 0.2, 1.0], [0.95, 0.75, 0.1, 1.0], [0.2, 0.8, 0.3, 1.0]];

function say(text) {
    post("latent-bridge: " + text + "\n");
}

function setLabel(varname, text) {
    try {
        var obj = this.patcher.getnamed(varname);
        if (obj) { obj.message("set", text); }
    } catch (e) { /* no patcher (tests) */ }
}

function ui(kind) {
    var args = Array.prototype.slice.call(arguments, 1);
    if (kind === "status") {
        outlet(1, "status", String(args[0]));
    } else if (kind === "light") {
        var c = LIGHTS[args[0]] || LIGHTS[0];
        outlet(1, "light", c[0], c[1], c[2], c[3]);
    } else if (kind === "models") {
        outlet(1, "menu", "clear");
        for (var i = 0; i < args[0].length; i++) { outlet(1, "menu", "append", args[0][i]); }
    } else if (kind === "model") {
        outlet(1, "menu", "setsymbol", args[0]);
    } else if (kind === "knoblabels") {
        for (var k = 0; k < args[0].length; k++) { setLabel("lb_label" + (k + 1), args[0][k]); }
    } else if (kind === "slota" || kind === "slotb") {
        setLabel("lb_" + kind, (kind === "slota" ? "A: " : "B: ") + args[0]);
    }
}

function guarded(fn) {
    try {
        return fn();
    } catch (e) {
        outlet(1, "status", "error: " + e.message);
        say("error: " + e.message);
        return null;
    }
}

// Reply ports in use by the LatentBridge devices of this Live (one Max process): Max's Global
// object is shared by every js object, so two devices never pick the same [udpreceive] port.
function portTable() {
    if (typeof Global === "undefined") { return {}; }
    var g = new Global("latentbridge_reply_ports");
    if (!g.ports) { g.ports = {}; }
    return g.ports;
}

// The first port from base + (deviceId mod count) on, wrapping, that no other device holds and
// that is not `avoid`. Exported for the tests.
function choosePort(taken, deviceId, avoid) {
    var start = Math.abs(Math.round(Number(deviceId) || 0)) % REPLY_PORT_COUNT;
    for (var k = 0; k < REPLY_PORT_COUNT; k++) {
        var p = REPLY_PORT_BASE + (start + k) % REPLY_PORT_COUNT;
        if (p !== avoid && !taken.hasOwnProperty(String(p))) { return p; }
    }
    throw new Error("no free reply port in " + REPLY_PORT_BASE + ".." + (REPLY_PORT_BASE + REPLY_PORT_COUNT - 1));
}

var deviceKey = null;

function releasePort() {
    var t = portTable();
    if (replyPort && t[String(replyPort)] === deviceKey) { delete t[String(replyPort)]; }
}

// Take a free reply port (moving off `avoid`), point [udpreceive] at it; hello announces it.
function claimPort(avoid) {
    var t = portTable();
    releasePort();
    replyPort = choosePort(t, deviceKey, avoid);
    t[String(replyPort)] = deviceKey;
    outlet(1, "replyport", replyPort);
    return replyPort;
}

// From [live.thisdevice]: the Live API is usable from now on.
function init() {
    guarded(function () {
        var live = liveLib.createLive(LiveAPI);
        deviceKey = live.deviceId();
        claimPort();
        outlet(1, "daemonport", daemonPort);
        app = appLib.createApp({
            live: live,
            replyPort: replyPort,
            send: function (address, args) { outlet(0, [address].concat(args)); },
            ui: ui,
            log: say,
            token: earlyToken,
            onNoHelloAnswer: function (n) {
                if (n % MOVE_AFTER_UNANSWERED !== 0) { return; }
                var old = replyPort;
                claimPort(old);
                app.setReplyPort(replyPort);
                say("no answer on reply port " + old + "; listening on " + replyPort + " instead");
            }
        });
        if (pendingRestore) { app.restore(pendingRestore); }
        applyEarly();
        app.start();
        say("listening for replies on port " + replyPort + ", daemon at 127.0.0.1:" + daemonPort);
    });
}

// Apply what arrived before init: parameters in a fixed order (any others after them), the dials'
// values (restored, not sent: the daemon has no latent to move yet) and a model chosen early.
function applyEarly() {
    var names = PARAM_ORDER.slice(0);
    var k;
    for (k in early.params) { if (early.params.hasOwnProperty(k) && names.indexOf(k) < 0) { names.push(k); } }
    for (var i = 0; i < names.length; i++) {
        if (early.params.hasOwnProperty(names[i])) {
            var name = names[i];
            var value = early.params[name];
            guarded(function () { app.setParam(name, value); });
        }
    }
    for (k in early.knobs) {
        if (early.knobs.hasOwnProperty(k)) { app.restoreKnob(Number(k), early.knobs[k]); }
    }
    if (early.model !== null) { app.setModel(early.model); }
    early = { params: {}, knobs: {}, model: null };
}

// Max calls this when the js object is deleted (the device removed): give the port back.
function notifydeleted() {
    releasePort();
}

function tick() {
    if (app) { guarded(function () { app.tick(); }); }
}

// OSC replies from [udpreceive] arrive as messages named by their address.
function anything() {
    var args = arrayfromargs(arguments);
    if (!app || String(messagename).indexOf("/bridge/") !== 0) { return; }
    guarded(function () { app.handleMessage(messagename, args); });
}

function pressed(v) {
    return v === undefined || v === "bang" || Number(v) !== 0;
}

function button(fn) {
    return function (v) { if (app && pressed(v)) { guarded(function () { fn(); }); } };
}

var generate = button(function () { app.generate(); });
var interpolate = button(function () { app.interpolate(); });
var morph = button(function () { app.morph(); });
var stop = button(function () { app.stop(); });
var accompany = button(function () { app.accompany(); });
var learn = button(function () { app.learn(); });
var seta = button(function () { app.captureA(); });
var setb = button(function () { app.captureB(); });
var reconnect = button(function () { app.reconnect(); });

function model(name) {
    if (name === undefined) { return; }
    if (!app) { early.model = String(name); return; }
    guarded(function () { app.setModel(name); });
}

function param(name, value) {
    if (!app) { early.params[String(name)] = value; return; }
    guarded(function () { app.setParam(String(name), value); });
}

function knob(index, value) {
    if (!app) { early.knobs[Math.round(Number(index))] = Number(value); return; }
    guarded(function () { app.knob(index, value); });
}

// Daemon port (number box): re-point [udpsend] and say hello again.
function port(p) {
    daemonPort = Math.round(Number(p));
    outlet(1, "daemonport", daemonPort);
    if (app) { guarded(function () { app.reconnect(); }); }
}

// Shared secret of a daemon started with --token (message: token <secret>); sent with every request.
function token(secret) {
    if (!app) { earlyToken = secret === undefined ? null : String(secret); return; }
    if (app) { guarded(function () { app.client.setToken(secret === undefined ? null : String(secret)); app.reconnect(); }); }
}

// Saved with the Live set through the js object's parameter (blob): model, A/B slots and the
// learned palette (its JSON object, ~15-35 kB: imported into the daemon when the set opens).
function getvalueof() {
    return JSON.stringify(app ? app.state() : (pendingRestore || {}));
}

function setvalueof(v) {
    try {
        pendingRestore = JSON.parse(String(v));
    } catch (e) {
        pendingRestore = null;
    }
    if (app && pendingRestore) { app.restore(pendingRestore); }
}

if (typeof exports !== "undefined" && IS_NODE) {
    exports.init = init;
    exports.tick = tick;
    exports.anything = anything;
    exports.generate = generate;
    exports.interpolate = interpolate;
    exports.morph = morph;
    exports.stop = stop;
    exports.accompany = accompany;
    exports.learn = learn;
    exports.seta = seta;
    exports.setb = setb;
    exports.model = model;
    exports.param = param;
    exports.knob = knob;
    exports.port = port;
    exports.token = token;
    exports.getvalueof = getvalueof;
    exports.setvalueof = setvalueof;
    exports.getApp = function () { return app; };
    exports.notifydeleted = notifydeleted;
    exports.choosePort = choosePort;
    exports.getReplyPort = function () { return replyPort; };
}
