"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");
const { code } = require("./helpers");
const osc = code("lb_osc");

test("encodes /bridge requests as ,is with 4-byte padding (byte-exact)", () => {
  const bytes = Buffer.from(osc.encode("/bridge/ping", [7, "{}"]));
  const expect = Buffer.concat([
    Buffer.from("/bridge/ping\0\0\0\0"), Buffer.from(",is\0"), Buffer.from([0, 0, 0, 7]), Buffer.from("{}\0\0"),
  ]);
  assert.deepEqual(bytes, expect);
  assert.equal(bytes.length % 4, 0);
});

test("round trips ints, floats, strings (UTF-8), booleans, null and doubles", () => {
  const args = [-5, 0.5, "héllo ✓ 𝄞", true, false, null, { type: "d", value: 1 / 3 }, { type: "h", value: 2 ** 40 + 3 }];
  const [m] = osc.decode(osc.encode("/x", args));
  assert.equal(m.address, "/x");
  assert.deepEqual(m.args.slice(0, 6), [-5, 0.5, "héllo ✓ 𝄞", true, false, null]);
  assert.equal(m.args[6], 1 / 3);
  assert.equal(m.args[7], 2 ** 40 + 3);
});

test("decodes a reply with a long JSON payload and a bundle of messages", () => {
  const json = JSON.stringify({ notes: Array.from({ length: 300 }, (_, i) => [60, i / 4, 0.25, 100, 0]) });
  const a = osc.encode("/bridge/seq", [3, 0, 1, json]);
  const b = osc.encode("/bridge/done", [3]);
  const size = (n) => { const x = Buffer.alloc(4); x.writeInt32BE(n); return x; };
  const bundle = Buffer.concat([Buffer.from("#bundle\0"), Buffer.alloc(8), size(a.length), Buffer.from(a), size(b.length), Buffer.from(b)]);
  const msgs = osc.decode(bundle);
  assert.deepEqual(msgs.map((m) => m.address), ["/bridge/seq", "/bridge/done"]);
  assert.equal(JSON.parse(msgs[0].args[3]).notes.length, 300);
  assert.throws(() => osc.encode("bridge/no-slash", []), /must start/);
  assert.throws(() => osc.decode(Buffer.from("/abc")), /unterminated/);
});

// ---- the Max side: what [js] outlet() + [udpsend] put on the wire, what [udpreceive] hands back ----
const wire = require("./max_wire");

const tagsOf = (buf) => { const s = buf.toString("latin1"); const i = s.indexOf(","); return s.slice(i, s.indexOf("\0", i)); };

test("udpsend double: int atoms as 'i', other numbers as 'f' (float32), strings as one 's'", () => {
  const buf = wire.udpsendEncode("/bridge/hello", [1, JSON.stringify({ reply_port: 17634, note: "a b" })]);
  assert.equal(tagsOf(buf), ",is");
  assert.equal(tagsOf(wire.udpsendEncode("/x", [0.5, 3, -2, "s"])), ",fiis");
  const [m] = osc.decode(wire.udpsendEncode("/x", [0.1]));
  assert.equal(m.args[0], Math.fround(0.1));        // float32 on the wire, as udpsend sends
  for (const bad of [true, null, undefined, { a: 1 }, [1, 2], NaN, 2 ** 31, 1.5e300 * 1e10]) {
    assert.throws(() => wire.udpsendEncode("/x", [bad]), /outlet\(\)/, String(bad));
  }
});

test("udpreceive double: i/f/s only, floats at float32 precision, the JSON reply one string", () => {
  const json = JSON.stringify({ model: "mel_2bar", notes: [[60, 0.25, 0.5, 100, 0]] });
  const m = wire.udpreceiveDecode(Buffer.from(osc.encode("/bridge/seq", [7, 0, 1, json])));
  assert.deepEqual(m, { address: "/bridge/seq", args: [7, 0, 1, json] });
  assert.equal(wire.udpreceiveDecode(Buffer.from(osc.encode("/y", [0.1]))).args[0], Math.fround(0.1));
  assert.throws(() => wire.udpreceiveDecode(Buffer.from(osc.encode("/y", [{ type: "d", value: 0.5 }]))), /type tags ,d/);
  assert.throws(() => wire.udpreceiveDecode(Buffer.from(osc.encode("/y", [true]))), /type tags ,T/);
});

test("every message the device sends passes through the udpsend double (ids are ints, JSON is one symbol)", () => {
  const { createClient } = code("lb_client");
  const sent = [];
  const c = createClient({ send: (a, args) => sent.push(wire.udpsendEncode(a, args)), replyPort: 17001, now: () => 0 });
  c.start();
  c.handleMessage("/bridge/ok", [1, "{}"]);
  c.request("sample", { model: "m", temperature: 0.5, scale: { root: 2, intervals: [0, 2, 3] } }, {});
  assert.ok(sent.length >= 2);
  for (const b of sent) assert.equal(tagsOf(b), ",is");
});
