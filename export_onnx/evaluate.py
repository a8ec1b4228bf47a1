"""Evaluate a trained run: `python -m export_onnx evaluate runs/mel_2bar --split test [--data DIR]`.

Writes `<run>/metrics.json` and `<run>/reconstructions.png`:
- `teacher_forced_accuracy`: next-step argmax accuracy with the true previous tokens fed, z = the
  posterior mean;
- `reconstruction_accuracy`: argmax decode from the posterior mean with no teacher forcing (what the
  runtime does for encode -> decode), compared step by step with the input; `reconstruction_exact`:
  fraction of sequences reproduced entirely;
- `kl_bits`: mean KL(q(z|x) || N(0, I)) in bits; `r_loss_nats`: teacher-forced cross-entropy per
  sequence at z = mu.
Accuracies are per track (by track name) for trios, plus `mean` over tracks.
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import torch

from .model import MusicVAE, kl_divergence, load_checkpoint, reconstruction_loss, step_accuracy


def slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    an, bn = a / a.norm(), b / b.norm()
    omega = torch.arccos(torch.clamp((an * bn).sum(), -1.0, 1.0))
    if omega.abs() < 1e-6:
        return (1 - t) * a + t * b
    so = torch.sin(omega)
    return torch.sin((1 - t) * omega) / so * a + torch.sin(t * omega) / so * b


@torch.no_grad()
def evaluate_tokens(model: MusicVAE, tokens: np.ndarray, batch_size: int = 128, device="cpu") -> dict:
    model.eval()
    names = [t.get("name", f"track{i}") for i, t in enumerate(model.config.tracks)]
    k = len(names)
    tf_acc, rec_acc = torch.zeros(k), torch.zeros(k)
    kl_sum, r_sum, exact, n = 0.0, 0.0, 0, 0
    for a in range(0, len(tokens), batch_size):
        t = torch.as_tensor(tokens[a:a + batch_size].astype(np.int64), device=device)
        b = t.shape[0]
        logits, mu, sigma = model(t, 0.0, None, sample_z=False)
        tf_acc += step_accuracy(logits, t, model.num_classes).cpu() * b
        r_sum += reconstruction_loss(logits, t, model.num_classes).sum().item()
        kl_sum += kl_divergence(mu, sigma).sum().item()
        rec = model.decode_argmax(mu)
        same = rec == t
        rec_acc += same.float().reshape(b, -1, k).mean(1).sum(0).cpu()
        exact += same.reshape(b, -1).all(-1).sum().item()
        n += b

    def per_track(v: torch.Tensor) -> dict:
        d = {name: float(x) for name, x in zip(names, (v / n).tolist())}
        d["mean"] = float((v / n).mean())
        return d

    return {"n": n, "teacher_forced_accuracy": per_track(tf_acc), "reconstruction_accuracy": per_track(rec_acc),
            "reconstruction_exact": exact / n, "kl_bits": kl_sum / n / math.log(2), "r_loss_nats": r_sum / n}


def _pitch_ranges(model: MusicVAE, panels: list) -> list:
    """Per track, the token range [lo, hi] of note-ons used in any panel (padded), so the rows stay readable."""
    out = []
    for i, tc in enumerate(model.config.codec.tracks):
        if tc.kind == "drums":
            out.append(None)
            continue
        on = np.concatenate([np.asarray(tok)[:, i] for _, tok in panels])
        on = on[on >= 2]
        lo, hi = (int(on.min()) - 2, int(on.max()) + 2) if len(on) else (2, 14)
        out.append((max(lo, 2), min(hi, tc.num_classes - 1)))
    return out


def _roll(model: MusicVAE, tokens: np.ndarray, ranges: list | None = None) -> np.ndarray:
    """(steps, tracks) tokens -> an image (rows, steps): each track's pitch rows (or drum classes) stacked,
    value = track index + 1 where a note sounds. `ranges`: per melody track the token rows to show."""
    codec = model.config.codec
    steps = tokens.shape[0]
    blocks = []
    for i, tc in enumerate(codec.tracks):
        if tc.kind == "drums":
            img = np.zeros((9, steps))
            for s, tok in enumerate(tokens[:, i].tolist()):
                for c in range(9):
                    if tok >> c & 1:
                        img[c, s] = i + 1
        else:
            img = np.zeros((tc.max_pitch - tc.min_pitch + 1, steps))
            for note in tc.decode(tokens[:, i]):
                s0, s1 = int(round(note.start * 4)), int(round(note.end * 4))
                img[note.pitch - tc.min_pitch, s0:max(s1, s0 + 1)] = i + 1
                img[note.pitch - tc.min_pitch, s0] = 4  # onsets stand out from holds
            if ranges is not None and ranges[i] is not None:
                lo, hi = ranges[i]
                img = img[lo - 2:hi - 1]
        blocks.append(img)
        blocks.append(np.full((1, steps), -1.0))
    return np.concatenate(blocks[:-1], axis=0)


@torch.no_grad()
def plot(model: MusicVAE, tokens: np.ndarray, path: Path, n_recon: int = 3, n_interp: int = 5) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    model.eval()
    n_recon = min(n_recon, len(tokens))
    t = torch.as_tensor(tokens[:max(n_recon, 2)].astype(np.int64))
    rec = model.reconstruct(t).numpy()
    mu, _ = model.encode(t)
    interp = []
    if len(tokens) >= 2:
        zs = torch.stack([slerp(mu[0], mu[1], a) for a in np.linspace(0, 1, n_interp)])
        interp = list(model.decode_argmax(zs).numpy())
    panels = []
    for i in range(n_recon):
        panels += [(f"input {i}", tokens[i]), (f"reconstruction {i}", rec[i])]
    panels += [(f"interpolation {j}/{len(interp) - 1} (input 0 -> input 1)", x) for j, x in enumerate(interp)]
    cmap = matplotlib.colors.ListedColormap(["#cccccc", "white", "#1f77b4", "#d62728", "#2ca02c", "black"])
    ranges = _pitch_ranges(model, panels)
    fig, axes = plt.subplots(len(panels), 1, figsize=(12, 1.6 * len(panels)), squeeze=False)
    for ax, (title, tok) in zip(axes[:, 0], panels):
        img = _roll(model, np.asarray(tok), ranges)
        ax.imshow(img, aspect="auto", origin="lower", interpolation="nearest", cmap=cmap, vmin=-1.5, vmax=4.5)
        for bar in range(0, img.shape[1], 16):
            ax.axvline(bar - 0.5, color="k", lw=0.4)
        ax.set_title(title, fontsize=8)
        ax.set_yticks([])
    axes[-1, 0].set_xlabel("step (16 per bar)")
    fig.suptitle(f"{model.config.name}: reconstructions and an interpolation", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def seeded_sample(tokens: np.ndarray, max_examples: int | None) -> np.ndarray:
    """At most `max_examples` windows, a seeded sample across the whole split in split order (its
    first windows would be a handful of songs)."""
    if not max_examples or max_examples >= len(tokens):
        return tokens
    return tokens[np.sort(np.random.default_rng(0).choice(len(tokens), max_examples, replace=False))]


def evaluate_run(run_dir, split: str = "test", data_dir=None, which: str = "best", max_examples: int | None = None,
                 batch_size: int = 128, plot_png: bool = True, device: str | None = None) -> dict:
    run_dir = Path(run_dir)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    ckpt = run_dir / f"{which}.pt"
    if not ckpt.exists() and which == "best":
        ckpt = run_dir / "latest.pt"
    model, info = load_checkpoint(ckpt)
    model.to(device)
    if data_dir is None:
        data_dir = json.loads((run_dir / "config.json").read_text())["data"]
    from .dataset import load_split
    tokens = np.asarray(load_split(data_dir, split)["tokens"])
    available = len(tokens)
    tokens = seeded_sample(tokens, max_examples)
    metrics = evaluate_tokens(model, tokens, batch_size, device)
    metrics.update({"windows_in_split": available, "config": model.config.name, "size": info.get("size_name"),
                    "params": sum(p.numel() for p in model.parameters()), "split": split, "data": str(data_dir), "checkpoint": ckpt.name, "step": info.get("step"),
                    "wall_time": info.get("wall_time")})
    write_metrics(run_dir / "metrics.json", metrics)
    if plot_png:
        model.to("cpu")
        plot(model, tokens, run_dir / "reconstructions.png")
    return metrics


def write_metrics(path: Path, metrics: dict) -> dict:
    """metrics.json keeps every split evaluated for the same checkpoint under "splits"; its top level
    is the test split when there is one (what model cards and packages report)."""
    splits = {}
    if path.is_file():
        old = json.loads(path.read_text())
        same = {k: old.get(k) for k in ("checkpoint", "step")} == {k: metrics.get(k) for k in ("checkpoint", "step")}
        splits = old.get("splits", {}) if same else {}
    splits[metrics["split"]] = metrics
    out = dict(splits.get("test", metrics), splits=splits)
    path.write_text(json.dumps(out, indent=1))
    return out


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("evaluate", help="metrics.json + piano-roll PNG for a training run")
    p.add_argument("run", help="run directory (best.pt / latest.pt, config.json)")
    p.add_argument("--split", default="test")
    p.add_argument("--data", default=None, help="dataset directory (default: the one the run trained on)")
    p.add_argument("--checkpoint", default="best", choices=["best", "latest"])
    p.add_argument("--max-examples", type=int, default=None,
                   help="score a seeded random sample of this many windows (default: the whole split)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--no-plot", action="store_true")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    m = evaluate_run(args.run, args.split, args.data, args.checkpoint, args.max_examples, args.batch_size,
                     not args.no_plot)
    print(json.dumps(m, indent=1))
    return 0
