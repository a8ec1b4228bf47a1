"""export_onnx.surrogate.training (on export_onnx.trainer) and .metrics: training on a tiny set,
held-out evaluation, the command line."""
from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest
import torch

from bridge.runtime import engine
from export_onnx.__main__ import main as cli_main
from export_onnx.surrogate.encoder import SurrogateEncoder, load_surrogate
from export_onnx.surrogate.fixtures import save_trio_checkpoint
from export_onnx.surrogate.metrics import latent_metrics
from export_onnx.surrogate.training import train_surrogate
from export_onnx.tiny import TINY
from surrogate_helpers import data_dir, one_thread, trio, trio_tokens  # noqa: F401  (fixtures)


def test_training_overfits_a_tiny_set_and_reports_held_out_numbers(trio, data_dir, tmp_path):
    tokens = np.load(data_dir / "train.npz")["tokens"]
    torch.manual_seed(0)
    fresh = SurrogateEncoder(trio.config, TINY)
    before = latent_metrics(fresh, trio, tokens, "mse")["latent_mse"]
    out = tmp_path / "run"
    m = train_surrogate(None, data_dir, out, loss="mse", max_steps=60, batch_size=8, learning_rate=2e-2,
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
    sur, info = load_surrogate(out)
    assert info["loss"] == "mse" and info["step"] == m["best_step"]
    again = latent_metrics(sur, trio, tokens, "mse")["latent_mse"]
    best = min(e["latent_mse"] for e in log if e["split"] == "validation")
    assert again == pytest.approx(best, rel=1e-4)


def test_nll_training_lowers_its_objective(trio, data_dir, tmp_path):
    tokens = np.load(data_dir / "train.npz")["tokens"]
    torch.manual_seed(0)
    fresh = SurrogateEncoder(trio.config, TINY)
    before = latent_metrics(fresh, trio, tokens, "nll")["loss"]
    m = train_surrogate(None, data_dir, tmp_path / "nll", loss="nll", max_steps=60, batch_size=8,
                        learning_rate=1e-2, init="random", augment=True, validate_every=60,
                        decode_examples=0, threads=1, progress=False, trio_model=trio)
    assert m["validation"]["loss"] < before - 0.1, (before, m["validation"])
    assert "decode" not in m["held_out"]


def test_without_a_validation_split_the_checkpoint_is_the_latest(trio, tmp_path):
    d = tmp_path / "data"
    d.mkdir()
    np.savez(d / "train.npz", tokens=trio_tokens(4, 5, trio.num_classes), song=np.arange(4, dtype=np.int32))
    m = train_surrogate(None, d, tmp_path / "run", max_steps=5, batch_size=4, validate_every=2, threads=1,
                        progress=False, trio_model=trio)
    assert m["best_step"] == 5 and m["validation"] is None and "held_out" not in m
    assert load_surrogate(tmp_path / "run")[1]["step"] == 5
    with pytest.raises(ValueError, match="loss must be"):
        train_surrogate(None, d, tmp_path / "x", loss="l1", trio_model=trio)


def test_cli_train_surrogate_and_add_to_package(trio, data_dir, tmp_path, tiny_models_dir, capsys):
    trio_run = tmp_path / "trio_run"
    save_trio_checkpoint(trio, trio_run / "best.pt", step=7)
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
