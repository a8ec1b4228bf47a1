"""`python -m export_onnx fit-prior bridge/models/<name> --data data/<config>`: a fitted prior.

    python -m export_onnx fit-prior bridge/models/drums_2bar --data data/drums_2bar

A high-KL package reconstructs well but its draws of N(0, I) leave the data. This writes a Gaussian
fitted to the package's own codes (posterior means of its training windows) on their top k principal
axes into the package (bridge/runtime/prior.py: `sample` then draws z = mean + eps @ basis,
eps ~ N(0, I_k), and decodes with the package itself). k is chosen on the validation split, never on
the test split the audit reads: for each candidate k, `--samples` prior samples decoded at T = 0.5
are compared with the validation windows on the audit's sample statistics for the kind (drums: hits
per bar, walls, kick on beat 1, backbeat, empty bars; melody: notes per bar, empty bars, range, in
key, leaps) and on their spread (mean share of differing tokens between two windows), and the k
with the smallest mean relative error wins. Few axes give typical but alike samples, many give
varied ones that drift from the data (a drums_2bar table: docs/training.md).

A package that shipped a sampler (a low-KL pair, export_onnx.pair) has it removed: the fitted prior
replaces it (the runtime refuses a package with both). A kept int8 step or encoder was gated on the
old prior samples: it is dropped (its section says why) until `add-int8` gates it again. Run `audit`
(and `add-int8`) afterwards. The codes are the float encoder's.
"""
from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path

import numpy as np

from bridge.runtime import package as P
from bridge.runtime.prior import PRIOR_FILE, PRIOR_KEY, LatentPrior

from .audit import sample_statistics
from .int8_gate import encode_all
from .model_card import PRIOR_HEADING, SAMPLER_HEADING, card_section, with_section

CANDIDATES = (4, 8, 12, 16, 24, 32, 48, 64, 96, 128, 256, 512)
# relative errors are taken against max(|real|, FLOOR): a statistic that is 0 on real windows
# (walls, empty bars) still counts, as a share of 0.05
FLOOR = 0.05
SPREAD_WINDOWS = 512
ENCODE_CHUNK = 512          # training windows per encoder call
STALE_INT8 = ("gated on the prior samples of before fit-prior: run python -m export_onnx add-int8 again "
              "(the gate decodes the new prior's draws)")


def principal_axes(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean (z,), variances (z,) descending, axes (z, z): column j the j-th axis) of the codes."""
    codes = np.asarray(codes, dtype=np.float64)
    if len(codes) < 2:
        raise ValueError("a prior needs at least two codes")
    mean = codes.mean(0)
    values, vectors = np.linalg.eigh(np.cov(codes, rowvar=False))
    order = np.argsort(values)[::-1]
    return mean, np.clip(values[order], 0.0, None), vectors[:, order]


def prior_of(mean, values, vectors, k: int) -> LatentPrior:
    """The Gaussian on the top k axes: basis rows sqrt(variance_j) * axis_j."""
    return LatentPrior(mean, np.sqrt(values[:k])[:, None] * vectors[:, :k].T)


def spread(tokens: np.ndarray, limit: int = SPREAD_WINDOWS) -> float:
    """Mean share of differing tokens between two of the first `limit` windows: how varied they are."""
    t = np.asarray(tokens)[:limit].reshape(min(len(tokens), limit), -1)
    n = len(t)
    if n < 2:
        return 0.0
    diff = sum(float((t[i + 1:] != t[i]).mean(axis=1).sum()) for i in range(n - 1))
    return diff / (n * (n - 1) / 2)


def statistics(model, tokens: np.ndarray) -> dict:
    """The audit's sample statistics of every track of (N, steps, tracks) tokens, plus `spread`."""
    out = {k: float(v) for k, v in sample_statistics(model, tokens).items() if v is not None}
    out["spread"] = spread(tokens)
    return out


def relative_error(stats: dict, real: dict) -> float:
    """Mean over the statistics both have of |sample - real| / max(|real|, FLOOR)."""
    keys = [k for k in real if k in stats]
    return float(np.mean([abs(stats[k] - real[k]) / max(abs(real[k]), FLOOR) for k in keys]))


def choose_components(model, axes, val_tokens: np.ndarray, candidates=CANDIDATES, n: int = 1024,
                      seed: int = 11, temperature: float = 0.5) -> tuple[int, list[dict]]:
    """The k whose decoded prior samples are nearest the validation windows (see the module doc).

    Returns:
        (k, one row per candidate: components, error, and each statistic of the samples; a last row
        with components None holds the validation windows' own statistics).
    """
    mean, values, vectors = axes
    if len(val_tokens) < 2:
        raise ValueError(f"choosing k needs validation windows; got {len(val_tokens)}")
    real = statistics(model, val_tokens[np.random.default_rng(0).permutation(len(val_tokens))])
    ks = sorted({c for c in candidates if 1 <= c <= len(values)})
    if not ks:
        raise ValueError(f"no candidate in {list(candidates)} fits a z of {len(values)} numbers")
    # the same standard normals for every k (its first k columns) and the same decoding noise: the
    # candidates differ by their axes only, not by their draws
    eps = np.random.default_rng(seed).standard_normal((n, ks[-1])).astype(np.float32)
    rows = []
    for k in ks:
        z = (mean + eps[:, :k] @ prior_of(mean, values, vectors, k).basis).astype(np.float32)
        s = statistics(model, model.decode_tokens(z, temperature, np.random.default_rng(seed + 1)))
        rows.append({"components": k, "error": relative_error(s, real), **s})
    best = min(rows, key=lambda r: r["error"])["components"]
    return best, rows + [{"components": None, "error": None, **real}]


def fit_prior(package_dir, data_dir, components="auto", candidates=CANDIDATES, n: int = 1024, seed: int = 11,
              temperature: float = 0.5, threads: int = 2) -> dict:
    """Fit, choose k (unless `components` is an int) and write the prior into the package.

    Returns:
        The manifest's `prior` section.
    Raises:
        ModelError: a broken package. ValueError: data that does not fit the package, too few windows,
        or a fixed `components` outside 1..z_size.
    """
    from bridge.runtime.engine import Model
    from .dataset import load_split
    pkg = Path(package_dir)
    info = P.read_manifest(pkg)
    P.verify_files(pkg, info)
    train = np.asarray(load_split(data_dir, "train")["tokens"])
    val = np.asarray(load_split(data_dir, "validation")["tokens"])
    if train.shape[1:] != (info["num_steps"], len(info["tracks"])) or val.shape[1:] != train.shape[1:]:
        raise ValueError(f"{data_dir}: windows {train.shape[1:]} do not fit {info['name']} "
                         f"({info['num_steps']} steps, {len(info['tracks'])} tracks)")
    # encode_tokens / decode_tokens never read a prior: a package fitted before is fitted anew; the
    # float graphs, whatever int8 ones the package keeps
    model = Model(pkg, threads=threads, verify=False, precision="fp32")
    axes = principal_axes(encode_all(model, train, ENCODE_CHUNK))
    if components == "auto":
        k, table = choose_components(model, axes, val, candidates, n, seed, temperature)
    else:
        k, table = int(components), []
        if not 1 <= k <= model.z_size:
            raise ValueError(f"components must be 1..{model.z_size}, got {k}")
    explained = float(axes[1][:k].sum() / axes[1].sum()) if axes[1].sum() > 0 else None
    entry = {"file": PRIOR_FILE, "components": k, "explained_variance": explained,
             "fitted_on": {"data": Path(data_dir).name, "split": "train", "windows": len(train)},
             "chosen_on": {"split": "validation", "windows": len(val), "samples": n, "seed": seed,
                           "temperature": temperature} if table else None,
             "table": table}
    sampler = P.named_section(pkg, info, P.SAMPLER_KEY, "dir")     # (section, folder) or None
    # written next to the package's files, then renamed over: a failure here leaves the package as it was
    tmp = pkg / f".{PRIOR_FILE}.tmp"
    prior_of(*axes, k).save(tmp)
    os.replace(tmp, pkg / PRIOR_FILE)
    files = [PRIOR_FILE]
    card = pkg / "MODEL_CARD.md"
    if card.is_file():
        text = card.read_text()
        old = card_section(text, SAMPLER_HEADING)
        if old is not None:
            text = text.replace(old, "", 1).replace("\n\n\n", "\n\n")
        card.write_text(with_section(text, prior_section(entry, sampler is not None)))
        files.append(card.name)
    stale = []

    def change(i):
        i.pop(P.SAMPLER_KEY, None)
        i[PRIOR_KEY] = entry
        # an int8 graph kept by a gate that decoded the old prior samples: gated again by add-int8
        for key, _ in P.INT8_GRAPHS.values():
            q = i.get(key)
            if isinstance(q, dict) and q.get("file"):
                stale.append(q["file"])
                i.get("files", {}).pop(q["file"], None)
                q.update(file=None, sha256=None, usable=False, reason=STALE_INT8)
    P.update_manifest(pkg, change, files=files)
    for name in stale:
        (pkg / name).unlink(missing_ok=True)
    if sampler is not None:
        shutil.rmtree(pkg / sampler[1], ignore_errors=True)     # no longer in the manifest
    return entry


def _stat_columns(table: list[dict]) -> list[str]:
    return [k for k in table[0] if k not in ("components", "error")]


def prior_section(entry: dict, dropped_sampler: bool = False) -> str:
    """The card's section: what `sample` draws from, and the table k was chosen by."""
    k, fit = entry["components"], entry["fitted_on"]
    ev = entry.get("explained_variance")
    lines = [PRIOR_HEADING, "",
             f"`sample` draws z = mean + eps @ basis with eps ~ N(0, I) of {k} numbers: a Gaussian fitted to "
             f"the posterior means of the {fit['windows']:,} {fit['split']} windows ({fit['data']}) on their top "
             f"{k} principal axes" + (f" ({ev:.0%} of their variance)" if ev is not None else "") + ", decoded "
             "by this package itself (bridge/runtime/prior.py; `python -m export_onnx fit-prior`). Every other "
             "op encodes with this package as before; knob-first latents and a palette's free corners are "
             "draws of the same prior."]
    if dropped_sampler:
        lines += ["", "It replaces the low-KL sampler package this package shipped before (a pair)."]
    table = entry.get("table") or []
    if table:
        c = entry["chosen_on"]
        cols = _stat_columns(table)
        lines += ["", f"k chosen on the {c['split']} split ({c['windows']:,} windows; {c['samples']:,} samples per k "
                  f"at T = {c['temperature']}, seed {c['seed']}): the smallest mean relative error of the samples' "
                  "statistics against the validation windows' (`spread`: mean share of differing tokens between "
                  "two windows — few axes give alike samples).", "",
                  "| k | error | " + " | ".join(cols) + " |", "|---" * (len(cols) + 2) + "|"]
        for r in table:
            name = "validation windows" if r["components"] is None else (
                f"**{r['components']}**" if r["components"] == k else str(r["components"]))
            err = "" if r["error"] is None else f"{r['error']:.3f}"
            lines.append(f"| {name} | {err} | " + " | ".join(f"{r[c]:.3f}" if c in r else "" for c in cols) + " |")
    return "\n".join(lines) + "\n"


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("fit-prior", help="fit the Gaussian `sample` draws z from to a package's own codes",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("package", help="the package (its encoder gives the codes, its decoder plays the samples)")
    p.add_argument("--data", required=True, help="the dataset directory (train.npz fits, validation.npz chooses k)")
    p.add_argument("--components", default="auto", help="k, or auto: chosen on the validation split (default)")
    p.add_argument("--samples", type=int, default=1024, help="prior samples per candidate k (default 1024)")
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--threads", type=int, default=2)
    p.set_defaults(func=_main)


def _main(args: argparse.Namespace) -> int:
    comps = args.components if args.components == "auto" else int(args.components)
    entry = fit_prior(args.package, args.data, comps, n=args.samples, seed=args.seed, threads=args.threads)
    print(f"{args.package}: prior of {entry['components']} components in {entry['file']}")
    print(prior_section(entry))
    return 0
