#!/usr/bin/env node
// build.js -- package LatentBridge/patchers/LatentBridge.maxpat and the scripts it loads as ONE
// frozen Max for Live device, LatentBridge.amxd (see README.md, "The .amxd container").
//
//   node max_for_live/build.js                write max_for_live/LatentBridge.amxd (frozen)
//   node max_for_live/build.js --check        exit 1 if the committed .amxd is not up to date
//   node max_for_live/build.js --install DIR  also copy the .amxd into DIR (nothing else needed)
//   node max_for_live/build.js --list         print the files the device loads
//
// Why frozen: Ableton's Max for Live Production Guidelines ("Freezing and dependencies": freeze a
// device that has dependencies, JavaScript code included) and Cycling '74's "Freezing Max for Live
// Devices" (a frozen device contains the files it needs; they are used even when files of the same
// name are on disk). One file to drag into Live, nothing to install into Max's search path.
//
// Container: a flat list of chunks, each a 4-byte ASCII tag, a uint32 LITTLE-endian size of the
// data that follows, then the data:
//   'ampf' size 4: device type, 'mmmm' = MIDI effect ('aaaa' audio effect, 'iiii' instrument)
//   'meta' size 4: uint32 LE; 7 for a frozen device (what Max writes), 1 for a plain one
//   'ptch' size N: a frozen device: the 'mx@c' archive below; a plain one: the patcher JSON + NUL
// The 'mx@c' archive (all integers BIG-endian; offsets from the start of the archive):
//   'mx@c', uint32 16 (header size), uint64 offset of the directory
//   the files' bytes, back to back: first the device's patcher JSON + NUL, then each dependency
//   the directory: 'dlst', uint32 size (with this 8-byte header), then one 'dire' per file:
//     'dire', uint32 size, then fields, each a 4-byte tag, uint32 size (with its 8-byte header), data:
//     'type' 4 chars (JSON, TEXT, ...), 'fnam' name + NUL padded to 4 bytes, 'sz32' size,
//     'of32' offset, 'vers' 0, 'flag' (17 for the device itself, 0 for a dependency),
//     'mdat' modification time (seconds since 1904-01-01, HFS+)
// This is the layout Ableton's maxdevtools (maxdiff/frozen_device_printer.py, freezing_utils.py)
// reads; writing its FrozenTest.amxd back from its parsed parts with frozenArchive() gives the
// same bytes (checked when the writer was made; see README.md).
"use strict";
const fs = require("fs");
const path = require("path");

const HERE = __dirname;
const MAXPAT = path.join(HERE, "LatentBridge", "patchers", "LatentBridge.maxpat");
const CODE = path.join(HERE, "LatentBridge", "code");
const AMXD = path.join(HERE, "LatentBridge.amxd");
const DEVICE_NAME = "LatentBridge.amxd";
const DEVICE_TYPES = { mmmm: "midi effect", aaaa: "audio effect", iiii: "instrument" };
const META_PLAIN = 1;
const META_FROZEN = 7;
const FLAG_DEVICE = 17;
const FLAG_DEPENDENCY = 0;
// A fixed modification time (2024-01-01 00:00:00 UTC as HFS+ seconds): the build is reproducible.
const MDAT = 1704067200 + 2082844800;

function chunk(tag, data) {
  const head = Buffer.alloc(8);
  head.write(tag, 0, 4, "ascii");
  head.writeUInt32LE(data.length, 4);
  return Buffer.concat([head, data]);
}

function u32be(n) {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n, 0);
  return b;
}

function field(tag, data) {
  return Buffer.concat([Buffer.from(tag, "ascii"), u32be(data.length + 8), data]);
}

function padName(name) {
  const raw = Buffer.from(name, "utf8");
  const out = Buffer.alloc(Math.ceil((raw.length + 1) / 4) * 4); // at least one NUL
  raw.copy(out);
  return out;
}

function fourcc(type) {
  if (type.length > 4) throw new Error(`file type ${type} is longer than 4 characters`);
  return Buffer.from((type + "    ").slice(0, 4), "ascii");
}

// entries: [{name, type, data (Buffer), flag, mdat}] in archive order (the device first).
// Returns the 'mx@c' archive (the data of the 'ptch' chunk of a frozen device).
function frozenArchive(entries) {
  const HEADER = 16;
  const dirs = [];
  let offset = HEADER;
  for (const e of entries) {
    const body = Buffer.concat([
      field("type", fourcc(e.type)), field("fnam", padName(e.name)), field("sz32", u32be(e.data.length)),
      field("of32", u32be(offset)), field("vers", u32be(e.vers || 0)), field("flag", u32be(e.flag)),
      field("mdat", u32be(e.mdat === undefined ? MDAT : e.mdat)),
    ]);
    dirs.push(Buffer.concat([Buffer.from("dire", "ascii"), u32be(body.length + 8), body]));
    offset += e.data.length;
  }
  const dirBody = Buffer.concat(dirs);
  const head = Buffer.alloc(HEADER);
  head.write("mx@c", 0, 4, "ascii");
  head.writeUInt32BE(HEADER, 4);
  head.writeBigUInt64BE(BigInt(offset), 8);
  return Buffer.concat([head, ...entries.map((e) => e.data), Buffer.from("dlst", "ascii"), u32be(dirBody.length + 8), dirBody]);
}

// Read an 'mx@c' archive back: [{name, type, flag, vers, mdat, offset, data}].
function parseArchive(buf) {
  if (buf.toString("ascii", 0, 4) !== "mx@c") throw new Error("not a frozen archive (no 'mx@c')");
  const dirAt = Number(buf.readBigUInt64BE(8));
  if (buf.toString("ascii", dirAt, dirAt + 4) !== "dlst") throw new Error("frozen archive: no 'dlst' directory");
  const dirSize = buf.readUInt32BE(dirAt + 4);
  if (dirAt + dirSize !== buf.length) throw new Error("frozen archive: the directory size does not match the file");
  const out = [];
  let pos = dirAt + 8;
  while (pos < buf.length) {
    if (buf.toString("ascii", pos, pos + 4) !== "dire") throw new Error(`frozen archive: expected 'dire' at ${pos}`);
    const size = buf.readUInt32BE(pos + 4);
    const e = {};
    for (let f = pos + 8; f + 8 <= pos + size;) {
      const tag = buf.toString("ascii", f, f + 4);
      const fsize = buf.readUInt32BE(f + 4);
      const data = buf.subarray(f + 8, f + fsize);
      if (tag === "type") e.type = data.toString("ascii").replace(/[\0 ]+$/, "");
      else if (tag === "fnam") e.name = data.toString("utf8").replace(/\0+$/, "");
      else if (tag === "sz32") e.size = data.readUInt32BE(0);
      else if (tag === "of32") e.offset = data.readUInt32BE(0);
      else if (tag === "vers") e.vers = data.readUInt32BE(0);
      else if (tag === "flag") e.flag = data.readUInt32BE(0);
      else if (tag === "mdat") e.mdat = data.readUInt32BE(0);
      f += fsize;
    }
    if (e.offset + e.size > dirAt) throw new Error(`frozen archive: ${e.name} runs past the data`);
    e.data = buf.subarray(e.offset, e.offset + e.size);
    out.push(e);
    pos += size;
  }
  return out;
}

// The scripts a script loads: require("lb_x") (Max branch), require("./lb_x.js") (Node branch)
// and the load("lb_x") helper of lb_app.js. Only literal names; Node built-ins (dgram) are not files.
function scriptRequires(text) {
  const names = new Set();
  for (const m of text.matchAll(/\b(?:require|load)\(\s*"([^"]+)"\s*\)/g)) {
    const base = path.basename(m[1]);
    if (!/^lb_|^latentbridge/.test(base)) continue;
    names.add(base.endsWith(".js") ? base : base + ".js");
  }
  return [...names].sort();
}

// Every script file the patcher loads: the files of its js / node.script boxes and, transitively,
// what they require. The entry scripts first, then the rest sorted by name.
function dependencies(patcher, codeDir = CODE) {
  const p = patcher.patcher || patcher;
  const entries = p.boxes.map((b) => b.box).filter((b) => /^(js|node\.script) /.test(b.text || ""))
    .map((b) => b.text.split(/\s+/)[1]);
  const seen = new Set();
  const visit = (file) => {
    if (seen.has(file)) return;
    const full = path.join(codeDir, file);
    if (!fs.existsSync(full)) throw new Error(`${file} (loaded by the device) is missing from ${codeDir}`);
    seen.add(file);
    scriptRequires(fs.readFileSync(full, "utf8")).forEach(visit);
  };
  entries.forEach(visit);
  const rest = [...seen].filter((f) => !entries.includes(f)).sort();
  return [...new Set(entries)].concat(rest);
}

// A plain (unfrozen) device: the patcher only. Kept for tests and for reading old builds.
function buildAmxd(patcherText, deviceType = "mmmm") {
  if (!DEVICE_TYPES[deviceType]) throw new Error(`unknown device type ${deviceType}`);
  JSON.parse(patcherText); // refuse to package a broken patcher
  const meta = Buffer.alloc(4);
  meta.writeUInt32LE(META_PLAIN, 0);
  return Buffer.concat([
    chunk("ampf", Buffer.from(deviceType, "ascii")),
    chunk("meta", meta),
    chunk("ptch", Buffer.concat([Buffer.from(patcherText, "utf8"), Buffer.from([0])])),
  ]);
}

// The frozen device: the patcher (byte for byte) and every script it loads, inside the .amxd.
function buildFrozenAmxd(patcherText, codeDir = CODE, deviceType = "mmmm") {
  if (!DEVICE_TYPES[deviceType]) throw new Error(`unknown device type ${deviceType}`);
  const patcher = JSON.parse(patcherText);
  const entries = [{ name: DEVICE_NAME, type: "JSON", flag: FLAG_DEVICE,
    data: Buffer.concat([Buffer.from(patcherText, "utf8"), Buffer.from([0])]) }];
  for (const f of dependencies(patcher, codeDir)) {
    entries.push({ name: f, type: "TEXT", flag: FLAG_DEPENDENCY, data: fs.readFileSync(path.join(codeDir, f)) });
  }
  const meta = Buffer.alloc(4);
  meta.writeUInt32LE(META_FROZEN, 0);
  return Buffer.concat([
    chunk("ampf", Buffer.from(deviceType, "ascii")),
    chunk("meta", meta),
    chunk("ptch", frozenArchive(entries)),
  ]);
}

// Read an .amxd back: {deviceType, meta, frozen, files (frozen: [{name, type, flag, data, ...}]),
// patcherText, patcher, chunks: [tags]}.
function parseAmxd(buf) {
  const out = { chunks: [], frozen: false, files: [] };
  let pos = 0;
  while (pos < buf.length) {
    if (pos + 8 > buf.length) throw new Error(`truncated chunk header at byte ${pos}`);
    const tag = buf.toString("ascii", pos, pos + 4);
    const size = buf.readUInt32LE(pos + 4);
    const data = buf.subarray(pos + 8, pos + 8 + size);
    if (data.length !== size) throw new Error(`chunk ${tag} claims ${size} bytes, ${data.length} present`);
    out.chunks.push(tag);
    if (tag === "ampf") {
      out.deviceType = data.toString("ascii");
    } else if (tag === "meta") {
      out.meta = size >= 4 ? data.readUInt32LE(0) : null;
    } else if (tag === "ptch") {
      let text = data;
      if (data.subarray(0, 4).toString("ascii") === "mx@c") {
        out.frozen = true;
        out.files = parseArchive(data);
        const dev = out.files.find((f) => f.flag === FLAG_DEVICE) || out.files[0];
        text = dev.data;
      }
      const end = text.length > 0 && text[text.length - 1] === 0 ? text.length - 1 : text.length;
      out.patcherText = text.toString("utf8", 0, end);
      out.patcher = JSON.parse(out.patcherText);
    }
    pos += 8 + size;
  }
  if (out.chunks[0] !== "ampf") throw new Error("not an .amxd: first chunk is not 'ampf'");
  if (out.patcher === undefined) throw new Error("no 'ptch' chunk");
  return out;
}

function main(argv) {
  const text = fs.readFileSync(MAXPAT, "utf8");
  if (argv.includes("--list")) {
    for (const f of dependencies(JSON.parse(text))) console.log(f);
    return 0;
  }
  const built = buildFrozenAmxd(text);
  if (argv.includes("--check")) {
    const current = fs.existsSync(AMXD) ? fs.readFileSync(AMXD) : Buffer.alloc(0);
    if (!current.equals(built)) {
      console.error("max_for_live/LatentBridge.amxd is out of date: run `node max_for_live/build.js`");
      return 1;
    }
    console.log("LatentBridge.amxd is up to date");
    return 0;
  }
  fs.writeFileSync(AMXD, built);
  const back = parseAmxd(fs.readFileSync(AMXD));
  if (back.patcherText !== text) throw new Error("the written .amxd does not read back to the patcher");
  const deps = back.files.filter((f) => f.flag !== FLAG_DEVICE).map((f) => f.name);
  console.log(`wrote ${path.relative(process.cwd(), AMXD)} (${built.length} bytes, frozen ${DEVICE_TYPES[back.deviceType]} ` +
    `with ${deps.length} scripts: ${deps.join(", ")})`);
  const i = argv.indexOf("--install");
  if (i >= 0) {
    const dir = argv[i + 1];
    if (!dir) throw new Error("--install needs a directory");
    fs.mkdirSync(dir, { recursive: true });
    fs.copyFileSync(AMXD, path.join(dir, DEVICE_NAME));
    console.log(`installed ${DEVICE_NAME} into ${dir} (its scripts are inside it)`);
  }
  return 0;
}

module.exports = {
  buildAmxd, buildFrozenAmxd, parseAmxd, frozenArchive, parseArchive, dependencies, scriptRequires,
  MAXPAT, AMXD, CODE, DEVICE_NAME, META_FROZEN, FLAG_DEVICE, MDAT,
};

if (require.main === module) {
  try {
    process.exitCode = main(process.argv.slice(2));
  } catch (e) {
    console.error(`build failed: ${e.message}`);
    process.exitCode = 1;
  }
}
