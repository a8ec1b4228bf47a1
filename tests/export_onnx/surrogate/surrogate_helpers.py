"""Shared by the surrogate tests: one torch thread, a tiny random trio model and a tiny trio dataset."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from export_onnx.tiny import tiny_model


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


def trio_tokens(n, seed, num_classes, steps=256):
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
    train = trio_tokens(8, 1, nc)
    for split, toks in (("train", train), ("validation", train), ("test", trio_tokens(6, 2, nc))):
        np.savez(d / f"{split}.npz", tokens=toks, song=np.arange(len(toks), dtype=np.int32))
    return d
