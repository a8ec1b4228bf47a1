"""Live ops: transport, tempo-synced morphs and coalesced knobs.

Unit tests of bridge.live's pieces (clock, morph, knobs), then the real daemon (a `python -m bridge
serve` subprocess on loopback, tiny model packages) driven by simulated Live sets sending `transport`
over real UDP.
"""
from __future__ import annotations

import json
import math
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import bridge
from bridge.core import latent
from bridge.core.directions import resolve
from bridge.core.errors import LiveError
from bridge.daemon.client import spawn_server
from bridge.daemon.registry import notes_to_rows, z_to_list
from bridge.live import ops as live
from bridge.live.clock import Transport
from bridge.live.knobs import KNOB_RANGE, LatestOnly
from bridge.live.morph import MorphJob, step_at, step_order
from bridge.runtime.engine import load_model

from live_helpers import LiveSim, packages_with_directions, percentile


# ---- transport ------------------------------------------------------------------------------------

class FakeClock:
    def __init__(self, t=100.0):
        self.t = t

    def __call__(self):
        return self.t


def test_transport_extrapolates_between_updates():
    clk = FakeClock()
    tr = Transport(clk)
    assert not tr.known
    tr.update({"tempo": 120, "beat": 7.5, "playing": True, "numerator": 4, "denominator": 4})
    assert tr.beat() == 7.5 and tr.bar() == 1 and tr.next_bar() == 2
    clk.t += 0.25                          # half a beat at 120 bpm
    assert tr.beat() == pytest.approx(8.0) and tr.bar() == 2 and tr.next_bar() == 3
    assert tr.seconds_until_beat(12.0) == pytest.approx(2.0)
    tr.update({"tempo": 90, "beat": 8.0, "playing": 0, "numerator": 4, "denominator": 4})
    clk.t += 5.0
    assert tr.beat() == 8.0 and tr.seconds_until_beat(12.0) == math.inf   # stopped: frozen
    assert tr.snapshot()["bar"] == 2


@pytest.mark.parametrize("msg, fragment", [
    ({"tempo": 120, "beat": 0, "numerator": 3, "denominator": 4}, "only 4/4 is supported"),
    ({"tempo": 120, "beat": 0, "numerator": 6, "denominator": 8}, "the song is in 6/8"),
    ({"tempo": 0, "beat": 0}, "tempo must be in"),
    ({"tempo": 120, "beat": float("nan")}, "finite number"),
    ({"tempo": 120}, "needs 'beat'"),
    ({"tempo": 120, "beat": 1, "playing": "yes"}, "'playing' must be"),
])
def test_transport_rejects_bad_messages(msg, fragment):
    with pytest.raises(LiveError, match=fragment):
        Transport().update(msg)


# ---- step orders ------------------------------------------------------------------------------------

def test_step_orders():
    assert step_order(4, "once") == [0, 1, 2, 3]
    assert step_order(3, "loop", 7) == [0, 1, 2, 0, 1, 2, 0]
    assert step_order(4, "pingpong", 10) == [0, 1, 2, 3, 2, 1, 0, 1, 2, 3]
    assert step_order(2, "pingpong", 5) == [0, 1, 0, 1, 0]
    assert step_at(4, 4, "once") is None and step_at(9, 1, "pingpong") == 0
    with pytest.raises(LiveError):
        step_order(3, "zigzag")


def _fast_transport(tempo=960.0):
    tr = Transport()
    tr.update({"tempo": tempo, "beat": 0.0, "playing": True})
    return tr


def test_morph_job_streams_ahead_of_each_bar_in_loop_order():
    tr = _fast_transport()                # a bar lasts 0.25 s
    sent = []
    done = []

    def on_step(slot, step, bar, notes, z):
        sent.append((slot, step, bar, tr.beat(), notes, z))

    zs = np.arange(12.0).reshape(3, 4)
    job = MorphJob(tr, "loop", 1, lambda c: (zs, [["s0"], ["s1"], ["s2"]]), on_step,
                   done.append).start()
    deadline = time.monotonic() + 10
    while len(sent) < 5 and time.monotonic() < deadline:
        time.sleep(0.01)
    job.cancel()
    assert job.join(2.0) and done == ["cancelled"]
    assert [s[1] for s in sent[:5]] == [0, 1, 2, 0, 1]               # loop wraps
    bars = [s[2] for s in sent[:5]]
    assert bars == list(range(bars[0], bars[0] + 5))
    for slot, step, bar, beat_at_send, notes, z in sent[:5]:
        assert bar * 4 - beat_at_send >= 4 - 0.5   # sent about one bar (4 beats) ahead
        assert notes == [f"s{step}"]               # each slot sends its own step's notes and latent
        np.testing.assert_array_equal(z, zs[step])


def test_morph_job_cancel_during_decode_sends_nothing():
    tr = _fast_transport()
    release = threading.Event()
    sent, done = [], []

    def slow_decode(cancelled):
        release.wait(5)
        return np.zeros((2, 4)), [["a"], ["b"]]

    job = MorphJob(tr, "once", 1, slow_decode, lambda *a: sent.append(a), done.append).start()
    job.cancel()
    release.set()
    assert job.join(5.0)
    assert sent == [] and done == ["cancelled"]


def test_morph_job_validation():
    tr = _fast_transport(120)
    for kwargs, fragment in [({"mode": "zigzag"}, "mode"), ({"bars_per_step": 0}, "bars_per_step"),
                             ({"start_bar": -5}, "already started"), ({"lookahead_bars": 0.5}, "one bar")]:
        args = dict(mode="once", bars_per_step=1)
        args.update(kwargs)
        with pytest.raises(LiveError, match=fragment):
            MorphJob(tr, args.pop("mode"), args.pop("bars_per_step"), lambda c: None, None, **args)


def test_latest_only_runs_the_latest_value_without_backlog():
    seen = []

    def slow(v):
        time.sleep(0.02)
        seen.append(v)

    w = LatestOnly(slow)
    for i in range(200):
        w.submit(i)
        time.sleep(0.001)
    assert w.idle.wait(5)
    assert seen[-1] == 199 and len(seen) < 100 and seen == sorted(seen)
    assert w.calls == len(seen) and w.dropped == 200 - len(seen)


# ---- the real daemon ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def live_models(tiny_models_dir, tmp_path_factory):
    return packages_with_directions(tiny_models_dir, tmp_path_factory.mktemp("live_models"))


@pytest.fixture(scope="module")
def daemon(live_models):
    server = spawn_server([live_models], "--workers", "2")
    yield server
    assert server.stop() == 0


MEL_A = [[60, 0, 1, 100, 0], [64, 1, 1, 100, 0], [67, 2, 2, 100, 0], [72, 4, 1, 100, 0]]
MEL_B = [[72, 0, 0.5, 100, 0], [71, 0.5, 0.5, 100, 0], [69, 1, 1, 100, 0], [65, 3, 1, 100, 0],
         [60, 4, 3, 100, 0]]


def distinct_morph_endpoints(model, steps: int):
    """Two latents whose interpolation decodes to `steps` different sequences (the tiny random-weight
    models map nearby inputs to the same notes), and those sequences as wire rows."""
    for seed in range(100):
        za, zb = (np.random.default_rng(seed).standard_normal((2, model.z_size)) * 2).astype(np.float32)
        seqs = [notes_to_rows(n) for n in model.decode(latent.interpolate(za, zb, steps, "slerp"),
                                                       temperature=0.0, seed=0)]
        if len({json.dumps(r) for r in seqs}) == steps:
            return za, zb, seqs
    raise AssertionError(f"no endpoints with {steps} distinct steps for {model.name}")


def test_morph_every_step_arrives_before_its_bar(daemon, live_models):
    """Three Live sets at 90, 120 and 174 bpm morph at once (pingpong, 3 steps, one bar each); every
    step must arrive before its bar starts, about one bar ahead, with the notes of its own
    interpolation point (what the engine decodes for that z)."""
    model = load_model(live_models / "mel_2bar")
    za, zb, want = distinct_morph_endpoints(model, 3)
    results = {}

    def run(tempo):
        sim = LiveSim(daemon, tempo, start_beat=1001.3)   # an arbitrary song position: bars are absolute
        try:
            rid, _ = sim.send("morph", model="mel_2bar", a=z_to_list(za), b=z_to_list(zb), steps=3,
                              bars_per_step=1, mode="pingpong")
            ok = sim.ok(rid)
            assert sim.wait_for(lambda: len(sim.seqs(rid)) >= 5, 40), f"{tempo} bpm: {sim.seqs(rid)}"
            sim.send("stop", morph=ok["morph"])
            results[tempo] = (ok, sim.seqs(rid)[:5], sim)
        finally:
            sim.close()

    threads = [threading.Thread(target=run, args=(t,)) for t in (90, 120, 174)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert set(results) == {90, 120, 174}
    for tempo, (ok, seqs, sim) in sorted(results.items()):
        bar_s = 4 * 60.0 / tempo
        steps = [s["step"] for _, s in seqs]
        bars = [s["bar"] for _, s in seqs]
        assert steps == [0, 1, 2, 1, 0], steps                  # pingpong order
        assert bars == list(range(bars[0], bars[0] + 5))        # consecutive bars
        assert bars[0] >= 250                                   # absolute song bars (beat 1001.3 = bar 250)
        assert all(s["morph"] == ok["morph"] and s["bars_per_step"] == 1 for _, s in seqs)
        for _, s in seqs:                                         # each step's own notes
            assert s["notes"] == want[s["step"]], (tempo, s["step"], s["slot"])
        margins = [sim.time_of_beat(s["bar"] * 4) - t for t, s in seqs]
        print(f"\nmorph lookahead at {tempo} bpm (bar = {bar_s:.3f} s): margins "
              + ", ".join(f"{m:.3f}" for m in margins) + f" s; min {min(margins):.3f} s "
              f"= {min(margins) / bar_s:.2f} bar")
        assert min(margins) > 0                                   # before the bar starts
        assert min(margins) > 0.5 * bar_s                         # and about a bar ahead


def test_stop_and_a_superseding_morph_cancel(daemon):
    sim = LiveSim(daemon, 174.0)
    try:
        # stop {"morph": id}: done at once, nothing more from that morph
        rid, _ = sim.send("morph", model="mel_2bar", a=MEL_A, b=MEL_B, steps=4, bars_per_step=1, mode="loop")
        ok = sim.ok(rid)
        assert sim.wait_for(lambda: len(sim.seqs(rid)) >= 1, 20)
        sid, _ = sim.send("stop", morph=ok["morph"])
        assert sim.ok(sid) == {"stopped": ok["morph"]}
        assert sim.wait_for(lambda: sim.replies(rid, "/bridge/done"), 5)
        n = len(sim.seqs(rid))
        time.sleep(2 * 4 * 60 / 174)                         # two bars: a loop would have sent 2 more
        assert len(sim.seqs(rid)) == n
        assert sim.ok(sim.send("stop", morph=ok["morph"])[0]) == {"stopped": None}

        # a new morph while the old one is still decoding (64 steps of a 16-bar model): the old one
        # never sends a sequence, the new one does
        r1, _ = sim.send("morph", model="mel_16bar", a=MEL_A, b=MEL_B, steps=64, bars_per_step=1, mode="loop")
        ok1 = sim.ok(r1)  # the ok comes before the decode: morph 1 is registered and decoding now
        r2, _ = sim.send("morph", model="mel_2bar", a=MEL_B, b=MEL_A, steps=2, bars_per_step=1, mode="once")
        ok2 = sim.ok(r2)
        assert ok2["replaced"] == ok1["morph"]
        assert sim.wait_for(lambda: sim.replies(r1, "/bridge/done"), 10)
        assert sim.wait_for(lambda: sim.replies(r2, "/bridge/done"), 30)    # a once morph ends by itself
        time.sleep(0.5)
        assert sim.seqs(r1) == []
        assert [s["step"] for _, s in sim.seqs(r2)] == [0, 1]
    finally:
        sim.close()


def test_morph_needs_transport_and_4_4(daemon):
    c = daemon.client(timeout=10.0)
    try:
        r = c.request("morph", model="mel_2bar", a=MEL_A, b=MEL_B, check=False)
        assert r.status == "error" and r.error[0] == "bad_request" and "transport" in r.error[1]
        r = c.request("transport", tempo=120, beat=0, playing=True, numerator=3, denominator=4, check=False)
        assert r.status == "error" and r.error[0] == "bad_request" and "only 4/4" in r.error[1]
        r = c.request("transport", tempo=120, beat=10, playing=True, numerator=4, denominator=4)
        assert r.data["bar"] == 2 and r.data["tempo"] == 120
        r = c.request("morph", model="mel_2bar", a=MEL_A, b=MEL_B, start_bar=1, check=False)
        assert r.status == "error" and "already started" in r.error[1]
        r = c.request("knob", model="mel_2bar", direction="nope", value=0.5, check=False)
        assert r.status == "error" and "no direction 'nope'" in r.error[1]
        r = c.request("directions", model="mel_2bar")
        assert [d["name"] for d in r.data["directions"]] == ["note_density", "pc1", "pc2"]
    finally:
        c.close()


@pytest.mark.parametrize("model", ["mel_2bar", "mel_16bar"])
def test_knob_burst_last_value_wins_without_backlog(daemon, live_models, model):
    sim = LiveSim(daemon, 120.0, start_beat=64.0)
    try:
        # a live latent from a core op (decode sets it)
        z0 = [0.1] * json.loads((live_models / model / "model.json").read_text())["z_size"]
        rid, _ = sim.send("decode", model=model, z=z0)
        assert sim.wait_for(lambda: sim.replies(rid, "/bridge/done"), 10)

        # isolated knob moves: latency of one decode
        lat_single = []
        for i in range(10):
            k, at = sim.send("knob", model=model, direction="note_density", value=round(-0.9 + 0.2 * i, 3))
            assert sim.wait_for(lambda: sim.seqs(k), 5)
            lat_single.append(sim.seqs(k)[0][0] - at)

        # the burst: 200 knob messages in one second
        sent = {}
        values = np.linspace(-1.0, 1.0, 200).round(4)
        values[-1] = 0.7777
        t_start = time.monotonic()
        for i, v in enumerate(values):
            target = t_start + i / 200.0
            while time.monotonic() < target:
                time.sleep(0.0005)
            k, at = sim.send("knob", model=model, direction=1 if i % 2 else "note_density", value=float(v))
            sent[k] = (at, float(v))
        t_last = time.monotonic()
        burst_ids = set(sent)
        assert sim.wait_for(lambda: any(s["knob"]["value"] == 0.7777 for k in burst_ids for _, s in sim.seqs(k)), 10)
        time.sleep(0.5)
        replies = sorted((t, k, s) for k in burst_ids for t, s in sim.seqs(k))
        oks = [k for k in burst_ids if sim.replies(k, "/bridge/ok")]
        assert len(oks) == 200                                    # every request is answered
        assert replies[-1][2]["knob"]["value"] == 0.7777          # the last value wins ...
        assert replies[-1][2]["knobs"] == {"note_density": pytest.approx(values[-2], abs=1e-6), "pc1": 0.7777}
        ids = [k for _, k, _ in replies]
        assert ids == sorted(ids) and len(set(ids)) == len(ids)   # never an older value after a newer one
        assert replies[-1][0] - t_last < 0.5 + 3 * max(lat_single)  # no backlog: done within a decode or two
        if model == "mel_16bar":                                  # decodes slower than the knob moves:
            assert len(replies) < 150                             # coalesced
        latencies = []
        for t, k, s in replies:
            beat = sim.beat_at(t)
            assert s["bar"] * 4 > beat - 0.1, (s["bar"], beat)    # a bar not yet started
            assert s["bar"] <= math.floor(beat / 4) + 1
            latencies.append(t - sent[k][0])
        print(f"\n{model} knob -> sequence latency: single p50 {percentile(lat_single, 50) * 1e3:.1f} ms "
              f"p99 {percentile(lat_single, 99) * 1e3:.1f} ms; burst of 200 in "
              f"{t_last - t_start:.2f} s -> {len(replies)} decodes, p50 {percentile(latencies, 50) * 1e3:.1f} ms "
              f"p99 {percentile(latencies, 99) * 1e3:.1f} ms")
    finally:
        sim.close()


@pytest.fixture(scope="module")
def shipped_mel_daemon(tmp_path_factory):
    """The daemon serving the shipped mel_2bar (a trained model: its directions mean something)."""
    d = tmp_path_factory.mktemp("shipped_mel")
    (d / "mel_2bar").symlink_to(Path(bridge.__file__).parent / "models" / "mel_2bar")
    server = spawn_server([d], "--workers", "2")
    yield server
    assert server.stop() == 0


def test_knob_over_osc_moves_the_notes_in_the_measured_direction(shipped_mel_daemon):
    """The shipped mel_2bar's note_density knob over OSC: each result is exactly the engine's decode of
    the live latent moved by value x knob_range along the direction, and turning the knob up adds
    notes, down removes them, as the direction's recorded effect says."""
    model = load_model(Path(bridge.__file__).parent / "models" / "mel_2bar")
    _, d = resolve(model.info, "note_density")               # what the knob op moves along
    per_unit = d["effect"]["per_unit"]["note_density"]      # notes per bar per unit along the vector
    assert per_unit > 0.5, per_unit
    v = np.asarray(d["vector"], dtype=np.float32).astype(np.float64)
    sim = LiveSim(shipped_mel_daemon, 120.0, start_beat=16.0)
    try:
        rid, _ = sim.send("encode", model="mel_2bar", notes=MEL_A)   # the live latent: MEL_A's
        z0 = np.asarray(sim.ok(rid)["z"], dtype=np.float64)
        counts = {}
        for value in (0.0, -1.0, 1.0, 0.5):
            k, _ = sim.send("knob", model="mel_2bar", direction="note_density", value=value)
            assert sim.wait_for(lambda: sim.replies(k, "/bridge/done"), 10), f"no knob result for {value}"
            (_, seq), = sim.seqs(k)
            want = model.decode((z0 + KNOB_RANGE * value * v).astype(np.float32)[None], temperature=0.0, seed=0)[0]
            assert seq["notes"] == notes_to_rows(want), value
            assert seq["knobs"] == {"note_density": value}
            counts[value] = len(seq["notes"])
    finally:
        sim.close()
    print(f"\nmel_2bar note_density knob -1 / 0 / +0.5 / +1: {counts[-1.0]} / {counts[0.0]} / {counts[0.5]} / "
          f"{counts[1.0]} notes (recorded effect {per_unit:+.2f} notes per bar per unit)")
    # -1 -> +1 is 2 x knob_range units along the vector: at least a quarter of the recorded effect
    bars = int(model.info["bars"])
    assert counts[-1.0] <= counts[0.0] <= counts[0.5] <= counts[1.0], counts
    assert counts[1.0] - counts[-1.0] >= 0.25 * per_unit * 2 * KNOB_RANGE * bars, counts


def test_knob_needs_a_live_latent(daemon):
    c = daemon.client(timeout=10.0)
    try:
        r = c.request("knob", model="drums_2bar", direction=0, value=0.5, check=False)
        assert r.status == "error" and r.error[0] == "bad_request" and "no live latent" in r.error[1]
        r = c.request("knob", model="mel_2bar", direction=0, value=1.5, check=False)
        assert r.status == "error" and "-1..1" in r.error[1]
    finally:
        c.close()


def test_stop_live_hook_without_state():
    class S:
        state = {}
    assert live.stop_live(S()) is None
