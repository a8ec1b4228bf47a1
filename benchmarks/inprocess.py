"""The same ops in this process: onnxruntime through bridge.runtime.engine (bridge.cli.bench) and
torch eager (export_onnx.bench_torch), both on one intra-op thread as the daemon's sessions are."""
from __future__ import annotations

import time


from .daemon import BATCHES, summarize


def timed_calls(fn, repeats: int, warmup: int, budget_s: float, min_n: int = 3) -> list[float]:
    """Seconds of up to `repeats` calls of fn() after `warmup` untimed ones; stops once `budget_s` has
    passed and `min_n` are in."""
    for _ in range(warmup):
        fn()
    out, end = [], time.monotonic() + budget_s
    while len(out) < repeats and (len(out) < min_n or time.monotonic() < end):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def bench_ort(path, provider: str, repeats: int, warmup: int, budget_s: float, batches=BATCHES) -> dict:
    from bridge.cli.bench import standard_ops
    from bridge.runtime.engine import load_model
    model = load_model(path, provider=provider, threads=1)
    ops = standard_ops(model, steps=8)
    out = {"provider": model.provider, "ops": {}, "batch": {}}
    for name, fn in ops.items():
        out["ops"][name] = summarize(timed_calls(fn, repeats, warmup, budget_s))
    for n in batches:
        out["batch"][str(n)] = summarize(timed_calls(lambda: model.sample(n, temperature=0.5, seed=2),
                                                max(3, repeats // 2), 1, budget_s / 2))
    return out


def torch_available() -> bool:
    try:
        import export_onnx.bench_torch  # noqa: F401
        return True
    except ImportError:
        return False


def bench_torch(info: dict, repeats: int, warmup: int, budget_s: float, batches=BATCHES) -> dict:
    """Torch eager on the CPU: export_onnx.bench_torch's ops plus sampling batches of 1/8/64."""
    import torch
    from export_onnx.bench_torch import bench_ops, model_from_info
    t0 = time.perf_counter()
    times = bench_ops(info, repeats=1, warmup=0, threads=1)      # one call each: how long they take
    probe = max(max(v) for v in times.values())
    reps = max(2, min(repeats, int(budget_s / max(probe, 1e-4))))
    times = bench_ops(info, repeats=reps, warmup=warmup, threads=1)
    out = {"threads": 1, "ops": {k: summarize(v) for k, v in times.items()}, "batch": {}}
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model = model_from_info(info)
        gen = torch.Generator().manual_seed(0)
        with torch.no_grad():
            for n in batches:
                fn = (lambda n=n: model.sample(torch.randn(n, model.z_size, generator=gen), 0.5, gen))
                out["batch"][str(n)] = summarize(timed_calls(fn, max(2, reps // 2), 1, budget_s / 2, min_n=2))
    finally:
        torch.set_num_threads(old)
    out["seconds"] = round(time.perf_counter() - t0, 1)
    return out


# which in-process op a daemon op is compared with
DAEMON_TO_INPROCESS = {"encode": "encode", "sample": "sample", "interpolate8": "interpolate8", "knob": "decode"}


def ratios(daemon_res: dict, ort: dict, torch_res: dict | None) -> dict:
    """Per op (p50): torch eager / onnxruntime in process, torch eager / daemon round trip, and the
    daemon's overhead over the in-process call (transport, JSON, scheduling)."""
    out = {}
    for op, ip in DAEMON_TO_INPROCESS.items():
        d = daemon_res["ops"].get(op, {}).get("p50_ms")
        o = ort["ops"].get(ip, {}).get("p50_ms")
        t = (torch_res or {}).get("ops", {}).get(ip, {}).get("p50_ms")
        out[op] = {"daemon_p50_ms": d, "ort_p50_ms": o, "torch_p50_ms": t,
                   "torch_over_ort": round(t / o, 2) if t and o else None,
                   "torch_over_daemon": round(t / d, 2) if t and d else None,
                   "daemon_overhead_ms": round(d - o, 3) if d is not None and o is not None else None}
    for n, res in daemon_res.get("batch", {}).items():
        o = ort["batch"].get(n, {}).get("p50_ms")
        t = (torch_res or {}).get("batch", {}).get(n, {}).get("p50_ms")
        d = res.get("p50_ms")
        out[f"sample_batch{n}"] = {"daemon_p50_ms": d, "ort_p50_ms": o, "torch_p50_ms": t,
                                   "torch_over_ort": round(t / o, 2) if t and o else None,
                                   "torch_over_daemon": round(t / d, 2) if t and d else None,
                                   "daemon_overhead_ms": round(d - o, 3) if d is not None and o is not None else None}
    return out
