"use strict";
// What Max puts on the wire and hands back, for the tests: [js] outlet() -> Max atoms -> [udpsend]
// (OSC) and [udpreceive] (OSC) -> Max atoms -> the js object's anything(). The device code talks to
// this exactly as it talks to the patch, so a value Max would mangle fails here:
//   outlet(): a JS number with an integer value becomes an int atom, any other number a float atom,
//     a string a symbol; Max has no atom for booleans, null, objects or arrays inside a message.
//   [udpsend]: int atom -> OSC 'i' (int32), float atom -> 'f' (float32), symbol -> 's'.
//   [udpreceive]: 'i' -> int, 'f' -> float (float32 precision), 's' -> symbol (one atom, spaces
//     and all); the OSC address becomes the message selector (messagename in js).
// Type tags per Cycling '74's udpsend/udpreceive reference and the OSC 1.0 spec; checked against the
// device only here, not inside Max (see ../../README.md, "What was verified").
const dgram = require("dgram");
const path = require("path");
const osc = require(path.join(__dirname, "..", "code", "lb_osc.js"));

const INT32_MIN = -2147483648;
const INT32_MAX = 2147483647;

// A JS value given to outlet() -> {type: "int"|"float"|"symbol", value}; throws for what Max cannot send.
function toAtom(v) {
  if (typeof v === "number") {
    if (!Number.isFinite(v)) throw new Error(`outlet(): ${v} is not a number Max can send`);
    if (Number.isInteger(v)) {
      if (v < INT32_MIN || v > INT32_MAX) throw new Error(`outlet(): ${v} does not fit udpsend's int32 ('i')`);
      return { type: "int", value: v };
    }
    return { type: "float", value: v };
  }
  if (typeof v === "string") return { type: "symbol", value: v };
  throw new Error(`outlet(): a ${v === null ? "null" : typeof v} (${JSON.stringify(v)}) is not a Max atom`);
}

// [udpsend]: a Max message (selector + atoms) -> OSC bytes.
function udpsendEncode(address, values) {
  const args = values.map(toAtom).map((a) => ({ type: a.type === "int" ? "i" : a.type === "float" ? "f" : "s", value: a.value }));
  return Buffer.from(osc.encode(String(address), args));
}

// [udpreceive]: OSC bytes -> {address, args} as the js object sees them. Only i, f and s: the
// daemon sends nothing else (docs/osc-protocol.md), and anything else here is a test failure.
function udpreceiveDecode(buf) {
  const bytes = [...buf];
  // read the type tags first: the decoder below would accept more than udpreceive outputs
  const addrEnd = bytes.indexOf(0);
  let tagsAt = addrEnd + 1;
  while (tagsAt % 4) tagsAt++;
  const tagsEnd = bytes.indexOf(0, tagsAt);
  const tags = Buffer.from(bytes.slice(tagsAt, tagsEnd)).toString("ascii");
  if (!/^,[ifs]*$/.test(tags)) throw new Error(`udpreceive test double: type tags ${tags} (only i, f, s are expected from the daemon)`);
  const msgs = osc.decode(bytes);
  if (msgs.length !== 1) throw new Error("udpreceive test double: expected one message per datagram");
  const m = msgs[0];
  return { address: m.address, args: m.args.map((v, i) => (tags[i + 1] === "f" ? Math.fround(v) : v)) };
}

// A Max-like wire over real UDP: send(address, values) as [js] -> [udpsend]; replies decoded as
// [udpreceive] does and passed to onMessage(address, args). ready(err, wire); wire.replyPort.
// wire.sent holds every datagram sent, wire.received every {address, args} handed over.
function openMaxWire(opts, ready) {
  const sock = dgram.createSocket("udp4");
  const wire = {
    replyPort: 0,
    errors: [],
    sent: [],
    received: [],
    send(address, values) {
      const buf = udpsendEncode(address, values);  // throws (fails the test) on what Max cannot send
      wire.sent.push(buf);
      sock.send(buf, 0, buf.length, opts.port, opts.host || "127.0.0.1");
    },
    close() { try { sock.close(); } catch (e) { /* closed */ } },
  };
  sock.on("message", (buf) => {
    let m;
    try { m = udpreceiveDecode(buf); } catch (e) { wire.errors.push(e.message); return; }
    wire.received.push(m);
    opts.onMessage(m.address, m.args);
  });
  sock.on("error", (e) => wire.errors.push(e.message));
  sock.bind(opts.listenPort || 0, "127.0.0.1", () => { wire.replyPort = sock.address().port; ready(null, wire); });
}

module.exports = { toAtom, udpsendEncode, udpreceiveDecode, openMaxWire };
