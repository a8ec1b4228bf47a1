"""The package format (bridge.runtime.package): the one definition the exporter and the runtime use."""
from __future__ import annotations

import json
import shutil

import pytest

from bridge import ModelError
from bridge.runtime import package


@pytest.fixture
def pkg(tiny_models_dir, tmp_path):
    dst = tmp_path / "mel_2bar"
    shutil.copytree(tiny_models_dir / "mel_2bar", dst)
    return dst


def test_the_tiny_packages_follow_the_format(tiny_models_dir):
    for d in tiny_models_dir.iterdir():
        info = package.read_manifest(d)
        package.verify_files(d, info)
        assert info["format"] == package.FORMAT and info["format_version"] == package.FORMAT_VERSION
        for role in package.required_roles(info):
            ins, outs = package.graph_io(info)[role]
            assert list(info["graphs"][role]["inputs"]) == list(ins)
            assert list(info["graphs"][role]["outputs"]) == list(outs)


def test_update_manifest_rehashes_and_writes_atomically(pkg):
    (pkg / "NOTES.md").write_text("hello\n")
    info = package.update_manifest(pkg, lambda i: i.update(note="x"), files=["NOTES.md"])
    assert info["files"]["NOTES.md"] == package.sha256_file(pkg / "NOTES.md")
    on_disk = json.loads((pkg / "model.json").read_text())
    assert on_disk == info and not (pkg / "model.json.tmp").exists()
    package.verify_files(pkg, package.read_manifest(pkg))
    (pkg / "NOTES.md").write_text("changed\n")
    with pytest.raises(ModelError, match="sha256 mismatch"):
        package.verify_files(pkg, info)


def test_manifest_errors(tmp_path):
    with pytest.raises(ModelError, match="missing file model.json"):
        package.parse_manifest(tmp_path)
    (tmp_path / "model.json").write_text("[1, 2]")
    with pytest.raises(ModelError, match="must be a JSON object"):
        package.parse_manifest(tmp_path)
    (tmp_path / "model.json").write_text("{")
    with pytest.raises(ModelError, match="not a readable JSON manifest"):
        package.read_manifest(tmp_path)
    with pytest.raises(ModelError, match="no model package 'nowhere'"):
        package.find_model("nowhere", models_dirs=tmp_path)


def test_optional_graphs(pkg):
    info = package.read_manifest(pkg)
    assert package.optional_graph(info, package.SURROGATE_ROLE) is None
    info["graphs"][package.SURROGATE_ROLE] = {"file": "surrogate_encoder.onnx"}
    with pytest.raises(ModelError, match="needs a file listed"):
        package.optional_graph(info, package.SURROGATE_ROLE)
