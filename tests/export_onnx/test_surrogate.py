"""The surrogate encoder for accompaniment (export_onnx.surrogate): losses, warm start from the
trio encoder, training on a tiny set, held-out evaluation, ONNX export parity and the package."""
from __future__ import annotations

import json
import math
import shutil

import numpy as np
import onnxruntime as ort
import pytest
import torch

from bridge.runtime import engine, package
from export_onnx import surrogate as S
from export_onnx.__main__ import main as cli_main
from export_onnx.tiny import TINY, tiny_model


@pytest.fixture(autouse=True)
def one_thread():
    # tiny LSTMs: a thread pool only adds contention on a shared machine
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def trio():
    return tiny_model("trio_16bar", seed=0)


def _trio_tokens(n, seed, num_classes, steps=256):
    """Plausible trio windows: lead and bass note-ons/offs/holds, sparse drum masks."""
    rng = np.random.default_rng(seed)
    out = np.zeros((n, steps, 3), np.uint16)
    for k in (0, 1):
        ev = rng.random((n, steps))
        out[..., k] = np.where(ev < 0.25, rng.integers(2, num_classes[k], (n, steps)), np.where(ev < 0.3, 1, 0))
    out[..., 2] = np.where(rng.random((n, steps)) < 0.3, rng.integers(1, 512, (n, steps)), 0)
    return out


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory, trio):
    d = tmp_path_factory.mktemp("trio_data")
    nc = trio.num_classes
    train = _trio_tokens(8, 1, nc)
    for split, toks in (("train", train), ("validation", train), ("test", _trio_tokens(6, 2, nc))):
        np.savez(d / f"{split}.npz", tokens=toks, song=np.arange(len(toks), dtype=np.int32))
    return d


def test_nll_is_the_closed_form_expected_gaussian_nll():
    g = torch.Generator().manual_seed(0)
    mu, mu_hat = torch.randn(3, 5, generator=g), torch.randn(3, 5, generator=g)
    sigma, sigma_hat = torch.rand(3, 5, generator=g) + 0.2, torch.rand(3, 5, generator=g) + 0.3
    z = mu + sigma * torch.randn(200_000, 3, 5, generator=g)          # z ~ N(mu, sigma)
    mc = -torch.distributions.Normal(mu_hat, sigma_hat).log_prob(z).mean()
    closed = S.surrogate_loss("nll", mu_hat, sigma_hat, mu, sigma)
    assert abs(float(closed) - float(mc)) < 0.01
    assert float(S.surrogate_loss("mse", mu_hat, sigma_hat, mu, sigma)) == pytest.approx(float((mu - mu_hat).pow(2).mean()))
    with pytest.raises(ValueError, match="loss"):
        S.surrogate_loss("l1", mu_hat, sigma_hat, mu, sigma)


def test_warm_start_keeps_the_lead_rows_of_the_trio_encoder(trio):
    sur = S.SurrogateEncoder(trio.config, trio.size)
    copied = S.init_from_trio(sur, trio)
    assert copied == len(sur.encoder.state_dict())
    # the trio encoder fed only the lead one-hot (bass and drum segments all zero) == the surrogate
    toks = torch.as_tensor(_trio_tokens(2, 3, trio.num_classes).astype(np.int64))
    full = trio.one_hot(toks)
    lead_only = full.clone()
    lead_only[..., trio.num_classes[0]:] = 0
    with torch.no_grad():
        want = trio.encoder(lead_only)
        got = sur(sur.one_hot(toks.numpy()))
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="trio"):
        S.SurrogateEncoder(tiny_model("mel_16bar").config, TINY)


def test_training_overfits_a_tiny_set_and_reports_held_out_numbers(trio, data_dir, tmp_path):
    tokens = np.load(data_dir / "train.npz")["tokens"]
    torch.manual_seed(0)
    fresh = S.SurrogateEncoder(trio.config, TINY)
    before = S.latent_metrics(fresh, trio, tokens, "mse")["latent_mse"]
    out = tmp_path / "run"
    m = S.train_surrogate(None, data_dir, out, loss="mse", max_steps=60, batch_size=8, learning_rate=2e-2,
                          init="random", augment=False, validate_every=20, decode_examples=3,
                          threads=1, progress=False, trio_model=trio)
    after = m["validation"]["latent_mse"]
    assert after < 0.01 * before, (before, after)
    held = m["held_out"]
    assert m["held_out_split"] == "test" and held["n"] == 6
    assert held["latent_mse"] >= 0 and set(held["baseline_latent_mse"]) == {"zero", "held_out_mean", "trio_encoder_melody_only"}
    dec = held["decode"]
    assert dec["n"] == 3
    for key in ("true_z", "predicted_z", "melody_only_z"):
        assert set(dec[key]) == {"lead", "bass", "drums"}
        assert all(0.0 <= dec[key][t]["acc"] <= 1.0 for t in dec[key])
    on_disk = json.loads((out / "metrics.json").read_text())
    assert on_disk["held_out"]["latent_mse"] == pytest.approx(held["latent_mse"])
    log = [json.loads(l) for l in (out / "log.jsonl").read_text().splitlines()]
    assert [e["step"] for e in log if e["split"] == "validation"] == [20, 40, 60]
    # the checkpoint is the best validation step and reloads to the same predictions
    sur, info = S.load_surrogate(out)
    assert info["loss"] == "mse" and info["step"] == m["best_step"]
    again = S.latent_metrics(sur, trio, tokens, "mse")["latent_mse"]
    best = min(e["latent_mse"] for e in log if e["split"] == "validation")
    assert again == pytest.approx(best, rel=1e-4)


def test_nll_training_lowers_its_objective(trio, data_dir, tmp_path):
    tokens = np.load(data_dir / "train.npz")["tokens"]
    torch.manual_seed(0)
    fresh = S.SurrogateEncoder(trio.config, TINY)
    before = S.latent_metrics(fresh, trio, tokens, "nll")["loss"]
    m = S.train_surrogate(None, data_dir, tmp_path / "nll", loss="nll", max_steps=60, batch_size=8,
                          learning_rate=1e-2, init="random", augment=True, validate_every=60,
                          decode_examples=0, threads=1, progress=False, trio_model=trio)
    assert m["validation"]["loss"] < before - 0.1, (before, m["validation"])
    assert "decode" not in m["held_out"]


def test_export_parity_and_package(trio, tmp_path, tiny_models_dir):
    torch.manual_seed(1)
    sur = S.SurrogateEncoder(trio.config, trio.size)
    S.init_from_trio(sur, trio)
    entry = S.export_surrogate_graph(sur, tmp_path / "s.onnx")
    assert entry["parity_max_abs_diff"] <= 1e-4
    assert entry["inputs"] == {"inputs": ["B", 256, trio.num_classes[0]]}
    # independent check on other inputs and another batch size
    sess = ort.InferenceSession(str(tmp_path / "s.onnx"), providers=["CPUExecutionProvider"])
    toks = _trio_tokens(5, 9, trio.num_classes)
    x = sur.one_hot(toks)
    mu, sigma = sess.run(["mu", "sigma"], {"inputs": x.numpy()})
    with torch.no_grad():
        tmu, tsigma = sur(x)
    assert np.abs(mu - tmu.numpy()).max() <= 1e-4 and np.abs(sigma - tsigma.numpy()).max() <= 1e-4

    # package: the graph, its sha256 and the surrogate section; the runtime still loads and verifies it
    pkg = tmp_path / "trio_16bar"
    shutil.copytree(tiny_models_dir / "trio_16bar", pkg)
    run = tmp_path / "run"
    trio_ckpt = S.save_trio_checkpoint(trio, run / "trio" / "best.pt")
    S.save_surrogate(sur, run / S.CHECKPOINT, step=5, loss="nll", init="trio", trio_run=str(trio_ckpt), trio_step=0)
    info = S.add_surrogate_to_package(run, pkg)
    assert info["graphs"]["surrogate_encoder"]["file"] == "surrogate_encoder.onnx"
    assert info["files"]["surrogate_encoder.onnx"] == package.sha256_file(pkg / "surrogate_encoder.onnx")
    assert info["surrogate"]["loss"] == "nll" and info["surrogate"]["trio_encoder_max_abs_diff"] < 1e-4
    model = engine.load_model(pkg)            # verifies every listed file's sha256
    assert "surrogate_encoder" in model.info["graphs"]

    # a package of another trio model (other weights) is refused
    other = tmp_path / "other"
    shutil.copytree(tiny_models_dir / "trio_16bar", other)
    S.save_trio_checkpoint(tiny_model("trio_16bar", seed=4), run / "trio" / "best.pt")
    with pytest.raises(ValueError, match="not the trio model"):
        S.add_surrogate_to_package(run, other)
    assert "surrogate_encoder" not in json.loads((other / "model.json").read_text())["graphs"]
    with pytest.raises(ValueError, match="trio package"):
        S.add_surrogate_to_package(run, tiny_models_dir / "mel_16bar")


def test_cli_train_surrogate_and_add_to_package(trio, data_dir, tmp_path, tiny_models_dir, capsys):
    trio_run = tmp_path / "trio_run"
    S.save_trio_checkpoint(trio, trio_run / "best.pt", step=7)
    pkg = tmp_path / "pkg"
    shutil.copytree(tiny_models_dir / "trio_16bar", pkg)
    out = tmp_path / "accomp"
    rc = cli_main(["train-surrogate", "--trio", str(trio_run), "--data", str(data_dir), "--out", str(out),
                   "--loss", "nll", "--max-steps", "4", "--batch-size", "4", "--validate-every", "2",
                   "--decode-examples", "2", "--threads", "1", "--no-progress", "--package", str(pkg)])
    assert rc == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["loss"] == "nll" and printed["trio_step"] == 7 and printed["steps"] == 4
    info = json.loads((pkg / "model.json").read_text())
    assert info["surrogate"]["trio_step"] == 7 and info["surrogate"]["metrics"]["n"] == 6
    assert math.isfinite(info["surrogate"]["metrics"]["latent_mse"])
    engine.load_model(pkg)


def test_card_section_written_once_and_replaced():
    held = {"n": 12, "latent_mse": 0.25, "baseline_latent_mse": {"zero": 1.0, "held_out_mean": 0.8,
                                                               "trio_encoder_melody_only": 0.6},
            "decode": {"n": 4, "true_z": {"lead": {"acc": 0.9}, "bass": {"acc": 0.8}},
                       "predicted_z": {"lead": {"acc": 0.7}, "bass": {"acc": 0.5}}}}
    summary = {"loss": "mse", "init": "trio", "steps": 400, "trio_step": 2000, "metrics": held}
    card = "# trio_16bar — model card\n\n## Metrics\nx\n\n## Known weaknesses\n- few steps\n"
    once = S.surrogate_card_section(card, summary, {"held_out_split": "test"})
    assert once.startswith(card.rstrip("\n")) and once.count(S.CARD_HEADING) == 1
    assert "| surrogate | 0.2500 |" in once and "| surrogate (melody only) | 0.700 | 0.500 |" in once
    assert "test split, 12 windows" in once
    # a second surrogate replaces the section, keeping what follows it
    again = S.surrogate_card_section(once + "\n## Later\nkept\n", {**summary, "loss": "nll"}, {})
    assert again.count(S.CARD_HEADING) == 1 and "loss `nll`" in again and "loss `mse`" not in again
    assert again.endswith("## Later\nkept\n") and "## Known weaknesses\n- few steps" in again


def test_fp16_export_halves_the_file_and_keeps_parity(trio, tmp_path):
    torch.manual_seed(2)
    sur = S.SurrogateEncoder(trio.config, trio.size)
    full = S.export_surrogate_graph(sur, tmp_path / "fp32.onnx")
    half = S.export_surrogate_graph(sur, tmp_path / "fp16.onnx", weights="fp16")   # rounds sur's weights
    assert half["weights"] == "fp16" and half["parity_max_abs_diff"] <= 1e-4
    assert (tmp_path / "fp16.onnx").stat().st_size < 0.7 * (tmp_path / "fp32.onnx").stat().st_size
    assert full["weights"] == "fp32"
