"""benchmarks.peers: the same random weights in latent-bridge, torch eager and @magenta/music (a real
Node run of magenta.js), timed; and the report's peers table."""
from __future__ import annotations

import json

import pytest

from benchmarks import peers, report


@pytest.mark.parametrize("name", ["mel_2bar", "drums_2bar", "trio_16bar"])
def test_identical_weights_in_the_three_implementations(tiny_models_dir, tmp_path, name):
    why = peers.peers_available()
    if why:
        pytest.fail(f"the peers need the magenta.js reference ({why}); make test installs it")
    info = json.loads((tiny_models_dir / name / "model.json").read_text())
    res = peers.bench_peers(info, tmp_path, repeats=3, budget_s=1.0, js_reps=1, log=lambda m: None)
    assert res["converter"] == {"melody": "MelodyConverter", "drums": "DrumsConverter",
                                "trio": "TrioConverter"}[info["kind"]]
    # the three ran the same model: magenta.js's encoder gives our z of the same sequences
    assert res["check"]["max_z_diff"] < 1e-4
    for op in ("decode", "interpolate8"):
        row = res["ops"][op]
        assert all(row[impl]["n"] >= 1 and row[impl]["p50_ms"] > 0
                   for impl in ("latent_bridge", "torch", "magenta_js", "magenta_js_wasm"))
        r = res["ratios"][op]
        # rounded to 2 decimals in the report
        assert r["torch_over_ours"] == pytest.approx(row["torch"]["p50_ms"] / row["latent_bridge"]["p50_ms"], abs=0.006)
        assert r["magenta_js_wasm_over_ours"] == pytest.approx(
            row["magenta_js_wasm"]["p50_ms"] / row["latent_bridge"]["p50_ms"], abs=0.06)
    md = report.markdown({"generated": "now", "command": "x", "quick": False,
                          "machine": {"cpu": "x", "cores": 2, "usable_cores": 2, "memory_gib": 1, "os": "o",
                                      "python": "3", "onnxruntime": "1", "onnxruntime_providers": ["CPU"],
                                      "numpy": "2", "torch": "2"},
                          "load": {"min_1min": 0.1, "mean_1min": 0.2, "max_1min": 0.3, "quiet": True},
                          "packages": [], "targets": [], "runs": [], "peers": {name: res}})
    assert "### Peers on identical weights" in md and f"| {name} | interpolate8 |" in md
    row = next(line for line in md.splitlines() if line.startswith(f"| {name} | interpolate8 |"))
    assert len(row.split("|")) == 12 and f"{res['ratios']['interpolate8']['magenta_js_wasm_over_ours']:.1f}×" in row
