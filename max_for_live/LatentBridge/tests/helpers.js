"use strict";
const path = require("path");
const assert = require("node:assert/strict");
const CODE = path.join(__dirname, "..", "code");
function code(name) { return require(path.join(CODE, name + ".js")); }
// A manual clock for time-driven logic.
function clock(start = 1000) {
  const c = { t: start, now: () => c.t, advance: (ms) => { c.t += ms; return c.t; } };
  return c;
}

// A real `python -m bridge serve` for the end-to-end tests, stopped when the test ends.
// `daemon.exited` is null while it runs; `daemon.log` collects its output for error messages.
function startDaemon(t, python, root, args) {
  const { spawn } = require("child_process");
  const proc = spawn(python, ["-m", "bridge", "serve", ...args], { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
  const daemon = { log: [], exited: null };
  proc.stdout.on("data", (d) => daemon.log.push(String(d)));
  proc.stderr.on("data", (d) => daemon.log.push(String(d)));
  proc.on("exit", (c) => { daemon.exited = c; });
  t.after(() => { if (daemon.exited === null) proc.kill("SIGTERM"); });
  return daemon;
}

// The device's app wired to the daemon over real UDP through max_wire.js, which encodes and decodes
// OSC as [udpsend]/[udpreceive] do (int/float/symbol atoms <-> i/f/s). appOpts: more createApp
// options. Returns {app, statuses, ui (every ui call), wire (sent datagrams, received messages)}.
async function connectDevice(t, port, liveSet, appOpts = {}) {
  const { createApp } = code("lb_app");
  const { createLive } = code("lb_live");
  const { openMaxWire } = require("./max_wire");
  const statuses = [];
  const uiCalls = [];
  let app = null;
  const transport = await new Promise((resolve, reject) => openMaxWire({
    host: "127.0.0.1", port, onMessage: (a, args) => { if (app) app.handleMessage(a, args); },
  }, (err, tr) => (err ? reject(err) : resolve(tr))));
  t.after(() => {
    transport.close();
    assert.deepEqual(transport.errors, [], "replies [udpreceive] could not have decoded");
  });
  app = createApp(Object.assign({
    live: createLive(liveSet.LiveAPI), send: transport.send, replyPort: transport.replyPort,
    ui: (kind, ...args) => { uiCalls.push([kind, ...args]); if (kind === "status") statuses.push(String(args[0])); },
  }, appOpts));
  app.start();
  return { app, statuses, ui: uiCalls, wire: transport };
}

// The Max entry script (latentbridge.js) loaded fresh, with Max's globals faked: outlet() calls are
// recorded in `out` (without the outlet number), LiveAPI is the fake Live set's.
function loadMaxEntry(liveSet) {
  const out = [];
  global.outlet = (n, ...a) => out.push(a.flat());
  global.post = () => {};
  global.LiveAPI = liveSet.LiveAPI;
  global.arrayfromargs = (args) => Array.prototype.slice.call(args);
  global.patcher = { getnamed: () => null };
  const file = path.join(CODE, "latentbridge.js");
  delete require.cache[require.resolve(file)];
  const entry = require(file);
  // a message from [udpreceive]: Max calls anything() with messagename set to the OSC address
  entry.receive = (address, ...args) => { global.messagename = address; entry.anything(...args); };
  return { entry, out };
}

// A free UDP port on loopback (for a daemon to bind).
function freePort() {
  const dgram = require("dgram");
  return new Promise((resolve) => {
    const s = dgram.createSocket("udp4");
    s.bind(0, "127.0.0.1", () => { const p = s.address().port; s.close(() => resolve(p)); });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Call tickFn (the device's tick) every 20 ms until pred() holds; throws after `ms`.
async function until(pred, ms, tickFn, what) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (tickFn) tickFn();
    if (pred()) return;
    await sleep(20);
  }
  throw new Error(`timed out waiting for ${what}`);
}

module.exports = { CODE, code, clock, startDaemon, connectDevice, loadMaxEntry, freePort, sleep, until };
