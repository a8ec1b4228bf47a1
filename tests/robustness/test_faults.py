"""Faults: broken packages, a package that vanishes while served, a graph that raises at run time,
CUDA asked for on a machine without it. Each gives a clear error and the other models keep serving."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
from onnx import helper, numpy_helper

from bridge.daemon.client import BridgeError, spawn_server
from bridge.runtime.package import sha256_file

MEL = [[60, 0, 1, 100, 0], [64, 1, 1, 90, 0]]


def _copy(src: Path, dest: Path, name: str) -> Path:
    shutil.copytree(src, dest)
    info = json.loads((dest / "model.json").read_text())
    info["name"] = name
    (dest / "model.json").write_text(json.dumps(info))
    return dest


def _reseal(pkg: Path, fname: str) -> None:
    """Record the current sha256 of a changed file, so that only onnxruntime can object."""
    info = json.loads((pkg / "model.json").read_text())
    info["files"][fname] = sha256_file(pkg / fname)
    (pkg / "model.json").write_text(json.dumps(info))


def _make_encoder_raise(pkg: Path) -> None:
    """Route the encoder's mu through Reshape(3, -1, 5): it loads, then fails on every run."""
    path = pkg / "encoder.onnx"
    model = onnx.load(str(path))
    g = model.graph
    for node in g.node:
        for i, o in enumerate(node.output):
            if o == "mu":
                node.output[i] = "mu_raw"
    z = json.loads((pkg / "model.json").read_text())["z_size"]
    g.initializer.extend([numpy_helper.from_array(np.array([3, -1, 5], np.int64), "bad_shape"),
                          numpy_helper.from_array(np.array([-1, z], np.int64), "back_shape")])
    g.node.extend([helper.make_node("Reshape", ["mu_raw", "bad_shape"], ["mu_bad"]),
                   helper.make_node("Reshape", ["mu_bad", "back_shape"], ["mu"])])
    onnx.save(model, str(path))
    _reseal(pkg, "encoder.onnx")


@pytest.fixture(scope="module")
def faulty(tiny_models_dir, tmp_path_factory):
    src = Path(tiny_models_dir)
    d = tmp_path_factory.mktemp("faulty")
    for name in ("mel_2bar", "drums_2bar"):
        shutil.copytree(src / name, d / name)
    flipped = _copy(src / "mel_2bar", d / "bad_sha", "bad_sha")           # bytes changed, manifest not
    data = bytearray((flipped / "decoder_step.onnx").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (flipped / "decoder_step.onnx").write_bytes(bytes(data))
    garbage = _copy(src / "mel_2bar", d / "bad_graph", "bad_graph")       # not ONNX, manifest resealed
    (garbage / "decoder_step.onnx").write_bytes(b"this is not an onnx graph" * 10)
    _reseal(garbage, "decoder_step.onnx")
    _make_encoder_raise(_copy(src / "mel_2bar", d / "raising", "raising"))
    _copy(src / "drums_2bar", d / "vanishing", "vanishing")
    return d


@pytest.fixture(scope="module")
def srv(faulty):
    server = spawn_server([faulty], "--workers", "2")
    yield server
    assert server.stop() == 0


def _serving(c) -> None:
    """The healthy models answer."""
    assert c.request("sample", model="mel_2bar", seed=1).ok
    assert c.request("encode", model="drums_2bar", notes=[[36, 0, 0.25]]).ok


def test_corrupt_packages_are_reported_and_skipped(srv):
    with srv.client() as c:
        info = c.request("models").data
        assert {m["name"] for m in info["models"]} == {"mel_2bar", "drums_2bar", "raising", "vanishing"}
        failed = {Path(f["source"]).name: f["error"] for f in info["failed"]}
        assert "sha256 mismatch" in failed["bad_sha"]
        assert "onnxruntime cannot load the graph" in failed["bad_graph"]
        for name in ("bad_sha", "bad_graph"):
            with pytest.raises(BridgeError) as e:
                c.request("sample", model=name)
            assert e.value.code == "unknown_model" and "mel_2bar" in e.value.message
        _serving(c)


def test_a_graph_that_raises_is_an_internal_error_and_the_daemon_goes_on(srv):
    with srv.client() as c:
        for _ in range(3):
            with pytest.raises(BridgeError) as e:
                c.request("encode", model="raising", notes=MEL)
            assert e.value.code == "internal" and "Reshape" in e.value.message
        assert c.request("sample", model="raising", seed=3).ok      # its decoder still works
        _serving(c)
        stats = c.request("stats").data
        assert stats["errors"]["internal"] >= 3
    assert any("request failed" in line and "Traceback" in line for line in srv.log_lines())


def test_a_package_deleted_while_served_keeps_serving_from_memory(srv, faulty):
    with srv.client() as c:
        before = c.request("sample", model="vanishing", seed=5).sequences
        shutil.rmtree(faulty / "vanishing")
        assert c.request("sample", model="vanishing", seed=5).sequences == before
        assert c.request("encode", model="vanishing", notes=[[36, 0, 0.25]]).ok
        _serving(c)


def test_cuda_requested_without_cuda(tiny_models_dir):
    server = spawn_server([Path(tiny_models_dir) / "mel_2bar"], "--provider", "cuda")
    try:
        with server.client() as c:
            assert c.request("sample", model="mel_2bar", seed=1).ok
        log = "\n".join(server.log_lines())
        if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
            assert "ready on" in log
        else:   # the fallback is announced, not silent
            assert "CUDA was asked for but onnxruntime has no CUDAExecutionProvider" in log
            assert "running on the CPU" in log
    finally:
        assert server.stop() == 0


def test_unknown_provider_is_a_clear_startup_error(tiny_models_dir):
    server = spawn_server([Path(tiny_models_dir) / "mel_2bar", Path(tiny_models_dir) / "drums_2bar"],
                          "--provider", "tpu")
    try:
        with server.client() as c:
            info = c.request("models").data
        assert info["models"] == []
        assert all("provider must be 'auto', 'cpu' or 'cuda'" in f["error"] for f in info["failed"])
        assert len(info["failed"]) == 2
    finally:
        assert server.stop() == 0
