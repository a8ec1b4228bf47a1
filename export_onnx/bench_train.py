"""`python -m export_onnx bench-train --config NAME`: training throughput of each path, in one run.

Paths (examples/s of full training steps: forward, loss, backward, Adam, at the recipe's batch):
- `stepwise fp32 1t`: scheduled sampling cut at every sampled step (the path before two-pass; with
  a batch of 32-64 and p > ~0.1 nearly every step is cut, so it runs one token at a time);
- `two-pass fp32 1t`, `two-pass bf16 1t`: fused scheduled sampling (LstmCoreDecoder.teacher_forced),
  without and with CPU bf16 autocast;
- the same with 2 threads.
Ratios are against the first row. Every path runs the same seeded batches at the same sampling
probability (`--p-sample`, default 0.5: the middle of a run-sized schedule), interleaved round by
round so that a change in machine load hits every path alike; the median round is reported.
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import torch

from .configs import get_config
from .model import MusicVAE, vae_loss
from .train import batch_losses

PATHS = [("stepwise fp32 1t", "stepwise", "fp32", 1), ("two-pass fp32 1t", "two_pass", "fp32", 1),
         ("two-pass bf16 1t", "two_pass", "bf16", 1), ("stepwise fp32 2t", "stepwise", "fp32", 2),
         ("two-pass fp32 2t", "two_pass", "fp32", 2), ("two-pass bf16 2t", "two_pass", "bf16", 2)]


def _batches(config, n: int, batch: int, seed: int, data_dir=None) -> list[torch.Tensor]:
    rng = np.random.default_rng(seed)
    if data_dir is not None:
        from .dataset import load_split
        tokens = load_split(data_dir, "train", mmap=True)["tokens"]   # npz or shards
        return [torch.as_tensor(tokens[rng.integers(0, len(tokens), batch)].astype(np.int64)) for _ in range(n)]
    nc = config.codec.num_classes
    out = []
    for _ in range(n):   # mostly rests/holds, like real melodies and drums
        t = np.stack([np.where(rng.random((batch, config.num_steps)) < 0.6, 0, rng.integers(0, k, (batch, config.num_steps)))
                      for k in nc], -1)
        out.append(torch.as_tensor(t))
    return out


def bench_path(config, method: str, precision: str, threads: int, batches, p_sample: float, seed: int = 0) -> float:
    """Seconds per step (median over the batches after one warm-up step)."""
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    model = MusicVAE(config, "small").train()
    model.decoder.sampling_method = method
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    gen = torch.Generator().manual_seed(seed)
    times = []
    for i, tokens in enumerate(batches):
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            logits, mu, sigma = model(tokens, p_sample, gen)
        L = batch_losses(model, logits.float(), mu.float(), sigma.float(), tokens)
        loss = vae_loss(L["r_loss"], L["kl"], 0.2, config.recipe.free_bits)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if i:
            times.append(time.perf_counter() - t0)
    return float(np.median(times))


def bench_train(config_name: str, steps: int = 6, rounds: int = 3, p_sample: float = 0.5, batch: int | None = None,
                paths=PATHS, data_dir=None) -> dict:
    config = get_config(config_name)
    batch = batch or config.recipe.batch_size
    batches = _batches(config, steps + 1, batch, 0, data_dir)
    per_round = {name: [] for name, *_ in paths}
    for _ in range(rounds):
        for name, method, precision, threads in paths:
            per_round[name].append(bench_path(config, method, precision, threads, batches, p_sample))
    rows = []
    base = None
    for name, *_ in paths:
        sec = float(np.median(per_round[name]))
        eps = batch / sec
        base = base or eps
        rows.append({"path": name, "sec_per_step": round(sec, 4), "examples_per_sec": round(eps, 1),
                     "ratio": round(eps / base, 2)})
    load = os.getloadavg()
    return {"config": config_name, "batch": batch, "p_sample": p_sample, "steps": steps, "rounds": rounds,
            "cores": os.cpu_count(), "load_avg_1m": round(load[0], 2), "torch": torch.__version__, "rows": rows}


def table(result: dict) -> str:
    lines = [f"{result['config']} (batch {result['batch']}, p_sample {result['p_sample']}, load {result['load_avg_1m']}"
             f" on {result['cores']} cores)", "| path | s/step | examples/s | ratio |", "|---|---|---|---|"]
    for r in result["rows"]:
        lines.append(f"| {r['path']} | {r['sec_per_step']} | {r['examples_per_sec']} | {r['ratio']}x |")
    return "\n".join(lines)


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("bench-train", help="training examples/s of each path (stepwise, two-pass, bf16, "
                              "threads) in one run, as ratios")
    p.add_argument("--config", required=True)
    p.add_argument("--steps", type=int, default=6, help="timed steps per path and round")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds (median reported)")
    p.add_argument("--p-sample", type=float, default=0.5)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--data", default=None, help="dataset dir (train.npz or shards) for real batches (default: random)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_main)


def _main(args: argparse.Namespace) -> int:
    res = bench_train(args.config, args.steps, args.rounds, args.p_sample, args.batch_size, data_dir=args.data)
    print(json.dumps(res) if args.json else table(res))
    return 0
