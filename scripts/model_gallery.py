"""Pictures for docs/models.md from a shipped package, through the runtime (no torch):
four samples and one interpolation between two held-out windows of the model's test split.

    .venv/bin/python scripts/model_gallery.py mel_2bar --data data/mel_2bar --out docs/models
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import bridge
from bridge.io.pianoroll import save_pianoroll_png
from export_onnx.dataset import load_split   # test.npz or a sharded set (imports no torch)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model")
    p.add_argument("--data", required=True, help="dataset directory (test.npz or test shards)")
    p.add_argument("--out", default="docs/models")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    m = bridge.load_model(args.model)
    samples = m.sample(4, temperature=0.5, seed=args.seed)
    save_pianoroll_png(samples, out / f"{m.name}_samples.png", titles=[f"sample {i} (T=0.5)" for i in range(4)])
    tokens = np.asarray(load_split(args.data, "test")["tokens"]).astype(np.int64)
    rng = np.random.default_rng(args.seed)
    a, b = (m.tokens_to_notes(tokens[i])[0] for i in rng.choice(len(tokens), 2, replace=False))
    seqs = m.interpolate(a, b, steps=5, temperature=0.0)
    titles = ["A (held-out)"] + [f"step {i}" for i in range(5)] + ["B (held-out)"]
    save_pianoroll_png([a, *seqs, b], out / f"{m.name}_interpolation.png", titles=titles)
    print(out / f"{m.name}_samples.png", out / f"{m.name}_interpolation.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
