"""`fit-prior` (export_onnx.latent_prior): a Gaussian fitted to a package's own training codes on their
top k principal axes, k chosen on the validation split by the samples' statistics; written into the
package (replacing a pair's sampler), read by the runtime's `sample`."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from bridge.runtime import package as P
from bridge.runtime.engine import load_model
from bridge.runtime.prior import PRIOR_FILE, PRIOR_KEY
from export_onnx import audit
from export_onnx import latent_prior as LP
from export_onnx.int8_gate import encode_all
from export_onnx.dataset import build_dataset, load_split
from export_onnx.model_card import PRIOR_HEADING, SAMPLER_HEADING

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


@pytest.fixture(scope="module")
def groove(tmp_path_factory) -> Path:
    """drums_2bar windows of 60 Groove MIDI files (train and validation splits)."""
    d = tmp_path_factory.mktemp("groove") / "ds"
    build_dataset("drums_2bar", [DATA / "groove"], d, workers=1, limit=60, progress=False)
    assert len(load_split(d, "validation")["tokens"]) > 20
    return d


@pytest.fixture()
def drums(tiny_models_dir, tmp_path) -> Path:
    pkg = tmp_path / "drums_2bar"
    shutil.copytree(tiny_models_dir / "drums_2bar", pkg)
    (pkg / "MODEL_CARD.md").write_text("# drums_2bar\n\nA card.\n")
    P.update_manifest(pkg, files=["MODEL_CARD.md"])
    return pkg


def test_principal_axes_give_the_codes_covariance_on_the_top_axes():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((6, 6))
    cov = a @ a.T + np.diag([9.0, 4, 1, 0.5, 0.2, 0.1])
    codes = rng.multivariate_normal(np.arange(6.0), cov, size=40_000)
    mean, values, vectors = LP.principal_axes(codes)
    np.testing.assert_allclose(mean, np.arange(6.0), atol=0.1)
    assert (np.diff(values) <= 0).all()
    full = LP.prior_of(mean, values, vectors, 6)
    np.testing.assert_allclose(full.basis.T @ full.basis, np.cov(codes, rowvar=False), rtol=1e-3, atol=1e-3)
    top2 = LP.prior_of(mean, values, vectors, 2)
    # the top two axes: the largest variance any 2-d projection keeps, each row sqrt(variance) long
    np.testing.assert_allclose((top2.basis ** 2).sum(1), values[:2], rtol=1e-5)
    draws = top2.draw(20_000, np.random.default_rng(1))
    # (sampling error of a covariance of 20,000 draws: s.e. ~ sqrt(v1 v2 / n) ~ 0.08)
    np.testing.assert_allclose(np.cov(draws @ vectors[:, :2], rowvar=False), np.diag(values[:2]), rtol=0.05, atol=0.4)


def test_spread_and_relative_error():
    same = np.zeros((5, 32, 1), np.int64)
    assert LP.spread(same) == 0.0
    half = np.zeros((2, 32, 1), np.int64)
    half[1, :16] = 3
    assert LP.spread(half) == pytest.approx(0.5)
    # relative to the real value, or to FLOOR when the real value is ~0
    assert LP.relative_error({"a": 12.0, "b": 0.1, "c": 7.0}, {"a": 10.0, "b": 0.0}) == pytest.approx(
        (0.2 + 0.1 / LP.FLOOR) / 2)


@pytest.fixture()
def shipped_drums(tmp_path) -> Path:
    """A copy of the shipped drums_2bar (a trained model: its samples depend on z, a tiny one's barely)."""
    pkg = tmp_path / "shipped" / "drums_2bar"
    shutil.copytree(Path(__file__).resolve().parents[2] / "bridge" / "models" / "drums_2bar", pkg)
    return pkg


def test_fit_prior_chooses_k_on_validation_and_sample_draws_from_it(shipped_drums, groove):
    drums = shipped_drums
    z = load_model(drums).z_size
    entry = LP.fit_prior(drums, groove, candidates=(z + 1, 1, z, 16), n=64, threads=1)
    table = [r for r in entry["table"] if r["components"] is not None]
    assert [r["components"] for r in table] == [1, 16, z]               # sorted; over z_size left out
    assert len({round(r["error"], 9) for r in table}) == 3              # the candidates really differ
    assert entry["components"] == min(table, key=lambda r: r["error"])["components"]
    assert entry["table"][-1]["components"] is None                 # the validation windows' own row
    real = LP.statistics(load_model(drums), np.asarray(load_split(groove, "validation")["tokens"])[
        np.random.default_rng(0).permutation(len(load_split(groove, "validation")["tokens"]))])
    assert entry["table"][-1]["drums_kick_on_one"] == pytest.approx(real["drums_kick_on_one"])
    info = json.loads((drums / "model.json").read_text())
    assert info[PRIOR_KEY]["components"] == entry["components"] and PRIOR_FILE in info["files"]
    model = load_model(drums)                                       # hashes checked
    assert model.prior.components == entry["components"]
    # the mean is the codes' mean; every draw lies on the chosen axes
    train = np.asarray(load_split(groove, "train")["tokens"])
    np.testing.assert_allclose(model.prior.mean, encode_all(model, train, 512).mean(0), atol=1e-4)
    z = model.sample_z(30, seed=2) - model.prior.mean
    coef, *_ = np.linalg.lstsq(model.prior.basis.T, z.T, rcond=None)
    np.testing.assert_allclose(coef.T @ model.prior.basis, z, atol=1e-4)
    # the audit's prior samples are these draws, decoded by the package
    rng = np.random.default_rng(0)
    np.testing.assert_array_equal(audit._sample_tokens(model, 8, 0.5, 0),
                                  model.decode_tokens(model.prior.draw(8, rng), 0.5, rng))
    card = (drums / "MODEL_CARD.md").read_text()
    assert PRIOR_HEADING in card and f"| **{entry['components']}** |" in card and "validation windows" in card


def test_the_fitted_prior_replaces_a_pairs_sampler(drums, groove):
    from export_onnx.pair import add_sampler
    from export_onnx.tiny import build_tiny_package
    add_sampler(drums, build_tiny_package("drums_2bar", drums.parent / "lokl", seed=5), why="a stand-in")
    assert SAMPLER_HEADING in (drums / "MODEL_CARD.md").read_text()
    LP.fit_prior(drums, groove, components=3, threads=1)
    info = json.loads((drums / "model.json").read_text())
    assert P.SAMPLER_KEY not in info and not (drums / P.SAMPLER_DIR).exists()
    card = (drums / "MODEL_CARD.md").read_text()
    assert SAMPLER_HEADING not in card and PRIOR_HEADING in card and "replaces the low-KL sampler" in card
    model = load_model(drums)
    assert model.sampler is None and model.prior.components == 3 and info[PRIOR_KEY]["table"] == []


def test_bad_requests_change_nothing(drums, groove, tmp_path):
    before = (drums / "model.json").read_text()
    with pytest.raises(ValueError, match="components must be"):
        LP.fit_prior(drums, groove, components=0, threads=1)
    mel = tmp_path / "mel"                      # 16-bar windows: 256 steps, not drums_2bar's 32
    build_dataset("mel_16bar", [DATA / "nottingham"], mel, workers=1, limit=8, progress=False)
    with pytest.raises(ValueError, match="do not fit"):
        LP.fit_prior(drums, mel, threads=1)
    assert (drums / "model.json").read_text() == before and not (drums / PRIOR_FILE).exists()


def test_fit_prior_drops_int8_graphs_gated_on_the_old_prior(drums, groove, tiny_int8):
    """An int8 step kept by a gate that decoded the old prior samples is dropped (and says why)
    until add-int8 gates it on the fitted prior's draws."""
    tiny_int8(drums)
    info = json.loads((drums / "model.json").read_text())
    kept = info["int8"]["file"]
    assert kept and (drums / kept).is_file()
    LP.fit_prior(drums, groove, components=2, threads=1)
    info = json.loads((drums / "model.json").read_text())
    assert info["int8"]["file"] is None and info["int8"]["reason"] == LP.STALE_INT8
    assert kept not in info["files"] and not (drums / kept).exists()
    model = load_model(drums, precision="auto")
    assert model.precision == "fp32" and model.prior.components == 2
