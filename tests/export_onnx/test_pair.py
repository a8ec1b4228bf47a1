"""`add-sampler`: a package that ships a low-KL prior sampler. The runtime's `sample` (and the daemon's
`sample` op, and the audit's prior samples) decode with the sampler, every op that encodes with the
package itself; a damaged, mismatched or oversized sampler is refused."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from bridge.core.errors import ModelError
from bridge.core.notes import Note
from bridge.daemon.client import spawn_server
from bridge.runtime.engine import load_model
from export_onnx import audit
from export_onnx.pair import add_sampler
from export_onnx.tiny import build_tiny_package


@pytest.fixture(scope="module")
def pair(tmp_path_factory, tiny_models_dir):
    """models/mel_2bar (the tiny package, seed 0) with a seed-7 tiny mel_2bar as its sampler."""
    root = tmp_path_factory.mktemp("pair")
    shutil.copytree(tiny_models_dir / "mel_2bar", root / "models" / "mel_2bar")
    sampler = build_tiny_package("mel_2bar", root / "lokl", seed=7)
    (root / "models" / "mel_2bar" / "MODEL_CARD.md").write_text("# mel_2bar\n\nA card.\n")
    entry = add_sampler(root / "models" / "mel_2bar", sampler, why="seed 7, a stand-in for a low-KL run")
    return root, entry


def test_sample_decodes_with_the_sampler_and_encoding_with_the_package(pair, tiny_models_dir):
    root, entry = pair
    model = load_model(root / "models" / "mel_2bar")
    alone = load_model(root / "lokl")
    plain = load_model(tiny_models_dir / "mel_2bar")
    assert model.sampler is not None and model.sampler.name == "mel_2bar.sampler" == entry["name"]
    assert model.prior_model is model.sampler
    got = model.sample(4, temperature=0.5, seed=3)
    assert got == alone.sample(4, temperature=0.5, seed=3)
    assert got != plain.sample(4, temperature=0.5, seed=3)          # not the package's own decoder
    notes = [Note(60 + i, i * 0.5, i * 0.5 + 0.5) for i in range(8)]
    np.testing.assert_array_equal(model.encode([notes]), plain.encode([notes]))
    assert model.interpolate(notes, notes[:4], steps=3) == plain.interpolate(notes, notes[:4], steps=3)
    card = (root / "models" / "mel_2bar" / "MODEL_CARD.md").read_text()
    assert "## Prior sampler (a pair)" in card and "seed 7, a stand-in" in card
    # the audit's prior samples are the sampler's
    np.testing.assert_array_equal(audit._sample_tokens(model, 8, 0.5, 0), audit._sample_tokens(alone, 8, 0.5, 0))


def test_the_daemon_samples_with_the_sampler(pair):
    root, _ = pair
    alone = load_model(root / "lokl")
    with spawn_server([root / "models"]) as server:
        c = server.client(timeout=30.0)
        info = c.request("models").data["models"][0]
        r = c.request("sample", model="mel_2bar", n=3, seed=5, temperature=0.5)
        c.close()
    assert info["sampler"] == "mel_2bar.sampler"
    assert [s["notes"] for s in r.sequences] == [[n.to_row() for n in seq] for seq in alone.sample(3, 0.5, 5)]


def test_a_changed_sampler_is_refused(pair, tmp_path):
    root, _ = pair
    pkg = tmp_path / "mel_2bar"
    shutil.copytree(root / "models" / "mel_2bar", pkg)
    manifest = pkg / "sampler" / "model.json"
    info = json.loads(manifest.read_text())
    info["name"] = "tampered"
    manifest.write_text(json.dumps(info))
    with pytest.raises(ModelError, match="sha256 mismatch"):
        load_model(pkg)
    shutil.rmtree(pkg / "sampler")
    with pytest.raises(ModelError, match="sampler package sampler/ is missing"):
        load_model(pkg)
    # a section that points outside the package, or is not an object naming a folder
    from bridge.runtime import package as P
    for bad, message in (({"dir": ".."}, "plain name inside the package"), ({"dir": "a/b"}, "plain name"),
                         ("sampler", "must be an object with a 'dir'")):
        P.update_manifest(pkg, lambda i: i.__setitem__("sampler", bad))
        with pytest.raises(ModelError, match=message):
            load_model(pkg)


def test_a_sampler_of_another_kind_or_too_big_is_refused(pair, tiny_models_dir, tmp_path):
    root, _ = pair
    pkg = tmp_path / "mel_2bar"
    shutil.copytree(tiny_models_dir / "mel_2bar", pkg)
    before = (pkg / "model.json").read_text()
    with pytest.raises(ValueError, match="differs .* in kind"):
        add_sampler(pkg, tiny_models_dir / "drums_2bar")
    with pytest.raises(ValueError, match="over 0.001 MB"):
        add_sampler(pkg, root / "lokl", max_mb=0.001)
    assert (pkg / "model.json").read_text() == before and not (pkg / "sampler").exists()
    assert sorted(p.name for p in pkg.iterdir() if p.name.startswith(".")) == []   # no temporary left


def test_prior_latents_of_a_pair_are_the_samplers_samples_encoded(pair, tiny_models_dir):
    root, _ = pair
    model = load_model(root / "models" / "mel_2bar")
    plain = load_model(tiny_models_dir / "mel_2bar")
    np.testing.assert_array_equal(model.prior_latents(3, 4), model.encode(model.sampler.sample(3, 0.5, 4)))
    np.testing.assert_array_equal(plain.prior_latents(3, 4), plain.sample_z(3, 4))     # no pair: N(0, I)
