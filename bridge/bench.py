"""`python -m bridge bench`: latency of the runtime's operations, p50 / p99 per op, model and provider.

    python -m bridge bench [--models DIR] [--model mel_2bar,trio_16bar] [--providers cpu,cuda]
                           [--repeats 50] [--threads 1] [--io-binding on,off] [--no-torch] [--json FILE]

Ops: encode (1 sequence), decode (1 z, argmax), sample (1 sequence, T=0.5), interpolate8 (encode 2
sequences + decode the 8-point slerp in one batch). When torch and export_onnx are importable the
same ops are timed in torch eager (export_onnx.bench_torch) for comparison; torch is never imported
at the top of any bridge module.
"""
from __future__ import annotations

import json
import time

import numpy as np

from .notes import Note


def _percentiles(times: list[float]) -> dict:
    ms = np.asarray(times) * 1000.0
    return {"p50_ms": round(float(np.percentile(ms, 50)), 3), "p99_ms": round(float(np.percentile(ms, 99)), 3),
            "mean_ms": round(float(ms.mean()), 3), "n": int(len(ms))}


def _example_notes(model) -> tuple[list[Note], list[Note]]:
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
    a, b = _example_notes(model)
    z = np.random.default_rng(0).standard_normal((1, model.z_size)).astype(np.float32)
    return {
        "encode": lambda: model.encode([a]),
        "decode": lambda: model.decode(z),
        "sample": lambda: model.sample(1, temperature=0.5, seed=1),
        f"interpolate{steps}": lambda: model.interpolate(a, b, steps=steps),
    }


def bench_model(model, repeats: int = 50, warmup: int = 3, steps: int = 8) -> dict:
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
        out[name] = _percentiles(times)
    return out


def _torch_bench():
    try:
        from export_onnx.bench_torch import bench_ops
        return bench_ops
    except ImportError:
        return None


def run_bench(names=None, models_dirs=None, providers=("cpu",), repeats: int = 50, threads=(1,),
              io_binding=(True,), use_torch: bool = True, log=print) -> list[dict]:
    from .engine import _models_dirs, list_models, load_model
    found = [m for m in list_models(_models_dirs(models_dirs)) if "error" not in m]
    if names:
        missing = set(names) - {m["name"] for m in found}
        if missing:
            raise ValueError(f"no model package {', '.join(sorted(missing))}")
        found = [m for m in found if m["name"] in names]
    rows = []
    bench_torch = _torch_bench() if use_torch else None
    for entry in found:
        for provider in providers:
            for th in threads:
                for iob in io_binding:
                    model = load_model(entry["path"], provider=provider, threads=th, io_binding=iob)
                    res = bench_model(model, repeats)
                    for op, r in res.items():
                        rows.append({"model": entry["name"], "backend": f"ort-{model.provider}", "threads": th,
                                     "io_binding": iob, "op": op, **r})
                        log(_fmt(rows[-1]))
        if bench_torch is not None:
            info = load_model(entry["path"], provider="cpu").info
            for th in threads:
                res = bench_torch(info, repeats=max(5, repeats // 5), threads=th)
                for op, times in res.items():
                    rows.append({"model": entry["name"], "backend": "torch-cpu", "threads": th, "io_binding": None,
                                 "op": op, **_percentiles(times)})
                    log(_fmt(rows[-1]))
    return rows


def _fmt(r: dict) -> str:
    iob = "" if r["io_binding"] is None else ("iob" if r["io_binding"] else "run")
    return (f"{r['model']:<16} {r['backend']:<9} t{r['threads']} {iob:<3} {r['op']:<12} "
            f"p50 {r['p50_ms']:9.3f} ms  p99 {r['p99_ms']:9.3f} ms")


def add_parser(sub) -> None:
    p = sub.add_parser("bench", help="latency per op (p50/p99), onnxruntime and torch eager")
    p.add_argument("--model", default=None, help="comma-separated package names (default: all found)")
    p.add_argument("--models", action="append", default=[], metavar="DIR", help="extra package directory")
    p.add_argument("--providers", default="cpu", help="comma-separated: cpu,cuda (default cpu)")
    p.add_argument("--repeats", type=int, default=50)
    p.add_argument("--threads", default="1", help="comma-separated intra-op thread counts to try")
    p.add_argument("--io-binding", default="on", help="comma-separated on/off to try")
    p.add_argument("--no-torch", action="store_true", help="skip the torch eager comparison")
    p.add_argument("--json", default=None, help="write the rows as JSON here")
    p.set_defaults(func=main)


def main(args) -> int:
    rows = run_bench(names=[n for n in (args.model or "").split(",") if n] or None,
                     models_dirs=args.models or None,
                     providers=[p for p in args.providers.split(",") if p],
                     repeats=args.repeats, threads=[int(t) for t in args.threads.split(",")],
                     io_binding=[v.strip() in ("on", "1", "true") for v in args.io_binding.split(",")],
                     use_torch=not args.no_torch)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0
