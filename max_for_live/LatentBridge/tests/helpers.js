"use strict";
const path = require("path");
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

// The device's app wired to the daemon over real UDP (lb_udp stands in for [udpsend]/[udpreceive]).
async function connectDevice(t, port, liveSet) {
  const { createApp } = code("lb_app");
  const { createLive } = code("lb_live");
  const { openTransport } = code("lb_udp");
  const statuses = [];
  let app = null;
  const transport = await new Promise((resolve, reject) => openTransport({
    host: "127.0.0.1", port, onMessage: (a, args) => { if (app) app.handleMessage(a, args); },
  }, (err, tr) => (err ? reject(err) : resolve(tr))));
  t.after(() => transport.close());
  app = createApp({
    live: createLive(liveSet.LiveAPI), send: transport.send, replyPort: transport.replyPort,
    ui: (kind, ...args) => { if (kind === "status") statuses.push(String(args[0])); },
  });
  app.start();
  return { app, statuses };
}

module.exports = { CODE, code, clock, startDaemon, connectDevice };
