"""`python -m bridge bench`: latency of the runtime's operations, p50 / p99 per op, model and provider.

    python -m bridge bench [--models DIR] [--model mel_2bar,trio_16bar] [--providers cpu,cuda]
                           [--repeats 50] [--threads 1] [--io-binding on,off] [--json FILE]

Ops: encode (1 sequence), decode (1 z, argmax), sample (1 sequence, T=0.5), interpolate8 (encode 2
sequences + decode the 8-point slerp in one batch). onnxruntime only: the same ops on torch eager,
for comparison, are `python -m benchmarks.torch_eager` (bridge never imports torch).
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np

from ..core.notes import Note
from ..runtime.engine import load_model
from ..runtime.package import list_models, search_dirs


def percentiles(times: list[float]) -> dict:
    """p50, p99 and mean in milliseconds of durations in seconds, and their count."""
    ms = np.asarray(times) * 1000.0
    return {"p50_ms": round(float(np.percentile(ms, 50)), 3), "p99_ms": round(float(np.percentile(ms, 99)), 3),
            "mean_ms": round(float(ms.mean()), 3), "n": int(len(ms))}


def example_notes(model) -> tuple[list[Note], list[Note]]:
    """Two short inputs that fit any codec of the model."""
    a, b = [], []
    for track, spec in enumerate(model.info["tracks"]):
        drum = spec["codec"] == "drums"
        for i in range(model.bars * 4):
            pa = (36 if i % 2 == 0 else 42) if drum else 60 + (i * 2) % 12
            pb = (38 if i % 2 == 0 else 42) if drum else 67 - (i * 3) % 12
            a.append(Note(pa, float(i), float(i) + 0.5, 100, track, drum))
            b.append(Note(pb, i + 0.5, i + 1.0, 100, track, drum))
    return a, b


def standard_ops(model, steps: int = 8) -> dict:
    """The operations every latency report times, as zero-argument calls on `model`."""
    a, b = example_notes(model)
    z = np.random.default_rng(0).standard_normal((1, model.z_size)).astype(np.float32)
    return {
        "encode": lambda: model.encode([a]),
        "decode": lambda: model.decode(z),
        "sample": lambda: model.sample(1, temperature=0.5, seed=1),
        f"interpolate{steps}": lambda: model.interpolate(a, b, steps=steps),
    }


def bench_model(model, repeats: int = 50, warmup: int = 3, steps: int = 8) -> dict:
    """op -> percentiles of `repeats` timed calls after `warmup` untimed ones."""
    ops = standard_ops(model, steps)
    out = {}
    for name, fn in ops.items():
        for _ in range(warmup):
            fn()
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        out[name] = percentiles(times)
    return out


def select_packages(names=None, models_dirs=None) -> list[dict]:
    """The readable packages found (list_models entries), only those in `names` when given.

    Raises:
        ValueError: a name in `names` that no package has.
    """
    found = [m for m in list_models(search_dirs(models_dirs)) if "error" not in m]
    if names:
        missing = set(names) - {m["name"] for m in found}
        if missing:
            raise ValueError(f"no model package {', '.join(sorted(missing))}")
        found = [m for m in found if m["name"] in names]
    return found


def run_bench(names=None, models_dirs=None, providers=("cpu",), repeats: int = 50, threads=(1,),
              io_binding=(True,), log=print) -> list[dict]:
    """One row per model, provider, thread count, io binding and op; each row is logged as it comes."""
    rows = []
    for entry in select_packages(names, models_dirs):
        for provider in providers:
            for th in threads:
                for iob in io_binding:
                    model = load_model(entry["path"], provider=provider, threads=th, io_binding=iob)
                    res = bench_model(model, repeats)
                    for op, r in res.items():
                        rows.append({"model": entry["name"], "backend": f"ort-{model.provider}", "threads": th,
                                     "io_binding": iob, "op": op, **r})
                        log(format_row(rows[-1]))
    return rows


def format_row(r: dict) -> str:
    """One result row as a line of text."""
    iob = "" if r["io_binding"] is None else ("iob" if r["io_binding"] else "run")
    return (f"{r['model']:<16} {r['backend']:<9} t{r['threads']} {iob:<3} {r['op']:<12} "
            f"p50 {r['p50_ms']:9.3f} ms  p99 {r['p99_ms']:9.3f} ms")


def add_arguments(p) -> None:
    """The options `bench` shares with benchmarks.torch_eager."""
    p.add_argument("--model", default=None, help="comma-separated package names (default: all found)")
    p.add_argument("--models", action="append", default=[], metavar="DIR", help="extra package directory")
    p.add_argument("--repeats", type=int, default=50)
    p.add_argument("--threads", default="1", help="comma-separated intra-op thread counts to try")
    p.add_argument("--json", default=None, help="write the rows as JSON here")


def add_parser(sub) -> None:
    p = sub.add_parser("bench", help="latency per op (p50/p99) on onnxruntime")
    add_arguments(p)
    p.add_argument("--providers", default="cpu", help="comma-separated: cpu,cuda (default cpu)")
    p.add_argument("--io-binding", default="on", help="comma-separated on/off to try")
    # the torch comparison moved to `python -m benchmarks.torch_eager`; kept so old scripts still run
    p.add_argument("--no-torch", action="store_true", help=argparse.SUPPRESS)
    p.set_defaults(func=main)


def split_names(text: str | None) -> list[str] | None:
    """"a,b" -> ["a", "b"]; None or "" -> None."""
    return [n for n in (text or "").split(",") if n] or None


def write_json(rows: list[dict], path) -> None:
    if path:
        with open(path, "w") as f:
            json.dump(rows, f, indent=1)


def main(args) -> int:
    rows = run_bench(names=split_names(args.model), models_dirs=args.models or None,
                     providers=[p for p in args.providers.split(",") if p], repeats=args.repeats,
                     threads=[int(t) for t in args.threads.split(",")],
                     io_binding=[v.strip() in ("on", "1", "true") for v in args.io_binding.split(",")])
    write_json(rows, args.json)
    return 0
