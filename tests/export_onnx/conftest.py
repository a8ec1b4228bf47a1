"""Fixtures of the export_onnx tests."""
from __future__ import annotations

import shutil

import pytest


@pytest.fixture()
def mel(tiny_models_dir, tmp_path):
    """A writable copy of the tiny mel_2bar package (add-int8 and add-sampler change a package)."""
    dst = tmp_path / "mel_2bar"
    shutil.copytree(tiny_models_dir / "mel_2bar", dst)
    return dst
