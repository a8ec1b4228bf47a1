"""The surrogate encoder: the trio encoder's architecture over the lead track alone, its warm start
from the trio encoder, its losses and its checkpoint file."""
from __future__ import annotations

import math
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..configs import ModelConfig, ModelSize, get_config
from ..model import BidirectionalLstmEncoder, HierarchicalEncoder, MusicVAE, one_hot
from ..trainer import atomic_save

CHECKPOINT = "surrogate.pt"
FORMAT = "latent-bridge-surrogate"
LOSSES = ("mse", "nll")


class SurrogateEncoder(nn.Module):
    """The trio encoder's architecture over one track's one-hot: inputs (B, steps, classes) -> (mu, sigma).

    Args:
      config: a trio config.
      size: the sizes (those of the trio model it stands in for).
      track: the track it reads (0: the lead).

    Raises:
      ValueError: the config is not a trio.
    """

    def __init__(self, config: ModelConfig, size: ModelSize, track: int = 0):
        super().__init__()
        if config.kind != "trio":
            raise ValueError(f"a surrogate encoder needs a trio config, got {config.name} ({config.kind})")
        self.config, self.size, self.track = config, size, track
        self.num_classes = [config.codec.num_classes[track]]
        self.input_size = self.num_classes[0]
        self.num_steps = config.num_steps
        self.z_size = size.z_size
        if config.hierarchical:
            self.encoder = HierarchicalEncoder(self.input_size, size.bar_enc_units or size.enc_units,
                                               size.enc_units, size.z_size, config.bars)
        else:
            self.encoder = BidirectionalLstmEncoder(self.input_size, size.enc_units, size.z_size)

    def forward(self, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.encoder(inputs)

    def one_hot(self, tokens) -> torch.Tensor:
        """(B, steps, tracks) trio tokens (or (B, steps) lead tokens) -> (B, steps, lead classes)."""
        tokens = torch.as_tensor(np.asarray(tokens, dtype=np.int64))
        if tokens.ndim == 3:
            tokens = tokens[..., self.track:self.track + 1]
        else:
            tokens = tokens[..., None]
        return one_hot(tokens, self.num_classes)


def init_from_trio(surrogate: SurrogateEncoder, trio: MusicVAE) -> int:
    """Copies the trio encoder's weights into the surrogate.

    Same-shape tensors are copied as they are; an LSTM kernel over [one-hot of all tracks, h] keeps
    the rows of the surrogate's track and of h.

    Returns:
      The number of tensors copied.
    """
    src = trio.encoder.state_dict()
    dst = surrogate.encoder.state_dict()
    a = sum(trio.num_classes[:surrogate.track])
    b = a + trio.num_classes[surrogate.track]
    copied = 0
    with torch.no_grad():
        for name, t in dst.items():
            s = src.get(name)
            if s is None:
                continue
            if s.shape == t.shape:
                t.copy_(s)
                copied += 1
            elif s.ndim == 2 and s.shape[1] == t.shape[1] and s.shape[0] - trio.input_size == t.shape[0] - surrogate.input_size:
                t.copy_(torch.cat([s[a:b], s[trio.input_size:]], dim=0))
                copied += 1
    surrogate.encoder.load_state_dict(dst)
    return copied


def surrogate_loss(kind: str, mu_hat, sigma_hat, mu, sigma) -> torch.Tensor:
    """The mean over batch and z of the loss `kind` (export_onnx.surrogate: "mse" or "nll").

    Raises:
      ValueError: an unknown kind.
    """
    if kind == "mse":
        return (mu_hat - mu).pow(2).mean()
    if kind == "nll":
        s2 = sigma_hat.clamp_min(1e-4).pow(2)
        nll = 0.5 * torch.log(s2) + ((mu - mu_hat).pow(2) + sigma.pow(2)) / (2.0 * s2) + 0.5 * math.log(2 * math.pi)
        return nll.mean()
    raise ValueError(f"loss must be one of {LOSSES}, got {kind!r}")


def save_surrogate(surrogate: SurrogateEncoder, path, **info) -> None:
    """Writes a surrogate checkpoint (atomically): the weights, config, size and track, plus `info`
    (step, loss, the trio run it was trained against, metrics...)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_save({"format": FORMAT, "config": surrogate.config.name, "size": asdict(surrogate.size),
                 "track": surrogate.track, "model": surrogate.state_dict(), **info}, path)


def load_surrogate(path) -> tuple[SurrogateEncoder, dict]:
    """Reads a surrogate checkpoint (a file, or a run directory holding surrogate.pt).

    Returns:
      (the model in eval mode, the checkpoint's other entries).

    Raises:
      ValueError: the file is not a surrogate checkpoint.
    """
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    if ckpt.get("format") != FORMAT:
        raise ValueError(f"{path} is not a surrogate encoder checkpoint")
    model = SurrogateEncoder(get_config(ckpt["config"]), ModelSize(**ckpt["size"]), ckpt.get("track", 0))
    model.load_state_dict(ckpt["model"])
    model.eval()
    return model, {k: v for k, v in ckpt.items() if k != "model"}
