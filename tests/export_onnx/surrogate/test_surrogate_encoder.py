"""export_onnx.surrogate.encoder: the losses, the warm start from the trio encoder, the checkpoint;
and the names the package exports."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import export_onnx.surrogate as S
from export_onnx.surrogate.encoder import (SurrogateEncoder, init_from_trio, load_surrogate, save_surrogate,
                                           surrogate_loss)
from export_onnx.tiny import TINY, tiny_model
from surrogate_helpers import one_thread, trio, trio_tokens  # noqa: F401  (fixtures)


def test_nll_is_the_closed_form_expected_gaussian_nll():
    g = torch.Generator().manual_seed(0)
    mu, mu_hat = torch.randn(3, 5, generator=g), torch.randn(3, 5, generator=g)
    sigma, sigma_hat = torch.rand(3, 5, generator=g) + 0.2, torch.rand(3, 5, generator=g) + 0.3
    z = mu + sigma * torch.randn(200_000, 3, 5, generator=g)          # z ~ N(mu, sigma)
    mc = -torch.distributions.Normal(mu_hat, sigma_hat).log_prob(z).mean()
    closed = surrogate_loss("nll", mu_hat, sigma_hat, mu, sigma)
    assert abs(float(closed) - float(mc)) < 0.01
    assert float(surrogate_loss("mse", mu_hat, sigma_hat, mu, sigma)) == pytest.approx(float((mu - mu_hat).pow(2).mean()))
    with pytest.raises(ValueError, match="loss"):
        surrogate_loss("l1", mu_hat, sigma_hat, mu, sigma)


def test_warm_start_keeps_the_lead_rows_of_the_trio_encoder(trio):
    sur = SurrogateEncoder(trio.config, trio.size)
    copied = init_from_trio(sur, trio)
    assert copied == len(sur.encoder.state_dict())
    # the trio encoder fed only the lead one-hot (bass and drum segments all zero) == the surrogate
    toks = torch.as_tensor(trio_tokens(2, 3, trio.num_classes).astype(np.int64))
    full = trio.one_hot(toks)
    lead_only = full.clone()
    lead_only[..., trio.num_classes[0]:] = 0
    with torch.no_grad():
        want = trio.encoder(lead_only)
        got = sur(sur.one_hot(toks.numpy()))
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="trio"):
        SurrogateEncoder(tiny_model("mel_16bar").config, TINY)


def test_checkpoint_round_trip(trio, tmp_path):
    torch.manual_seed(3)
    sur = SurrogateEncoder(trio.config, trio.size)
    save_surrogate(sur, tmp_path / "run" / S.CHECKPOINT, step=9, loss="nll")
    back, info = load_surrogate(tmp_path / "run")
    assert info["step"] == 9 and info["loss"] == "nll" and not back.training
    for k, v in sur.state_dict().items():
        assert torch.equal(back.state_dict()[k], v), k
    torch.save({"format": "something else"}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a surrogate"):
        load_surrogate(tmp_path / "other.pt")


def test_the_package_exports_its_names():
    # what scripts, tests and `python -m export_onnx` import from export_onnx.surrogate
    assert all(hasattr(S, name) for name in S.__all__)
    assert {"train_surrogate", "add_surrogate_to_package", "tiny_accompany_package", "add_parser",
            "SurrogateEncoder", "export_surrogate_graph"} <= set(S.__all__)
