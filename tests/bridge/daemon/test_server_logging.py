"""The daemon's log under abuse: a client's control characters never reach it raw, and repeated
warnings are rate-limited with a count."""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from bridge.daemon.client import spawn_server
from bridge.daemon.server import JsonFormatter, LogfmtFormatter, Throttle, escape_control


def _record(msg, **fields):
    r = logging.LogRecord("bridge.server", logging.WARNING, __file__, 1, msg, (), None)
    r.fields = fields
    return r


def test_control_characters_are_escaped():
    evil = "/bridge/x\r\nts=2026 level=ERROR msg=forged\x1b[2J\x07\u2028end"
    line = LogfmtFormatter().format(_record(f"dropped {evil}", address=evil, **{"k\r": "v"}))
    assert "\n" not in line and "\r" not in line and "\x1b" not in line and "\x07" not in line
    assert "\u2028" not in line
    assert "\\r\\n" in line and "\\x1b[2J" in line and "\\x07" in line and "\\u2028" in line
    assert escape_control("plain text") == "plain text"
    obj = json.loads(JsonFormatter().format(_record(evil, address=evil)))   # one JSON line
    assert obj["address"] == evil and "\x1b" not in JsonFormatter().format(_record(evil))


def test_throttle_logs_a_burst_then_counts():
    now = [100.0]
    t = Throttle(window=10.0, burst=3, clock=lambda: now[0])
    results = [t.allow(logging.WARNING, "dropped malformed datagram") for _ in range(1000)]
    assert [ok for ok, _ in results].count(True) == 3
    assert all(summary == [] for _, summary in results)
    assert t.allow(logging.WARNING, "another message")[0]              # per message
    now[0] += 10.5
    assert t.flush() == [(logging.WARNING, "dropped malformed datagram", 997)]
    assert t.flush() == []
    ok, summary = t.allow(logging.WARNING, "dropped malformed datagram")  # a new window
    assert ok and summary == []


def test_a_garbage_flood_leaves_a_short_escaped_log(tiny_models_dir):
    server = spawn_server([Path(tiny_models_dir) / "mel_2bar"])
    try:
        with server.client() as c:
            for i in range(2000):
                c.send_datagram(b"/bridge/\r\x1b[31mforged\x00\x00\x00\x00,ZZ\x00" + bytes([i % 256]))
                c.send_datagram(b"garbage\r\nts=forged level=ERROR")
            time.sleep(0.5)
            dropped = c.request("stats").data["dropped"]
        assert dropped.get("malformed", 0) >= 3000                  # every datagram counted ...
    finally:
        server.stop()
    log = server.log_lines()
    warnings = [line for line in log if "level=WARNING" in line]
    assert len(warnings) <= 10, warnings[:20]                           # ... a handful logged
    assert not [line for line in log if "\r" in line or "\x1b" in line or "ts=forged" in line.split(" msg=")[0]]
