"""Tiny surrogate packages for tests (tests/bridge/runtime/test_accompany.py, the device's Node
end-to-end test): random weights, no training."""
from __future__ import annotations

import shutil
from dataclasses import asdict
from pathlib import Path

import torch

from bridge.runtime.package import parse_manifest

from ..model import MusicVAE
from ..tiny import tiny_model
from .encoder import CHECKPOINT, SurrogateEncoder, init_from_trio, save_surrogate
from .package import add_surrogate_to_package


def save_trio_checkpoint(model: MusicVAE, path, step: int = 0) -> Path:
    """A minimal trainer-style checkpoint of `model` (what load_checkpoint reads); returns its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"format": "latent-bridge-checkpoint", "config": model.config.name,
                "size_name": getattr(model, "size_name", "custom"), "size": asdict(model.size),
                "step": step, "model": model.state_dict()}, path)
    return path


def tiny_accompany_package(tiny_trio_package, out_dir, seed: int = 0) -> Path:
    """A copy of a tiny random trio package (export_onnx.tiny) with a surrogate encoder added: the
    trio encoder's weights on the lead rows, nudged by noise, so the graph is a real, distinct one.

    Returns:
      The package directory (out_dir / the package's folder name, e.g. trio_16bar).
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)   # tiny ops: a thread pool only adds contention
    try:
        return _tiny_accompany_package(Path(tiny_trio_package), Path(out_dir), seed)
    finally:
        torch.set_num_threads(threads)


def _tiny_accompany_package(src: Path, out_dir: Path, seed: int) -> Path:
    info = parse_manifest(src)
    pkg = out_dir / src.name
    shutil.copytree(src, pkg)
    trio = tiny_model(info["config"], seed=int((info.get("training") or {}).get("seed", 0)))
    run = out_dir / f".{src.name}_surrogate_run"
    trio_ckpt = save_trio_checkpoint(trio, run / "trio" / "best.pt")
    torch.manual_seed(seed)
    surrogate = SurrogateEncoder(trio.config, trio.size)
    init_from_trio(surrogate, trio)
    with torch.no_grad():
        g = torch.Generator().manual_seed(seed + 5)
        for p in surrogate.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=g))
    save_surrogate(surrogate, run / CHECKPOINT, step=0, loss="mse", init="trio", trio_run=str(trio_ckpt),
                   trio_config=trio.config.name, trio_step=0)
    add_surrogate_to_package(run, pkg)
    return pkg
