"""`python -m benchmarks.torch_eager`: the runtime's ops on onnxruntime and on torch eager, one table
(the comparison `python -m bridge bench` made before bridge stopped reaching into export_onnx)."""
from __future__ import annotations

import json
import re

import pytest

from benchmarks import torch_eager


def test_torch_rows_time_the_same_ops_as_onnxruntime(tiny_models_dir, tmp_path, capsys):
    pytest.importorskip("torch")
    out = tmp_path / "rows.json"
    assert torch_eager.main(["--models", str(tiny_models_dir), "--model", "mel_2bar", "--repeats", "3",
                             "--json", str(out)]) == 0
    rows = json.loads(out.read_text())
    ops = {backend: {r["op"] for r in rows if r["backend"] == backend} for backend in ("ort-cpu", "torch-cpu")}
    assert ops["ort-cpu"] == ops["torch-cpu"] == {"encode", "decode", "sample", "interpolate8"}
    assert all(0 < r["p50_ms"] <= r["p99_ms"] for r in rows)
    assert re.search(r"mel_2bar\s+torch-cpu.*decode\s+p50", capsys.readouterr().out)
