"""Live streams under abuse (real daemons on loopback; each test stops by itself).

- Abandoned streams expire: a morph loop whose client sends nothing (no transport, no request) for
  `stream_lease_bars` bars ends with /bridge/done and its thread exits; a client that keeps sending
  transport keeps its stream.
- Streams are capped per client and in total; `stats` reports them.
- An exception in a stream's thread reaches the client as /bridge/error and ends the stream.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from bridge.cli.serve import build_registry
from bridge.daemon.client import BridgeClient, spawn_server
from bridge.daemon.server import BridgeServer
from bridge.live import ops as live_ops
from bridge.runtime.engine import load_model

from .helpers import Raw, request

MEL = [[60, 0, 1, 100, 0], [64, 1, 1, 90, 0], [67, 2, 2, 80, 0]]
ABANDONED = 40


def threads_of(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    raise RuntimeError("no Threads line")


def _start_loop(raw: Raw, rid: int, tempo: float = 240.0, model: str = "mel_2bar") -> list:
    raw.send(request("transport", rid, {"tempo": tempo, "beat": 0.0, "playing": True}))
    raw.collect(rid)
    raw.send(request("morph", rid + 1, {"model": model, "a": MEL, "b": MEL, "steps": 2, "bars_per_step": 1,
                                        "mode": "loop"}))
    msgs = raw.collect(rid + 1)
    return msgs


def test_abandoned_streams_expire_and_their_threads_end(tiny_models_dir):
    """40 clients each start a looping morph and go silent; with a lease of 2 bars (1 s at 240 bpm,
    at least 2 s) every stream ends by itself (protocol 1.0: they streamed forever, one thread each)."""
    server = spawn_server([Path(tiny_models_dir) / "mel_2bar"], "--workers", "2",
                          "--limit", "stream_lease_bars=2")
    raws = []
    try:
        pid = server.proc.pid
        with server.client() as c:
            c.request("ping")
        baseline = threads_of(pid)
        for k in range(ABANDONED):
            raw = Raw(server)
            raws.append(raw)
            assert _start_loop(raw, 10)[0][0] == "/bridge/ok"
        time.sleep(0.5)
        running = threads_of(pid)
        t0 = time.monotonic()
        while time.monotonic() - t0 < 15 and threads_of(pid) > baseline + 2:
            time.sleep(0.2)
        left = threads_of(pid) - baseline
        with server.client() as c:
            streams = c.request("stats").data.get("streams", {})
        print(f"\nabandoned streams: {ABANDONED} looping morphs; daemon threads {baseline} -> {running} -> "
              f"{baseline + left} after {time.monotonic() - t0:.1f} s; streams {streams}")
        assert left <= 2, f"{left} threads left"
        assert streams["active"] == 0 and streams["expired"] == ABANDONED
        for raw in raws:   # each abandoned client was told: its stream ended with done
            msgs = raw.collect(11, timeout=5.0)
            assert msgs[-1][0] == "/bridge/done" and any(m[0] == "/bridge/seq" for m in msgs)
    finally:
        for r in raws:
            r.close()
        server.stop()


def test_a_client_that_keeps_sending_transport_keeps_its_stream(tiny_models_dir):
    server = spawn_server([Path(tiny_models_dir) / "mel_2bar"], "--workers", "2",
                          "--limit", "stream_lease_bars=2")
    raw = Raw(server)
    try:
        t0 = time.monotonic()
        assert _start_loop(raw, 10)[0][0] == "/bridge/ok"
        rid = 100
        while time.monotonic() < t0 + 5.0:               # 2.5 leases
            rid += 1
            beat = (time.monotonic() - t0) * 4.0           # 240 bpm: 4 beats a second
            raw.send(request("transport", rid, {"tempo": 240.0, "beat": beat, "playing": True}))
            time.sleep(0.25)
        raw.send(request("stop", 2, {}))
        assert json.loads(raw.collect(2)[-1][1][1])["stopped"] is not None   # still running when stopped
        msgs = raw.collect(11, timeout=5.0)
        seqs = [m for m in msgs if m[0] == "/bridge/seq"]
        assert msgs[-1][0] == "/bridge/done" and len(seqs) >= 4      # a step a second (bar = 1 s)
    finally:
        raw.close()
        server.stop()


def test_streams_are_capped_per_client_and_in_total(tiny_models_dir):
    server = spawn_server([Path(tiny_models_dir) / "mel_2bar"], "--workers", "2",
                          "--limit", "max_streams=2", "--limit", "max_streams_total=3")
    anon = [Raw(server, handshake=False) for _ in range(3)]        # one client: its host
    verified = [Raw(server) for _ in range(2)]                      # a client each
    try:
        first = [_start_loop(r, 10)[0] for r in anon]
        assert [m[0] for m in first[:2]] == ["/bridge/ok", "/bridge/ok"]
        assert first[2][0] == "/bridge/error" and first[2][1][1] == "busy" and "2 per client" in first[2][1][2]
        assert _start_loop(verified[0], 10)[0][0] == "/bridge/ok"
        refused = _start_loop(verified[1], 10)[0]
        assert refused[0] == "/bridge/error" and refused[1][1] == "busy" and "3 in total" in refused[1][2]
        with server.client() as c:
            streams = c.request("stats").data["streams"]
        assert streams["active"] == 3 and streams["by_kind"] == {"morph": 3} and streams["refused"] == 2
        assert streams["max_per_client"] == 2 and streams["max_total"] == 3
        for r in anon[:2] + verified[:1]:
            r.send(request("stop", 2, {}))
            r.collect(2)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with server.client() as c:
                if c.request("stats").data["streams"]["active"] == 0:
                    break
            time.sleep(0.1)
        else:
            pytest.fail("streams still active after stop")
    finally:
        for r in anon + verified:
            r.close()
        server.stop()


@pytest.fixture
def in_process(tiny_models_dir):
    model = load_model(Path(tiny_models_dir) / "mel_2bar")
    server = BridgeServer({"mel_2bar": model}, build_registry(), port=0, workers=2)
    host, port = server.start()
    yield server, host, port
    server.shutdown()


def test_an_error_in_a_stream_thread_reaches_the_client_and_ends_the_stream(in_process, monkeypatch):
    """The morph's thread raises while streaming (here: sending a step): the client gets
    /bridge/error for the morph and the stream is gone (protocol 1.0: the thread died silently,
    neither done nor error)."""
    server, host, port = in_process

    def broken_send(*args, **kwargs):
        raise RuntimeError("the step could not be sent")
    monkeypatch.setattr(live_ops, "_send_seq", broken_send)
    with BridgeClient(host, port, timeout=10) as c:
        c.request("transport", tempo=480.0, beat=0.0, playing=True)
        rid = c.send("morph", model="mel_2bar", a=MEL, b=MEL, steps=2, bars_per_step=1, mode="loop")
        r = c.wait(rid, check=False)
        assert r.status == "ok"                       # accepted; the failure comes later, in the stream
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any(a == "/bridge/error" for a, _ in c.pushed):
            c.pump(0.1)
        errors = [args for a, args in c.pushed if a == "/bridge/error"]
        assert errors and errors[0][0] == rid and errors[0][1] == "internal" and "morph failed" in errors[0][2]
        time.sleep(0.3)
        snap = server.stats_snapshot()
        assert snap["streams"]["active"] == 0 and snap["streams"]["failed"] == 1
        assert c.request("stop").data == {"stopped": None}   # nothing left running
