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

test("buttons are hidden from automation with real labels; settings are automatable; udpreceive defers", () => {
  const buttons = boxes.filter((b) => b.maxclass === "live.text" && b.mode === 0);
  assert.equal(buttons.length, 9);
  for (const b of buttons) {
    const v = b.saved_attribute_attributes.valueof;
    assert.equal(v.parameter_invisible, 2, `${b.text}: Parameter Visibility must be Hidden (no automation, no undo entries)`);
    assert.deepEqual(v.parameter_enum, ["off", "on"], `${b.text}: labels`);
  }
  for (const b of boxes.filter((x) => x.parameter_enable)) {
    assert.ok(!(b.saved_attribute_attributes.valueof.parameter_enum || []).includes("val1"), `${b.varname}: default val1/val2 labels`);
  }
  const automated = boxes.filter((b) => b.parameter_enable && !b.saved_attribute_attributes.valueof.parameter_invisible)
    .map((b) => b.saved_attribute_attributes.valueof.parameter_longname).sort();
  assert.deepEqual(automated, ["Bars per step", "Daemon port", "Knob 1", "Knob 2", "Knob 3", "Knob 4", "Knob 5", "Knob 6", "Knob 7",
    "Knob 8", "Mine", "Morph mode", "Scale", "Steps", "Temperature"]);
  for (const b of boxes.filter((x) => x.parameter_enable)) {
    assert.ok(b.id in patcher.parameters, `${b.id} is listed in the patcher's parameters`);
  }
  const scale = boxes.find((b) => b.varname === "Scale");
  assert.equal(scale.maxclass, "live.text");
  assert.equal(scale.mode, 1, "Scale is a toggle");
  assert.deepEqual(scale.saved_attribute_attributes.valueof.parameter_initial, [0], "Scale is off by default");
  const prep = byId.get(patcher.lines.find(({ patchline: l }) => l.source[0] === scale.id).patchline.destination[0]);
  assert.equal(prep.text, "prepend param scale");
  const mine = boxes.find((b) => b.varname === "Mine");
  assert.equal(mine.mode, 1, "Mine is a toggle");
  assert.deepEqual(mine.saved_attribute_attributes.valueof.parameter_initial, [0], "Mine is off by default");
  const minePrep = byId.get(patcher.lines.find(({ patchline: l }) => l.source[0] === mine.id).patchline.destination[0]);
  assert.equal(minePrep.text, "prepend param mine");
  const learnBox = boxes.find((b) => b.varname === "Learn");
  const learnPrep = byId.get(patcher.lines.find(({ patchline: l }) => l.source[0] === learnBox.id).patchline.destination[0]);
  assert.equal(learnPrep.text, "prepend learn");
  for (const pr of [minePrep, learnPrep]) {
    const to = byId.get(patcher.lines.find(({ patchline: l }) => l.source[0] === pr.id).patchline.destination[0]);
    assert.match(to.text, /^js latentbridge\.js/, `${pr.text} goes to the js object`);
  }
  assert.match(boxes.find((b) => /^udpreceive /.test(b.text || "")).text, /@defer 1/);
});

// The device scripts parsed as ES5 (acorn, ecmaVersion 5): what Max's classic js object runs.
const acorn = require("acorn");
const SCRIPTS = fs.readdirSync(CODE).filter((f) => f.endsWith(".js")).sort();
const ast = new Map(SCRIPTS.map((f) => [f, acorn.parse(fs.readFileSync(path.join(CODE, f), "utf8"), { ecmaVersion: 5, sourceType: "script", locations: true })]));

function walk(node, visit) {
  if (!node || typeof node.type !== "string") return;
  visit(node);
  for (const k of Object.keys(node)) {
    const v = node[k];
    if (Array.isArray(v)) v.forEach((c) => walk(c, visit));
    else if (v && typeof v.type === "string") walk(v, visit);
  }
}

// What a script loads, read from its syntax tree: require("x") / load("x") calls with a literal
// name (Max branch "lb_x", Node branch "./lb_x.js"), as file names; a require of anything else
// than a literal or the `name` parameter of lb_app's load() helper is an error.
function requiresOf(file) {
  const out = new Set();
  walk(ast.get(file), (n) => {
    if (n.type !== "CallExpression" || n.callee.type !== "Identifier" || !["require", "load"].includes(n.callee.name)) return;
    const a = n.arguments[0];
    if (a && a.type === "Literal" && typeof a.value === "string") {
      const base = path.basename(a.value);
      if (/^(lb_|latentbridge)/.test(base)) out.add(base.endsWith(".js") ? base : base + ".js");
      return;
    }
    const dynamicOk = n.callee.name === "require" && a && (a.type === "Identifier" || a.type === "BinaryExpression") && file === "lb_app.js";
    assert.ok(dynamicOk, `${file}:${n.loc.start.line}: ${n.callee.name}() of a non-literal name cannot be checked`);
  });
  return [...out].sort();
}

test("the scripts the patch loads, and everything they require, are exactly the build's dependencies", () => {
  const named = boxes.filter((b) => /^(js|node\.script) /.test(b.text || "")).map((b) => b.text.split(" ")[1]);
  assert.ok(named.length > 0);
  const seen = new Set();
  const visit = (file) => {
    if (seen.has(file)) return;
    assert.ok(SCRIPTS.includes(file), `${file} is missing from LatentBridge/code`);
    seen.add(file);
    requiresOf(file).forEach(visit);
  };
  named.forEach(visit);
  assert.deepEqual([...seen].sort(), [...build.dependencies(JSON.parse(patcherText))].sort());
  for (const f of SCRIPTS) assert.deepEqual(build.scriptRequires(fs.readFileSync(path.join(CODE, f), "utf8")), requiresOf(f), f);
  assert.deepEqual((patcher.dependency_cache || []).map((d) => d.name).sort(), [...seen].sort(), "the patcher's dependency_cache");
  assert.ok(!seen.has("lb_udp.js") && !seen.has("lb_osc.js"), "the Node-only wire must not be loaded by the device");
});

test("every file the device loads is inside the built .amxd (frozen), byte for byte", () => {
  const back = build.parseAmxd(fs.readFileSync(build.AMXD));
  assert.equal(back.frozen, true);
  const inside = new Map(back.files.map((f) => [f.name, f]));
  assert.equal(back.files[0].name, build.DEVICE_NAME);
  assert.equal(back.files[0].flag, build.FLAG_DEVICE);
  const named = boxes.filter((b) => /^(js|node\.script) /.test(b.text || "")).map((b) => b.text.split(" ")[1]);
  const need = new Set();
  const visit = (f) => { if (!need.has(f)) { need.add(f); requiresOf(f).forEach(visit); } };
  named.forEach(visit);
  for (const f of need) {
    assert.ok(inside.has(f), `${f} is not inside LatentBridge.amxd`);
    assert.ok(inside.get(f).data.equals(fs.readFileSync(path.join(CODE, f))), `${f} inside the .amxd differs from LatentBridge/code/${f}`);
    assert.equal(inside.get(f).type, "TEXT");
  }
  assert.deepEqual([...inside.keys()].slice(1).sort(), [...need].sort(), "nothing else is frozen in");
});

test("scripts loaded by Max's js object parse as ES5 and export with exports.x only", () => {
  for (const f of SCRIPTS) {
    walk(ast.get(f), (n) => {
      if (n.type === "MemberExpression" && n.object.type === "Identifier" && n.object.name === "module" &&
          !n.computed && n.property.name === "exports") {
        assert.fail(`${f}:${n.loc.start.line}: module.exports (Max js supports only exports.x)`);
      }
    });
  }
  // the parser really is ES5: it refuses what Max's engine would refuse
  for (const bad of ["let x = 1;", "const y = 2;", "var f = () => 1;", "class A {}", "var s = `t`;", "f(...a);", "for (var x of a) {}"]) {
    assert.throws(() => acorn.parse(bad, { ecmaVersion: 5 }), SyntaxError, bad);
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
  assert.deepEqual(JSON.parse(hello[2]), { reply_port: 17634, notes_format: "numeric" });
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

test("the .amxd is the frozen build of the committed patcher and scripts, and parses back", () => {
  const committed = fs.readFileSync(build.AMXD);
  const built = build.buildFrozenAmxd(patcherText);
  assert.ok(committed.equals(built), "run `node max_for_live/build.js`");
  const back = build.parseAmxd(committed);
  assert.deepEqual(back.chunks, ["ampf", "meta", "ptch"]);
  assert.equal(back.deviceType, "mmmm");
  assert.equal(back.meta, build.META_FROZEN);
  assert.equal(back.patcherText, patcherText);
  assert.deepEqual(back.patcher, JSON.parse(patcherText));
  // header layout, byte for byte (chunk sizes little-endian; the archive inside big-endian)
  assert.equal(committed.toString("ascii", 0, 4), "ampf");
  assert.equal(committed.readUInt32LE(4), 4);
  assert.equal(committed.toString("ascii", 8, 12), "mmmm");
  assert.equal(committed.toString("ascii", 12, 16), "meta");
  assert.equal(committed.readUInt32LE(16), 4);
  assert.equal(committed.readUInt32LE(20), 7);
  assert.equal(committed.toString("ascii", 24, 28), "ptch");
  assert.equal(committed.readUInt32LE(28), committed.length - 32);
  assert.equal(committed.toString("ascii", 32, 36), "mx@c");
  assert.equal(committed.readUInt32BE(36), 16);
  const dir = Number(committed.readBigUInt64BE(40));
  assert.equal(committed.toString("ascii", 32 + dir, 36 + dir), "dlst");
  assert.equal(committed.readUInt32BE(36 + dir), committed.length - 32 - dir);
  assert.equal(back.files[0].offset, 16);
  assert.equal(committed[32 + 16 + back.files[0].size - 1], 0, "the patcher JSON ends with a NUL");
  assert.throws(() => build.parseAmxd(Buffer.from("nope")), /truncated|ampf/);
  // a plain (unfrozen) build still reads back
  const plain = build.parseAmxd(build.buildAmxd(patcherText));
  assert.equal(plain.frozen, false);
  assert.equal(plain.patcherText, patcherText);
});

test("frozen archive writer: directory fields, name padding and offsets as Max writes them", () => {
  const files = [
    { name: "Dev.amxd", type: "JSON", flag: 17, data: Buffer.from('{"patcher":{}}\0') },
    { name: "abc.js", type: "TEXT", flag: 0, data: Buffer.from("var a = 1;\n") },
    { name: "abcdefg.js", type: "TEXT", flag: 0, data: Buffer.from("") },
  ];
  const arc = build.frozenArchive(files);
  const back = build.parseArchive(arc);
  assert.deepEqual(back.map((f) => [f.name, f.type, f.flag, f.offset, f.size, f.vers, f.mdat]), [
    ["Dev.amxd", "JSON", 17, 16, 15, 0, build.MDAT], ["abc.js", "TEXT", 0, 31, 11, 0, build.MDAT], ["abcdefg.js", "TEXT", 0, 42, 0, 0, build.MDAT]]);
  // 'fnam' holds the name plus at least one NUL, padded to 4 bytes: 8 + 12 for "Dev.amxd", 8 + 8 for "abc.js"
  const dire = arc.indexOf("dire");
  assert.equal(arc.toString("ascii", dire + 8 + 12, dire + 8 + 16), "fnam");
  assert.equal(arc.readUInt32BE(dire + 8 + 16), 8 + 12);
  assert.equal(arc.readUInt32BE(dire + 4), 8 + 12 + 20 + 12 * 5);
  assert.throws(() => build.parseArchive(Buffer.from("mx@c0000")), /./);
});
