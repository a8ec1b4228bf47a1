"""Adding a trained surrogate to a trio model package: the graph, its sha256, model.json's
`surrogate` section and the model card's accompaniment section, after checking that the package is
the trio model the surrogate was trained against."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch

from bridge.runtime.package import parse_manifest, record_files, write_manifest

from ..model import load_checkpoint
from ..model_card import SURROGATE_HEADING as CARD_HEADING, fmt, with_section
from .encoder import load_surrogate
from .graph import GRAPH_FILE, ROLE, export_surrogate_graph


def check_same_encoder(model, package_dir) -> float:
    """The package's encoder must be `model`'s (the trio model a surrogate was trained against): both
    run on the same random trios. Returns the max difference of mu.

    Raises:
      ValueError: they differ by more than the package's weight storage allows (fp16: 5e-2)."""
    import onnxruntime as ort
    package_dir = Path(package_dir)
    info = parse_manifest(package_dir)
    rng = np.random.default_rng(2)
    toks = np.stack([rng.integers(0, n, size=(8, model.num_steps)) for n in model.num_classes], -1)
    sess = ort.InferenceSession(str(package_dir / info["graphs"]["encoder"]["file"]), providers=["CPUExecutionProvider"])
    got = sess.run(["mu"], {"inputs": model.one_hot(torch.as_tensor(toks)).numpy()})[0]
    with torch.no_grad():
        want = model.encode(torch.as_tensor(toks))[0].numpy()
    diff = float(np.abs(got - want).max())
    tol = 5e-2 if info.get("weights") == "fp16" else 1e-3
    if not diff <= tol:
        raise ValueError(f"{package_dir}: its encoder is not the trio model the surrogate was trained "
                         f"against: mu differs by {diff:.3g}")
    return diff


def _trio_model(trio_run):
    """The trio MusicVAE of a run directory or checkpoint; None when it is not at hand."""
    if not trio_run:
        return None
    run = Path(trio_run)
    if run.is_dir():
        run = next((run / f for f in ("best.pt", "latest.pt") if (run / f).is_file()), None)
    if run is None or not run.is_file():
        return None
    return load_checkpoint(run)[0]


def _check_fits(info: dict, surrogate, package_dir: Path) -> None:
    if info.get("kind") != "trio":
        raise ValueError(f"{package_dir}: a {info.get('kind')} package; the surrogate belongs in a trio package")
    want = {"z_size": surrogate.z_size, "num_steps": surrogate.num_steps}
    for k, v in want.items():
        if info.get(k) != v:
            raise ValueError(f"{package_dir}: {k} is {info.get(k)}, the surrogate has {v}")
    if info["tracks"][surrogate.track].get("num_classes") != surrogate.input_size:
        raise ValueError(f"{package_dir}: track {surrogate.track} has {info['tracks'][surrogate.track].get('num_classes')} "
                         f"classes, the surrogate {surrogate.input_size}")


def add_surrogate_to_package(run_dir, package_dir, trio_run=None, check_trio: bool = True) -> dict:
    """Adds the surrogate of `run_dir` (or a surrogate.pt) to the trio package at `package_dir` as
    `surrogate_encoder.onnx` (in the package's weight storage).

    Args:
      run_dir: the surrogate run directory or checkpoint.
      package_dir: the trio package; model.json gets the graph, its sha256 and a `surrogate`
        section, MODEL_CARD.md (when there) its accompaniment section.
      trio_run: the trio run to check the package's encoder against (default: the one the
        checkpoint records; no check when it is not at hand).
      check_trio: whether to check at all.

    Returns:
      The package's new model.json.

    Raises:
      ValueError: not a trio package, sizes that do not fit the surrogate, or a package encoder
        that is not the trio model the surrogate was trained against.
    """
    package_dir = Path(package_dir)
    surrogate, sinfo = load_surrogate(run_dir)
    _check_fits(parse_manifest(package_dir), surrogate, package_dir)
    diff = None
    if check_trio:
        trio = _trio_model(trio_run or sinfo.get("trio_run"))
        diff = None if trio is None else check_same_encoder(trio, package_dir)
    held = sinfo.get("metrics") or {}
    summary = {"track": surrogate.track, "loss": sinfo.get("loss"), "init": sinfo.get("init"),
               "steps": sinfo.get("step"), "trio_step": sinfo.get("trio_step"), "trio_encoder_max_abs_diff": diff,
               "metrics": {k: held[k] for k in ("n", "latent_mse", "baseline_latent_mse", "decode") if k in held}}
    return install_surrogate(package_dir, surrogate, summary, sinfo)


def install_surrogate(package_dir, surrogate, summary: dict, sinfo: dict) -> dict:
    """Writes `surrogate` (an encoder of one track with track, num_steps, input_size, z_size) into a
    trio package as surrogate_encoder.onnx (the package's weight storage), records it and `summary`
    (+ the graph's parity) as model.json's `surrogate` section and writes the card's accompaniment
    section. Returns the new model.json.

    Raises:
      ValueError: not a trio package, or sizes that do not fit the surrogate.
    """
    package_dir = Path(package_dir)
    info = parse_manifest(package_dir)
    _check_fits(info, surrogate, package_dir)
    tmp = Path(tempfile.mkdtemp(prefix=".surrogate.", dir=package_dir))
    try:
        entry = export_surrogate_graph(surrogate, tmp / GRAPH_FILE, weights=info.get("weights", "fp32"))
        parity = entry.pop("parity_max_abs_diff", None)
        os.replace(tmp / GRAPH_FILE, package_dir / GRAPH_FILE)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    info["graphs"][ROLE] = entry
    record_files(info, package_dir, [GRAPH_FILE])
    info["surrogate"] = {**summary, "parity_max_abs_diff": parity}
    card = package_dir / "MODEL_CARD.md"
    if card.is_file():
        card.write_text(surrogate_card_section(card.read_text(), info["surrogate"], sinfo))
        record_files(info, package_dir, [card.name])
    write_manifest(package_dir, info)
    return info


def surrogate_card_section(card: str, summary: dict, sinfo: dict) -> str:
    """Writes or replaces a model card's accompaniment section.

    Args:
      card: the card's text.
      summary: model.json's `surrogate` section.
      sinfo: the surrogate checkpoint's entries (its held-out split).

    Returns:
      The card with the section (the held-out numbers against the baselines).
    """
    m = summary.get("metrics") or {}
    base = m.get("baseline_latent_mse") or {}
    dec = m.get("decode") or {}
    lines = [CARD_HEADING, "",
             f"`surrogate_encoder.onnx` predicts z from the lead track alone (loss `{summary.get('loss')}`, "
             f"init `{summary.get('init')}`, best validation at step {summary.get('steps')}, against the trio "
             f"checkpoint of step {summary.get('trio_step')}). Held-out songs ({sinfo.get('held_out_split', 'test')} "
             f"split, {m.get('n', '?')} windows):", "",
             "| latent MSE to the trio posterior mean | value |", "|---|---|",
             f"| surrogate | {fmt(m.get('latent_mse'), 4)} |",
             f"| trio encoder fed the melody alone (bass, drums silent) | {fmt(base.get('trio_encoder_melody_only'), 4)} |",
             f"| best constant (the held-out mean) | {fmt(base.get('held_out_mean'), 4)} |",
             f"| zero (the prior mean) | {fmt(base.get('zero'), 4)} |", ""]
    if dec:
        names = list(dec.get("true_z", {}))
        lines += [f"Tracks decoded (argmax) from each z, step accuracy against the true tracks ({dec.get('n')} windows):", "",
                  "| z | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
        for key, label in (("true_z", "true (trio encoder)"), ("predicted_z", "surrogate (melody only)"),
                           ("melody_only_z", "trio encoder, melody alone")):
            if key in dec:
                lines.append(f"| {label} | " + " | ".join(fmt(dec[key][n]["acc"]) for n in names) + " |")
        lines.append("")
    return with_section(card, "\n".join(lines))
