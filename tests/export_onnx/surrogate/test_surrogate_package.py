"""export_onnx.surrogate.graph and .package: ONNX export parity (fp32, fp16), the package surgery
and the model card's section."""
from __future__ import annotations

import json
import shutil

import numpy as np
import onnxruntime as ort
import pytest
import torch

from bridge.runtime import engine, package
from export_onnx.surrogate import CARD_HEADING, CHECKPOINT
from export_onnx.surrogate.encoder import SurrogateEncoder, init_from_trio, save_surrogate
from export_onnx.surrogate.fixtures import save_trio_checkpoint
from export_onnx.surrogate.graph import export_surrogate_graph
from export_onnx.surrogate.package import add_surrogate_to_package, surrogate_card_section
from export_onnx.tiny import tiny_model
from surrogate_helpers import one_thread, trio, trio_tokens  # noqa: F401  (fixtures)


def test_export_parity_and_package(trio, tmp_path, tiny_models_dir):
    torch.manual_seed(1)
    sur = SurrogateEncoder(trio.config, trio.size)
    init_from_trio(sur, trio)
    entry = export_surrogate_graph(sur, tmp_path / "s.onnx")
    assert entry["parity_max_abs_diff"] <= 1e-4
    assert entry["inputs"] == {"inputs": ["B", 256, trio.num_classes[0]]}
    # independent check on other inputs and another batch size
    sess = ort.InferenceSession(str(tmp_path / "s.onnx"), providers=["CPUExecutionProvider"])
    toks = trio_tokens(5, 9, trio.num_classes)
    x = sur.one_hot(toks)
    mu, sigma = sess.run(["mu", "sigma"], {"inputs": x.numpy()})
    with torch.no_grad():
        tmu, tsigma = sur(x)
    assert np.abs(mu - tmu.numpy()).max() <= 1e-4 and np.abs(sigma - tsigma.numpy()).max() <= 1e-4

    # package: the graph, its sha256 and the surrogate section; the runtime still loads and verifies it
    pkg = tmp_path / "trio_16bar"
    shutil.copytree(tiny_models_dir / "trio_16bar", pkg)
    run = tmp_path / "run"
    trio_ckpt = save_trio_checkpoint(trio, run / "trio" / "best.pt")
    save_surrogate(sur, run / CHECKPOINT, step=5, loss="nll", init="trio", trio_run=str(trio_ckpt), trio_step=0)
    info = add_surrogate_to_package(run, pkg)
    assert info["graphs"]["surrogate_encoder"]["file"] == "surrogate_encoder.onnx"
    assert info["files"]["surrogate_encoder.onnx"] == package.sha256_file(pkg / "surrogate_encoder.onnx")
    assert info["surrogate"]["loss"] == "nll" and info["surrogate"]["trio_encoder_max_abs_diff"] < 1e-4
    model = engine.load_model(pkg)            # verifies every listed file's sha256
    assert "surrogate_encoder" in model.info["graphs"]

    # a package of another trio model (other weights) is refused
    other = tmp_path / "other"
    shutil.copytree(tiny_models_dir / "trio_16bar", other)
    save_trio_checkpoint(tiny_model("trio_16bar", seed=4), run / "trio" / "best.pt")
    with pytest.raises(ValueError, match="not the trio model"):
        add_surrogate_to_package(run, other)
    assert "surrogate_encoder" not in json.loads((other / "model.json").read_text())["graphs"]
    with pytest.raises(ValueError, match="trio package"):
        add_surrogate_to_package(run, tiny_models_dir / "mel_16bar")


def test_card_section_written_once_and_replaced():
    held = {"n": 12, "latent_mse": 0.25, "baseline_latent_mse": {"zero": 1.0, "held_out_mean": 0.8,
                                                               "trio_encoder_melody_only": 0.6},
            "decode": {"n": 4, "true_z": {"lead": {"acc": 0.9}, "bass": {"acc": 0.8}},
                       "predicted_z": {"lead": {"acc": 0.7}, "bass": {"acc": 0.5}}}}
    summary = {"loss": "mse", "init": "trio", "steps": 400, "trio_step": 2000, "metrics": held}
    card = "# trio_16bar — model card\n\n## Metrics\nx\n\n## Known weaknesses\n- few steps\n"
    once = surrogate_card_section(card, summary, {"held_out_split": "test"})
    assert once.startswith(card.rstrip("\n")) and once.count(CARD_HEADING) == 1
    assert "| surrogate | 0.2500 |" in once and "| surrogate (melody only) | 0.700 | 0.500 |" in once
    assert "test split, 12 windows" in once
    # a second surrogate replaces the section, keeping what follows it
    again = surrogate_card_section(once + "\n## Later\nkept\n", {**summary, "loss": "nll"}, {})
    assert again.count(CARD_HEADING) == 1 and "loss `nll`" in again and "loss `mse`" not in again
    assert again.endswith("## Later\nkept\n") and "## Known weaknesses\n- few steps" in again


def test_fp16_export_halves_the_file_and_keeps_parity(trio, tmp_path):
    torch.manual_seed(2)
    sur = SurrogateEncoder(trio.config, trio.size)
    full = export_surrogate_graph(sur, tmp_path / "fp32.onnx")
    half = export_surrogate_graph(sur, tmp_path / "fp16.onnx", weights="fp16")   # rounds sur's weights
    assert half["weights"] == "fp16" and half["parity_max_abs_diff"] <= 1e-4
    assert (tmp_path / "fp16.onnx").stat().st_size < 0.7 * (tmp_path / "fp32.onnx").stat().st_size
    assert full["weights"] == "fp32"
