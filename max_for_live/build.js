#!/usr/bin/env node
// build.js -- package LatentBridge/patchers/LatentBridge.maxpat as the Max for Live device
// LatentBridge.amxd (see README.md, "The .amxd container").
//
//   node max_for_live/build.js                write max_for_live/LatentBridge.amxd
//   node max_for_live/build.js --check        exit 1 if the committed .amxd is not up to date
//   node max_for_live/build.js --install DIR  also copy the .amxd and code/*.js into DIR
//
// Container: a flat list of chunks, each a 4-byte ASCII tag, a uint32 little-endian size of
// the data that follows, then the data:
//   'ampf' size 4: device type, 'mmmm' = MIDI effect ('aaaa' audio effect, 'iiii' instrument)
//   'meta' size 4: uint32 LE 1 (what Live writes for a plain, unfrozen device)
//   'ptch' size N: the patcher JSON, UTF-8, followed by one NUL byte (counted in N)
"use strict";
const fs = require("fs");
const path = require("path");

const HERE = __dirname;
const MAXPAT = path.join(HERE, "LatentBridge", "patchers", "LatentBridge.maxpat");
const CODE = path.join(HERE, "LatentBridge", "code");
const AMXD = path.join(HERE, "LatentBridge.amxd");
const DEVICE_TYPES = { mmmm: "midi effect", aaaa: "audio effect", iiii: "instrument" };

function chunk(tag, data) {
  const head = Buffer.alloc(8);
  head.write(tag, 0, 4, "ascii");
  head.writeUInt32LE(data.length, 4);
  return Buffer.concat([head, data]);
}

// patcherText: the .maxpat file's text (kept byte for byte). Returns the .amxd bytes.
function buildAmxd(patcherText, deviceType = "mmmm") {
  if (!DEVICE_TYPES[deviceType]) throw new Error(`unknown device type ${deviceType}`);
  JSON.parse(patcherText); // refuse to package a broken patcher
  const meta = Buffer.alloc(4);
  meta.writeUInt32LE(1, 0);
  return Buffer.concat([
    chunk("ampf", Buffer.from(deviceType, "ascii")),
    chunk("meta", meta),
    chunk("ptch", Buffer.concat([Buffer.from(patcherText, "utf8"), Buffer.from([0])])),
  ]);
}

// Read an .amxd back: {deviceType, meta, patcherText, patcher, chunks: [tags]}.
function parseAmxd(buf) {
  const out = { chunks: [] };
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
      if (data.subarray(0, 4).toString("ascii") === "mx@c") throw new Error("frozen device (mx@c): not supported");
      const end = size > 0 && data[size - 1] === 0 ? size - 1 : size;
      out.patcherText = data.toString("utf8", 0, end);
      out.patcher = JSON.parse(out.patcherText);
    }
    pos += 8 + size;
  }
  if (out.chunks[0] !== "ampf") throw new Error("not an .amxd: first chunk is not 'ampf'");
  if (out.patcher === undefined) throw new Error("no 'ptch' chunk");
  return out;
}

function codeFiles() {
  return fs.readdirSync(CODE).filter((f) => f.endsWith(".js")).sort();
}

function main(argv) {
  const text = fs.readFileSync(MAXPAT, "utf8");
  const built = buildAmxd(text);
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
  console.log(`wrote ${path.relative(process.cwd(), AMXD)} (${built.length} bytes, ${DEVICE_TYPES[back.deviceType]})`);
  const i = argv.indexOf("--install");
  if (i >= 0) {
    const dir = argv[i + 1];
    if (!dir) throw new Error("--install needs a directory");
    fs.mkdirSync(dir, { recursive: true });
    fs.copyFileSync(AMXD, path.join(dir, "LatentBridge.amxd"));
    for (const f of codeFiles()) fs.copyFileSync(path.join(CODE, f), path.join(dir, f));
    console.log(`installed LatentBridge.amxd and ${codeFiles().length} scripts into ${dir}`);
  }
  return 0;
}

module.exports = { buildAmxd, parseAmxd, MAXPAT, AMXD, CODE };

if (require.main === module) {
  try {
    process.exitCode = main(process.argv.slice(2));
  } catch (e) {
    console.error(`build failed: ${e.message}`);
    process.exitCode = 1;
  }
}
