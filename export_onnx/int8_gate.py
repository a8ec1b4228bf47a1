"""What the int8 graphs of a package share (export_onnx.int8: the decoder step, export_onnx.int8_encoder:
the encoder): the held-out windows, argmax decodes and their agreement, the package's size, the
manifest section and model-card section they write."""
from __future__ import annotations

import os
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np

from bridge.runtime import package as P
from bridge.runtime.prior import PRIOR_KEY

MAX_PACKAGE_MB = 15.0        # export.MAX_PACKAGE_MB (not imported: export imports torch)


def op_counts(model) -> dict:
    """op type -> count of the nodes of an ONNX model."""
    out: dict = {}
    for n in model.graph.node:
        out[n.op_type] = out.get(n.op_type, 0) + 1
    return out


def held_out_windows(package_dir, config: str, n_windows: int | None, seed: int = 0, bars: int = 2,
                     data_root=None, midi_dirs=None, cache_dir=None) -> dict:
    """The audit's held-out windows of a package: its seeded subset of the rebuilt test split
    (export_onnx.audit: the package card's sources under data_root, cached in data/audit/).

    Returns:
        {tokens (N, steps, tracks) int64, sources, test_windows, seed}.

    Raises:
        FileNotFoundError: a source folder is missing (pass midi_dirs).
    """
    from . import audit as A
    if midi_dirs:
        dirs = [Path(d) for d in midi_dirs]
    else:
        dirs = [Path(data_root or A.DATA_ROOT) / label for label in A.package_sources(package_dir, config)]
    missing = [str(d) for d in dirs if not d.is_dir()]
    if not dirs or missing:
        raise FileNotFoundError(f"held-out data of {config} not found ({', '.join(missing) or 'no sources'}); "
                                f"pass --midi-dir or --data-root")
    data = A.load_test_windows(config, dirs, cache_dir or A.CACHE_DIR)
    n = n_windows if n_windows is not None else (512 if bars <= 2 else 256)
    idx = A.seeded_subset(len(data["tokens"]), n, seed)
    return {"tokens": np.asarray(data["tokens"][idx], dtype=np.int64), "sources": ",".join(d.name for d in dirs),
            "test_windows": int(len(data["tokens"])), "seed": seed}


def encode_all(model, tokens: np.ndarray, chunk: int) -> np.ndarray:
    """Posterior means (N, z) of (N, steps, tracks) tokens, `chunk` windows per call."""
    return np.concatenate([model.encode_tokens(tokens[i:i + chunk]) for i in range(0, len(tokens), chunk)])


def decode_all(model, z: np.ndarray, chunk: int) -> np.ndarray:
    return np.concatenate([model.decode_tokens(z[i:i + chunk], 0.0) for i in range(0, len(z), chunk)])


def agreements(ref: np.ndarray, got: np.ndarray, names: list[str]) -> dict:
    same = ref == got
    per_seq = same.mean(axis=(1, 2))      # a flip changes the rest of its sequence: sequences are the unit
    se = float(per_seq.std(ddof=1) / np.sqrt(len(per_seq))) if len(per_seq) > 1 else None
    return {"agreement": float(same.mean()), "se": se, "identical": float(same.all(axis=(1, 2)).mean()),
            "tracks": {name: float(same[..., k].mean()) for k, name in enumerate(names)}}


def package_megabytes(package_dir, info: dict, extra: dict | None = None, without=()) -> float:
    """The package's size as export counts it (the listed files + model.json, MB = 1e6 bytes), with
    `extra` {name: bytes} added and the names in `without` left out; a pair's sampler directory
    counts too (add-sampler's limit is on the two together)."""
    pkg = Path(package_dir)
    names = [f for f in info.get("files", {}) if f not in without and f not in (extra or {})]
    total = sum((pkg / f).stat().st_size for f in names if (pkg / f).is_file())
    total += (pkg / P.MANIFEST).stat().st_size + sum((extra or {}).values())
    sampler = pkg / P.SAMPLER_DIR
    if info.get(P.SAMPLER_KEY) and sampler.is_dir():
        total += sum(f.stat().st_size for f in sampler.rglob("*") if f.is_file())
    return total / 1e6


def format_se(v) -> str:
    return "" if v is None else f" ± {v:.4f}"


def write_section(pkg: Path, info: dict, key: str, fname: str, entry: dict, card_section: str) -> None:
    """Record an int8 graph's manifest section `key` (its file `fname` listed in `files` when usable,
    dropped from it when not) and put `card_section` into MODEL_CARD.md."""
    from .model_card import with_section
    card = pkg / "MODEL_CARD.md"
    text = card.read_text() if card.is_file() else f"# {info.get('name', pkg.name)} — model card\n"
    card.write_text(with_section(text, card_section))
    refreshed = [card.name] if card.name in info.get("files", {}) else []

    def change(i: dict):
        i[key] = entry
        if not entry["usable"]:
            i.get("files", {}).pop(fname, None)

    P.update_manifest(pkg, change, files=([fname] if entry["usable"] else []) + refreshed)


def new_entry(info: dict, source_file: str, measured: dict, candidate_bytes: int, *, size: float,
              min_agreement: float, per_channel: bool, window_seed: int, prior_seed: int, sources: str,
              test_windows: int, **details) -> dict:
    """An int8 graph's manifest section before the verdict: the float graph it was made from, the
    measurement (`measure_*_agreement`: agreements, their standard errors, identical shares, tracks,
    counts; mu_rel_error for the encoder), the data, the sizes, and the graph's own `details`."""
    keys = ("agreement_recon", "agreement_prior", "se_recon", "se_prior", "identical_recon", "identical_prior",
            "mu_rel_error")
    return {"file": None, "sha256": None, "source_file": source_file, "source_sha256": info["files"][source_file],
            **{k: measured[k] for k in keys if k in measured},
            "tracks": measured["tracks"], "n_windows": measured["n_windows"], "n_prior": measured["n_prior"],
            "window_seed": window_seed, "prior_seed": prior_seed, "sources": sources, "test_windows": test_windows,
            "per_channel": bool(per_channel), **details, "bytes": candidate_bytes, "package_mb": round(size, 3),
            "min_agreement": float(min_agreement), "usable": False, "reason": "",
            "pair": bool(info.get(P.SAMPLER_KEY)), "prior_components": (info.get(PRIOR_KEY) or {}).get("components"),
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def settle(pkg: Path, info: dict, entry: dict, candidate: Path, *, size: float, min_agreement: float,
           max_mb: float | None, key: str, fname: str, section: Callable[[dict], str], write: bool) -> dict:
    """The gate's verdict on an int8 graph and what follows from it: `entry` gets usable, reason, file
    and sha256 (kept when the lower of its two agreements is >= `min_agreement` and the package stays
    within `max_mb`); when
    `write`, the candidate replaces `fname` in the package (or an older file is removed) and the
    manifest section `key` and the card section `section(entry)` are written. Returns `entry`."""
    low = min(entry["agreement_recon"], entry["agreement_prior"])
    if low < min_agreement:
        entry["reason"] = f"argmax agreement {low:.4f} is below the {min_agreement:.2f} gate"
    elif max_mb is not None and size > max_mb:
        entry["reason"] = (f"the package would be {size:.2f} MB with it, over the {max_mb:g} MB limit "
                           f"(agreement {low:.4f} passes the {min_agreement:.2f} gate)")
    else:
        entry.update(usable=True, reason=f"argmax agreement {low:.4f} >= the {min_agreement:.2f} gate",
                     file=fname, sha256=P.sha256_file(candidate))
    if write:
        target = pkg / fname
        if entry["usable"]:
            part = target.with_name(target.name + ".tmp")
            shutil.copyfile(candidate, part)
            os.replace(part, target)
        elif target.exists():
            target.unlink()
        write_section(pkg, info, key, fname, entry, section(entry))
    return entry


def record_agreement(out: dict, label: str, a: dict) -> None:
    """Put an `agreements` result under `label` (recon | prior) into a measurement: agreement_<label>,
    se_<label>, identical_<label> and out["tracks"][track][label]."""
    out[f"agreement_{label}"] = a["agreement"]
    out[f"se_{label}"] = a["se"]
    out[f"identical_{label}"] = a["identical"]
    for name, value in a["tracks"].items():
        out.setdefault("tracks", {}).setdefault(name, {})[label] = value
