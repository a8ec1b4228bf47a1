"""--precision on the offline commands, `bench` (the interleaved fp32 / int8 comparison) and `serve`."""
from __future__ import annotations

import json

import pytest

from bridge.cli import build_parser, main
from bridge.daemon.client import spawn_server
from bridge.runtime import engine


@pytest.fixture(autouse=True)
def clean_default(monkeypatch):
    monkeypatch.delenv(engine.PRECISION_ENV, raising=False)
    engine.set_default_precision(None)
    yield
    engine.set_default_precision(None)


@pytest.mark.parametrize("command", [["sample", "--model", "mel_2bar"], ["interpolate", "a.mid", "b.mid", "--model", "m"],
                                     ["accompany", "m.mid"], ["bench"], ["serve"]])
def test_precision_parses_and_bad_values_fail_clearly(command, capsys):
    parser = build_parser(command[0])
    for value in ("fp32", "int8", "auto", "INT8"):
        args = parser.parse_args(command + ["--precision", value])
        got = args.precision[0] if isinstance(args.precision, list) else args.precision
        assert got == value.lower()
    assert parser.parse_args(command).precision is None            # the process default (auto)
    with pytest.raises(SystemExit) as e:
        parser.parse_args(command + ["--precision", "int4"])
    assert e.value.code == 2
    assert "--precision: must be one of fp32, int8, auto, got 'int4'" in capsys.readouterr().err


def test_bench_precision_lists(capsys):
    parser = build_parser("bench")
    assert parser.parse_args(["bench", "--precision", "fp32,int8"]).precision == ["fp32", "int8"]
    for bad, words in (("fp32,fp32", "listed twice"), (",", "comma-separated list"), ("fp32,bf16", "got 'bf16'")):
        with pytest.raises(SystemExit):
            parser.parse_args(["bench", "--precision", bad])
        assert words in capsys.readouterr().err


def test_sample_runs_at_the_precision_asked_for(tiny_int8_models_dir, tmp_path, capsys):
    outs = {}
    for p in ("fp32", "int8", "auto"):
        rc = main(["sample", "--models", str(tiny_int8_models_dir), "--model", "mel_2bar", "-n", "2",
                   "--temperature", "0", "--precision", p])
        assert rc == 0
        outs[p] = json.loads(capsys.readouterr().out)
    assert all(o["sequences"] == 2 for o in outs.values())


def test_a_bad_precision_in_the_environment_is_an_error(tiny_int8_models_dir, monkeypatch, capsys):
    monkeypatch.setenv(engine.PRECISION_ENV, "half")
    rc = main(["sample", "--models", str(tiny_int8_models_dir), "--model", "mel_2bar", "-n", "1"])
    assert rc == 2 and "$LATENT_BRIDGE_PRECISION: precision must be one of" in capsys.readouterr().err
    args = build_parser("serve").parse_args(["serve", "--no-default-models", "--port", "0"])
    assert args.func(args) == 2                       # refused before any model loads or a port is bound
    assert "bad decoder step precision" in capsys.readouterr().err


def test_bench_compares_precisions_interleaved(tiny_int8_models_dir, tiny_models_dir, tmp_path, capsys):
    out = tmp_path / "ratio.json"
    rc = main(["bench", "--models", str(tiny_int8_models_dir), "--model", "mel_2bar", "--precision", "fp32,int8",
               "--repeats", "2", "--json", str(out)])
    assert rc == 0
    rows = json.loads(out.read_text())
    assert {(r["what"], r["batch"]) for r in rows} == {("decoder_step", 1), ("decoder_step", 8), ("sample", 1),
                                                       ("interpolate8", 8)}
    assert {r["precision"] for r in rows} == {"fp32", "int8"}
    assert all(r["median_us"] > 0 and r["ratio"] > 0 for r in rows)
    assert all(r["ratio"] == 1.0 for r in rows if r["precision"] == "fp32")     # the reference
    text = capsys.readouterr().out
    assert "decoder_step" in text and "fp32/int8" in text and "load" in text
    # a package without an int8 step: the line says so, and only fp32 is measured
    rows = []
    from bridge.cli.bench import compare_precisions
    lines = []
    rows = compare_precisions(tiny_models_dir / "mel_2bar", ("fp32", "int8"), batches=(1,), repeats=2,
                              op_repeats=1, log=lines.append)
    assert "int8: not available" in lines[0] and {r["precision"] for r in rows} == {"fp32"}


def test_single_precision_bench_rows_say_which_ran(tiny_int8_models_dir, tmp_path):
    out = tmp_path / "b.json"
    assert main(["bench", "--models", str(tiny_int8_models_dir), "--model", "trio_16bar", "--repeats", "1",
                 "--precision", "int8", "--json", str(out)]) == 0
    assert {r["precision"] for r in json.loads(out.read_text())} == {"int8"}


def test_serve_precision_is_logged_per_model(tiny_int8_models_dir, tiny_models_dir):
    srv = spawn_server((tiny_int8_models_dir / "mel_2bar", tiny_models_dir / "drums_2bar"),
                       "--log-format", "json", "--precision", "int8", timeout=120)
    try:
        lines = [json.loads(line) for line in srv.log_lines() if line.startswith("{")]
        msgs = [line.get("msg", "") for line in lines]
        assert any("mel_2bar: decoder step int8 (int8 asked for" in m for m in msgs), msgs
        assert any("drums_2bar: decoder step fp32 (int8 asked for; the package has no int8" in m for m in msgs), msgs
        with srv.client() as c:
            r = c.request("sample", model="mel_2bar", n=1, temperature=0.0, seed=1, timeout=60)
            assert r.ok
    finally:
        assert srv.stop() == 0
