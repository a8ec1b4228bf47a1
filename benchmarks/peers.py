"""Peers on identical weights: latent-bridge, torch eager and @magenta/music, same model, same run.

For each package measured, a random magenta.js checkpoint of the package's architecture (its
converter, encoder, conductor and decoder sizes; export_onnx.magenta_reference) is written and
imported with `import-magenta` (export_onnx.magenta_import). Then, on those identical weights, one
thread each:
- latent-bridge: the imported package in this process (bridge.runtime.engine, onnxruntime);
- torch eager: the importer's torch model (export_onnx.bench_torch.bench_model_ops);
- magenta.js: @magenta/music 1.23.1 under Node, on tfjs's JS CPU backend and on its wasm backend
  (@tensorflow/tfjs-backend-wasm 2.8.6, XNNPACK kernels in WebAssembly, one thread;
  tests/magenta_js/harness.js, `npm ci --prefix tests/magenta_js`). The wasm backend of tfjs 2.8
  has no LinSpace kernel, so there the harness interpolates as magenta.js does but draws the line
  itself (encode both ends in one call, decode the 8 points).
Timed: `decode` of one z (argmax) and `interpolate` between two sequences in 8 steps (encode both,
decode the path), p50 of several calls after a warm-up (magenta.js: the median of `js_reps` calls:
it is slow). The ratios are peer / latent-bridge. The weights are float32 for all three (the
shipped packages' fp16 storage and int8 step are this runtime's own gains: they are in the main tables).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .daemon import summarize
from .inprocess import timed_calls

STEPS = 8
JS_REPS = 3
# the magenta.js runs: result key -> tfjs backend
JS_BACKENDS = {"magenta_js": "cpu", "magenta_js_wasm": "wasm"}


def peers_available() -> str | None:
    """None when torch and the magenta.js reference are installed, else why the peers are skipped."""
    try:
        from export_onnx.magenta_reference import magenta_js_available
    except ImportError as e:
        return f"the torch side is not installed ({e.name})"
    return magenta_js_available()


def converter_for(info: dict) -> dict:
    """The magenta.js dataConverter spec of a package's tracks and length."""
    args = {"numSteps": int(info["num_steps"])}
    if info.get("hierarchical"):
        args["numSegments"] = int(info["bars"])
    pitch = lambda t: {"minPitch": int(t["min_pitch"]), "maxPitch": int(t["max_pitch"])}  # noqa: E731
    tracks = info["tracks"]
    if info["kind"] == "melody":
        return {"type": "MelodyConverter", "args": {**args, **pitch(tracks[0])}}
    if info["kind"] == "drums":
        return {"type": "DrumsConverter", "args": args}
    return {"type": "TrioConverter", "args": {**args, "melArgs": pitch(tracks[0]), "bassArgs": pitch(tracks[1]),
                                              "drumsArgs": {}}}


def arch_for(info: dict):
    """The magenta.js checkpoint sizes of a package (its model.json `size`)."""
    from export_onnx.magenta_reference import Arch
    s = info["size"]
    return Arch(enc_units=s["enc_units"], dec_units=s["dec_units"], dec_layers=s["dec_layers"], z_size=s["z_size"],
                bar_enc_units=s.get("bar_enc_units") or 0, cond_units=s.get("cond_units") or 0,
                cond_layers=s.get("cond_layers") or 2)


def bench_peers(info: dict, workdir, repeats: int = 20, budget_s: float = 10.0, js_reps: int = JS_REPS,
                seed: int = 11, log=print) -> dict:
    """Time decode and interpolate8 on identical weights in the three implementations.

    Args:
        info: the model.json of the package whose architecture is measured.
        workdir: a scratch directory (checkpoint, imported package, harness files).
        repeats, budget_s: calls per op for latent-bridge and torch (at least 3, until the budget).
        js_reps: timed magenta.js calls per op after its warm-up call.

    Returns:
        {"converter", "ops": {op: {"latent_bridge", "torch", "magenta_js", "magenta_js_wasm": summaries
         (ms)}}, "ratios": {op: {"torch_over_ours", "magenta_js_over_ours", "magenta_js_wasm_over_ours"}},
         "check": {"max_z_diff"}} (max_z_diff over both magenta.js backends).

    Raises:
        RuntimeError: the magenta.js harness failed. ValueError / MagentaImportError: an architecture
        the importer or magenta.js does not support.
    """
    from bridge.runtime.engine import load_model
    from export_onnx.bench_torch import bench_model_ops
    from export_onnx.magenta_import import import_magenta, load_magenta_checkpoint
    from export_onnx.magenta_reference import make_checkpoint, note_sequence_like, run_magenta_js
    workdir = Path(workdir)
    conv = converter_for(info)
    ckpt = make_checkpoint(workdir / "ckpt", conv, arch_for(info), seed)
    import_magenta(ckpt, workdir / "pkg", verify=False)
    ours = load_model(workdir / "pkg", provider="cpu", threads=1)
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((1, ours.z_size)).astype(np.float32)
    tokens = ours.decode_tokens(rng.standard_normal((2, ours.z_size)).astype(np.float32), 1.0, rng)
    a, b = ours.tokens_to_notes(tokens)
    log(f"  peers {info['name']}: latent-bridge")
    res = {"latent_bridge": {
        "decode": summarize(timed_calls(lambda: ours.decode(z), repeats, 1, budget_s)),
        f"interpolate{STEPS}": summarize(timed_calls(lambda: ours.interpolate(a, b, steps=STEPS), repeats, 1, budget_s))}}
    log(f"  peers {info['name']}: torch eager")
    model, _, _ = load_magenta_checkpoint(ckpt)
    probe = bench_model_ops(model, repeats=1, warmup=0, steps=STEPS)
    reps = max(3, min(repeats, int(budget_s / max(max(v[0] for v in probe.values()), 1e-4))))
    t = bench_model_ops(model, repeats=reps, warmup=1, steps=STEPS)
    res["torch"] = {op: summarize(t[op]) for op in ("decode", f"interpolate{STEPS}")}
    z_diff, our_z = 0.0, ours.encode_tokens(tokens)
    for key, backend in JS_BACKENDS.items():
        log(f"  peers {info['name']}: magenta.js (tfjs {backend})")
        js = run_magenta_js({"checkpoint": str(ckpt), "backend": backend, "encode_tokens": tokens.tolist(),
                             "timing": {"reps": js_reps, "z": z.tolist(), "a": note_sequence_like(a),
                                        "b": note_sequence_like(b), "interp_steps": STEPS}},
                            workdir / f"js_{backend}", timeout=1800.0)
        if js.get("backend") != backend:
            raise RuntimeError(f"magenta.js ran on tfjs {js.get('backend')!r}, not {backend}")
        res[key] = {"decode": summarize([v / 1e3 for v in js["timing"]["decode"]["all_ms"]]),
                    f"interpolate{STEPS}": summarize([v / 1e3 for v in js["timing"]["interpolate"]["all_ms"]])}
        # the same weights, truly, on every backend: its encoder gives our z
        z_diff = max(z_diff, float(np.abs(our_z - np.asarray(js["z"])).max()))
    ops = {op: {impl: res[impl][op] for impl in res} for op in ("decode", f"interpolate{STEPS}")}
    ratios = {}
    for op, r in ops.items():
        o = r["latent_bridge"]["p50_ms"]
        ratios[op] = {"torch_over_ours": round(r["torch"]["p50_ms"] / o, 2),
                      **{f"{key}_over_ours": round(r[key]["p50_ms"] / o, 1) for key in JS_BACKENDS}}
    return {"converter": conv["type"], "ops": ops, "ratios": ratios, "check": {"max_z_diff": z_diff}}
