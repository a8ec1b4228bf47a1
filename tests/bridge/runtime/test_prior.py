"""A package's fitted prior (bridge/runtime/prior.py): `sample` draws z = mean + eps @ basis with
eps ~ N(0, I_k) and decodes with the package itself; a damaged, mismatched or ambiguous prior is
refused at load with a ModelError."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from bridge.core.errors import ModelError
from bridge.daemon.client import spawn_server
from bridge.runtime import package as P
from bridge.runtime.engine import load_model
from bridge.runtime.prior import PRIOR_FILE, PRIOR_KEY, LatentPrior


def _with_prior(src, dst, mean, basis, entry=None):
    """A copy of package `src` at `dst` carrying the prior (mean, basis)."""
    shutil.copytree(src, dst)
    LatentPrior(mean, basis).save(dst / PRIOR_FILE)
    P.update_manifest(dst, lambda i: i.__setitem__(PRIOR_KEY, entry or {"file": PRIOR_FILE,
                                                                           "components": len(basis)}),
                      files=[PRIOR_FILE])
    return dst


@pytest.fixture()
def drums(tiny_models_dir, tmp_path):
    """The tiny drums_2bar with a 3-component prior far from N(0, I)'s centre."""
    z = load_model(tiny_models_dir / "drums_2bar").z_size
    rng = np.random.default_rng(1)
    mean = np.full(z, 2.5, np.float32)
    basis = (rng.standard_normal((3, z)) * 0.3).astype(np.float32)
    return _with_prior(tiny_models_dir / "drums_2bar", tmp_path / "drums_2bar", mean, basis), mean, basis


def test_sample_draws_from_the_prior_and_decodes_with_the_package(drums, tiny_models_dir):
    pkg, mean, basis = drums
    model, plain = load_model(pkg), load_model(tiny_models_dir / "drums_2bar")
    assert model.prior is not None and model.prior.components == 3 and model.sampler is None
    z = model.sample_z(50, seed=4)
    # every draw lies on mean + the basis' row space, with the basis' covariance
    coef, *_ = np.linalg.lstsq(basis.T, (z - mean).T, rcond=None)
    np.testing.assert_allclose(coef.T @ basis + mean, z, atol=1e-4)
    assert abs(float(np.linalg.norm(z - mean, axis=1).mean()) - float(np.sqrt((basis ** 2).sum(1).sum()))) < 0.5
    # sample == the package's own decoder on those draws, with the same generator
    rng = np.random.default_rng(9)
    want = plain.decode(model.prior.draw(4, rng), 0.5, rng)
    assert model.sample(4, temperature=0.5, seed=9) == want
    assert model.sample(4, temperature=0.5, seed=9) != plain.sample(4, temperature=0.5, seed=9)
    # knob-first latents are the same draws: no encoding round trip
    np.testing.assert_array_equal(model.prior_latents(2, 5), model.sample_z(2, 5))


def test_the_daemon_says_where_sample_draws_from(drums, tiny_models_dir):
    pkg, _, _ = drums
    with spawn_server([tiny_models_dir, pkg.parent]) as server:    # a later package of a name serves
        c = server.client(timeout=30.0)
        models = {m["name"]: m for m in c.request("models").data["models"]}
        r = c.request("sample", model="drums_2bar", n=2, seed=3, temperature=0.5)
        c.close()
    assert models["drums_2bar"]["prior_components"] == 3 and models["drums_2bar"]["sampler"] is None
    assert models["mel_2bar"]["prior_components"] is None
    assert [s["notes"] for s in r.sequences] == [[n.to_row() for n in seq] for seq in load_model(pkg).sample(2, 0.5, 3)]


@pytest.mark.parametrize("damage, message", [
    (lambda pkg, info: info.__setitem__(PRIOR_KEY, "prior.npz"), "must be an object"),
    (lambda pkg, info: info["files"].pop(PRIOR_FILE), "not a file listed"),
    (lambda pkg, info: info[PRIOR_KEY].__setitem__("file", "../prior.npz"), "plain name inside the package"),
    (lambda pkg, info: info[PRIOR_KEY].__setitem__("components", 4), "says 4 components"),
    (lambda pkg, info: info[PRIOR_KEY].__setitem__("components", 3.0), "says 3.0 components"),
])
def test_a_malformed_prior_section_is_refused(drums, damage, message):
    pkg, _, _ = drums
    info = json.loads((pkg / "model.json").read_text())
    damage(pkg, info)
    P.write_manifest(pkg, info)
    with pytest.raises(ModelError, match=message):
        load_model(pkg)


def test_a_changed_missing_or_misfit_prior_file_is_refused(drums, tmp_path):
    pkg, mean, basis = drums
    LatentPrior(mean, basis * 2).save(pkg / PRIOR_FILE)          # changed after the manifest was written
    with pytest.raises(ModelError, match="sha256"):
        load_model(pkg)
    (pkg / PRIOR_FILE).unlink()
    with pytest.raises(ModelError, match="missing"):
        load_model(pkg, verify=False)
    # a prior for another latent size, properly listed
    LatentPrior(mean[:-1], basis[:, :-1]).save(pkg / PRIOR_FILE)
    P.update_manifest(pkg, files=[PRIOR_FILE])
    with pytest.raises(ModelError, match="z of"):
        load_model(pkg)
    (pkg / PRIOR_FILE).write_bytes(b"not an npz")
    P.update_manifest(pkg, files=[PRIOR_FILE])
    with pytest.raises(ModelError, match="not a prior file"):
        load_model(pkg)
    # an empty file, a truncated one, a bare .npy array under the name: each a clear ModelError
    LatentPrior(mean, basis).save(tmp_path / "whole.npz")
    whole = (tmp_path / "whole.npz").read_bytes()
    np.save(tmp_path / "one.npy", mean)
    for data in (b"", whole[: len(whole) // 2], (tmp_path / "one.npy").read_bytes()):
        (pkg / PRIOR_FILE).write_bytes(data)
        P.update_manifest(pkg, files=[PRIOR_FILE])
        with pytest.raises(ModelError, match="not a prior file"):
            load_model(pkg)


def test_a_package_with_a_sampler_and_a_prior_is_refused(drums, tiny_models_dir):
    from export_onnx.pair import add_sampler
    from export_onnx.tiny import build_tiny_package
    pkg, _, _ = drums
    other = build_tiny_package("drums_2bar", pkg.parent / "other", seed=3)
    before = (pkg / "model.json").read_text()
    with pytest.raises(ValueError, match="a sampler or a prior, not both"):     # add-sampler refuses
        add_sampler(pkg, other)
    assert (pkg / "model.json").read_text() == before and not (pkg / "sampler").exists()
    # a manifest that has both anyway (edited by hand) does not load
    import shutil
    shutil.copytree(other, pkg / "sampler")
    P.update_manifest(pkg, lambda i: i.__setitem__("sampler", {"dir": "sampler", "name": "x",
                                                               "sha256": P.sha256_file(pkg / "sampler" / "model.json")}))
    with pytest.raises(ModelError, match="not both"):
        load_model(pkg)


@pytest.mark.parametrize("mean, basis, message", [
    (np.zeros(4), np.zeros((2, 5)), "needs mean"),
    (np.zeros(4), np.zeros((5, 4)), "1..4 components"),
    (np.zeros(4), np.zeros((0, 4)), "1..4 components"),
    (np.array([0, 0, np.nan, 0]), np.zeros((1, 4)), "finite"),
])
def test_a_prior_checks_its_arrays(mean, basis, message):
    with pytest.raises(ValueError, match=message):
        LatentPrior(mean, basis)
