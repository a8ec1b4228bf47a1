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

from export_onnx.dataset import load_split
from export_onnx.evaluate import evaluate_run
from export_onnx.model_card import plot_curves, read_log


def _summary(run: Path, split: str, max_examples: int | None) -> dict:
    m = evaluate_run(run, split=split, max_examples=max_examples, plot_png=False)
    return {"run": str(run), "step": m.get("step"), "n": m.get("n"), "windows_in_split": m.get("windows_in_split"),
            "reconstruction_accuracy": m["reconstruction_accuracy"]["mean"],
            "teacher_forced_accuracy": m["teacher_forced_accuracy"]["mean"], "kl_bits": m.get("kl_bits"),
            "params": m["params"]}


def no_event_share(run: Path, split: str) -> float:
    """The trivial baseline: the share of steps whose token is 0 ('no event', a held note or rest) in the
    split, i.e. the step accuracy of a decoder that never plays anything."""
    data = json.loads((run / "config.json").read_text())["data"]
    return float((np.asarray(load_split(data, split)["tokens"]) == 0).mean())


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hier", required=True, help="hierarchical run (checkpoint at the compared step)")
    p.add_argument("--flat", required=True, help="flat run (checkpoint at the compared step)")
    p.add_argument("--split", default="test")
    p.add_argument("--max-examples", type=int, default=512)
    p.add_argument("--out", required=True, help="output path without extension")
    p.add_argument("--conclusion", default="", help="a sentence for docs/models.md (context the numbers lack)")
    args = p.parse_args()
    hier, flat = Path(args.hier), Path(args.flat)
    result = {"split": args.split, "hierarchical": _summary(hier, args.split, args.max_examples),
              "flat": _summary(flat, args.split, args.max_examples),
              "no_event_baseline": no_event_share(hier, args.split)}
    if result["hierarchical"]["step"] != result["flat"]["step"]:
        print(f"note: compared at different steps: {result['hierarchical']['step']} vs {result['flat']['step']}")
    curves = {"hierarchical": read_log(hier, "validation"), "flat": read_log(flat, "validation")}
    last = min(max(e["step"] for e in v) for v in curves.values())
    curves = {k: [e for e in v if e["step"] <= last] for k, v in curves.items()}
    if args.conclusion:
        result["conclusion"] = args.conclusion
    result["curves"] = {k: [{"step": e["step"], "r_loss": e["r_loss"], "acc": sum(e["acc"]) / len(e["acc"])}
                            for e in v] for k, v in curves.items()}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    plot_curves(curves, out.with_suffix(".png"))
    out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: result[k] for k in ("hierarchical", "flat")}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
