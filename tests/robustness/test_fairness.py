"""Fairness under abuse, against a real daemon on loopback (each test starts its own daemon and
stops it; every flood is bounded).

- A client flooding trio requests from 8 source ports cannot slow another client's `ping` and
  2-bar `sample`: expensive requests queue per model (a lane runs one at a time, round-robin over
  clients), so the victim never waits behind the flood. Bound: p99 round trip under 250 ms, or 10x
  the idle 2-bar sample when the machine is slower than that (the issue's target is 20 ms; a
  2-core CI machine running other work measured 27 / 42 ms p99 here, and 42 / 201 ms with two test
  suites and two trainings at once; protocol 1.0's per-port queues measured 1.5 s with these tiny
  models, 3.6-4.2 s with the shipped ones).
- Source ports without a handshake are one client of their host: 8 ports share one `max_queue`.
- Immediate ops (morph) count against the client's queue: a burst of morphs gets `busy`.
- A superseded morph stops between decode steps and releases the model at once.
"""
from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from bridge.daemon.client import spawn_server

from .helpers import Raw, request

VICTIM_P99_MS = 250.0        # or 10x the idle latency, when the machine is slower than that
MEL = [[60, 0, 1, 100, 0], [64, 1, 1, 90, 0], [67, 2, 2, 80, 0]]


@pytest.fixture
def models(tiny_models_dir):
    return [Path(tiny_models_dir) / name for name in ("mel_2bar", "trio_16bar")]


class Flood:
    """`ports` sockets keeping `depth` trio requests each in flight until stopped."""

    def __init__(self, server, ports: int = 8, depth: int = 64, handshake: bool = True,
                 fields: dict | None = None, op: str = "sample"):
        self.raws = [Raw(server, timeout=120.0, handshake=handshake) for _ in range(ports)]
        self.fields = fields or {"model": "trio_16bar", "n": 8, "temperature": 0.5, "seed": 1}
        self.op, self.depth = op, depth
        self.codes: dict[str, int] = {}
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(r,), daemon=True) for r in self.raws]

    def __enter__(self):
        for t in self._threads:
            t.start()
        return self

    def _run(self, raw: Raw):
        rid = 10_000
        inflight = 0
        while not self._stop.is_set():
            while inflight < self.depth and not self._stop.is_set():
                rid += 1
                raw.send(request(self.op, rid, self.fields))
                inflight += 1
            for address, args in raw.c.receive(0.05):
                if address in ("/bridge/done", "/bridge/ok", "/bridge/error"):
                    inflight -= 1
                    code = "ok" if address != "/bridge/error" else args[1]
                    self.codes[code] = self.codes.get(code, 0) + 1

    def __exit__(self, *exc):
        self._stop.set()
        for t in self._threads:
            t.join(5)
        for r in self.raws:
            r.close()


def _victim_round_trips(server, seconds: float) -> dict[str, list[float]]:
    out = {"ping": [], "sample": []}
    with server.client(timeout=30.0) as c:
        deadline = time.monotonic() + seconds
        i = 0
        while time.monotonic() < deadline:
            i += 1
            out["ping"].append(c.request("ping", echo=i).elapsed * 1000.0)
            r = c.request("sample", model="mel_2bar", n=1, temperature=0.5, seed=i)
            assert r.status == "done"
            out["sample"].append(r.elapsed * 1000.0)
            time.sleep(0.005)
    return out


def test_a_trio_flood_from_8_ports_does_not_slow_another_client(models):
    server = spawn_server(models, "--workers", "2")
    try:
        with server.client() as c:              # idle figures, for the report
            idle = [c.request("sample", model="mel_2bar", n=1, seed=i).elapsed * 1000.0 for i in range(20)]
        with Flood(server) as flood:
            time.sleep(1.0)                      # every flood queue is full now
            lat = _victim_round_trips(server, 4.0)
            with server.client() as c:
                stats = c.request("stats").data
        p99 = {k: float(np.percentile(v, 99)) for k, v in lat.items()}
        print(f"\nflood: 8 ports x 64 trio_16bar sample n=8; victim over {len(lat['ping'])} rounds: "
              f"ping p50 {np.percentile(lat['ping'], 50):.2f} / p99 {p99['ping']:.2f} ms, "
              f"2-bar sample p50 {np.percentile(lat['sample'], 50):.2f} / p99 {p99['sample']:.2f} ms "
              f"(idle sample p50 {np.percentile(idle, 50):.2f} ms); flood replies {flood.codes}; "
              f"queued in the daemon {stats['queued']}")
        assert stats["queued"] >= 256                     # the flood was really queued meanwhile
        bound = max(VICTIM_P99_MS, 10 * float(np.percentile(idle, 50)))
        assert p99["ping"] < bound and p99["sample"] < bound, (p99, bound)
    finally:
        server.stop()


def test_ports_without_a_handshake_share_one_queue(models):
    """8 source ports of one host without a handshake are one client: together they get max_queue
    requests queued, the rest `busy` (protocol 1.0 gave each port its own queue: 8x as many)."""
    server = spawn_server(models, "--workers", "2", "--limit", "max_queue=8")
    raws = [Raw(server, timeout=60.0, handshake=False) for _ in range(8)]
    try:
        fields = {"model": "trio_16bar", "n": 1, "temperature": 0.5, "seed": 1}
        for k, raw in enumerate(raws):
            for j in range(8):
                raw.send(request("sample", k * 100 + j, fields))
        codes = {}
        for k, raw in enumerate(raws):
            for j in range(8):
                args = raw.collect(k * 100 + j, timeout=60.0)[-1][1]
                code = "done" if len(args) == 1 else args[1]
                codes[code] = codes.get(code, 0) + 1
        print(f"\n8 ports x 8 requests, max_queue 8, no handshake: {codes}")
        assert codes.get("busy", 0) >= 64 - 8 - 4       # about max_queue served, not 8 x max_queue
        assert codes.get("busy", 0) + sum(v for k, v in codes.items() if k != "busy") == 64
    finally:
        for r in raws:
            r.close()
        server.stop()


def _transport(raw: Raw, rid: int, tempo: float = 120.0):
    raw.send(request("transport", rid, {"tempo": tempo, "beat": 0.0, "playing": True}))
    assert raw.collect(rid)[-1][0] == "/bridge/ok"


def test_a_morph_burst_counts_against_the_queue(models):
    """Morph is an immediate op: it does not wait behind earlier requests, but it counts against the
    client's max_queue (protocol 1.0: 200 morphs in 0.05 s all got `ok`)."""
    server = spawn_server(models, "--workers", "2", "--limit", "max_queue=4")
    raw = Raw(server, timeout=60.0)
    try:
        _transport(raw, 1)
        ids = list(range(100, 150))
        for rid in ids:
            raw.send(request("morph", rid, {"model": "trio_16bar", "a": MEL, "b": MEL, "steps": 8,
                                            "mode": "loop"}))
        first = {}
        for rid in ids:
            msgs = raw.collect(rid, timeout=60.0)
            first[rid] = msgs[0][1][1] if msgs[0][0] == "/bridge/error" else msgs[0][0]
        busy = sum(1 for v in first.values() if v == "busy")
        print(f"\nmorph burst of 50, max_queue 4: {busy} busy, {sum(1 for v in first.values() if v == '/bridge/ok')} ok")
        assert busy >= 10
        raw.send(request("stop", 2, {}))
        raw.collect(2)
    finally:
        raw.close()
        server.stop()


def test_a_superseded_morph_releases_the_model(models):
    """A morph replaced while it decodes stops between two decode steps: another client's trio
    request then waits for a step, not for the old morph's whole decode (protocol 1.0: the whole
    decode ran to the end, holding the model)."""
    server = spawn_server(models, "--workers", "2", "--limit", "max_steps=1024")
    raw = Raw(server, timeout=60.0)
    try:
        with server.client(timeout=30.0) as victim:
            alone = min(victim.request("sample", model="trio_16bar", n=1, seed=3).elapsed for _ in range(3))
        _transport(raw, 1)
        raw.send(request("morph", 10, {"model": "trio_16bar", "a": MEL, "b": MEL, "steps": 1024, "mode": "loop"}))
        assert raw.collect(10)[0][0] == "/bridge/ok"         # decoding 1024 trio latents now (seconds)
        time.sleep(0.1)
        raw.send(request("morph", 11, {"model": "trio_16bar", "a": MEL, "b": MEL, "steps": 2, "mode": "loop"}))
        with server.client(timeout=30.0) as victim:
            with_morph = victim.request("sample", model="trio_16bar", n=1, seed=3).elapsed
        msgs = raw.collect(10, timeout=10.0)                   # the old morph ended: done, no step sent
        assert msgs[-1][0] == "/bridge/done" and not [m for m in msgs if m[0] == "/bridge/seq"]
        print(f"\nsuperseded morph: victim trio sample {with_morph * 1000:.0f} ms (alone {alone * 1000:.0f} ms)")
        assert with_morph < 0.4 + 3 * alone
        raw.send(request("stop", 2, {}))
        raw.collect(2)
    finally:
        raw.close()
        server.stop()
