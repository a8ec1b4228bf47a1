"""The decoder step's precision (bridge.runtime.engine: choose_precision, load_model(precision=...),
the process default) and the manifest's int8 section (bridge.runtime.package.int8_step)."""
from __future__ import annotations

import logging
import shutil

import numpy as np
import pytest

from bridge import ModelError
from bridge.runtime import engine, package
from bridge.runtime.engine import choose_precision, load_model
from bridge.runtime.package import INT8_FILE, INT8_MIN_AGREEMENT, int8_agreement, int8_step


def manifest(agreement=(0.99, 0.995), file=INT8_FILE, sha="aa", source="bb", usable=True):
    """A manifest with just what the precision choice reads."""
    entry = {"file": file, "sha256": sha if file else None, "source_sha256": source, "usable": usable,
             "agreement_recon": agreement[0], "agreement_prior": agreement[1], "reason": "r"}
    files = {"decoder_step.onnx": "bb"} | ({file: sha} if file else {})
    return {"name": "m", "graphs": {"decoder_step": {"file": "decoder_step.onnx"}}, "files": files, "int8": entry}


@pytest.fixture()
def clean_default(monkeypatch):
    monkeypatch.delenv(engine.PRECISION_ENV, raising=False)
    engine.set_default_precision(None)
    yield
    engine.set_default_precision(None)


def test_choose_precision_from_the_manifest(clean_default):
    assert INT8_MIN_AGREEMENT == 0.98
    ok = manifest()
    assert choose_precision(ok, "auto") == ("int8", "auto: the int8 step's argmax agreement 0.9900 >= the 0.98 gate")
    assert choose_precision(ok, None)[0] == "int8"                       # the default is auto
    assert choose_precision(ok, "fp32") == ("fp32", "fp32 asked for")
    assert choose_precision(ok, "int8")[0] == "int8"
    # auto: only above the gate; the lower of the two agreements counts
    low = manifest((0.99, 0.975))
    prec, why = choose_precision(low, "auto")
    assert prec == "fp32" and "0.9750 is below the 0.98 gate" in why
    assert choose_precision(low, "int8")[0] == "int8"                    # asked for explicitly: used
    assert choose_precision(manifest((0.98, 0.98)), "auto")[0] == "int8"   # >= the gate
    # auto keeps fp32 on CUDA (the int8 kernels are CPU kernels)
    prec, why = choose_precision(ok, "auto", provider="cuda")
    assert prec == "fp32" and "cuda" in why


def test_fp32_fallback_when_the_int8_step_is_missing_refused_or_stale(clean_default):
    none = {"graphs": {"decoder_step": {"file": "decoder_step.onnx"}}, "files": {"decoder_step.onnx": "bb"}}
    for info, words in ((none, "has no int8 decoder step"),
                        (manifest(file=None, usable=False), "add-int8 refused it"),
                        (manifest(source="other"), "re-exported"),
                        (manifest(sha="zz") | {"files": {"decoder_step.onnx": "bb", INT8_FILE: "yy"}}, "not listed"),
                        (manifest() | {"int8": "yes"}, "not an object")):
        for asked in ("auto", "int8"):
            prec, why = choose_precision(info, asked)
            assert prec == "fp32" and words in why, (asked, why)
    assert int8_step(none) == (None, "the package has no int8 decoder step (python -m export_onnx add-int8 adds one)")
    assert int8_agreement({"agreement_recon": 0.99}) is None
    assert int8_agreement({"agreement_recon": 0.99, "agreement_prior": 0.97}) == 0.97


def test_bad_precision_values_are_refused_clearly(clean_default, tiny_models_dir, monkeypatch):
    with pytest.raises(ValueError, match="precision must be one of fp32, int8, auto; got 'int4'"):
        choose_precision(manifest(), "int4")
    with pytest.raises(ValueError, match="precision must be one of"):
        load_model(tiny_models_dir / "mel_2bar", precision="fp16")
    with pytest.raises(ValueError, match="precision must be one of"):
        engine.set_default_precision("INT8")
    monkeypatch.setenv(engine.PRECISION_ENV, "fast")
    with pytest.raises(ValueError, match=r"\$LATENT_BRIDGE_PRECISION: precision must be one of"):
        engine.default_precision()


def test_process_default_and_environment(clean_default, monkeypatch):
    assert engine.default_precision() == "auto"
    monkeypatch.setenv(engine.PRECISION_ENV, "fp32")
    assert engine.default_precision() == "fp32"
    assert choose_precision(manifest(), None)[0] == "fp32"
    engine.set_default_precision("int8")                 # set_default_precision wins over the environment
    assert engine.default_precision() == "int8"
    engine.set_default_precision(None)
    assert engine.default_precision() == "fp32"


def test_load_model_auto_picks_int8_only_above_the_gate(clean_default, tiny_int8_models_dir, tmp_path, caplog):
    pkg = tmp_path / "mel_2bar"
    shutil.copytree(tiny_int8_models_dir / "mel_2bar", pkg)

    def agreement(recon, prior):
        def change(info):
            info["int8"].update(agreement_recon=recon, agreement_prior=prior)
        package.update_manifest(pkg, change)

    agreement(0.995, 0.985)                     # the gate is the runtime's: set what add-int8 measured
    with caplog.at_level(logging.INFO, logger="bridge.runtime.engine"):
        m = load_model(pkg)
    assert m.precision == "int8" and "auto:" in m.precision_reason and "precision=int8" in repr(m)
    assert any("mel_2bar: decoder step int8 (auto:" in r.getMessage() for r in caplog.records)
    fp = load_model(pkg, precision="fp32")
    assert fp.precision == "fp32"
    # the int8 step runs in the same loop: same shapes, (nearly) the same argmax tokens
    z = fp.sample_z(8, 3)
    a, b = fp.decode_tokens(z), m.decode_tokens(z)
    assert a.shape == b.shape and np.mean(a == b) > 0.9

    agreement(0.995, 0.97)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="bridge.runtime.engine"):
        m = load_model(pkg, precision="auto")
    assert m.precision == "fp32" and "below the 0.98 gate" in m.precision_reason
    assert any("decoder step fp32 (auto: the int8 step's argmax agreement 0.9700 is below" in r.getMessage()
               for r in caplog.records)
    assert load_model(pkg, precision="int8").precision == "int8"          # explicit: still available


def test_int8_asked_for_without_an_int8_step_warns_and_runs_fp32(clean_default, tiny_models_dir, caplog):
    with caplog.at_level(logging.INFO, logger="bridge.runtime.engine"):
        m = load_model(tiny_models_dir / "trio_16bar", precision="int8")
    assert m.precision == "fp32" and "no int8 decoder step" in m.precision_reason
    [rec] = [r for r in caplog.records if "decoder step fp32" in r.getMessage()]
    assert rec.levelno == logging.WARNING
    assert load_model(tiny_models_dir / "trio_16bar").precision == "fp32"     # auto: nothing to use


def test_int8_file_is_verified_like_the_other_graphs(clean_default, tiny_int8_models_dir, tmp_path):
    pkg = tmp_path / "trio_16bar"
    shutil.copytree(tiny_int8_models_dir / "trio_16bar", pkg)
    assert load_model(pkg, precision="int8").precision == "int8"
    data = bytearray((pkg / INT8_FILE).read_bytes())
    data[-1] ^= 0xFF
    (pkg / INT8_FILE).write_bytes(bytes(data))
    with pytest.raises(ModelError, match="sha256 mismatch"):
        load_model(pkg, precision="fp32")


def test_step_file_override_is_checked(clean_default, tiny_int8_models_dir, tiny_models_dir):
    pkg = tiny_int8_models_dir / "mel_2bar"
    m = engine.Model(pkg, step_file=pkg / INT8_FILE)
    assert m.precision == "file" and str(pkg / INT8_FILE) in m.precision_reason
    with pytest.raises(ModelError, match="graph has inputs"):
        engine.Model(pkg, step_file=tiny_models_dir / "mel_2bar" / "encoder.onnx")
