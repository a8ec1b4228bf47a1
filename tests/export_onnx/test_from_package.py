"""`train --init-from PACKAGE`: a package's weights read back into torch, exported again unchanged,
and a run started from them carries the package's training history."""
import json

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

from export_onnx.export import write_package
from export_onnx.from_package import PackageReadError, read_package_model
from export_onnx.tiny import tiny_model
from export_onnx.train import train


def _initializers(path):
    m = onnx.load(str(path))
    return {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}


@pytest.mark.parametrize("name,weights", [("mel_2bar", "fp32"), ("drums_2bar", "fp16"),
                                          ("mel_16bar", "fp32"), ("trio_16bar", "fp16")])
def test_package_round_trip_gives_the_same_graphs(tmp_path, name, weights):
    model = tiny_model(name, seed=3, size="tiny")
    first = write_package(model, tmp_path / "a", name=name, weights=weights,
                          training={"config": name, "step": 10, "recipe": {"batch_size": 4}})
    back, manifest = read_package_model(tmp_path / "a")
    assert manifest["name"] == name
    # every parameter read back equals the exported (fp16-rounded where fp16) weights
    ref = tiny_model(name, seed=3, size="tiny")
    if weights == "fp16":
        ref = ref.half().float()
    for (k, a), (k2, b) in zip(back.state_dict().items(), ref.state_dict().items()):
        assert k == k2
        torch.testing.assert_close(a, b, atol=2e-6, rtol=1e-5, msg=k)
    write_package(back, tmp_path / "b", name=name, weights=weights, training={"config": name})
    for role, g in first["graphs"].items():
        a, b = _initializers(tmp_path / "a" / g["file"]), _initializers(tmp_path / "b" / g["file"])
        assert a.keys() == b.keys(), role
        for k in a:
            np.testing.assert_allclose(a[k].astype(np.float32), b[k].astype(np.float32), atol=2e-6, rtol=1e-5,
                                       err_msg=f"{role}.{k}")


def test_broken_package_is_refused(tmp_path):
    model = tiny_model("mel_2bar", seed=0, size="tiny")
    write_package(model, tmp_path / "p", name="mel_2bar", training={"config": "mel_2bar"})
    manifest = json.loads((tmp_path / "p" / "model.json").read_text())
    manifest["size"]["dec_units"] += 1
    (tmp_path / "p" / "model.json").write_text(json.dumps(manifest))
    with pytest.raises(PackageReadError, match="shape"):
        read_package_model(tmp_path / "p")


def test_train_init_from_starts_at_the_package_and_keeps_history(tmp_path):
    model = tiny_model("mel_2bar", seed=1, size="tiny")
    write_package(model, tmp_path / "pkg", name="mel_2bar",
                  training={"config": "mel_2bar", "step": 100, "wall_time": 60.0, "run": "old",
                            "recipe": {"batch_size": 8}})
    rng = np.random.default_rng(0)
    tok = rng.integers(0, 90, (16, 32, 1)).astype(np.uint16)
    (tmp_path / "data").mkdir()
    for split in ("train", "validation"):
        np.savez(tmp_path / "data" / f"{split}.npz", tokens=tok, song=np.arange(16, dtype=np.int32))
    summary = train("mel_2bar", tmp_path / "data", tmp_path / "run", max_steps=0, batch_size=8, threads=1,
                    progress=False, init_from=tmp_path / "pkg")
    assert summary["step"] == 0
    ck = torch.load(tmp_path / "run" / "latest.pt", weights_only=False)
    back, _ = read_package_model(tmp_path / "pkg")
    for k, v in back.state_dict().items():
        assert torch.equal(ck["model"][k], v), k
    assert ck["history"][0] == {"run": "old", "steps": 100, "examples": 800, "wall_time": 60.0, "runs": 1}
    train("mel_2bar", tmp_path / "data", tmp_path / "run2", max_steps=3, batch_size=8, threads=1,
          progress=False, init_from=tmp_path / "pkg")
    ck = torch.load(tmp_path / "run2" / "latest.pt", weights_only=False)
    assert [h["steps"] for h in ck["history"]] == [100, 3]
    assert ck["plan"] == {"steps": 3, "minutes": None}
