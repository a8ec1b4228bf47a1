"""export_onnx.latent_chain: mel_16bar as a VAE over mel_2bar's codes (on the tiny mel_2bar package and
real POP909 windows), and the runtime decoding one conductor embedding per 2-bar segment."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from bridge.runtime.engine import load_model
from export_onnx.dataset import build_dataset, load_split
from export_onnx.from_package import PackageReadError, read_package_model
from export_onnx.latent_chain.model import ChainSize
from export_onnx.latent_chain.training import (build_chain, evaluate_codes, load_chain, train_chain,
                                               write_chain_package, write_codes)

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
SIZE = ChainSize(z_size=16, enc_units=24, cond_units=24, cond_layers=2)
pytestmark = pytest.mark.skipif(not (DATA / "pop909").is_dir(), reason="POP909 (shared data) is not on this machine")


@pytest.fixture(scope="module")
def chain(tiny_models_dir, tmp_path_factory):
    """(short package, dataset dir, run dir, train_chain's best entry): codes of 16 real POP909 songs'
    16-bar windows (training windows also transposed +2), and a 120-step chain trained on them."""
    d = tmp_path_factory.mktemp("chain")
    short = d / "mel_2bar"
    shutil.copytree(tiny_models_dir / "mel_2bar", short)
    build_dataset("mel_16bar", [DATA / "pop909"], d / "data", workers=1, limit=16, progress=False)
    write_codes(short, d / "data", "mel_16bar", d / "run", transpose=(0, 2), log=lambda *_: None)
    best = train_chain(short, d / "run", d / "run", size=SIZE, steps=120, batch_size=32, validate_every=60,
                       log=lambda *_: None)
    return short, d / "data", d / "run", best


def test_codes_are_the_short_encoder_on_each_two_bar_segment(chain):
    short, data, run, _ = chain
    model = load_model(short, precision="fp32")
    tokens = np.asarray(load_split(data, "train")["tokens"]).astype(np.int64)
    codes = np.load(run / "codes_train.npz")
    n = len(tokens)
    assert codes["mu"].shape[:2] == (len(codes["shift"]), 8) and n <= len(codes["mu"]) <= 2 * n
    assert (codes["shift"][:n] == 0).all() and (codes["shift"][n:] == 2).all()
    for i in (0, n // 2, n - 1):
        for k in (0, 5, 7):
            want = model.encode_tokens(tokens[i, 32 * k:32 * (k + 1)])[0]
            np.testing.assert_allclose(codes["mu"][i, k], want, atol=1e-5)
    first = next(i for i in range(n) if model.codec.transpose(tokens[i], 2) is not None)
    moved = model.codec.transpose(tokens[first], 2)      # the first window of the +2 shift
    np.testing.assert_allclose(codes["mu"][n, 4], model.encode_tokens(moved[128:160])[0], atol=1e-5)


def test_training_fits_the_codes_better_than_the_untrained_chain(chain):
    short, _, run, best = chain
    mu, sigma = (torch.from_numpy(np.load(run / "codes_validation.npz")[k]) for k in ("mu", "sigma"))
    if not len(mu):
        mu, sigma = (torch.from_numpy(np.load(run / "codes_train.npz")[k]) for k in ("mu", "sigma"))
    untrained = evaluate_codes(build_chain(short, "mel_16bar", SIZE), mu, sigma, floor=0.1)
    trained = evaluate_codes(load_chain(run)[0], mu, sigma, floor=0.1)
    assert trained["nll"] < 0.9 * untrained["nll"], (trained, untrained)
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [e["step"] for e in log] == [60, 120] and best["step"] in (60, 120)


def test_package_decodes_one_code_per_two_bars_like_torch(chain, tmp_path):
    short, _, run, _ = chain
    info = write_chain_package(run, tmp_path / "mel_16bar", weights="fp32")
    assert info["training"]["architecture"] == "latent_chain"
    assert info["directions"], "the knobs need directions"
    assert {"MODEL_CARD.md", "metrics.json", "training_config.json"} <= set(info["files"])
    splits = json.loads((tmp_path / "mel_16bar" / "metrics.json").read_text())["splits"]
    assert splits, "metrics of the held-out splits the dataset has"
    for m in splits.values():
        assert 0.0 <= m["reconstruction_accuracy"]["mean"] <= 1.0 and m["n"] > 0 and m["kl_bits"] > 0
    card = (tmp_path / "mel_16bar" / "MODEL_CARD.md").read_text()
    assert "# mel_16bar — model card" in card and "## Metrics" in card and "## Known weaknesses" in card
    assert info["graphs"]["conductor"]["outputs"]["embeddings"] == ["B", 8, info["conductor"]["emb_size"]]
    model = load_model(tmp_path / "mel_16bar")
    assert (model.bars, model.segments, model.steps_per_segment) == (16, 8, 32)
    torch_model, _ = load_chain(run)
    z = np.random.default_rng(3).standard_normal((3, SIZE.z_size)).astype(np.float32)
    want = torch_model.decoder.decode(torch.from_numpy(z), 0.0)[0].numpy()
    np.testing.assert_array_equal(model.decode_tokens(z), want)
    tokens = want
    with torch.no_grad():
        mu_t = torch_model.encoder(torch_model.one_hot(torch.from_numpy(tokens)))[0].numpy()
    np.testing.assert_allclose(model.encode_tokens(tokens), mu_t, atol=1e-4)
    # the short model's own decoder writes each segment: segment k decodes from conductor code k
    short_model = load_model(short)
    with torch.no_grad():
        codes = torch_model.decoder.conductor(torch.from_numpy(z)).numpy()
    seg = short_model.decode_tokens(codes[:, 3])
    np.testing.assert_array_equal(model.decode_tokens(z)[:, 3 * 32:4 * 32], seg)


def test_train_init_from_a_chain_package_says_what_it_is(chain, tmp_path):
    _, _, run, _ = chain
    write_chain_package(run, tmp_path / "pkg", weights="fp32", directions=False)
    with pytest.raises(PackageReadError, match="latent_chain"):
        read_package_model(tmp_path / "pkg")


def test_a_chain_of_a_foreign_short_package_is_refused(chain, tmp_path, tiny_models_dir):
    _, _, run, _ = chain
    with pytest.raises(ValueError, match="not the short package"):
        load_chain(run, shorts=tiny_models_dir / "drums_2bar")


def test_torch_eager_timings_build_a_chain_of_the_package_sizes(chain, tmp_path):
    from export_onnx.bench_torch import bench_ops, model_from_info
    _, _, run, _ = chain
    info = write_chain_package(run, tmp_path / "pkg", weights="fp32", directions=False)
    model = model_from_info(info)
    assert model.decoder.bars == 8 and model.z_size == SIZE.z_size
    assert model.decoder.conductor(torch.zeros(1, SIZE.z_size)).shape == (1, 8, info["conductor"]["emb_size"])
    times = bench_ops(info, repeats=1, warmup=0)
    assert set(times) == {"encode", "decode", "sample", "interpolate8"} and all(t[0] > 0 for t in times.values())
