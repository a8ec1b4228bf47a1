"""Smoke test of `python -m benchmarks --quick`: a real daemon, a few iterations of everything."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from benchmarks import inprocess, report

ROOT = Path(__file__).resolve().parents[2]


def test_quick_run_writes_json_and_markdown(tiny_models_dir, tmp_path):
    out_json, out_md = tmp_path / "report.json", tmp_path / "performance.md"
    out_md.write_text("# Performance\n\nHand-written notes stay.\n")
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--models", str(Path(tiny_models_dir) / "mel_2bar"),
         "--no-shipped", "--quick", "--tempos", "174", "--json", str(out_json), "--out", str(out_md)],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rep = json.loads(out_json.read_text())
    assert rep["quick"] and rep["machine"]["cores"] >= 1 and rep["machine"]["onnxruntime"]
    assert set(rep["load"]) >= {"start", "end", "mean_1min", "quiet"}
    assert [p["name"] for p in rep["packages"]] == ["mel_2bar"]
    run = next(r for r in rep["runs"] if r["provider"] == "cpu")
    assert run["exit_code"] == 0 and run["ping"]["n"] >= 5
    res = run["models"]["mel_2bar"]
    for op in ("encode", "sample", "interpolate8", "knob", "knob_done"):
        s = res["ops"][op]
        assert s["n"] >= 5 and 0 < s["p50_ms"] <= s["p95_ms"] <= s["p99_ms"], (op, s)
    assert res["ops"]["knob"]["p50_ms"] <= res["ops"]["knob_done"]["p50_ms"]
    ort = res["inprocess"]["ort"]["ops"]
    for op in ("encode", "sample", "interpolate8"):    # the same op in process, alternated with the round trips
        s = res["ops"][op]
        # it ran the op: an empty call takes ~0.3 us; the op is a model call of at least ~0.1 ms (load only adds)
        assert s["inprocess_p50_ms"] > 0.02 and s["daemon_over_inprocess"] < 100, (op, s)
        assert s["daemon_over_inprocess"] == round(s["p50_ms"] / s["inprocess_p50_ms"], 3)
    assert sorted(res["batch"], key=int) == ["1", "8", "64"]
    morph = res["morph"]["174"]
    assert morph["slots"] >= 1 and morph["all_in_time"] and 0 < morph["min_bars"] <= 1.0
    assert all(ort[op]["p50_ms"] > 0 for op in ("encode", "decode", "sample", "interpolate8"))
    assert rep["settings"]["torch"] == inprocess.torch_available()
    if rep["settings"]["torch"]:
        assert res["ratios"]["interpolate8"]["torch_over_ort"] > 0
        assert res["ratios"]["sample_batch64"]["torch_p50_ms"] > 0
    targets = {(t["target"], t["model"]) for t in rep["targets"]}
    assert targets == {("interp_p50", "mel_2bar"), ("interp_p99", "mel_2bar"), ("knob", "mel_2bar"),
                       ("overhead", "mel_2bar")}
    md = out_md.read_text()
    assert md.startswith("# Performance\n\nHand-written notes stay.")
    assert report.BEGIN in md and report.END in md
    for heading in ("### Machine", "### Targets", "### Round trips", "### Batch scaling", "### Morph lookahead"):
        assert heading in md
    assert "| mel_2bar | cpu | interpolate8 |" in md


def test_markdown_section_is_replaced_in_place(tmp_path):
    path = tmp_path / "p.md"
    path.write_text(f"# P\n\nbefore\n\n{report.BEGIN}\nold tables\n{report.END}\n\nafter\n")
    rep = {"generated": "now", "command": "python -m benchmarks", "quick": True,
           "machine": {"cpu": "x", "cores": 2, "usable_cores": 2, "memory_gib": 1, "os": "o", "python": "3",
                       "onnxruntime": "1", "onnxruntime_providers": ["CPUExecutionProvider"], "numpy": "2",
                       "torch": None},
           "load": {"min_1min": 0.1, "mean_1min": 0.2, "max_1min": 0.3, "quiet": True},
           "packages": [], "targets": [], "runs": []}
    report.write_markdown(rep, path)
    text = path.read_text()
    assert text.startswith("# P\n\nbefore\n\n" + report.BEGIN) and text.rstrip().endswith("after")
    assert "old tables" not in text and text.count(report.BEGIN) == 1
    assert "quiet" in text


def test_staging_keeps_a_pairs_sampler(tiny_models_dir, tmp_path):
    """The benchmark's daemon serves staged copies: a package that ships a sampler must still load."""
    import shutil

    from benchmarks import packages
    from bridge.runtime.engine import load_model
    from export_onnx.pair import add_sampler
    pkg, src = tmp_path / "pair" / "mel_2bar", tmp_path / "lokl"
    shutil.copytree(tiny_models_dir / "mel_2bar", pkg)
    shutil.copytree(tiny_models_dir / "mel_2bar", src)
    add_sampler(pkg, src)
    staged = packages.stage(packages.collect([pkg.parent], include_shipped=False), tmp_path / "staged")
    model = load_model(staged / "mel_2bar")
    assert model.sampler is not None and model.sampler.name == "mel_2bar.sampler"
