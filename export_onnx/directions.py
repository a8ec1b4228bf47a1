"""Latent directions for a trained run: attribute vectors (MusicVAE paper) + principal components.

    python -m export_onnx directions runs/<name> --data data/<config>

writes runs/<name>/directions.json, which the exporter copies into model.json (`attributes` and
`directions`). For each attribute (bridge.core.attributes, plus Groove's beat/fill label for drums):

    vector = mean posterior mean z of the examples in the attribute's top quartile
           - mean posterior mean z of the examples in its bottom quartile

and the top principal components of the posterior means, each scaled to one standard deviation.
Every direction then gets its MEASURED effect: `effect_examples` posterior means are decoded (argmax)
at z + a * vector for a in `amounts` (-2..2), every attribute is measured on the decoded tokens, and
the mean per amount and the least-squares change per unit of a are stored:

    {"name", "kind": "attribute"|"label"|"pca", "vector": [z floats],
     "effect": {"amounts": [...], "mean": {attr: [...]}, "per_unit": {attr: slope}, "target": attr|None}}
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from bridge.core import attributes as attrs

FORMAT = "latent-bridge-directions"
FORMAT_VERSION = 1
AMOUNTS = (-2.0, -1.0, 0.0, 1.0, 2.0)
MIN_GROUP = 8      # examples needed on each side of an attribute split


def _batches(n: int, size: int):
    for i in range(0, n, size):
        yield slice(i, min(i + size, n))


@torch.no_grad()
def encode_means(model, tokens: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """(N, steps, tracks) tokens -> (N, z) posterior means (float64)."""
    model.eval()
    device = next(model.parameters()).device
    out = []
    for sl in _batches(len(tokens), batch_size):
        t = torch.as_tensor(np.asarray(tokens[sl], dtype=np.int64), device=device)
        mu, _ = model.encode(t)
        out.append(mu.double().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, model.z_size))


@torch.no_grad()
def decode_argmax(model, z: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """(N, z) -> (N, steps, tracks) int64 tokens, greedy (the runtime's temperature 0)."""
    device = next(model.parameters()).device
    out = []
    for sl in _batches(len(z), batch_size):
        zt = torch.as_tensor(np.asarray(z[sl], dtype=np.float32), device=device)
        out.append(model.decode_argmax(zt).long().cpu().numpy())
    return np.concatenate(out)


def quartile_split(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, float] | None:
    """Boolean masks (top, bottom) of the top and bottom quartiles, or None if the attribute barely
    varies. Ties at a quartile go to that side; if the quartiles coincide the split falls back to
    above / at-or-below the median so the two groups never overlap."""
    ok = np.isfinite(values)
    v = values[ok]
    if len(v) < 2 * MIN_GROUP:
        return None
    lo, hi = np.percentile(v, [25, 75])
    top = ok & (values >= hi)
    bottom = ok & (values <= lo)
    if lo == hi:
        med = float(np.median(v))
        top, bottom = ok & (values > med), ok & (values <= med)
    if top.sum() < MIN_GROUP or bottom.sum() < MIN_GROUP or (top & bottom).any():
        return None
    return top, bottom, float(lo), float(hi)


def principal_components(mu: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k principal axes of the posterior means scaled to one standard deviation, and the share of
    variance each explains. The sign makes the largest coordinate of each axis positive."""
    x = mu - mu.mean(axis=0, keepdims=True)
    _, s, vt = np.linalg.svd(x, full_matrices=False)
    var = s ** 2 / max(len(mu) - 1, 1)
    k = min(k, len(var))
    comps = vt[:k].copy()
    for i in range(k):
        if comps[i, np.argmax(np.abs(comps[i]))] < 0:
            comps[i] = -comps[i]
    share = var[:k] / var.sum() if var.sum() > 0 else np.zeros(k)
    return comps * np.sqrt(var[:k])[:, None], share


def measure_effects(model, tracks, base_z: np.ndarray, vectors: list[np.ndarray],
                    amounts=AMOUNTS, batch_size: int = 512) -> list[dict]:
    """For each vector: mean of every attribute over decodes of base_z + a * vector, per amount,
    and the least-squares change per unit of a."""
    names = attrs.attribute_names(tracks)
    amounts = [float(a) for a in amounts]
    e = len(base_z)
    zs = [base_z + a * v[None, :] for v in vectors for a in amounts]
    tokens = decode_argmax(model, np.concatenate(zs), batch_size) if zs else None
    out = []
    for i in range(len(vectors)):
        means = {n: [] for n in names}
        for j in range(len(amounts)):
            k = (i * len(amounts) + j) * e
            values = attrs.compute(tokens[k:k + e], tracks)
            for n in names:
                col = values[n][np.isfinite(values[n])]
                means[n].append(float(col.mean()) if len(col) else float("nan"))
        per_unit = {n: attrs.effect_per_unit(amounts, means[n]) for n in names}
        out.append({"amounts": amounts, "examples": int(e),
                    "mean": {n: [_finite(x) for x in means[n]] for n in names},
                    "per_unit": {n: _finite(per_unit[n]) for n in names}})
    return out


def _finite(x: float):
    return None if x is None or not np.isfinite(x) else round(float(x), 6)


def compute_directions(model, tokens: np.ndarray, tracks, beat_type: np.ndarray | None = None,
                       pcs: int = 8, max_examples: int = 4096, effect_examples: int = 64,
                       amounts=AMOUNTS, seed: int = 0, batch_size: int = 256) -> dict:
    """The directions.json content for `model` (a torch MusicVAE) on dataset `tokens`."""
    t0 = time.time()
    tokens = np.asarray(tokens)
    rng = np.random.default_rng(seed)
    idx = np.arange(len(tokens))
    if len(idx) > max_examples:
        idx = np.sort(rng.choice(len(tokens), max_examples, replace=False))
    tokens = tokens[idx].astype(np.int64)
    if beat_type is not None:
        beat_type = np.asarray(beat_type)[idx]
    mu = encode_means(model, tokens, batch_size)
    values = attrs.compute(tokens, tracks)
    kind = attrs.kind_of(tracks)

    dirs, skipped = [], {}
    for name in attrs.attribute_names(tracks):
        split = quartile_split(values[name])
        if split is None:
            skipped[name] = "too little variation in the data"
            continue
        top, bottom, lo, hi = split
        dirs.append({"name": name, "kind": "attribute", "target": name,
                     "vector": mu[top].mean(0) - mu[bottom].mean(0),
                     "split": {"n_top": int(top.sum()), "n_bottom": int(bottom.sum()),
                               "low_quartile": lo, "high_quartile": hi}})
    if kind == "drums":
        if beat_type is not None:
            fill, groove = beat_type == 1, beat_type == 0
            if fill.sum() >= MIN_GROUP and groove.sum() >= MIN_GROUP:
                dirs.append({"name": "fill_vs_groove", "kind": "label", "target": None,
                             "vector": mu[fill].mean(0) - mu[groove].mean(0),
                             "split": {"n_top": int(fill.sum()), "n_bottom": int(groove.sum()),
                                       "top": "fill", "bottom": "groove"}})
            else:
                skipped["fill_vs_groove"] = "fewer than %d fills or grooves labelled" % MIN_GROUP
        else:
            skipped["fill_vs_groove"] = "the dataset has no beat_type labels"
    if pcs > 0 and len(mu) > 2:
        comps, share = principal_components(mu, pcs)
        for i, (v, s) in enumerate(zip(comps, share)):
            dirs.append({"name": f"pc{i + 1}", "kind": "pca", "target": None, "vector": v,
                         "explained_variance": round(float(s), 6)})

    base = mu[:effect_examples]
    effects = measure_effects(model, tracks, base, [d["vector"] for d in dirs], amounts)
    for d, eff in zip(dirs, effects):
        eff["target"] = d["target"]
        if d["target"] is not None:
            eff["target_per_unit"] = eff["per_unit"][d["target"]]
        d["effect"] = eff
        d["norm"] = round(float(np.linalg.norm(d["vector"])), 6)
        d["vector"] = [float(np.float32(x)) for x in d["vector"]]
        del d["target"]

    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "z_size": int(mu.shape[1]),
        "examples": int(len(mu)),
        "amounts": [float(a) for a in amounts],
        "method": "attribute: mean z(top quartile) - mean z(bottom quartile); pca: principal axes "
                  "of the posterior means scaled to one standard deviation; effect: argmax decodes of "
                  "z + a * vector",
        "attributes": {d["name"]: {k: v for k, v in d.items() if k != "name"}
                       for d in dirs if d["kind"] in ("attribute", "label")},
        "directions": dirs,
        "skipped": skipped,
        "wall_time": round(time.time() - t0, 3),
    }


def write_directions(run_dir, data_dir, split: str = "validation", out=None, model=None, **kwargs) -> Path:
    """directions.json for the run's checkpoint (or for `model`, e.g. a latent chain) on `split` of
    `data_dir`; the training split when that split is missing or empty."""
    from .dataset import load_split
    from .model import load_checkpoint
    if model is None:
        model, _ = load_checkpoint(run_dir)
    try:
        data = load_split(data_dir, split)
    except FileNotFoundError:
        if split == "train":
            raise
        data = None
    if split != "train" and (data is None or not len(data["tokens"])):   # a small set may have no such song
        data = load_split(data_dir, "train")
        split = "train"
    tokens = data["tokens"]
    if tokens.shape[1:] != (model.num_steps, len(model.num_classes)):
        raise ValueError(f"{data_dir}: tokens {tokens.shape[1:]} do not fit the run's model "
                         f"({model.num_steps} steps, {len(model.num_classes)} tracks)")
    beat_type = data.get("beat_type")
    result = compute_directions(model, tokens, list(model.config.tracks), beat_type, **kwargs)
    result["config"] = model.config.name
    result["data"] = {"dir": str(data_dir), "split": split}
    out = Path(out) if out else Path(run_dir) / "directions.json"
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=1, allow_nan=False))
    tmp.replace(out)
    return out


def load_directions(path) -> dict:
    """Read and check a directions.json (the exporter's entry point)."""
    data = json.loads(Path(path).read_text())
    if data.get("format") != FORMAT:
        raise ValueError(f"{path}: not a {FORMAT} file")
    z = data["z_size"]
    for d in data["directions"]:
        if len(d["vector"]) != z:
            raise ValueError(f"{path}: direction {d['name']!r} has {len(d['vector'])} values, z_size is {z}")
    return data


# --------------------------------------------------------------------------------------------- CLI
def add_parser(subparsers) -> None:
    p = subparsers.add_parser("directions", help="latent attribute vectors + principal components of a run",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", help="run directory (best.pt / latest.pt)")
    p.add_argument("--data", required=True, help="dataset directory (data/<config>)")
    p.add_argument("--split", default="validation", choices=["train", "validation", "test"])
    p.add_argument("--out", default=None, help="output file (default RUN/directions.json)")
    p.add_argument("--pcs", type=int, default=8, help="principal components to ship (default 8)")
    p.add_argument("--max-examples", type=int, default=4096, help="examples encoded (default 4096)")
    p.add_argument("--effect-examples", type=int, default=64,
                   help="posterior means decoded per amount to measure each effect (default 64)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    torch.set_num_threads(2)
    out = write_directions(args.run, args.data, args.split, args.out, pcs=args.pcs,
                           max_examples=args.max_examples, effect_examples=args.effect_examples,
                           seed=args.seed)
    data = json.loads(out.read_text())
    print(f"wrote {out}: {len(data['directions'])} directions in {data['wall_time']}s")
    for d in data["directions"]:
        eff = d["effect"]
        tgt = eff.get("target")
        tail = f"{tgt} {eff['target_per_unit']:+.3f}/unit" if tgt and eff.get("target_per_unit") is not None else ""
        print(f"  {d['name']:16s} {d['kind']:9s} |v|={d['norm']:.3f} {tail}")
    return 0
