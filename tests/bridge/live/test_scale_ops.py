"""The `scale` argument (docs/osc-protocol.md, "Scale"): every pitch a melody or bass track decodes is
in the song's scale, at every decode step, for every op that decodes (sample, decode, interpolate,
morph, knob, accompany, ...); drums are untouched; a bad scale is bad_request. Runs on the shipped
(trained) packages: a trained decoder puts most of its mass on a few pitches, so a mask that missed a
step would show up as an out-of-scale note, which random weights at low temperature may never pick.
"""
from __future__ import annotations

from pathlib import Path

import pytest

import bridge
from bridge.core.errors import BadRequest
from bridge.core.scale import Scale, logit_mask
from bridge.daemon.client import ErrorReply
from bridge.daemon.scales import check_scale
from bridge.runtime.engine import load_model

from live_helpers import LiveSim

MODELS = Path(bridge.__file__).parent / "models"
D_DORIAN = {"root": 2, "intervals": [0, 2, 3, 5, 7, 9, 10]}
PCS = {(2 + i) % 12 for i in D_DORIAN["intervals"]}
MELODY = [[60, 0, 1, 100, 0], [61, 1, 0.5, 90, 0], [63, 1.5, 0.5, 80, 0], [66, 2, 2, 100, 0],
          [68, 4, 1, 100, 0], [70, 5, 1, 100, 0], [73, 6, 2, 100, 0]]          # mostly out of D dorian


def out_of_scale(rows, tracks=(0, 1)):
    return [r for r in rows if (r[4] if len(r) > 4 else 0) in tracks and r[0] % 12 not in PCS]


# ---- validation -------------------------------------------------------------------------------------

@pytest.mark.parametrize("value, fragment", [
    ("C major", "must be an object"),
    ([0, 2, 4], "must be an object"),
    ({"intervals": [0, 2]}, "'scale.root' is required"),
    ({"root": 12, "intervals": [0]}, "'scale.root' must be <= 11"),
    ({"root": -1, "intervals": [0]}, "'scale.root' must be >= 0"),
    ({"root": 1.5, "intervals": [0]}, "'scale.root' must be an integer"),
    ({"root": True, "intervals": [0]}, "'scale.root' must be an integer"),
    ({"root": 0, "intervals": []}, "'scale.intervals' must be a list of 1..12"),
    ({"root": 0, "intervals": "0,2,4"}, "'scale.intervals' must be a list"),
    ({"root": 0, "intervals": list(range(13))}, "'scale.intervals' must be a list of 1..12"),
    ({"root": 0, "intervals": [0, 12]}, "'scale.intervals[1]' must be <= 11"),
    ({"root": 0, "intervals": [0, "2"]}, "'scale.intervals[1]' must be an integer"),
    ({"root": 0, "intervals": [0, 4, 4]}, "repeats an interval"),
    ({"root": 0, "intervals": [0], "mode": "major"}, "unknown keys"),
])
def test_bad_scales_are_bad_request(value, fragment):
    with pytest.raises(BadRequest, match=fragment.replace("[", r"\[").replace("]", r"\]").replace(".", r"\.")):
        check_scale("scale", value)


def test_good_scales():
    assert check_scale("scale", None) is None
    assert check_scale("scale", {"root": 9, "intervals": [10, 0, 3, 5, 7.0]}) == Scale(9, (0, 3, 5, 7, 10))


# ---- the decode loop ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def mel(shipped_mel):
    return shipped_mel


@pytest.fixture(scope="module")
def trio():
    return load_model(MODELS / "trio_16bar")


@pytest.mark.parametrize("temperature", [0.0, 1.0, 2.0])
def test_every_decoded_melody_pitch_is_in_the_scale(mel, temperature):
    scale = check_scale("scale", D_DORIAN)
    mask = logit_mask(mel.codec, scale)
    z = mel.sample_z(32, 5)
    free = mel.decode(z, temperature, seed=1)
    masked = mel.decode(z, temperature, seed=1, mask=mask)
    assert any(n.pitch % 12 not in PCS for s in free for n in s), "not vacuous: unmasked decodes leave the scale"
    notes = [n for s in masked for n in s]
    assert len(notes) > 50
    assert [n.pitch for n in notes if n.pitch % 12 not in PCS] == []


def test_trio_lead_and_bass_in_the_scale_drum_classes_never_masked(trio):
    mask = logit_mask(trio.codec, check_scale("scale", D_DORIAN))
    drums = slice(int(trio.offsets[2]), int(trio.offsets[3]))
    assert not mask[drums].any()
    z = trio.sample_z(2, 3)
    seqs = trio.decode(z, 1.0, seed=4, mask=mask)
    pitched = [n for s in seqs for n in s if not n.is_drum]
    assert {n.track for n in pitched} == {0, 1}
    assert [n for n in pitched if n.pitch % 12 not in PCS] == []
    assert any(n.is_drum for s in seqs for n in s)


def test_accompany_bass_in_the_scale_melody_kept(trio):
    melody = [bridge.Note(60 + (i % 5), i * 1.0, i * 1.0 + 1.0, 100, 0, False) for i in range(16)]
    band = trio.accompany(melody, temperature=1.0, seed=2, mask=logit_mask(trio.codec, check_scale("scale", D_DORIAN)))
    assert [(n.pitch, n.start) for n in band if n.track == 0] == [(n.pitch, n.start) for n in melody]
    bass = [n for n in band if n.track == 1]
    assert bass and [n.pitch for n in bass if n.pitch % 12 not in PCS] == []


# ---- the ops, on a daemon -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def srv(shipped_daemon):
    return shipped_daemon(("mel_2bar", "drums_2bar", "trio_16bar"))


def rows_of(reply):
    return [r for s in reply.sequences for r in s["notes"]]


def test_core_ops_with_a_scale(c):
    s = c.request("sample", model="mel_2bar", n=8, temperature=1.5, seed=3, scale=D_DORIAN)
    assert len(rows_of(s)) > 20 and out_of_scale(rows_of(s)) == []
    free = c.request("sample", model="mel_2bar", n=8, temperature=1.5, seed=3)
    assert out_of_scale(rows_of(free)), "not vacuous"
    z = c.request("encode", model="mel_2bar", notes=MELODY).data["z"]
    d = c.request("decode", model="mel_2bar", z=[z, z], temperature=0.5, seed=1, scale=D_DORIAN)
    assert rows_of(d) and out_of_scale(rows_of(d)) == []
    i = c.request("interpolate", model="mel_2bar", a=MELODY, b=MELODY[::-1], steps=4, scale=D_DORIAN)
    assert len(i.sequences) == 4 and out_of_scale(rows_of(i)) == []
    r = c.request("reconstruct", model="mel_2bar", notes=MELODY, scale=D_DORIAN)
    assert rows_of(r) and out_of_scale(rows_of(r)) == []
    assert out_of_scale(rows_of(c.request("reconstruct", model="mel_2bar", notes=MELODY))), "not vacuous"
    a = c.request("accompany", model="trio_16bar", notes=MELODY * 2, temperature=1.0, seed=5, scale=D_DORIAN)
    band = rows_of(a)
    assert [r for r in band if r[4] == 1] and out_of_scale(band, tracks=(1,)) == []


def test_drums_are_untouched_by_a_scale(c):
    with_scale = c.request("sample", model="drums_2bar", n=4, temperature=1.0, seed=9, scale=D_DORIAN)
    without = c.request("sample", model="drums_2bar", n=4, temperature=1.0, seed=9)
    assert rows_of(with_scale) == rows_of(without) and rows_of(without)


@pytest.mark.parametrize("op, fields", [
    ("sample", {"model": "mel_2bar"}),
    ("decode", {"model": "mel_2bar", "z": [0.0] * 128}),
    ("interpolate", {"model": "mel_2bar", "a": MELODY, "b": MELODY}),
    ("accompany", {"model": "trio_16bar", "notes": MELODY}),
    ("knob", {"model": "mel_2bar", "direction": 0, "value": 0.5}),
    ("morph", {"model": "mel_2bar", "a": MELODY, "b": MELODY}),
])
def test_a_bad_scale_is_bad_request_on_every_op(c, op, fields):
    with pytest.raises(ErrorReply) as e:
        c.request(op, dict(fields, scale={"root": 0, "intervals": [0, 13]}))
    assert e.value.code == "bad_request"
    assert "scale.intervals[1]" in e.value.message


def test_morph_and_knob_steps_are_in_the_scale(srv):
    sim = LiveSim(srv, 480.0, start_beat=0.0)      # 0.5 s bars: the steps come quickly
    try:
        bar = sim.bar_now() + 2
        rid, _ = sim.send("morph", model="mel_2bar", a=MELODY, b=MELODY[::-1], steps=3, bars_per_step=1,
                          mode="once", temperature=1.5, seed=2, start_bar=bar, scale=D_DORIAN)
        sim.ok(rid, timeout=30.0)
        assert sim.wait_for(lambda: len(sim.seqs(rid)) == 3, 30.0), sim.replies(rid)
        notes = [r for _, s in sim.seqs(rid) for r in s["notes"]]
        assert notes and out_of_scale(notes) == []
        kid, _ = sim.send("knob", model="mel_2bar", direction=0, value=0.9, temperature=1.5, seed=3, scale=D_DORIAN)
        sim.ok(kid)
        assert sim.wait_for(lambda: len(sim.seqs(kid)) == 1, 30.0), sim.replies(kid)
        knob_notes = sim.seqs(kid)[0][1]["notes"]
        assert knob_notes and out_of_scale(knob_notes) == []
    finally:
        sim.close()
