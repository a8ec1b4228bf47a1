"""How close a surrogate encoder comes to the trio encoder: latent distances, baselines, and the
tracks the trio decoder makes from each z."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..model import MusicVAE
from .encoder import SurrogateEncoder, surrogate_loss


@torch.no_grad()
def predict(surrogate: SurrogateEncoder, tokens: np.ndarray, batch: int = 128) -> tuple[torch.Tensor, torch.Tensor]:
    """The surrogate's (mu, sigma) for (N, steps, tracks) trio tokens (it reads its track only)."""
    mus, sigmas = [], []
    for a in range(0, len(tokens), batch):
        m, s = surrogate(surrogate.one_hot(tokens[a:a + batch]))
        mus.append(m)
        sigmas.append(s)
    return torch.cat(mus), torch.cat(sigmas)


@torch.no_grad()
def trio_posterior(trio: MusicVAE, tokens: np.ndarray, batch: int = 128) -> tuple[torch.Tensor, torch.Tensor]:
    """The trio encoder's (mu, sigma) for (N, steps, tracks) trio tokens: the surrogate's targets."""
    mus, sigmas = [], []
    for a in range(0, len(tokens), batch):
        m, s = trio.encode(torch.as_tensor(np.asarray(tokens[a:a + batch], dtype=np.int64)))
        mus.append(m)
        sigmas.append(s)
    return torch.cat(mus), torch.cat(sigmas)


@torch.no_grad()
def latent_metrics(surrogate: SurrogateEncoder, trio: MusicVAE, tokens: np.ndarray, loss: str) -> dict:
    """The validation numbers: {"latent_mse", "loss" (the training loss `loss`), "n"}."""
    mu, sigma = trio_posterior(trio, tokens)
    mu_hat, sigma_hat = predict(surrogate, tokens)
    return {"latent_mse": float((mu_hat - mu).pow(2).mean()),
            "loss": float(surrogate_loss(loss, mu_hat, sigma_hat, mu, sigma)),
            "n": int(len(tokens))}


def _accuracy(pred: torch.Tensor, truth: torch.Tensor, names: list[str]) -> dict:
    """Per track: step accuracy, and accuracy on the steps where the truth has an event (token != 0)."""
    out = {}
    for k, name in enumerate(names):
        p, t = pred[..., k], truth[..., k]
        ev = t != 0
        out[name] = {"acc": float((p == t).float().mean()),
                     "event_acc": float((p[ev] == t[ev]).float().mean()) if ev.any() else None}
    return out


@torch.no_grad()
def evaluate(surrogate: SurrogateEncoder, trio: MusicVAE, tokens: np.ndarray, decode_examples: int = 128,
             batch: int = 64) -> dict:
    """Held-out evaluation of a surrogate.

    Args:
      surrogate: the surrogate encoder.
      trio: the trio model it stands in for.
      tokens: (N, steps, tracks) held-out trio windows.
      decode_examples: how many of them to decode (argmax) from each z (0: none).
      batch: the decoding batch.

    Returns:
      {"n", "latent_mse", "nll", "baseline_latent_mse" {"zero", "held_out_mean",
       "trio_encoder_melody_only"}, "cosine", and with decode_examples "decode": per z ("true_z",
       "predicted_z", "melody_only_z") and track the step accuracy against the true tokens, and
       "agreement_pred_vs_true_z"}.
    """
    tokens = np.asarray(tokens, dtype=np.int64)
    mu, sigma = trio_posterior(trio, tokens)
    mu_hat, sigma_hat = predict(surrogate, tokens)
    # baseline: the trio encoder given the melody alone (bass and drums silent: token 0)
    alone = tokens.copy()
    alone[..., 1:] = 0
    mu_alone, _ = trio_posterior(trio, alone)
    res = {
        "n": int(len(tokens)),
        "latent_mse": float((mu_hat - mu).pow(2).mean()),
        "nll": float(surrogate_loss("nll", mu_hat, sigma_hat, mu, sigma)),
        "baseline_latent_mse": {"zero": float(mu.pow(2).mean()),
                                "held_out_mean": float((mu - mu.mean(0)).pow(2).mean()),   # the best constant (optimistic)
                                "trio_encoder_melody_only": float((mu_alone - mu).pow(2).mean())},
        "cosine": float(F.cosine_similarity(mu_hat, mu, dim=-1).mean()),
    }
    names = [t.get("name", f"track{k}") for k, t in enumerate(trio.config.tracks)]
    n_dec = min(decode_examples, len(tokens))
    if n_dec:
        truth = torch.as_tensor(tokens[:n_dec])
        dec = {"true_z": [], "predicted_z": [], "melody_only_z": []}
        for a in range(0, n_dec, batch):
            for key, z in (("true_z", mu), ("predicted_z", mu_hat), ("melody_only_z", mu_alone)):
                dec[key].append(trio.decode_argmax(z[a:min(a + batch, n_dec)]))
        res["decode"] = {"n": n_dec, **{k: _accuracy(torch.cat(v), truth, names) for k, v in dec.items()}}
        true_dec, pred_dec = torch.cat(dec["true_z"]), torch.cat(dec["predicted_z"])
        res["decode"]["agreement_pred_vs_true_z"] = {n: float((pred_dec[..., k] == true_dec[..., k]).float().mean())
                                                     for k, n in enumerate(names)}
    return res
