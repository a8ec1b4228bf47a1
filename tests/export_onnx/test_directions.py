"""Latent directions: attribute functions (bridge.core.attributes), the directions computation and CLI
(export_onnx.directions), and that moving along note_density really adds notes: on a model trained
briefly here (random weights do not encode anything) and on every shipped model that has it."""
from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch

from bridge.core import attributes as attrs
from bridge.core.codecs import DRUM_CLASSES
from bridge.core.directions import resolve
from export_onnx import directions as D
from export_onnx.configs import MEL_MIN_PITCH, ModelSize, get_config

MEL = get_config("mel_2bar")
TRIO = get_config("trio_16bar")
DRUMS = get_config("drums_2bar")


def mel_tokens(events, steps=32):
    """{step: pitch or "off"} -> (steps, 1) melody tokens."""
    t = np.zeros((steps, 1), np.int64)
    for s, p in events.items():
        t[s, 0] = 1 if p == "off" else 2 + p - MEL_MIN_PITCH
    return t


# ---- attributes -----------------------------------------------------------------------------------

def test_melody_attributes_by_hand():
    # C4 at step 0 held to 4, off; E4 at 6 (off the beat) held to 8, G4 at 8 to the end of bar 1
    t = mel_tokens({0: 60, 4: "off", 6: 64, 8: 67, 16: "off"})
    a = attrs.compute(t, MEL.tracks)
    assert a["note_density"][0] == 1.5                       # 3 note-ons over 2 bars
    assert a["mean_pitch"][0] == pytest.approx((60 + 64 + 67) / 3)
    assert a["syncopation"][0] == pytest.approx(1 / 3)       # only step 6 is off the beat
    assert a["rest_ratio"][0] == pytest.approx((2 + 16) / 32)  # steps 4-5 and 16-31 are silent
    assert a["pitch_range"][0] == 7
    silent = attrs.compute(np.zeros((2, 32, 1), np.int64), MEL.tracks)
    assert np.isnan(silent["mean_pitch"]).all() and (silent["rest_ratio"] == 1).all()
    assert (silent["note_density"] == 0).all() and np.isnan(silent["pitch_range"]).all()


def test_drum_and_trio_attributes_by_hand():
    bit = {name: 1 << i for i, (name, _) in enumerate(DRUM_CLASSES)}
    d = np.zeros((32, 1), np.int64)
    d[0::4, 0] |= bit["kick"]                                 # 8 kicks
    d[4::8, 0] |= bit["snare"]                                # 4 snares
    d[2::4, 0] |= bit["closed_hihat"]                         # 8 hats
    d[31, 0] |= bit["low_tom"] | bit["crash"]
    a = attrs.compute(d, DRUMS.tracks)
    assert a["kick_density"][0] == 4 and a["snare_density"][0] == 2 and a["hihat_density"][0] == 4
    assert a["tom_density"][0] == 0.5 and a["cymbal_density"][0] == 0.5 and a["hit_density"][0] == 11
    trio = np.zeros((256, 3), np.int64)
    trio[0:256:16, 0] = 2 + 72 - MEL_MIN_PITCH               # lead: one note a bar
    trio[0:256:8, 1] = 2 + 36 - MEL_MIN_PITCH                # bass: two a bar
    trio[0:256:4, 2] = bit["kick"]                           # drums: four a bar
    a = attrs.compute(trio, TRIO.tracks)
    assert (a["lead_density"][0], a["bass_density"][0], a["drums_density"][0]) == (1, 2, 4)
    assert a["lead_mean_pitch"][0] == 72 and a["bass_mean_pitch"][0] == 36
    assert attrs.attribute_names(TRIO.tracks) == list(attrs.TRIO_ATTRIBUTES)
    with pytest.raises(KeyError, match="unknown attribute"):
        attrs.compute(trio, TRIO.tracks, ["note_density"])


def test_quartiles_pca_and_slope():
    v = np.arange(100, dtype=float)
    top, bottom, lo, hi = D.quartile_split(v)
    assert top.sum() == 25 and bottom.sum() == 25 and not (top & bottom).any() and lo < hi
    assert D.quartile_split(np.ones(100)) is None
    ties = np.r_[np.zeros(80), np.arange(1, 21)]             # quartiles coincide: median split
    top, bottom, _, _ = D.quartile_split(ties)
    assert bottom.sum() == 80 and top.sum() == 20
    rng = np.random.default_rng(0)
    x = rng.standard_normal((500, 6)) * np.array([5, 2, 1, 0.5, 0.1, 0.1])
    comps, share = D.principal_components(x, 3)
    assert abs(comps[0, 0]) == pytest.approx(5, rel=0.1) and share[0] > share[1] > share[2]
    assert attrs.effect_per_unit([-2, -1, 0, 1, 2], [0, 1, 2, 3, float("nan")]) == pytest.approx(1.0)


# ---- a briefly trained model ----------------------------------------------------------------------

def synth_melodies(n, seed):
    """Melodies whose density varies a lot (a note every 1, 2, 4 or 8 steps): the main thing a VAE
    trained on them must encode."""
    rng = np.random.default_rng(seed)
    toks = np.zeros((n, 32, 1), np.uint16)
    for i in range(n):
        every = rng.choice([1, 2, 4, 8])
        base = rng.integers(55, 75)
        for s in range(0, 32, every):
            toks[i, s, 0] = 2 + base + rng.integers(-3, 4) - MEL_MIN_PITCH
    return toks


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """~200 steps of the trainer's objective on a tiny mel_2bar (about 30 s on 2 busy cores)."""
    from export_onnx.model import MusicVAE, vae_loss
    from export_onnx.train import batch_losses
    root = tmp_path_factory.mktemp("directions")
    data, run = root / "data", root / "run"
    data.mkdir()
    run.mkdir()
    for split, n, seed in (("train", 2048, 0), ("validation", 384, 1)):
        t = synth_melodies(n, seed)
        np.savez(data / f"{split}.npz", tokens=t, song=np.arange(n, dtype=np.int32))
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    size = ModelSize(enc_units=32, dec_units=64, dec_layers=1, z_size=8)
    model = MusicVAE(MEL, size)
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    tokens = torch.as_tensor(np.load(data / "train.npz")["tokens"].astype(np.int64))
    gen = torch.Generator().manual_seed(0)
    rng = np.random.default_rng(0)
    for _ in range(200):
        b = tokens[rng.integers(0, len(tokens), 64)]
        logits, mu, sigma = model(b, 0.0, gen)
        L = batch_losses(model, logits, mu, sigma, b)
        loss = vae_loss(L["r_loss"], L["kl"], 0.05, 0.0)
        opt.zero_grad()
        loss.backward()
        opt.step()
    torch.set_num_threads(threads)
    torch.save({"format": "latent-bridge-checkpoint", "config": MEL.name, "size_name": "custom",
                "size": asdict(size), "step": 200, "model": model.state_dict()}, run / "best.pt")
    return run, data


@pytest.fixture(scope="module")
def directions_json(trained_run):
    run, data = trained_run
    parser = argparse.ArgumentParser()
    D.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["directions", str(run), "--data", str(data), "--pcs", "3",
                              "--effect-examples", "48"])
    assert args.func(args) == 0
    return json.loads((run / "directions.json").read_text())


def test_directions_file(directions_json):
    d = directions_json
    assert d["format"] == D.FORMAT and d["kind"] == "melody" and d["z_size"] == 8
    assert d["data"]["split"] == "validation" and d["examples"] == 384
    names = [x["name"] for x in d["directions"]]
    assert names[-3:] == ["pc1", "pc2", "pc3"]
    assert {"note_density", "mean_pitch", "syncopation", "pitch_range"} <= set(names)
    assert set(d["attributes"]) == {n for n in names if not n.startswith("pc")}
    for x in d["directions"]:
        assert len(x["vector"]) == 8 and x["norm"] > 0
        assert x["effect"]["amounts"] == [-2.0, -1.0, 0.0, 1.0, 2.0]
        assert set(x["effect"]["per_unit"]) == set(attrs.MELODY_ATTRIBUTES)
        assert all(len(v) == 5 for v in x["effect"]["mean"].values())
    nd = next(x for x in d["directions"] if x["name"] == "note_density")
    assert nd["split"]["n_top"] >= 8 and nd["split"]["low_quartile"] < nd["split"]["high_quartile"]
    # the measured effect: moving along note_density adds notes
    assert nd["effect"]["target"] == "note_density" and nd["effect"]["target_per_unit"] > 0.5
    means = nd["effect"]["mean"]["note_density"]
    assert means[-1] > means[2] > means[0]
    # top-quartile minus bottom-quartile mean, recomputed from the encoder
    from export_onnx.model import load_checkpoint
    model, _ = load_checkpoint(Path(d["data"]["dir"]).parent / "run")
    val = np.load(Path(d["data"]["dir"]) / "validation.npz")["tokens"].astype(np.int64)
    mu = D.encode_means(model, val)
    dens = attrs.compute(val, MEL.tracks)["note_density"]
    top, bottom, _, _ = D.quartile_split(dens)
    np.testing.assert_allclose(nd["vector"], mu[top].mean(0) - mu[bottom].mean(0), rtol=1e-5, atol=1e-6)


def _note_density_effect(model, base_z: np.ndarray) -> tuple[float, float, float]:
    """Mean decoded note count (runtime decode) at base_z - v, base_z, base_z + v."""
    v = model.attribute_vector("note_density")
    out = []
    for a in (-1.0, 0.0, 1.0):
        tokens = model.decode_tokens((base_z + a * v).astype(np.float32))
        out.append(float(attrs.compute(tokens, model.info["tracks"], ["note_density"])["note_density"].mean()))
    return tuple(out)


def _models_with_note_density(trained_package) -> list:
    """The package exported here plus every shipped package (bridge/models/*) with note_density."""
    import bridge
    from bridge.runtime import engine, package
    shipped = Path(bridge.__file__).parent / "models"
    found = [trained_package]
    if shipped.is_dir():
        found += [Path(m["path"]) for m in package.list_models(shipped)
                  if "note_density" in m.get("attributes", [])]
    return found


def test_note_density_adds_notes_in_the_exported_package_and_every_shipped_model(trained_run, directions_json,
                                                                                   tmp_path):
    from bridge.runtime import engine, package
    from export_onnx.export import export_run
    run, data = trained_run
    export_run(run, tmp_path / "pkg", name="mel_dir_test")
    pkg = next(p for p in (tmp_path / "pkg").rglob("model.json")).parent
    info = json.loads((pkg / "model.json").read_text())
    assert [x["name"] for x in info["directions"]] == [x["name"] for x in directions_json["directions"]]
    assert "note_density" in info["attributes"]
    for path in _models_with_note_density(pkg):
        model = engine.load_model(path)
        rng = np.random.default_rng(0)
        if path == pkg:    # posterior means of real examples
            val = np.load(data / "validation.npz")["tokens"].astype(np.int64)
            base = model.encode_tokens(val[rng.choice(len(val), 48, replace=False)])
        else:              # shipped models: prior samples
            base = model.sample_z(48, 0)
        lo, mid, hi = _note_density_effect(model, base)
        # the effect the package records for this direction (measured when it was made, on other
        # examples): moving along it here must do at least half of that
        _, entry = resolve(model.info, "note_density")
        recorded = entry["effect"]["per_unit"]["note_density"]
        slope = (hi - lo) / 2
        print(f"\n{model.name}: notes per bar along note_density -1/0/+1: {lo:.2f} / {mid:.2f} / {hi:.2f}; "
              f"{slope:+.2f} per unit, recorded {recorded:+.2f}")
        assert recorded > 0.5 and slope >= 0.5 * recorded, (model.name, lo, mid, hi, recorded)
