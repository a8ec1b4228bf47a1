"""Random-weight model packages for tests and benchmarks of every part of the system.

    build_tiny_package("mel_2bar", "/tmp/models/mel_2bar")           # ~1 s, a few kB
    python -m export_onnx make-tiny --out /tmp/models --configs mel_2bar,trio_16bar [--size tiny|small|full]

A tiny package is a real package (same graphs, model.json, checks as `export`), only with very small
layers, so loading and decoding take milliseconds. `--size small` builds the configs' small sizes
with random weights (benchmarks).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from .configs import CONFIGS, ModelSize, get_config

DEFAULT_CONFIGS = ("mel_2bar", "drums_2bar", "mel_16bar", "trio_16bar")
TINY = ModelSize(enc_units=8, dec_units=8, dec_layers=2, z_size=4, cond_units=8, cond_layers=2,
                 emb_size=8, bar_enc_units=8)


def tiny_model(config_name: str, seed: int = 0, size="tiny"):
    from .model import MusicVAE
    torch.manual_seed(seed)
    model = MusicVAE(get_config(config_name), TINY if size == "tiny" else size)
    model.size_name = size if isinstance(size, str) else "custom"
    # spread the biases a little so that argmax outputs are not one constant token
    with torch.no_grad():
        g = torch.Generator().manual_seed(seed + 1)
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.copy_(0.5 * torch.randn(p.shape, generator=g))
    return model.eval()


def build_tiny_package(config_name: str, out_dir, seed: int = 0, size="tiny", name: str | None = None,
                       verify: bool = True) -> Path:
    """A random-weight package of `config_name` at out_dir (name = config name unless given)."""
    from .export import write_package
    out_dir = Path(out_dir)
    threads = torch.get_num_threads()
    if size == "tiny":
        torch.set_num_threads(1)   # tiny ops: a thread pool only adds start-up and contention
    try:
        model = tiny_model(config_name, seed, size)
        write_package(model, out_dir, name=name or config_name, verify=verify,
                      training={"config": config_name, "random_weights": True, "seed": seed,
                                "size_name": model.size_name})
    finally:
        torch.set_num_threads(threads)
    return out_dir


def build_tiny_packages(out_dir, configs=DEFAULT_CONFIGS, seed: int = 0, size="tiny") -> Path:
    out_dir = Path(out_dir)
    for c in configs:
        build_tiny_package(c, out_dir / c, seed=seed, size=size)
    return out_dir


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("make-tiny", help="random-weight model packages for tests and benchmarks")
    p.add_argument("--out", required=True, help="directory to put one package per config in")
    p.add_argument("--configs", default=",".join(DEFAULT_CONFIGS),
                   help=f"comma-separated config names (known: {', '.join(CONFIGS)})")
    p.add_argument("--size", default="tiny", choices=["tiny", "small", "full"])
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_main)


def _main(args: argparse.Namespace) -> int:
    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    for c in configs:
        get_config(c)
    build_tiny_packages(args.out, configs, args.seed, args.size)
    print(json.dumps({"out": str(args.out), "configs": configs, "size": args.size}))
    return 0
