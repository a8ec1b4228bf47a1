"""A linear chain: z <-> the segment codes by a weighted PCA, fitted in closed form (`fit-chain`).

Why: on the trio (94 training songs) the LSTM chain overfits: after 2,000-8,000 steps its held-out
code likelihood stopped near 6,600 nats per window while the training likelihood kept improving. A
weighted PCA of the same codes with 256 components reconstructs held-out codes at 4,515 nats (lead
1,386, bass 1,253, drums 1,875, against 1,941 / 1,804 / 2,817 for the LSTM chain). So the trio's
z is a linear map of the code dimensions the short models use, a probabilistic PCA:

    x = the used dimensions of the 8 segments' codes, side by side;  w = 1 / sqrt(mean sigma^2 + floor^2)
    (x - m) * w ~ V^T diag(s) z, z ~ N(0, I)      (V: the top principal directions, s their scales)
    encoder mu = ((x - m) * w) V^T / s;  conductor x = (z * s) V / w + m;  the unused dimensions at their mean

The posterior width of z_k is PPCA's: sqrt(noise / (s_k^2 + noise)), noise the mean variance of the
directions left out. Prior samples are Gaussian in the codes: they keep the codes' correlations
(lead, bass and drums move together) but not their non-Gaussian shape.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from .model import ARCHITECTURE, ChainSize
from .training import CHECKPOINT, load_codes, package_sha256, build_chain, evaluate_codes, short_packages

USED_SIGMA = 0.5          # a code dimension is used when its mean posterior sigma is below this


def fit_linear_chain(shorts, codes_dir, out_dir, config_name: str = "trio_16bar", z_size: int = 256,
                     floor: float = 0.1, part_weights=None, max_windows: int = 60000, seed: int = 0,
                     log=print) -> dict:
    """Fit a linear chain to the training codes of `codes_dir` (chain-codes); writes chain.pt and
    log.jsonl (one entry: the validation likelihood) in out_dir, like train-chain, and returns it.

    `part_weights`: one factor per part on its codes' likelihood (as train-chain): the PCA then
    spends more of z on the parts weighted up."""
    t0 = time.monotonic()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    mu, sigma = (x.numpy().astype(np.float64) for x in load_codes(codes_dir, "train"))
    rng = np.random.default_rng(seed)
    if len(mu) > max_windows:
        pick = rng.choice(len(mu), max_windows, replace=False)
        mu, sigma = mu[pick], sigma[pick]
    used = tuple(int(i) for i in np.flatnonzero(sigma.mean(axis=(0, 1)) < USED_SIGMA))
    size = ChainSize(z_size=z_size, enc_units=0, cond_units=0, cond_layers=0, linear=True, used=used)
    model = build_chain(shorts, config_name, size)
    n, segments = len(mu), mu.shape[1]
    x = mu[..., used].reshape(n, -1)
    mean = x.mean(0)
    w = 1.0 / np.sqrt((sigma[..., used] ** 2).mean(0) + floor * floor).reshape(-1)
    if part_weights is not None:
        per_dim = np.concatenate([np.full(b - a, float(f)) for (a, b), f in zip(model.code_slices, part_weights)])
        w = w * np.sqrt(np.tile(per_dim[list(used)], segments))
    _, s, vt = np.linalg.svd((x - mean) * w, full_matrices=False)
    lam = s ** 2 / n
    v, scale = vt[:z_size], np.sqrt(lam[:z_size])
    noise = float(lam[z_size:].mean()) if len(lam) > z_size else 1e-6
    rest = mu.mean(0)
    with torch.no_grad():
        enc, dec = model.encoder, model.decoder
        enc.mu.kernel.copy_(torch.from_numpy((w[:, None] * v.T) / scale[None, :]))
        enc.mu.bias.copy_(torch.from_numpy(-((mean * w) @ v.T) / scale))
        enc.log_sigma.copy_(torch.from_numpy(0.5 * np.log(noise / (lam[:z_size] + noise))))
        dec.code_map.kernel.copy_(torch.from_numpy((scale[:, None] * v) / w[None, :]))
        dec.code_map.bias.copy_(torch.from_numpy(mean))
        dec.rest.copy_(torch.from_numpy(np.where(np.isin(np.arange(rest.shape[1]), used), 0.0, rest)))
    val_mu, val_sigma = load_codes(codes_dir, "validation")
    if not len(val_mu):
        val_mu, val_sigma = load_codes(codes_dir, "train")
    entry = {"step": 0, "wall_time": round(time.monotonic() - t0, 1),
             "validation": evaluate_codes(model, val_mu, val_sigma, floor),
             "explained_variance": float(lam[:z_size].sum() / lam.sum()), "used_dims": len(used),
             "windows": n}
    packages = short_packages(shorts)
    recipe = {"method": "pca", "windows": n, "floor": floor, "seed": seed, "z_size": z_size,
              "part_weights": None if part_weights is None else list(part_weights), "noise": noise}
    torch.save({"format": ARCHITECTURE, "short_packages": {k: str(p) for k, p in packages.items()},
                "short_sha256": {k: package_sha256(p) for k, p in packages.items()}, "config": config_name,
                "codes_dir": str(Path(codes_dir).resolve()), "size": asdict(size), "state": model.trained_state(),
                "step": 0, "recipe": recipe, "history": [], "validation": entry["validation"],
                "wall_time": entry["wall_time"]}, out / CHECKPOINT)
    (out / "log.jsonl").write_text(json.dumps(entry) + "\n")
    log(json.dumps(entry))
    return entry

