"""Hierarchical vs flat decoder at the same number of training steps (the MusicVAE paper's central
claim, measured on our data): held-out reconstruction of checkpoints taken at the same step, and
both validation curves.

    .venv/bin/python scripts/compare_runs.py --hier runs/mel_16bar@1000 --flat runs/mel_16bar_flat \
        --max-examples 512 --out docs/models/mel_16bar_flat_vs_hierarchical

Writes OUT.json (read by scripts/models_doc.py) and OUT.png. Each run directory holds the checkpoint
to score (best.pt, else latest.pt) and its log.jsonl; the curves are cut at the shorter run's last step.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from export_onnx.evaluate import evaluate_run


def _validation(run: Path) -> list[dict]:
    lines = (run / "log.jsonl").read_text().splitlines()
    return [e for e in map(json.loads, filter(None, lines)) if e.get("split") == "validation"]


def _summary(run: Path, split: str, max_examples: int | None) -> dict:
    m = evaluate_run(run, split=split, max_examples=max_examples, plot_png=False)
    return {"run": str(run), "step": m.get("step"), "n": m.get("n"), "windows_in_split": m.get("windows_in_split"),
            "reconstruction_accuracy": m["reconstruction_accuracy"]["mean"],
            "teacher_forced_accuracy": m["teacher_forced_accuracy"]["mean"], "kl_bits": m.get("kl_bits"),
            "params": sum(p.numel() for p in torch.load(Path(run) / "latest.pt", map_location="cpu",
                                                         weights_only=False)["model"].values())}


def no_event_share(run: Path, split: str) -> float:
    """The trivial baseline: the share of steps whose token is 0 ('no event', a held note or rest) in the
    split, i.e. the step accuracy of a decoder that never plays anything."""
    data = json.loads((run / "config.json").read_text())["data"]
    return float((np.load(Path(data) / f"{split}.npz")["tokens"] == 0).mean())


def plot(curves: dict[str, list[dict]], last_step: int, out: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 3), dpi=100)
    FigureCanvasAgg(fig)
    ax1, ax2 = fig.subplots(1, 2)
    for label, val in curves.items():
        val = [e for e in val if e["step"] <= last_step]
        steps = [e["step"] for e in val]
        ax1.plot(steps, [sum(e["acc"]) / len(e["acc"]) for e in val], marker=".", label=label)
        ax2.plot(steps, [e["r_loss"] for e in val], marker=".", label=label)
    ax1.set_title("validation teacher-forced accuracy", fontsize=9)
    ax2.set_title("validation reconstruction loss (nats)", fontsize=9)
    for ax in (ax1, ax2):
        ax.set_xlabel("step")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(str(out), format="png")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hier", required=True, help="hierarchical run (checkpoint at the compared step)")
    p.add_argument("--flat", required=True, help="flat run (checkpoint at the compared step)")
    p.add_argument("--split", default="test")
    p.add_argument("--max-examples", type=int, default=512)
    p.add_argument("--out", required=True, help="output path without extension")
    args = p.parse_args()
    hier, flat = Path(args.hier), Path(args.flat)
    result = {"split": args.split, "hierarchical": _summary(hier, args.split, args.max_examples),
              "flat": _summary(flat, args.split, args.max_examples),
              "no_event_baseline": no_event_share(hier, args.split)}
    if result["hierarchical"]["step"] != result["flat"]["step"]:
        print(f"note: compared at different steps: {result['hierarchical']['step']} vs {result['flat']['step']}")
    curves = {"hierarchical": _validation(hier), "flat": _validation(flat)}
    last = min(max(e["step"] for e in v) for v in curves.values())
    result["curves"] = {k: [{"step": e["step"], "r_loss": e["r_loss"], "acc": sum(e["acc"]) / len(e["acc"])}
                            for e in v if e["step"] <= last] for k, v in curves.items()}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    plot(curves, last, out.with_suffix(".png"))
    out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: result[k] for k in ("hierarchical", "flat")}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
