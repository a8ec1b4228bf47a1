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
