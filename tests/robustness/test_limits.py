"""Security defaults: loopback bind, and every request limit enforced and documented."""
from __future__ import annotations

import json
import re
import time
from dataclasses import fields
from pathlib import Path

import pytest

from bridge.daemon.client import BridgeError, spawn_server
from bridge.daemon.registry import Limits

from .helpers import Raw, request

DOC = Path(__file__).resolve().parents[2] / "docs" / "osc-protocol.md"
MEL = [[60, 0, 1, 100, 0], [64, 1, 1, 90, 0]]
SMALL = {"max_request_bytes": 3000, "max_notes": 10, "max_n": 3, "max_steps": 4, "max_palette": 2,
         "max_queue": 4, "max_temperature": 2.0, "max_amount": 5.0, "max_spread": 1.5,
         "max_streams": 2, "max_streams_total": 3, "stream_lease_bars": 4}


def test_every_limit_is_documented_with_its_default():
    text = DOC.read_text()
    section = text.split("## Limits", 1)[1].split("\n## ", 1)[0]
    rows = dict(re.findall(r"^\| `(\w+)` \| ([0-9.]+)", section, re.M))
    for f in fields(Limits):
        assert f.name in rows, f"docs/osc-protocol.md Limits table lacks {f.name}"
        assert float(rows[f.name]) == float(getattr(Limits(), f.name)), f.name


@pytest.fixture(scope="module")
def srv(tiny_models_dir):
    args = []
    for k, v in SMALL.items():
        args += ["--limit", f"{k}={v}"]
    server = spawn_server([Path(tiny_models_dir) / "mel_2bar", Path(tiny_models_dir) / "mel_16bar"],
                          *args, "--workers", "2")
    yield server
    assert server.stop() == 0


def test_binds_loopback_by_default(srv):
    ready = next(line for line in srv.log_lines() if "ready on udp://" in line)
    assert "udp://127.0.0.1:" in ready
    with open("/proc/net/udp") as f:      # the bound socket itself: 127.0.0.1 is 0100007F
        port_hex = f"{srv.port:04X}"
        assert any(line.split()[1] == f"0100007F:{port_hex}" for line in f.readlines()[1:])


def _code(c, op, **fields) -> str:
    with pytest.raises(BridgeError) as e:
        c.request(op, **fields)
    return e.value.code


def test_limits_are_in_force_and_reported(srv):
    with srv.client() as c:
        assert c.server_info["limits"] == SMALL
        m = {"model": "mel_2bar"}
        assert _code(c, "ping", echo="x" * 3000) == "too_large"
        assert c.request("ping", echo="x" * 2000).ok
        assert _code(c, "encode", notes=[[60, i * 0.25, 0.25] for i in range(11)], **m) == "too_large"
        assert _code(c, "interpolate", a=MEL * 3, b=MEL * 3, **m) == "too_large"       # 12 rows together
        assert c.request("encode", notes=[[60, i * 0.25, 0.25] for i in range(10)], **m).ok
        assert _code(c, "sample", n=4, **m) == "too_large"
        assert len(c.request("sample", n=3, **m).sequences) == 3
        assert _code(c, "decode", z=[[0.0] * 4] * 4, **m) == "too_large"
        assert _code(c, "variations", notes=MEL, n=4, **m) == "too_large"
        assert _code(c, "interpolate", a=MEL, b=MEL, steps=5, **m) == "too_large"
        assert _code(c, "morph", a=MEL, b=MEL, steps=5, **m) == "too_large"
        assert _code(c, "palette", corners=[MEL] * 4, size=3, **m) == "too_large"
        assert _code(c, "sample", temperature=2.5, **m) == "bad_request"
        assert _code(c, "variations", notes=MEL, spread=2, **m) == "bad_request"


def test_queue_limit_per_client(srv):
    """A client that floods gets `busy` for what does not fit its queue, exactly one reply per
    request, and another client is served meanwhile."""
    raw = Raw(srv)
    try:
        ids = list(range(1, 41))
        for rid in ids:
            raw.send(request("interpolate", rid, {"model": "mel_16bar", "a": MEL, "b": MEL, "steps": 4}))
        with srv.client() as other:
            t0 = time.monotonic()
            assert other.request("ping").ok
            assert time.monotonic() - t0 < 5.0
        outcomes = {}
        for rid in ids:
            msgs = raw.collect(rid, timeout=60.0)
            address, args = msgs[-1]
            outcomes[rid] = "done" if address == "/bridge/done" else args[1]
        busy = [r for r, o in outcomes.items() if o == "busy"]
        done = [r for r, o in outcomes.items() if o == "done"]
        assert len(busy) + len(done) == len(ids)
        assert len(done) >= SMALL["max_queue"] and busy
        raw.ping()
        assert not [m for m in raw.stray if m[1] and m[1][0] in ids]      # no second reply for any id
    finally:
        raw.close()
