"""Torch-eager timings of the runtime's operations, for `python -m bridge bench` to compare with.

The model is built from a package's model.json (config + size) with random weights: the decode loop
runs a fixed number of steps, so latency does not depend on the weight values. Torch uses the same
thread count as the onnxruntime sessions it is compared with.
"""
from __future__ import annotations

import time

import numpy as np
import torch

from .configs import ModelSize, get_config
from .model import MusicVAE


def model_from_info(info: dict, seed: int = 0) -> MusicVAE:
    torch.manual_seed(seed)
    if (info.get("training") or {}).get("architecture") == "latent_chain":
        from .latent_chain.model import chain_from_info
        return chain_from_info(info).eval()
    size = {k: v for k, v in info["size"].items() if k != "name"}
    return MusicVAE(get_config(info["config"]), ModelSize(**size)).eval()


def _slerp(a: torch.Tensor, b: torch.Tensor, steps: int) -> torch.Tensor:
    t = torch.linspace(0, 1, steps)[:, None]
    an, bn = a / a.norm(), b / b.norm()
    omega = torch.arccos(torch.clamp((an * bn).sum(), -1.0, 1.0))
    so = torch.sin(omega)
    return torch.sin((1 - t) * omega) / so * a + torch.sin(t * omega) / so * b


def bench_ops(info: dict, repeats: int = 30, warmup: int = 2, threads: int = 1, steps: int = 8,
              device: str = "cpu") -> dict:
    """{op: [seconds per call]} for encode, decode, sample, interpolate (same ops as bridge.cli.bench)
    on a random-weight model of the package's config and size."""
    return bench_model_ops(model_from_info(info), repeats, warmup, threads, steps, device)


def bench_model_ops(model: MusicVAE, repeats: int = 30, warmup: int = 2, threads: int = 1, steps: int = 8,
                    device: str = "cpu") -> dict:
    """`bench_ops` on a given torch model (e.g. the importer's, to time identical weights)."""
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        model = model.eval().to(device)
        z_size, dev = model.z_size, torch.device(device)
        gen = torch.Generator().manual_seed(0)
        tokens = torch.as_tensor(np.zeros((1, model.num_steps, len(model.num_classes)), np.int64), device=dev)
        pair = tokens.repeat(2, 1, 1)
        z = torch.randn(1, z_size, generator=gen).to(dev)

        def sync():
            if dev.type == "cuda":
                torch.cuda.synchronize()

        def interpolate():
            mu, _ = model.encode(pair)
            return model.decode_argmax(_slerp(mu[0], mu[1], steps))

        ops = {
            "encode": lambda: model.encode(tokens),
            "decode": lambda: model.decode_argmax(z),
            "sample": lambda: model.sample(torch.randn(1, z_size, generator=gen).to(dev), 0.5, gen),
            f"interpolate{steps}": interpolate,
        }
        out = {}
        with torch.no_grad():
            for name, fn in ops.items():
                for _ in range(warmup):
                    fn()
                sync()
                times = []
                for _ in range(repeats):
                    t0 = time.perf_counter()
                    fn()
                    sync()
                    times.append(time.perf_counter() - t0)
                out[name] = times
        return out
    finally:
        torch.set_num_threads(old)
