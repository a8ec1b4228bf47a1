// The control page: talks to the daemon over the WebSocket at /ws (bridge/surface/web.py).
// Sends {"action": "<the OSC address space's action>", "args": [...]}; draws the state it gets back.
"use strict";
(function () {
  var KNOBS = 8;
  var $ = function (id) { return document.getElementById(id); };
  var ws = null, state = null, pattern = null, clockAt = 0;
  // what the piano roll last drew, for whoever looks (the tests read it): [{pitch, start, dur, x, y, w, h}]
  window.latentBridge = { drawn: [], pattern: null, sent: 0 };

  function send(action, args) {
    if (ws && ws.readyState === 1) {
      ws.send(JSON.stringify({ action: action, args: args || [] }));
      window.latentBridge.sent += 1;
    }
  }

  // ---- controls ----
  var knobs = [];
  for (var i = 1; i <= KNOBS; i++) {
    var box = document.createElement("div");
    box.className = "knob";
    var label = document.createElement("span");
    label.className = "label"; label.id = "knob-label-" + i; label.textContent = "knob " + i;
    var input = document.createElement("input");
    input.type = "range"; input.min = "0"; input.max = "1"; input.step = "0.001"; input.value = "0.5";
    input.id = "knob-" + i; input.setAttribute("aria-label", "knob " + i);
    (function (n, el) {
      el.addEventListener("input", function () { send("knob/" + n, [parseFloat(el.value)]); });
    })(i, input);
    box.appendChild(label); box.appendChild(input);
    $("knobs").appendChild(box);
    knobs.push({ input: input, label: label });
  }
  $("model").addEventListener("change", function () { send("model", [$("model").value]); });
  $("temperature").addEventListener("change", function () { send("temperature", [parseFloat($("temperature").value)]); });
  $("generate").addEventListener("click", function () { send("sample"); });
  $("learn-a").addEventListener("click", function () { send("a/learn"); });
  $("learn-b").addEventListener("click", function () { send("b/learn"); });
  $("morph-go").addEventListener("click", function () { send("morph/go"); });
  $("morph-stop").addEventListener("click", function () { send("morph/stop"); });

  var pad = $("pad"), padDown = false;
  function padAt(ev) {
    var r = pad.getBoundingClientRect();
    var x = Math.min(1, Math.max(0, (ev.clientX - r.left) / r.width));
    var y = Math.min(1, Math.max(0, (ev.clientY - r.top) / r.height));
    send("xy", [x, y]);
  }
  pad.addEventListener("pointerdown", function (ev) { padDown = true; padAt(ev); });
  pad.addEventListener("pointermove", function (ev) { if (padDown) padAt(ev); });
  window.addEventListener("pointerup", function () { padDown = false; });

  // ---- state from the daemon ----
  function showState(s) {
    state = s; clockAt = performance.now();
    var sel = $("model");
    if (sel.options.length !== s.models.length) {
      sel.innerHTML = "";
      s.models.forEach(function (m) { var o = document.createElement("option"); o.value = o.textContent = m; sel.appendChild(o); });
    }
    if (document.activeElement !== sel) sel.value = s.model || "";
    for (var i = 0; i < KNOBS; i++) {
      knobs[i].label.textContent = s.labels[i] || "–";
      knobs[i].input.disabled = !s.labels[i];
      if (document.activeElement !== knobs[i].input) knobs[i].input.value = String(s.knobs[i]);
    }
    $("status").textContent = s.status;
    $("status").className = s.status.indexOf("error") === 0 ? "error" : "";
    $("learn-a").className = s.learned.indexOf("a") >= 0 ? "learned" : "";
    $("learn-b").className = s.learned.indexOf("b") >= 0 ? "learned" : "";
    $("bar").textContent = s.position.bar === null ? "–" : "bar " + (s.position.bar + 1);
    drawPad();
  }

  function drawPad() {
    var g = pad.getContext("2d"), w = pad.width, h = pad.height;
    g.clearRect(0, 0, w, h);
    g.fillStyle = "#888"; g.font = "12px sans-serif";
    g.fillText("A", 6, 16); g.fillText("B", w - 14, 16); g.fillText("C", 6, h - 6); g.fillText("D", w - 14, h - 6);
    if (!state) return;
    g.fillStyle = "#3a6df0";
    g.beginPath(); g.arc(state.xy[0] * w, state.xy[1] * h, 8, 0, 2 * Math.PI); g.fill();
  }

  function beatNow() {
    if (!state || state.position.beat === null) return null;
    var b = state.position.beat;
    if (state.position.playing) b += (performance.now() - clockAt) / 1000 * state.position.tempo / 60;
    return b;
  }

  function drawRoll() {
    var roll = $("roll"), g = roll.getContext("2d"), w = roll.width, h = roll.height;
    g.clearRect(0, 0, w, h);
    var drawn = [];
    if (pattern && pattern.notes.length) {
      var beats = pattern.bars * 4, lo = 127, hi = 0;
      pattern.notes.forEach(function (n) { lo = Math.min(lo, n[0]); hi = Math.max(hi, n[0]); });
      lo -= 2; hi += 2;
      var rowH = h / (hi - lo + 1);
      g.strokeStyle = "#2a2d35";
      for (var b = 0; b <= beats; b++) { var gx = b / beats * w; g.beginPath(); g.moveTo(gx, 0); g.lineTo(gx, h); g.stroke(); }
      var now = beatNow();     // the playhead first: the notes are painted over it
      if (now !== null && pattern.bar !== null && now >= pattern.bar * 4) {
        var px = ((now - pattern.bar * 4) % beats) / beats * w;
        g.fillStyle = "#ffd27f"; g.fillRect(px, 0, 2, h);
      }
      g.fillStyle = "#58c4ff";
      pattern.notes.forEach(function (n) {
        var x = n[1] / beats * w, y = (hi - n[0]) * rowH, nw = Math.max(2, n[2] / beats * w - 1);
        g.fillRect(x, y, nw, Math.max(2, rowH - 1));
        drawn.push({ pitch: n[0], start: n[1], dur: n[2], x: x, y: y, w: nw, h: rowH });
      });
    }
    window.latentBridge.drawn = drawn;
    window.latentBridge.pattern = pattern;
    requestAnimationFrame(drawRoll);
  }

  function connect() {
    ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws");
    ws.onopen = function () { $("connection").textContent = "connected"; $("connection").className = "on"; };
    ws.onclose = function () {
      $("connection").textContent = "disconnected: retrying"; $("connection").className = "off";
      setTimeout(connect, 1000);
    };
    ws.onmessage = function (ev) {
      var m = JSON.parse(ev.data);
      if (m.type === "state") showState(m);
      else if (m.type === "pattern") pattern = m;
      else if (m.type === "status") { $("status").textContent = m.status; $("status").className = "error"; }
    };
  }
  drawPad();
  requestAnimationFrame(drawRoll);
  connect();
})();
