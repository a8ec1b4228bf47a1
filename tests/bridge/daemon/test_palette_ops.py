"""Palettes over OSC: learn from real Nottingham clips with the shipped mel_2bar in a real daemon,
then every core op that draws z from a palette answers what the engine computes here from the
exported palette (sample, variations, the 2-D pad); forget, export/import, --state-dir persistence
and every bad input (bad_request, nothing stored). The live ops on palettes (knobs on its
directions, a morph toward it): tests/bridge/live/test_palette_live.py."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import bridge
from bridge.core.errors import TooLarge
from bridge.core.palette import Palette
from bridge.daemon.client import spawn_server
from bridge.daemon.palettes import PaletteStore
from bridge.daemon.registry import notes_to_rows
from bridge.runtime.palette import learn_palette

MODELS = Path(bridge.__file__).parent / "models"


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("state")


@pytest.fixture(scope="module")
def srv(shipped_daemon, state_dir):
    return shipped_daemon(("mel_2bar", "drums_2bar"), "--state-dir", str(state_dir))


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    """The shipped mel_2bar alone, for the daemons of the restart test."""
    d = tmp_path_factory.mktemp("shipped_mel")
    (d / "mel_2bar").symlink_to(MODELS / "mel_2bar")
    return d


@pytest.fixture(scope="module")
def folk(srv, folk_clip_rows):
    """The palette 'folk' learned in the daemon, and the same palette as the daemon exports it."""
    client = srv.client(timeout=30.0)
    try:
        r = client.request("learn", model="mel_2bar", name="folk", clips=folk_clip_rows)
        exported = client.request("palette_export", model="mel_2bar", name="folk").data["palette"]
    finally:
        client.close()
    return r.data, Palette.from_dict(exported)


def test_learn_reply_and_the_same_fit_as_the_runtime(folk, shipped_mel, folk_clip_rows):
    reply, palette = folk
    assert reply["palette"] == "folk" and reply["model"] == "mel_2bar" and reply["clips"] == 4
    assert reply["replaced"] is False
    assert reply["windows"] == palette.windows >= 3 and reply["directions"] == len(palette.directions) >= 2
    assert reply["fit_ms"] < 1000
    from bridge.core.notes import Note
    here = learn_palette(shipped_mel, [[Note.from_row(r) for r in clip] for clip in folk_clip_rows], "folk")
    np.testing.assert_allclose(palette.mean, here.mean, atol=1e-5)
    assert palette.windows == here.windows


def test_sample_draws_from_the_palette(c, folk, shipped_mel):
    _, palette = folk
    r = c.request("sample", model="mel_2bar", palette="folk", spread=0.8, n=3, temperature=0.5, seed=11)
    rng = np.random.default_rng(11)
    want = shipped_mel.decode(palette.sample(3, 0.8, rng), 0.5, rng)
    assert [s["notes"] for s in r.sequences] == [notes_to_rows(w) for w in want]
    prior = c.request("sample", model="mel_2bar", n=3, temperature=0.5, seed=11)
    assert [s["notes"] for s in prior.sequences] != [s["notes"] for s in r.sequences]   # not the prior


def test_variations_move_the_way_the_palette_varies(c, folk, shipped_mel, folk_clip_rows):
    _, palette = folk
    r = c.request("variations", model="mel_2bar", notes=folk_clip_rows[0], palette="folk", n=3, spread=0.7, seed=5)
    from bridge.core.notes import Note
    z = shipped_mel.encode([[Note.from_row(x) for x in folk_clip_rows[0]]])[0]
    zs = (z + palette.sample(3, 0.7, np.random.default_rng(5)) - palette.mean).astype(np.float32)
    want = shipped_mel.decode(zs, 0.0, 6)
    assert [s["notes"] for s in r.sequences] == [notes_to_rows(w) for w in want]
    plain = c.request("variations", model="mel_2bar", notes=folk_clip_rows[0], n=3, spread=0.7, seed=5)
    assert [s["notes"] for s in plain.sequences] != [s["notes"] for s in r.sequences]


def test_pad_corners_from_the_palette(c, folk, shipped_mel):
    _, palette = folk
    r = c.request("palette", model="mel_2bar", palette="folk", size=3, seed=2)
    from bridge.core import latent
    corners = palette.sample(4, 1.0, np.random.default_rng(2))
    want = shipped_mel.decode(latent.palette(corners, (3, 3)), 0.0, 3)
    assert [s["notes"] for s in r.sequences] == [notes_to_rows(w) for w in want]
    assert len({str(w) for w in want}) >= 3


def test_export_import_forget(c, folk, shipped_mel):
    _, palette = folk
    r = c.request("palette_import", palette=palette.to_dict(), name="folk2")
    assert r.data["palette"] == "folk2" and r.data["replaced"] is False
    names = {(p["model"], p["name"]) for p in c.request("palettes").data["palettes"]}
    assert {("mel_2bar", "folk"), ("mel_2bar", "folk2")} <= names
    a = c.request("sample", model="mel_2bar", palette="folk", n=2, seed=4)
    b = c.request("sample", model="mel_2bar", palette="folk2", n=2, seed=4)
    assert [s["notes"] for s in a.sequences] == [s["notes"] for s in b.sequences]
    assert c.request("forget", model="mel_2bar", name="folk2").data["forgotten"] == "folk2"
    gone = c.request("sample", model="mel_2bar", palette="folk2", check=False)
    assert gone.error[0] == "bad_request" and "no palette 'folk2'" in gone.error[1]
    assert ("mel_2bar", "folk2") not in {(p["model"], p["name"]) for p in c.request("palettes").data["palettes"]}
    # only mel_2bar's palettes when a model is named
    assert all(p["model"] == "drums_2bar" for p in c.request("palettes", model="drums_2bar").data["palettes"])


@pytest.mark.parametrize("fields, words", [
    ({"clips": "clipsA"}, "'clips' must be a list"),
    ({"n_clips": 2}, "at least 3 clips"),
    ({"drums": True}, "is a melody model and the clips are drums"),
    ({"time_signature": [3, 4]}, "4/4"),
    ({"name": "../etc"}, "palette name"),
    ({"name": ""}, "palette name"),
    ({"model": "drums_2bar", "drums": False}, "is a drums model and the clips are not drums"),
    ({"clips": [[], [], []]}, "no notes"),
    ({"clips": [[[60, 0, 1, 100, 3]]] * 3}, "track 3 out of range"),
])
def test_learn_bad_input_is_bad_request_and_nothing_stored(c, folk, folk_clip_rows, fields, words):
    before = c.request("palettes").data["palettes"]
    req = {"model": "mel_2bar", "name": "bad", "clips": folk_clip_rows}
    if "n_clips" in fields:
        req["clips"] = folk_clip_rows[:fields.pop("n_clips")]
    req.update(fields)
    r = c.request("learn", req, check=False)
    assert r.error is not None and r.error[0] == "bad_request", r
    assert words in r.error[1], r.error
    assert c.request("palettes").data["palettes"] == before


@pytest.mark.parametrize("op, fields", [
    ("sample", {"palette": "nope"}),
    ("sample", {"palette": 3}),
    ("palette_import", {"palette": {"format": "x"}}),
    ("palette_import", {"palette": "text"}),
    ("forget", {"name": "nope"}),
    ("palette_export", {"name": "nope"}),
])
def test_palette_requests_bad_input(c, folk, op, fields):
    r = c.request(op, {"model": "mel_2bar", **fields}, check=False)
    assert r.error is not None and r.error[0] == "bad_request", r


def test_a_palette_of_another_model_is_refused(c, folk):
    _, palette = folk
    other = palette.to_dict()
    other["model"] = "drums_2bar"          # drums_2bar's z is 128 too: the model name decides
    r = c.request("palette_import", palette=other, name="moved")
    assert r.data["model"] == "drums_2bar"
    wrong = c.request("sample", model="mel_2bar", palette="moved", check=False)
    assert wrong.error[0] == "bad_request"
    c.request("forget", model="drums_2bar", name="moved")
    big = dict(palette.to_dict(), model="mel_2bar", mean=[0.0] * 7, directions=[], scales=[], z_size=7)
    r = c.request("palette_import", palette=big, check=False)
    assert r.error[0] == "bad_request" and "z 7" in r.error[1]


def test_palettes_survive_a_restart(models_dir, folk_clip_rows, tmp_path):
    state = tmp_path / "state"
    with spawn_server([models_dir], "--state-dir", str(state)) as server:
        client = server.client(timeout=30.0)
        client.request("learn", model="mel_2bar", name="kept", clips=folk_clip_rows)
        before = client.request("sample", model="mel_2bar", palette="kept", n=2, seed=1)
        client.close()
    (state / "palettes" / "mel_2bar__broken.palette.json").write_text("{not json")
    with spawn_server([models_dir], "--state-dir", str(state)) as server:
        client = server.client(timeout=30.0)
        listed = client.request("palettes").data["palettes"]
        after = client.request("sample", model="mel_2bar", palette="kept", n=2, seed=1)
        client.close()
    assert [p["name"] for p in listed] == ["kept"]          # the broken file is skipped, the daemon runs
    assert [s["notes"] for s in after.sequences] == [s["notes"] for s in before.sequences]


def test_store_bounds_and_files(tmp_path):
    z = np.random.default_rng(0).standard_normal((6, 8)).astype(np.float32)
    store = PaletteStore(tmp_path, max_palettes=2)
    assert store.put(Palette.fit(z, "a", "m")) is False
    assert store.put(Palette.fit(z, "a", "m")) is True           # replaced, not counted twice
    store.put(Palette.fit(z, "b", "m"))
    with pytest.raises(TooLarge):
        store.put(Palette.fit(z, "c", "m"))
    assert sorted(p.name for p in PaletteStore(tmp_path).list("m")) == ["a", "b"]
    store.forget("m", "a")
    assert not (tmp_path / "palettes" / "m__a.palette.json").exists()
    assert [p.name for p in PaletteStore(tmp_path).list()] == ["b"]
    assert json.loads((tmp_path / "palettes" / "m__b.palette.json").read_text())["name"] == "b"
