"""Accompaniment for a trio chain: a surrogate encoder from the lead's segment codes to the chain's z.

As export_onnx.surrogate does for a token trio ("Generating Musical Accompaniment in Latent Space"),
a second encoder sees only the lead and learns the posterior the trio encoder gives the whole trio;
at runtime (bridge.runtime.accompany) its z is decoded into a trio and the lead replaced by the
input melody. Here the surrogate is the chain's own encoder restricted to the lead's part: the
short model's encoder on each 2-bar segment of the lead, then a BiLSTM over those codes. It trains
on the chain's codes (chain-codes), not on tokens: a step reads (B, segments, code) arrays, so
thousands of steps take minutes on one CPU thread.

    python -m export_onnx chain-surrogate runs/trio_chain --out runs/trio_chain_accomp \
        [--steps 3000] [--loss nll] [--package bridge/models/trio_16bar]
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import torch
from torch import nn

from ..surrogate.encoder import surrogate_loss
from ..trainer import atomic_save
from .model import ChainEncoder, ChainVAE, PartEncoder, code_nll
from .training import load_codes, halving_adam, load_chain, log_entry, optimizer_step

CHECKPOINT = "surrogate.pt"
FORMAT = "latent-chain-surrogate"


class ChainSurrogate(ChainEncoder):
    """(B, steps, lead classes) one-hot of the lead -> (mu, sigma) of the chain's z.

    Args:
      chain: the trio chain it stands in for (its short encoder of the lead part is shared, frozen).
      part: which of the chain's parts it reads (0: the lead).
      units: the BiLSTM's units per direction (default: the chain encoder's).
    """

    def __init__(self, chain: ChainVAE, part: int = 0, units: int | None = None):
        spec = chain.parts[part]
        n = chain.num_classes[spec.track]
        enc = chain.encoder
        source = enc.parts[part]
        a, b = chain.code_slices[part]
        super().__init__([PartEncoder(source.short, (0, n), n, spec.shift)], enc.segments, enc.seg_steps, b - a,
                         units or getattr(getattr(enc, "lstm", None), "units", 128), chain.z_size)
        for p in self.parts.parameters():
            p.requires_grad_(False)
        # sigma: one learned width per z dimension (not a second dense layer: the runtime reads only mu,
        # and the package stays under its size limit)
        del self.sigma
        self.log_sigma = nn.Parameter(torch.zeros(chain.z_size))
        self.track, self.part, self.code_slice = spec.track, part, (a, b)
        self.input_size, self.num_classes = n, [n]
        self.num_steps, self.z_size = chain.num_steps, chain.z_size

    def from_codes(self, codes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu = self.mu(self.lstm(codes))
        return mu, torch.exp(self.log_sigma).expand_as(mu)

    def warm_start(self, chain: ChainVAE) -> None:
        """Start from the chain encoder: its BiLSTM's rows of this part's code and of the recurrent
        state, and its mu / sigma layers (same sizes only)."""
        a, b = self.code_slice
        src = chain.encoder
        if getattr(src, "lstm", None) is None or src.lstm.units != self.lstm.units:
            return      # a linear chain, or other sizes: the surrogate starts from its own init
        with torch.no_grad():
            for mine, theirs in ((self.lstm.fw, src.lstm.fw), (self.lstm.bw, src.lstm.bw)):
                mine.kernel.copy_(torch.cat([theirs.kernel[a:b], theirs.kernel[src.code_size:]]))
                mine.bias.copy_(theirs.bias)
            self.mu.kernel.copy_(src.mu.kernel)
            self.mu.bias.copy_(src.mu.bias)


def latent_targets(chain: ChainVAE, codes: torch.Tensor, batch: int = 2048) -> tuple[torch.Tensor, torch.Tensor]:
    """The chain encoder's posterior (mu, sigma) of whole-trio codes (N, segments, code)."""
    out = []
    with torch.no_grad():
        for i in range(0, len(codes), batch):
            out.append(chain.encoder.from_codes(codes[i:i + batch]))
    return torch.cat([m for m, _ in out]), torch.cat([s for _, s in out])


def latent_mse(surrogate: ChainSurrogate, lead_codes: torch.Tensor, mu: torch.Tensor) -> float:
    with torch.no_grad():
        return float((surrogate.from_codes(lead_codes)[0] - mu).pow(2).mean())


LOSSES = ("nll", "mse", "codes")


def surrogate_objective(kind: str, surrogate: ChainSurrogate, chain: ChainVAE, batch, floor: float) -> torch.Tensor:
    """The training loss of a batch (lead codes, chain mu, chain sigma, all codes, their sigma):
    "nll" / "mse" match the chain posterior (export_onnx.surrogate.encoder.surrogate_loss); "codes"
    decodes the predicted z with the chain's frozen conductor and scores every part's codes (the
    chain's own likelihood, per window and code dimension): what the decoder will write, not where
    z lands."""
    lead, mu, sigma, codes, code_sigma = batch
    mu_hat, sigma_hat = surrogate.from_codes(lead)
    if kind == "codes":
        return code_nll(chain.decoder.conductor(mu_hat), codes, code_sigma, floor).mean() / codes[0].numel()
    return surrogate_loss(kind, mu_hat, sigma_hat, mu, sigma)


def train_chain_surrogate(chain_run, out_dir, steps: int = 3000, batch_size: int = 128, learning_rate: float = 1e-3,
                          loss: str = "nll", units: int | None = None, seed: int = 0, threads: int = 1,
                          validate_every: int = 250, log=print) -> dict:
    """Train a ChainSurrogate on the chain run's codes (chain-codes' npz); writes surrogate.pt (the
    best validation loss) and log.jsonl to out_dir. Returns the saved entries, with held-out (test
    split) latent MSE against the baselines (held-out mean, zero).

    Raises:
      ValueError: an unknown loss (LOSSES)."""
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    torch.set_num_threads(threads)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    chain, ckpt = load_chain(chain_run)
    floor = ckpt["recipe"]["floor"]
    surrogate = ChainSurrogate(chain, units=units)
    surrogate.warm_start(chain)
    a, b = surrogate.code_slice
    data = {}
    codes_dir = ckpt.get("codes_dir", chain_run)
    for split in ("train", "validation", "test"):
        codes, code_sigma = load_codes(codes_dir, split)
        data[split] = (codes[..., a:b].contiguous(), *latent_targets(chain, codes), codes, code_sigma)
    params = [p for p in surrogate.parameters() if p.requires_grad]
    opt, sched = halving_adam(params, learning_rate, steps)
    gen = torch.Generator().manual_seed(seed)
    train = data["train"]
    val = data["validation"] if len(data["validation"][0]) else train
    best, saved, t0 = math.inf, None, time.monotonic()
    with open(out / "log.jsonl", "a") as logf:
        for step in range(1, steps + 1):
            surrogate.train()
            idx = torch.randint(0, len(train[0]), (batch_size,), generator=gen)
            value = surrogate_objective(loss, surrogate, chain, [x[idx] for x in train], floor)
            optimizer_step(opt, sched, params, value)
            if step % validate_every == 0 or step == steps:
                surrogate.eval()
                with torch.no_grad():
                    val_loss = float(surrogate_objective(loss, surrogate, chain, val, floor))
                entry = {"step": step, "wall_time": round(time.monotonic() - t0, 1), "train_loss": float(value.detach()),
                         "validation_loss": val_loss, "validation_latent_mse": latent_mse(surrogate, val[0], val[1])}
                log_entry(logf, entry, log)
                if val_loss < best:
                    best = val_loss
                    saved = {"format": FORMAT, "chain_run": str(chain_run), "chain_step": ckpt["step"],
                             "units": surrogate.lstm.units, "part": surrogate.part, "loss": loss, "init": "chain",
                             "step": step, "state": {k: v.clone() for k, v in surrogate.state_dict().items()},
                             "validation_loss": best, "validation_latent_mse": entry["validation_latent_mse"]}
    saved["metrics"] = held_out_metrics(surrogate_from(saved, chain), data["test"], train[1])
    atomic_save(saved, out / CHECKPOINT)
    return {k: v for k, v in saved.items() if k != "state"}


def held_out_metrics(surrogate: ChainSurrogate, test, train_mu: torch.Tensor) -> dict:
    """Latent MSE to the chain posterior mean on the test split, and the baselines the surrogate card
    shows: the best constant (the training mean) and zero (the prior mean)."""
    lead, mu = test[:2]
    if not len(lead):
        return {"n": 0}
    return {"n": len(lead), "latent_mse": latent_mse(surrogate, lead, mu),
            "baseline_latent_mse": {"held_out_mean": float((mu - train_mu.mean(0)).pow(2).mean()),
                                    "zero": float(mu.pow(2).mean())}}


def surrogate_from(saved: dict, chain: ChainVAE) -> ChainSurrogate:
    surrogate = ChainSurrogate(chain, part=saved["part"], units=saved["units"])
    surrogate.load_state_dict(saved["state"])
    return surrogate.eval()


def load_chain_surrogate(run_dir, chain_run=None) -> tuple[ChainSurrogate, dict]:
    """The surrogate of a chain-surrogate run (or its surrogate.pt) and its saved entries."""
    surrogate, saved, _ = _surrogate_and_chain(run_dir, chain_run)
    return surrogate, saved


def _surrogate_and_chain(run_dir, chain_run=None) -> tuple[ChainSurrogate, dict, ChainVAE]:
    path = Path(run_dir)
    path = path / CHECKPOINT if path.is_dir() else path
    saved = torch.load(path, map_location="cpu", weights_only=False)
    if saved.get("format") != FORMAT:
        raise ValueError(f"{path}: not a chain surrogate")
    chain, _ = load_chain(chain_run or saved["chain_run"])
    return surrogate_from(saved, chain), saved, chain


def add_chain_surrogate(run_dir, package_dir, chain_run=None) -> dict:
    """Adds the surrogate of a chain-surrogate run to the trio chain package at `package_dir`
    (export_onnx.surrogate.package.install_surrogate: graph, sha256, model.json's `surrogate`
    section, the card's accompaniment section). Raises ValueError when the package's encoder is not
    the chain the surrogate was trained against."""
    from ..surrogate.package import check_same_encoder, install_surrogate
    surrogate, saved, chain = _surrogate_and_chain(run_dir, chain_run)
    diff = check_same_encoder(chain, package_dir)
    summary = {"track": surrogate.track, "loss": saved["loss"], "init": saved["init"], "steps": saved["step"],
               "trio_step": saved["chain_step"], "trio_encoder_max_abs_diff": diff,
               "metrics": saved.get("metrics", {})}
    return install_surrogate(package_dir, surrogate, summary, {"held_out_split": "test"})
