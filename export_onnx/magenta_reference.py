"""Random magenta.js MusicVAE checkpoints and a runner for the magenta.js reference.

The Magenta-import tests (tests/export_onnx/test_import_magenta.py) check our importer and runtime
against @magenta/music on these checkpoints; the benchmark's peers (benchmarks/peers.py) time the
three implementations on the same weights. The checkpoints follow the variable names and shapes
magenta.js `MusicVAE.initialize()` reads (music/src/music_vae/model.ts); the reference is
@magenta/music itself, installed by `npm ci --prefix tests/magenta_js` (a dev install: make test)
and run under Node by tests/magenta_js/harness.js.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from export_onnx.magenta_import import (CONDUCTOR_PREFIX, ROLL_DEPTH, bidi_prefix, decoder_prefixes,
                                        write_checkpoint)

MAGENTA_JS_DIR = Path(__file__).resolve().parents[1] / "tests" / "magenta_js"
HARNESS = MAGENTA_JS_DIR / "harness.js"


def magenta_js_available() -> str | None:
    """None when node and the installed @magenta/music are there, else the reason."""
    if shutil.which("node") is None:
        return "node is not installed"
    if not (MAGENTA_JS_DIR / "node_modules" / "@magenta" / "music" / "node" / "music_vae.js").is_file():
        return "magenta.js is not installed: run `npm ci --prefix tests/magenta_js`"
    return None


def run_magenta_js(job: dict, workdir: Path, timeout: float = 300.0) -> dict:
    """Run tests/magenta_js/harness.js on `job` (see the harness for its fields) in `workdir`.

    Raises:
        RuntimeError: the harness failed (its stderr's tail in the message).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    job_path, out_path = workdir / "job.json", workdir / "out.json"
    job_path.write_text(json.dumps(job))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run(["node", str(HARNESS), str(job_path), str(out_path)], cwd=MAGENTA_JS_DIR,
                          capture_output=True, text=True, timeout=timeout, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"magenta.js harness failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return json.loads(out_path.read_text())


@dataclass
class Arch:
    """Sizes of a random checkpoint."""
    enc_units: int
    dec_units: int
    dec_layers: int
    z_size: int
    bar_enc_units: int = 0
    cond_units: int = 0
    cond_layers: int = 2


def _lstm(rng, weights: dict, prefix: str, in_size: int, units: int, scale: float):
    fan = in_size + units
    weights[prefix + "kernel"] = rng.normal(0.0, scale / np.sqrt(fan), (fan, 4 * units)).astype(np.float32)
    weights[prefix + "bias"] = rng.normal(0.0, 0.2, 4 * units).astype(np.float32)


def _dense(rng, weights: dict, prefix: str, n_in: int, n_out: int, scale: float, bias: float = 0.2):
    weights[prefix + "kernel"] = rng.normal(0.0, scale / np.sqrt(n_in), (n_in, n_out)).astype(np.float32)
    weights[prefix + "bias"] = rng.normal(0.0, bias, n_out).astype(np.float32)


def converter_depths(converter: dict) -> tuple[list[int], int]:
    """(decoder one-hot depth per track, encoder input depth) of a magenta.js dataConverter spec."""
    t, a = converter["type"], converter["args"]
    mel = lambda m: m["maxPitch"] - m["minPitch"] + 3  # noqa: E731
    if t == "MelodyConverter":
        return [mel(a)], mel(a)
    if t == "DrumsConverter":
        return [512], ROLL_DEPTH
    if t == "TrioConverter":
        d = [mel(a["melArgs"]), mel(a["bassArgs"]), 512]
        return d, sum(d)
    raise ValueError(t)


def random_weights(converter: dict, arch: Arch, seed: int, sigma: bool = False) -> dict[str, np.ndarray]:
    """Random weights for a magenta.js MusicVAE with this converter (flat or hierarchical from
    `numSegments`; split per-track decoders for TrioConverter, as magenta.js loads them)."""
    rng = np.random.default_rng(seed)
    depths, in_depth = converter_depths(converter)
    hier = bool(converter["args"].get("numSegments"))
    splits = 3 if converter["type"] == "TrioConverter" else 0
    w: dict[str, np.ndarray] = {}
    if hier:
        for d in ("fw", "bw"):
            _lstm(rng, w, bidi_prefix(d, 0), in_depth, arch.bar_enc_units, 2.0)
            _lstm(rng, w, bidi_prefix(d, 1), 2 * arch.bar_enc_units, arch.enc_units, 2.0)
    else:
        for d in ("fw", "bw"):
            _lstm(rng, w, bidi_prefix(d), in_depth, arch.enc_units, 2.0)
    _dense(rng, w, "encoder/mu/", 2 * arch.enc_units, arch.z_size, 1.5)
    if sigma:
        _dense(rng, w, "encoder/sigma/", 2 * arch.enc_units, arch.z_size, 1.0)
    cond = arch.z_size
    if hier:
        _dense(rng, w, CONDUCTOR_PREFIX + "initial_state/", arch.z_size, 2 * arch.cond_layers * arch.cond_units, 1.5)
        for l in range(arch.cond_layers):
            _lstm(rng, w, f"{CONDUCTOR_PREFIX}cell_{l}/lstm_cell/", 1 if l == 0 else arch.cond_units,
                  arch.cond_units, 2.0)
        cond = arch.cond_units
    groups = [[d] for d in depths] if splits else [depths]
    for prefix, group in zip(decoder_prefixes(hier, splits), groups):
        out = sum(group)
        _dense(rng, w, prefix + "z_to_initial_state/", cond, 2 * arch.dec_layers * arch.dec_units, 1.5)
        for l in range(arch.dec_layers):
            _lstm(rng, w, f"{prefix}multi_rnn_cell/cell_{l}/lstm_cell/",
                  out + cond if l == 0 else arch.dec_units, arch.dec_units, 2.5)
        _dense(rng, w, prefix + "output_projection/", arch.dec_units, out, 6.0, bias=0.5)
    return w


def make_checkpoint(path: Path, converter: dict, arch: Arch, seed: int, quantize: str | None = None,
                    sigma: bool = False, shard_bytes: int = 1 << 20, **spec_extra) -> Path:
    """A random magenta.js checkpoint directory at `path` (config.json, weights manifest, shards)."""
    config = {"type": "MusicVAE", "dataConverter": converter, "useBooleanDecoder": False, **spec_extra}
    return write_checkpoint(path, config, random_weights(converter, arch, seed, sigma), quantize=quantize,
                            shard_bytes=shard_bytes)


def random_tokens(depths: list[int], batch: int, steps: int, seed: int) -> np.ndarray:
    """Plausible token arrays (B, steps, tracks): melodies with notes, rests and holds; drum bitmasks."""
    rng = np.random.default_rng(seed)
    out = np.zeros((batch, steps, len(depths)), dtype=np.int64)
    for k, d in enumerate(depths):
        if d == 512:
            hits = rng.random((batch, steps, 9)) < np.array([0.3, 0.2, 0.5, 0.1, 0.05, 0.05, 0.05, 0.05, 0.1])
            out[..., k] = (hits * (1 << np.arange(9))).sum(-1)
        else:
            r = rng.random((batch, steps))
            pitch = rng.integers(2, d, (batch, steps))
            out[..., k] = np.where(r < 0.35, pitch, np.where(r < 0.45, 1, 0))
    return out


def note_sequence_like(notes) -> dict:
    """bridge Notes as the harness's NoteSequenceLike: steps of a sixteenth, the trio's tracks as
    magenta.js's TrioConverter reads them (instrument = track, bass program 33, drums isDrum)."""
    programs = {0: 0, 1: 33, 2: 0}
    return {"notes": [{"pitch": n.pitch, "start": round(n.start * 4), "end": round(n.end * 4), "isDrum": n.is_drum,
                       "program": programs.get(n.track, 0), "instrument": n.track} for n in notes]}
