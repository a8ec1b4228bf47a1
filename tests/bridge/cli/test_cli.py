import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bridge import Note
from bridge.cli import main

ROOT = Path(__file__).resolve().parents[3]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _midi_notes(path):
    import pretty_midi
    pm = pretty_midi.PrettyMIDI(str(path))
    return pm, [n for inst in pm.instruments for n in inst.notes]


def test_sample_writes_midi_and_png(tiny_models_dir, tmp_path, capsys):
    out, png = tmp_path / "samples.mid", tmp_path / "samples.png"
    rc = main(["sample", "--models", str(tiny_models_dir), "--model", "drums_2bar", "-n", "3",
               "--out", str(out), "--png", str(png), "--temperature", "0.8"])
    assert rc == 0
    report = json.loads(capsys.readouterr().out)
    assert report["sequences"] == 3 and report["midi"] == str(out)
    pm, notes = _midi_notes(out)
    assert len(notes) == sum(report["notes"]) > 0
    assert all(inst.is_drum for inst in pm.instruments)
    # three 2-bar sequences back to back at 120 bpm: everything within 12 s
    assert max(n.end for n in notes) <= 12.0 + 1e-6
    assert png.read_bytes()[:8] == PNG_MAGIC


def test_interpolate_from_midi_files(tiny_models_dir, tmp_path, capsys):
    from bridge.io.midi_io import write_midi
    a, b = tmp_path / "a.mid", tmp_path / "b.mid"
    write_midi([Note(60 + 2 * i, i * 0.5, i * 0.5 + 0.5) for i in range(8)], a)
    write_midi([Note(72 - i, 4.0 + i, 4.0 + i + 1.0) for i in range(4)], b)   # starts in bar 2: shifted to 0
    out, png = tmp_path / "interp.mid", tmp_path / "interp.png"
    rc = main(["interpolate", str(a), str(b), "--models", str(tiny_models_dir), "--model", "mel_2bar",
               "--steps", "5", "--out", str(out), "--png", str(png)])
    assert rc == 0
    report = json.loads(capsys.readouterr().out)
    assert report["steps"] == 5 and report["input_notes"] == [8, 4]
    _, notes = _midi_notes(out)
    assert len(notes) == sum(report["notes"])
    assert png.read_bytes()[:8] == PNG_MAGIC


def test_models_and_errors(tiny_models_dir, tmp_path, capsys):
    assert main(["models", "--models", str(tiny_models_dir), "--json"]) == 0
    names = [m["name"] for m in json.loads(capsys.readouterr().out)]
    assert {"mel_2bar", "trio_16bar"} <= set(names)
    assert main(["sample", "--models", str(tmp_path), "--model", "missing"]) == 2
    assert "no model package 'missing'" in capsys.readouterr().err


def test_bench_reports_percentiles(tiny_models_dir, tmp_path, capsys):
    out = tmp_path / "bench.json"
    rc = main(["bench", "--models", str(tiny_models_dir), "--model", "mel_2bar", "--repeats", "3",
               "--json", str(out)])
    assert rc == 0
    rows = json.loads(out.read_text())
    ort_ops = {r["op"] for r in rows if r["backend"] == "ort-cpu"}
    assert ort_ops == {"encode", "decode", "sample", "interpolate8"}
    assert all(0 < r["p50_ms"] <= r["p99_ms"] for r in rows)
    assert {r["backend"] for r in rows} == {"ort-cpu"}      # torch eager: benchmarks.torch_eager
    assert re.search(r"mel_2bar\s+ort-cpu.*decode\s+p50", capsys.readouterr().out)


def test_bridge_never_imports_torch_at_top_level():
    pattern = re.compile(r"^\s*(import torch|from torch)", re.M)
    offenders = [p.name for p in (ROOT / "bridge").rglob("*.py") if pattern.search(p.read_text())]
    assert offenders == []


def test_python_dash_m_bridge_help_without_torch_or_server():
    code = ("import sys, runpy; sys.argv = ['bridge', 'models', '--json']; "
            "import bridge.cli as c; rc = c.main(['models', '--json']); "
            "assert 'torch' not in sys.modules and 'bridge.daemon.server' not in sys.modules, sorted(sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
