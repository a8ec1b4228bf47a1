"use strict";
// Static checks of the device: the patcher's boxes and lines, the scripts it names, ES5-only
// code for Max's classic js engine, the Max-side entry with faked Max globals, and the .amxd.
const test = require("node:test");
const assert = require("node:assert/strict");
const fs = require("fs");
const path = require("path");
const { CODE } = require("./helpers");
const build = require("../../build.js");

const patcherText = fs.readFileSync(build.MAXPAT, "utf8");
const patcher = JSON.parse(patcherText).patcher;
const boxes = patcher.boxes.map((b) => b.box);
const byId = new Map(boxes.map((b) => [b.id, b]));

// Every maxclass this device may use (UI objects are their own maxclass; objects typed into an
// object box are "newobj" and named by their text).
const MAXCLASSES = new Set(["newobj", "message", "comment", "panel", "umenu", "live.text", "live.dial", "live.numbox", "live.menu", "live.comment", "inlet", "outlet", "button", "toggle", "number", "flonum"]);
const NEWOBJ = { "live.thisdevice": [1, 3], metro: [2, 1], js: [1, null], "node.script": [1, 2], udpsend: [1, 0], udpreceive: [1, 1], route: [2, null], prepend: [1, 1], print: [1, 0], midiin: [1, 1], midiout: [1, 0] };

test("patcher header: a MIDI effect opening in presentation", () => {
  assert.equal(patcher.fileversion, 1);
  assert.ok(patcher.appversion.major >= 8);
  assert.equal(patcher.project.amxdtype, 0x6d6d6d6d); // 'mmmm'
  assert.equal(patcher.openinpresentation, 1);
});

test("every box has a unique id and a valid maxclass; object boxes are known objects with consistent inlets/outlets", () => {
  assert.equal(byId.size, boxes.length);
  for (const b of boxes) {
    assert.ok(MAXCLASSES.has(b.maxclass), `${b.id}: unknown maxclass ${b.maxclass}`);
    assert.ok(Array.isArray(b.patching_rect) && b.patching_rect.length === 4, `${b.id}: patching_rect`);
    assert.equal((b.outlettype || []).length, b.numoutlets, `${b.id}: outlettype length`);
    if (b.maxclass === "newobj") {
      const name = b.text.split(" ")[0];
      assert.ok(name in NEWOBJ, `${b.id}: unexpected object ${name}`);
      const [ins, outs] = NEWOBJ[name];
      assert.equal(b.numinlets, ins, `${b.text}: inlets`);
      if (name === "route") assert.equal(b.numoutlets, b.text.split(" ").length); // one per selector + reject
      else if (outs !== null) assert.equal(b.numoutlets, outs, `${b.text}: outlets`);
    }
  }
});

test("every patchline connects existing boxes through in-range outlets and inlets", () => {
  assert.ok(patcher.lines.length > 0);
  for (const { patchline: l } of patcher.lines) {
    const src = byId.get(l.source[0]);
    const dst = byId.get(l.destination[0]);
    assert.ok(src, `line from missing box ${l.source[0]}`);
    assert.ok(dst, `line to missing box ${l.destination[0]}`);
    assert.ok(l.source[1] >= 0 && l.source[1] < src.numoutlets, `${src.id} has no outlet ${l.source[1]}`);
    assert.ok(l.destination[1] >= 0 && l.destination[1] < dst.numinlets, `${dst.id} has no inlet ${l.destination[1]}`);
  }
});

test("the wiring the device depends on is present", () => {
  const find = (pred) => boxes.find(pred);
  const js = find((b) => /^js latentbridge\.js/.test(b.text || ""));
  const linked = (a, ao, b, bi) => patcher.lines.some(({ patchline: l }) => l.source[0] === a.id && l.source[1] === ao && l.destination[0] === b.id && l.destination[1] === bi);
  const send = find((b) => /^udpsend /.test(b.text || ""));
  const recv = find((b) => /^udpreceive /.test(b.text || ""));
  assert.ok(linked(js, 0, send, 0), "js -> udpsend");
  assert.ok(linked(recv, 0, js, 0), "udpreceive -> js");
  assert.ok(linked(find((b) => b.text === "midiin"), 0, find((b) => b.text === "midiout"), 0), "MIDI pass-through");
  const dials = boxes.filter((b) => b.maxclass === "live.dial" && /^Knob /.test(b.varname));
  assert.equal(dials.length, 8);
  for (const d of dials) {
    const v = d.saved_attribute_attributes.valueof;
    assert.equal(d.parameter_enable, 1); // saved with the Live set, automatable
    assert.deepEqual([v.parameter_mmin, v.parameter_mmax], [-1, 1]);
    const i = Number(d.varname.split(" ")[1]) - 1;
    const prep = byId.get(patcher.lines.find(({ patchline: l }) => l.source[0] === d.id).patchline.destination[0]);
    assert.equal(prep.text, `prepend knob ${i}`);
    assert.ok(linked(prep, 0, js, 0));
  }
  const names = boxes.filter((b) => b.parameter_enable).map((b) => b.saved_attribute_attributes.valueof.parameter_longname);
  assert.equal(new Set(names).size, names.length, "parameter long names must be unique");
  for (const label of ["Generate", "Interpolate", "Morph", "Stop", "Accompany", "A", "B"]) {
    assert.ok(find((b) => b.maxclass === "live.text" && b.text === label), `button ${label}`);
  }
  // every message the UI sends into js names a function the js file defines
  const src = fs.readFileSync(path.join(CODE, "latentbridge.js"), "utf8");
  for (const b of boxes) {
    const m = /^prepend (\w+)/.exec(b.text || "");
    if (m && patcher.lines.some(({ patchline: l }) => l.source[0] === b.id && l.destination[0] === js.id)) {
      assert.match(src, new RegExp(`(function ${m[1]}\\(|var ${m[1]} = )`), `js has no ${m[1]}`);
    }
  }
});

test("every js / node.script file named in the patch exists, with its require()d modules", () => {
  const named = boxes.filter((b) => /^(js|node\.script) /.test(b.text || "")).map((b) => b.text.split(" ")[1]);
  assert.ok(named.length > 0);
  const seen = new Set();
  const visit = (file) => {
    if (seen.has(file)) return;
    seen.add(file);
    const p = path.join(CODE, file);
    assert.ok(fs.existsSync(p), `${file} is missing from LatentBridge/code`);
    const text = fs.readFileSync(p, "utf8");
    for (const m of text.matchAll(/require\("([\w.]+)"\)|load\("(\w+)"\)/g)) {
      const dep = m[1] || m[2];
      if (/^lb_/.test(dep)) visit(dep.endsWith(".js") ? dep : dep + ".js");
    }
  };
  named.forEach(visit);
  for (const dep of (patcher.dependency_cache || [])) assert.ok(fs.existsSync(path.join(CODE, dep.name)), dep.name);
});

// Strip comments, strings and regex-free code well enough to spot ES2015+ syntax.
function code(text) {
  return text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/\/\/.*$/gm, "")
    .replace(/"(?:\\.|[^"\\])*"/g, '""').replace(/'(?:\\.|[^'\\])*'/g, "''");
}

test("scripts loaded by Max's js object are ES5 (no let/const/arrows/classes/templates/spread)", () => {
  const files = fs.readdirSync(CODE).filter((f) => f.endsWith(".js") && f !== "lb_udp.js");
  for (const f of files) {
    const c = code(fs.readFileSync(path.join(CODE, f), "utf8"));
    for (const [re, what] of [[/\blet\s/, "let"], [/\bconst\s/, "const"], [/=>/, "arrow function"], [/\bclass\s/, "class"],
      [/`/, "template literal"], [/\.\.\.\w/, "spread"], [/\bmodule\.exports\b/, "module.exports (Max js supports only exports.x)"]]) {
      assert.ok(!re.test(c), `${f} uses ${what}`);
    }
  }
});

test("the Max entry script works with faked Max globals (outlet, post, LiveAPI, messagename)", () => {
  const { createLiveSet } = require("./fake_live");
  const live = createLiveSet({ tracks: [{ name: "Lead", slots: [null, null] }], deviceId: 1234 });
  const out = [];
  global.outlet = (n, ...a) => out.push(a.flat()); // drop the outlet number
  global.post = () => {};
  global.LiveAPI = live.LiveAPI;
  global.arrayfromargs = (args) => Array.prototype.slice.call(args);
  global.patcher = { getnamed: () => null };
  const entry = require(path.join(CODE, "latentbridge.js"));
  entry.port(9100);
  entry.init();
  assert.deepEqual(out.find((o) => o[0] === "replyport"), ["replyport", 17400 + 234]);
  assert.deepEqual(out.filter((o) => o[0] === "daemonport").pop(), ["daemonport", 9100]);
  const hello = out.find((o) => o[0] === "/bridge/hello");
  assert.deepEqual(JSON.parse(hello[2]), { reply_port: 17634 });
  global.messagename = "/bridge/ok";
  entry.anything(hello[1], JSON.stringify({ server: "latent-bridge" }));
  assert.equal(entry.getApp().client.state(), "connected");
  assert.deepEqual(out.filter((o) => o[0] === "light").pop(), ["light", 0.2, 0.8, 0.3, 1]);
  assert.ok(out.some((o) => o[0] === "/bridge/models"));
  const before = out.length;
  entry.generate(0); // a button release does nothing
  assert.equal(out.length, before);
  entry.interpolate(1); // no models listed yet: a status message, no request
  assert.match(out.pop().join(" "), /^status no model selected/);
  entry.setvalueof(JSON.stringify({ model: "mel_2bar", a: 0, b: 1 }));
  assert.deepEqual(JSON.parse(entry.getvalueof()).a, 0);
});

test("the .amxd is up to date and parses back to the same patcher JSON", () => {
  const committed = fs.readFileSync(build.AMXD);
  const built = build.buildAmxd(patcherText);
  assert.ok(committed.equals(built), "run `node max_for_live/build.js`");
  const back = build.parseAmxd(committed);
  assert.deepEqual(back.chunks, ["ampf", "meta", "ptch"]);
  assert.equal(back.deviceType, "mmmm");
  assert.equal(back.meta, 1);
  assert.equal(back.patcherText, patcherText);
  assert.deepEqual(back.patcher, JSON.parse(patcherText));
  // header layout, byte for byte
  assert.equal(committed.toString("ascii", 0, 4), "ampf");
  assert.equal(committed.readUInt32LE(4), 4);
  assert.equal(committed.toString("ascii", 8, 12), "mmmm");
  assert.equal(committed.toString("ascii", 12, 16), "meta");
  assert.equal(committed.readUInt32LE(16), 4);
  assert.equal(committed.readUInt32LE(20), 1);
  assert.equal(committed.toString("ascii", 24, 28), "ptch");
  assert.equal(committed.readUInt32LE(28), Buffer.byteLength(patcherText) + 1);
  assert.equal(committed[committed.length - 1], 0);
  assert.throws(() => build.parseAmxd(Buffer.from("nope")), /truncated|ampf/);
});
