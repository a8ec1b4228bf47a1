"""The model packages a benchmark run measures, staged in one directory for the daemon.

Random-weight packages of the configs' "small" sizes are built once with the exporter
(export_onnx.tiny, size "small") and cached under the system temp dir, keyed by a hash of the code
that shapes them. Every package, built or given, is *staged*: a directory whose graph files are
symlinks to the originals and whose model.json is a copy, with a few random latent directions added
when the package has none (the `knob` op moves along them; with random weights any vector of the
right size costs the same). The originals are never written.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bridge.runtime.package import package_dirs

ROOT = Path(__file__).resolve().parents[1]
SMALL_CONFIGS = ("mel_2bar", "drums_2bar", "mel_16bar", "trio_16bar")
_SHAPING_SOURCES = ("export_onnx/model.py", "export_onnx/lstm.py", "export_onnx/export.py",
                    "export_onnx/tiny.py", "export_onnx/configs.py", "bridge/core/codecs.py",
                    "bridge/runtime/package.py")


@dataclass
class Package:
    name: str            # the name the daemon serves it under
    path: Path           # the original package directory
    source: str          # "random small", "shipped" or "--models"
    info: dict           # its model.json

    @property
    def bars(self) -> int:
        return int(self.info["bars"])

    @property
    def kind(self) -> str:
        return str(self.info["kind"])

    @property
    def size_name(self) -> str:
        return str((self.info.get("size") or {}).get("name", "?"))

    def describe(self) -> dict:
        dec = self.info.get("decoder", {})
        return {"name": self.name, "source": self.source, "path": str(self.path), "kind": self.kind,
                "bars": self.bars, "hierarchical": bool(self.info.get("hierarchical")),
                "z_size": self.info.get("z_size"), "size": self.size_name,
                "decoder_units": dec.get("units"), "decoder_layers": dec.get("layers"),
                "weights": self.info.get("weights", "fp32"),
                "random_weights": bool((self.info.get("training") or {}).get("random_weights"))}


def _cache_key(size: str) -> str:
    h = hashlib.sha256(size.encode())
    for rel in _SHAPING_SOURCES:
        p = ROOT / rel
        h.update(rel.encode())
        h.update(p.read_bytes() if p.exists() else b"-")
    try:
        from importlib.metadata import version
        h.update(version("torch").encode())
    except Exception:
        pass
    return h.hexdigest()[:16]


def build_random_packages(configs=SMALL_CONFIGS, size: str = "small", log=print) -> Path:
    """A directory with one random-weight package per config at `size` (built once, then cached)."""
    cache = Path(tempfile.gettempdir()) / f"latent-bridge-bench-{size}-{_cache_key(size)}"
    missing = [c for c in configs if not (cache / c / "model.json").is_file()]
    if not missing:
        return cache
    from export_onnx.tiny import build_tiny_package   # torch: only when something must be built
    cache.mkdir(parents=True, exist_ok=True)
    for c in missing:
        log(f"building a random-weight {size} package of {c} (once; cached in {cache})")
        tmp = Path(tempfile.mkdtemp(prefix=f".{c}.", dir=cache))
        try:
            build_tiny_package(c, tmp / c, seed=0, size=size)
            try:
                os.replace(tmp / c, cache / c)
            except OSError:       # a parallel run got there first
                if not (cache / c / "model.json").is_file():
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return cache


def shipped_packages() -> list[Path]:
    from bridge.runtime.package import MODELS_DIR
    return package_dirs(MODELS_DIR)


def collect(models_args=(), include_shipped: bool = True, random_configs=SMALL_CONFIGS,
            size: str = "small", only=None, log=print) -> list[Package]:
    """The packages to measure: those under --models, else the random small ones; plus the shipped
    ones. `only`: names to keep (None = all)."""
    found: list[tuple[Path, str]] = []
    for m in models_args:
        dirs = package_dirs(m)
        if not dirs:
            raise FileNotFoundError(f"no model package in {m}")
        found += [(d, "--models") for d in dirs]
    if not models_args:
        rnd = build_random_packages(random_configs, size, log)
        found += [(rnd / c, f"random {size}") for c in random_configs]
    if include_shipped:
        found += [(d, "shipped") for d in shipped_packages()]
    out, names = [], set()
    for path, source in found:
        info = json.loads((path / "model.json").read_text())
        name = str(info.get("name") or path.name)
        if name in names:
            name = f"{name}-{source.split()[0]}"
        names.add(name)
        if only and name not in only and path.name not in only:
            continue
        out.append(Package(name, path, source, info))
    return out


def random_directions(z_size: int, seed: int = 7, names=("bench_a", "bench_b")) -> list[dict]:
    rng = np.random.default_rng(seed)
    out = []
    for n in names:
        v = rng.standard_normal(z_size).astype(np.float32)
        v /= np.linalg.norm(v)
        out.append({"name": n, "kind": "random", "vector": [float(x) for x in v], "effect": {}})
    return out


def stage(packages: list[Package], dest) -> Path:
    """Lay the packages out in `dest` for `serve --models dest` (see the module docstring)."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for p in packages:
        d = dest / p.name
        d.mkdir()
        for f in p.path.iterdir():
            if f.name != "model.json" and (f.is_file() or f.is_dir()):    # a pair's sampler/ too
                os.symlink(f.resolve(), d / f.name)
        info = dict(p.info, name=p.name)
        if not info.get("directions") and not info.get("attributes"):
            info["directions"] = random_directions(int(info["z_size"]))
            p.info = dict(p.info, bench_directions="random (added for the knob benchmark)")
        (d / "model.json").write_text(json.dumps(info))
    return dest
