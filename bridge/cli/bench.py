"""`python -m bridge bench`: latency of the runtime's operations, p50 / p99 per op, model and provider.

    python -m bridge bench [--models DIR] [--model mel_2bar,trio_16bar] [--providers cpu,cuda]
                           [--repeats 50] [--threads 1] [--io-binding on,off] [--precision auto]
                           [--json FILE]
    python -m bridge bench --precision fp32,int8 [--model mel_2bar] [--repeats 50]

Ops: encode (1 sequence), decode (1 z, argmax), sample (1 sequence, T=0.5), interpolate8 (encode 2
sequences + decode the 8-point slerp in one batch). onnxruntime only: the same ops on torch eager,
for comparison, are `python -m benchmarks.torch_eager` (bridge never imports torch).

`--precision` with two or more values (fp32,int8) runs `compare_precisions` instead: a micro-benchmark
that alternates the precisions call by call in one process (so machine load hits them alike) and
prints the decoder step's time per run at batch 1 and 8 and the sample / interpolate8 ops, each as
a ratio to the first precision. Ratios measured this way are comparable across loaded runs; the
absolute times are not.
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

from ..core.notes import Note
from ..runtime.engine import load_model
from ..runtime.package import list_models, search_dirs
from ..runtime.sessions import ort
from .commands import precision_list_arg


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
              io_binding=(True,), log=print, precision: str | None = None) -> list[dict]:
    """One row per model, provider, thread count, io binding and op; each row is logged as it comes.
    `precision`: the decoder step's (bridge.runtime.engine.choose_precision); rows say which ran."""
    rows = []
    for entry in select_packages(names, models_dirs):
        for provider in providers:
            for th in threads:
                for iob in io_binding:
                    model = load_model(entry["path"], provider=provider, threads=th, io_binding=iob,
                                       precision=precision)
                    res = bench_model(model, repeats)
                    for op, r in res.items():
                        rows.append({"model": entry["name"], "backend": f"ort-{model.provider}", "threads": th,
                                     "io_binding": iob, "precision": model.precision, "op": op, **r})
                        log(format_row(rows[-1]))
    return rows


# ---------------------------------------------------------------------------------------------- precisions
def _step_call(model, batch: int, seed: int = 0):
    """A zero-argument call that runs `model`'s decoder step once on fixed inputs of `batch` rows,
    through IO binding on preallocated buffers (as the decode loop does): the step's own time."""
    rt = ort()
    sess = model.sessions["decoder_step"]
    rng = np.random.default_rng(seed)
    shapes = {i.name: [batch if not isinstance(d, int) else d for d in i.shape] for i in sess.get_inputs()}
    feeds = {name: (0.5 * rng.standard_normal(shape)).astype(np.float32) for name, shape in shapes.items()}
    prev = np.zeros(shapes["prev"], np.float32)
    for a, b in zip(model.offsets[:-1], model.offsets[1:]):          # one hot token per track
        prev[np.arange(batch), rng.integers(a, b, batch)] = 1.0
    feeds["prev"] = prev
    binding = sess.io_binding()
    keep = []
    for name, arr in feeds.items():
        keep.append(rt.OrtValue.ortvalue_from_numpy(arr))
        binding.bind_ortvalue_input(name, keep[-1])
    out_shapes = {"logits": shapes["prev"], "new_state_c": shapes["state_c"], "new_state_h": shapes["state_h"]}
    for o in sess.get_outputs():
        keep.append(rt.OrtValue.ortvalue_from_numpy(np.zeros(out_shapes[o.name], np.float32)))
        binding.bind_ortvalue_output(o.name, keep[-1])

    def call(_keep=keep):
        sess.run_with_iobinding(binding)
    return call


def interleaved(calls: dict, repeats: int, warmup: int = 3) -> dict:
    """name -> median seconds of `repeats` timed calls of each zero-argument call, the calls taking
    turns (a, b, a, b, ...; the order rotates every round) so that load changes hit them alike."""
    names = list(calls)
    for _ in range(warmup):
        for n in names:
            calls[n]()
    times = {n: [] for n in names}
    for r in range(repeats):
        for n in names[r % len(names):] + names[:r % len(names)]:
            t0 = time.perf_counter()
            calls[n]()
            times[n].append(time.perf_counter() - t0)
    return {n: float(np.median(t)) for n, t in times.items()}


def load_average() -> float | None:
    """The 1-minute load average (None where the OS has none)."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def compare_precisions(path, precisions=("fp32", "int8"), batches=(1, 8), repeats: int = 200,
                       op_repeats: int = 20, threads: int = 1, log=print) -> list[dict]:
    """Decoder step and op times of one package at several precisions, interleaved in one process.

    Args:
        path: a package directory (or name).
        precisions: loaded in this order; the first is the reference of the ratios. A precision the
            package cannot run (int8 without an int8 step) is skipped with a line saying why.
        batches: batch sizes of the bare decoder step runs.
        repeats: timed step runs per precision and batch; op_repeats: timed calls per op.

    Returns:
        One row per measurement: {model, what ("step" | op name), batch, precision, median_us,
        ratio (reference time / this time: > 1 = faster), load (1-minute load average at the end)}.
    """
    models = {}
    for p in precisions:
        m = load_model(path, provider="cpu", threads=threads, precision=p)
        if m.precision != p and p != "auto":
            log(f"{m.name:<16} {p}: not available ({m.precision_reason})")
            continue
        models[f"{p}" if p != "auto" else f"auto={m.precision}"] = m
    if not models:
        return []
    name = next(iter(models.values())).name
    rows = []

    def report(what: str, batch, med: dict):
        ref = next(iter(med.values()))
        load = load_average()
        for label, t in med.items():
            rows.append({"model": name, "what": what, "batch": batch, "precision": label,
                         "median_us": round(t * 1e6, 1), "ratio": round(ref / t, 3), "load": load})
        cells = "  ".join(f"{label} {t * 1e6:9.1f} us" for label, t in med.items())
        ratios = "  ".join(f"{list(med)[0]}/{label} {ref / t:5.2f}x" for label, t in list(med.items())[1:])
        log(f"{name:<16} {what:<13} batch {batch:<3} {cells}  {ratios}  (load {load})")

    for b in batches:
        report("decoder_step", b, interleaved({k: _step_call(m, b) for k, m in models.items()}, repeats))
    for op in ("sample", "interpolate8"):
        med = interleaved({k: standard_ops(m)[op] for k, m in models.items()}, op_repeats)
        report(op, 1 if op == "sample" else 8, med)
    return rows


def format_row(r: dict) -> str:
    """One result row as a line of text."""
    iob = "" if r["io_binding"] is None else ("iob" if r["io_binding"] else "run")
    prec = f" {r['precision']:<4}" if r.get("precision") else ""
    return (f"{r['model']:<16} {r['backend']:<9} t{r['threads']} {iob:<3}{prec} {r['op']:<12} "
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
    p.add_argument("--precision", type=precision_list_arg, default=None, metavar="LIST",
                   help="decoder step precision (fp32, int8, auto; default auto). Two or more, e.g. "
                        "fp32,int8: an interleaved comparison of the step and the ops, printed as ratios")
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
    precisions = args.precision or []
    if len(precisions) > 1:
        rows = []
        for entry in select_packages(split_names(args.model), args.models or None):
            for th in [int(t) for t in args.threads.split(",")]:
                rows += compare_precisions(entry["path"], precisions, repeats=max(args.repeats, 1) * 4,
                                           op_repeats=max(args.repeats // 2, 1), threads=th)
        write_json(rows, args.json)
        return 0
    rows = run_bench(names=split_names(args.model), models_dirs=args.models or None,
                     precision=precisions[0] if precisions else None,
                     providers=[p for p in args.providers.split(",") if p], repeats=args.repeats,
                     threads=[int(t) for t in args.threads.split(",")],
                     io_binding=[v.strip() in ("on", "1", "true") for v in args.io_binding.split(",")])
    write_json(rows, args.json)
    return 0
