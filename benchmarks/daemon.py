"""Measurements against a real daemon subprocess over loopback OSC: what a client sees.

Every time is a round trip measured in the client: from sending the request datagram to receiving
the terminal reply (`/bridge/ok`, or `/bridge/done` after the `/bridge/seq` stream). The knob is
timed to its `/bridge/seq` (the new pattern) and to its `/bridge/done`.
"""
from __future__ import annotations

import json
import math
import threading
import time
from types import SimpleNamespace

import numpy as np

from bridge.cli.bench import example_notes
from bridge.daemon.client import BridgeClient, ErrorReply, spawn_server
from bridge.runtime.engine import load_model

PERCENTILES = (50, 95, 99)
BATCHES = (1, 8, 64)
TEMPOS = (120.0, 174.0)


def summarize(seconds: list[float]) -> dict:
    """p50/p95/p99/mean/min/max in ms of a list of durations in seconds."""
    if not seconds:
        return {"n": 0}
    ms = np.asarray(seconds, dtype=np.float64) * 1000.0
    out = {f"p{p}_ms": round(float(np.percentile(ms, p)), 3) for p in PERCENTILES}
    out.update(mean_ms=round(float(ms.mean()), 3), min_ms=round(float(ms.min()), 3),
               max_ms=round(float(ms.max()), 3), n=int(ms.size))
    return out


def timed_loop(fn, iterations: int, warmup: int, budget_s: float, min_n: int = 5) -> list[float]:
    """Call fn() (which returns the seconds it measured) `warmup` times, then up to `iterations`
    times, stopping early once `budget_s` has passed and `min_n` samples are in."""
    for _ in range(warmup):
        fn()
    out: list[float] = []
    end = time.monotonic() + budget_s
    while len(out) < iterations and (len(out) < min_n or time.monotonic() < end):
        out.append(fn())
    return out


def interleaved(remote, local, iterations: int, warmup: int, budget_s: float, min_n: int = 5
                ) -> tuple[list[float], list[float]]:
    """Seconds of `remote()` (a round trip; returns its own elapsed time) and of `local()` (the same op
    in this process), alternated call by call so that both see the same load: their ratio is the
    daemon's overhead (transport, JSON, scheduling) measured in one run, not minutes apart."""
    ls: list[float] = []

    def both() -> float:
        r = remote()
        t0 = time.perf_counter()
        local()
        ls.append(time.perf_counter() - t0)
        return r

    rs = timed_loop(both, iterations, warmup, budget_s, min_n)
    return rs, ls[warmup:]


def with_inprocess(remote_s: list[float], local_s: list[float]) -> dict:
    """summarize(remote) plus the interleaved in-process p50 and the daemon / in-process ratio."""
    out = summarize(remote_s)
    local = summarize(local_s)["p50_ms"]
    out["inprocess_p50_ms"] = local
    out["daemon_over_inprocess"] = round(out["p50_ms"] / local, 3) if local else None
    return out


def example_rows(info: dict) -> tuple[list, list]:
    """Two note lists (wire rows) that fit every track of the model."""
    a, b = example_notes(SimpleNamespace(info=info, bars=int(info["bars"])))
    return [n.to_row() for n in a], [n.to_row() for n in b]


class _Knob:
    """Knob round trips: the ok comes at once, then the decoded pattern (seq) and done."""

    def __init__(self, client: BridgeClient, model: str, direction):
        self.c, self.model, self.direction = client, model, direction
        self.k = 0

    def once(self) -> tuple[float, float]:
        self.k += 1
        value = round(math.sin(self.k * 0.7), 4)       # a new value every time: no coalescing shortcut
        rid = self.c.new_id()
        t0 = time.perf_counter()
        self.c.send_message("/bridge/knob", rid, json.dumps(
            {"model": self.model, "direction": self.direction, "value": value}))
        t_seq = None
        deadline = time.monotonic() + self.c.timeout
        while time.monotonic() < deadline:
            for address, args in self.c.receive(deadline - time.monotonic()):
                if not args or args[0] != rid:
                    continue
                if address == "/bridge/error":
                    raise ErrorReply(args[1], args[2], rid)
                if address == "/bridge/seq" and t_seq is None:
                    t_seq = time.perf_counter() - t0
                if address == "/bridge/done":
                    return t_seq if t_seq is not None else math.nan, time.perf_counter() - t0
        raise TimeoutError(f"knob {rid}: no /bridge/done within {self.c.timeout} s")


def morph_margins(server, model: str, a: list, b: list, tempo: float, slots: int,
                  timeout: float = 60.0) -> dict:
    """Run a looping 4-step morph (one bar per step) against a simulated Live transport at `tempo`
    and return how long before its bar each step's /bridge/seq arrived (the lookahead margin)."""
    c = server.client(timeout=timeout)
    stop = threading.Event()
    t0 = time.monotonic()
    beat0 = 4001.3                         # an arbitrary song position (bars are absolute)
    ids = iter(range(1_000_000, 2_000_000_000))
    send_lock = threading.Lock()

    def beat_at(t):
        return beat0 + (t - t0) * tempo / 60.0

    def transport():
        with send_lock:
            c.send_message("/bridge/transport", next(ids), json.dumps(
                {"tempo": tempo, "beat": beat_at(time.monotonic()), "playing": True,
                 "numerator": 4, "denominator": 4}))

    def clock():
        period = 60.0 / tempo / 8.0        # 8 updates per beat, as the Max device does
        while not stop.wait(period):
            transport()

    transport()
    th = threading.Thread(target=clock, daemon=True)
    th.start()
    arrivals = []
    try:
        rid = c.new_id()
        with send_lock:
            c.send_message("/bridge/morph", rid, json.dumps(
                {"model": model, "a": a, "b": b, "steps": 4, "bars_per_step": 1, "mode": "loop"}))
        deadline = time.monotonic() + timeout
        while len(arrivals) < slots and time.monotonic() < deadline:
            for address, args in c.receive(0.2):
                if args and args[0] == rid:
                    if address == "/bridge/error":
                        raise ErrorReply(args[1], args[2], rid)
                    if address == "/bridge/seq":
                        arrivals.append((time.monotonic(), json.loads(args[3])))
        with send_lock:
            c.send_message("/bridge/stop", next(ids), "{}")
    finally:
        stop.set()
        th.join(2.0)
        c.close()
    bar_s = 4 * 60.0 / tempo
    margins = [t0 + (seq["bar"] * 4 - beat0) * 60.0 / tempo - t for t, seq in arrivals]
    out = {"tempo": tempo, "bar_ms": round(bar_s * 1000.0, 1), "slots": len(margins),
           "lookahead_bars": 1.0, "margins_ms": [round(m * 1000.0, 1) for m in margins]}
    if margins:
        out.update(min_ms=round(min(margins) * 1000.0, 1), p50_ms=round(float(np.median(margins)) * 1000.0, 1),
                   min_bars=round(min(margins) / bar_s, 3), all_in_time=min(margins) > 0)
    return out


def bench_daemon(stage_dir, packages, provider: str, iterations: int, warmup: int, budget_s: float,
                 morph_slots: int, tempos=TEMPOS, batches=BATCHES, log=print) -> dict:
    """Start `serve --models stage_dir --provider P` and measure every package; returns
    {"provider", "ready_s", "ping": stats, "models": {name: {...}}, "log_tail": [...]}."""
    t0 = time.monotonic()
    server = spawn_server([stage_dir], "--provider", provider, "--limit", f"max_n={max(batches)}",
                          timeout=600.0)
    ready_s = time.monotonic() - t0
    out = {"provider": provider, "ready_s": round(ready_s, 2), "models": {}}
    try:
        with server.client(timeout=120.0) as c:
            loaded = set(c.server_info["models"])
            k = iter(range(10 ** 9))
            out["ping"] = summarize(timed_loop(lambda: c.request("ping").elapsed,
                                               iterations * 2, warmup * 3, budget_s))
            log(f"  [{provider}] ping p50 {out['ping']['p50_ms']} ms p99 {out['ping']['p99_ms']} ms")
            for p in packages:
                if p.name not in loaded:
                    out["models"][p.name] = {"error": "the daemon did not load it"}
                    continue
                a, b = example_rows(p.info)
                res: dict = {"ops": {}, "batch": {}, "morph": {}}

                def rq(op, **fields):
                    return c.request(op, model=p.name, **fields).elapsed

                # the same ops in this process, alternated with the round trips (the overhead ratio)
                local = load_model(p.path, provider=provider, threads=1)
                na, nb = example_notes(local)
                res["ops"]["encode"] = with_inprocess(*interleaved(
                    lambda: rq("encode", notes=a), lambda: local.encode([na]), iterations, warmup, budget_s))
                res["ops"]["sample"] = with_inprocess(*interleaved(
                    lambda: rq("sample", n=1, temperature=0.5, seed=1), lambda: local.sample(1, 0.5, seed=1),
                    iterations, warmup, budget_s))
                res["ops"]["interpolate8"] = with_inprocess(*interleaved(
                    lambda: rq("interpolate", a=a, b=b, steps=8), lambda: local.interpolate(na, nb, steps=8),
                    iterations, warmup, budget_s))
                rq("encode", notes=a)            # the latent the knob moves from
                knob = _Knob(c, p.name, 0)
                pairs: list[tuple[float, float]] = []
                timed = timed_loop(lambda: pairs.append(knob.once()) or pairs[-1][0], iterations, warmup, budget_s)
                res["ops"]["knob"] = summarize(timed)
                res["ops"]["knob_done"] = summarize([d for _, d in pairs[-len(timed):]])
                for n in batches:
                    times = timed_loop(lambda: rq("sample", n=n, temperature=0.5, seed=next(k)),
                                       iterations, max(1, warmup // 2), budget_s / 2, min_n=3)
                    res["batch"][str(n)] = summarize(times)
                    res["batch"][str(n)]["per_sequence_ms"] = round(res["batch"][str(n)]["p50_ms"] / n, 3)
                for tempo in tempos:
                    res["morph"][f"{tempo:g}"] = morph_margins(server, p.name, a, b, tempo, morph_slots)
                out["models"][p.name] = res
                o = res["ops"]
                log(f"  [{provider}] {p.name}: encode {o['encode']['p50_ms']} / sample {o['sample']['p50_ms']} / "
                    f"interpolate8 {o['interpolate8']['p50_ms']} / knob {o['knob']['p50_ms']} ms (p50); "
                    f"morph min margin " + ", ".join(f"{t}: {m.get('min_ms')} ms" for t, m in res["morph"].items()))
            out["stats"] = c.request("stats").data
    finally:
        code = server.stop()
        out["exit_code"] = code
        out["log_tail"] = [line for line in server.log_lines() if "level=INFO" not in line][-20:]
    return out
