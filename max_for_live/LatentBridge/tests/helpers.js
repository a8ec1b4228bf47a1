"use strict";
const path = require("path");
const CODE = path.join(__dirname, "..", "code");
function code(name) { return require(path.join(CODE, name + ".js")); }
// A manual clock for time-driven logic.
function clock(start = 1000) {
  const c = { t: start, now: () => c.t, advance: (ms) => { c.t += ms; return c.t; } };
  return c;
}
module.exports = { CODE, code, clock };
