import json
import shutil
import warnings

import numpy as np
import pytest

import bridge
from bridge import ModelError, Note
from bridge.runtime import package
from bridge.runtime.engine import load_model
from bridge.runtime.package import list_models

MELODY = [Note(60, 0.0, 1.0), Note(64, 1.0, 2.0), Note(67, 2.0, 3.5), Note(72, 4.0, 6.0)]
MELODY_B = [Note(55, 0.0, 0.5), Note(57, 0.5, 1.0), Note(59, 1.0, 4.0), Note(62, 6.0, 8.0)]


@pytest.fixture(scope="module")
def mel(tiny_models_dir):
    return load_model(tiny_models_dir / "mel_2bar", provider="cpu")


@pytest.fixture(scope="module")
def trio(tiny_models_dir):
    return load_model("trio_16bar", models_dirs=tiny_models_dir, provider="cpu")


@pytest.fixture()
def pkg_copy(tiny_models_dir, tmp_path):
    dst = tmp_path / "mel_2bar"
    shutil.copytree(tiny_models_dir / "mel_2bar", dst)
    return dst


def _z(m, n, seed=0, scale=2.0):
    return (scale * np.random.default_rng(seed).standard_normal((n, m.z_size))).astype(np.float32)


def test_lazy_exports_and_repr(mel):
    assert bridge.load_model is load_model and bridge.ModelError is ModelError
    assert mel.name == "mel_2bar" and mel.num_steps == 32 and mel.provider == "cpu"
    assert mel.info["format"] == "latent-bridge-model"


def test_list_models(tiny_models_dir, tmp_path):
    names = [m["name"] for m in list_models(tiny_models_dir)]
    assert names == sorted(["mel_2bar", "drums_2bar", "mel_16bar", "trio_16bar"])
    assert list_models(tmp_path) == []
    assert list_models(tmp_path / "absent") == []
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "model.json").write_text("{not json")
    [entry] = list_models(tmp_path)
    assert entry["name"] == "broken" and "error" in entry


def test_decode_shapes_and_batch_independence(tiny_models_dir):
    for name in ("mel_2bar", "drums_2bar", "mel_16bar", "trio_16bar"):
        m = load_model(tiny_models_dir / name, provider="cpu")
        z = _z(m, 4)
        toks = m.decode_tokens(z)
        assert toks.shape == (4, m.num_steps, len(m.num_classes))
        for k, n in enumerate(m.num_classes):
            assert 0 <= toks[..., k].min() and toks[..., k].max() < n
        # a row decodes the same alone or in a batch (interpolation points are batch rows)
        np.testing.assert_array_equal(m.decode_tokens(z[2]), toks[2:3])
        seqs = m.decode(z)
        assert len(seqs) == 4 and all(isinstance(n, Note) for s in seqs for n in s)


def test_io_binding_and_plain_run_agree(tiny_models_dir):
    for name in ("mel_2bar", "trio_16bar"):
        a = load_model(tiny_models_dir / name, provider="cpu", io_binding=True)
        b = load_model(tiny_models_dir / name, provider="cpu", io_binding=False)
        z = _z(a, 3, seed=5)
        np.testing.assert_array_equal(a.decode_tokens(z), b.decode_tokens(z))
        np.testing.assert_array_equal(a.decode_tokens(z, 1.0, seed=2), b.decode_tokens(z, 1.0, seed=2))


def test_seeds_reproduce(mel):
    s1 = mel.sample(3, temperature=1.0, seed=7)
    s2 = mel.sample(3, temperature=1.0, seed=7)
    assert s1 == s2
    z = _z(mel, 6)
    t = [mel.decode_tokens(z, temperature=2.0, seed=s) for s in (11, 11, 12)]
    np.testing.assert_array_equal(t[0], t[1])
    assert not np.array_equal(t[0], t[2])
    assert mel.variations(MELODY, 3, 0.5, seed=4) == mel.variations(MELODY, 3, 0.5, seed=4)


def test_temperature_zero_is_argmax(trio):
    z = _z(trio, 3)
    argmax = trio.decode_tokens(z, temperature=0.0)
    np.testing.assert_array_equal(trio.decode_tokens(z, temperature=0.0, seed=99), argmax)
    np.testing.assert_array_equal(trio.decode_tokens(z, temperature=1e-7, seed=1), argmax)
    hot = trio.decode_tokens(z, temperature=5.0, seed=1)
    assert (hot != argmax).mean() > 0.1


def test_sampling_follows_softmax_per_track(mel):
    """Gumbel-max draws follow softmax(logits / T) per track: check the first step's frequencies of
    every class. T = 0.1 makes the tiny model's flat logits a distribution neither argmax (one class
    always) nor uniform sampling (90 classes alike) could match."""
    temperature = 0.1
    z = np.repeat(_z(mel, 1, seed=3, scale=0.3), 4000, axis=0)
    toks = mel.decode_tokens(z, temperature=temperature, seed=0)[:, 0, 0]
    sess_init = mel.sessions["decoder_init"]
    c, h, proj = sess_init.run(["state_c", "state_h", "cond_proj"], {"cond": z[:1]})   # format 2
    logits = mel.sessions["decoder_step"].run(None, {"prev": np.zeros((1, mel.input_size), np.float32),
                                                     "cond_proj": proj, "state_c": c, "state_h": h})[0][0]
    p = np.exp(logits / temperature - (logits / temperature).max())
    p /= p.sum()
    assert 0.3 < p.max() < 0.9 and np.sort(p)[-2] > 0.05, np.sort(p)[-3:]   # a test that can fail
    freq = np.bincount(toks, minlength=mel.input_size) / len(toks)
    np.testing.assert_allclose(freq, p, atol=0.03)


def test_encode_and_interpolate_endpoints(mel):
    za, zb = mel.encode([MELODY, MELODY_B])
    assert mel.encode(MELODY).shape == (1, mel.z_size)
    np.testing.assert_allclose(mel.encode(MELODY)[0], za, atol=1e-6)
    mu, sigma = mel.encode([MELODY], return_sigma=True)
    assert (sigma > 0).all()
    seqs = mel.interpolate(MELODY, MELODY_B, steps=5)
    assert len(seqs) == 5
    recon = mel.decode(np.stack([za, zb]))
    assert seqs[0] == recon[0] and seqs[-1] == recon[1]
    lerped = mel.interpolate(za, zb, steps=3, method="lerp")
    assert lerped[0] == recon[0] and lerped[-1] == recon[1]


def test_encode_folds_octaves_and_drops_late_notes(mel):
    high = [Note(60 + 48, 0.0, 1.0), Note(12, 1.0, 2.0), Note(60, 100.0, 101.0)]
    folded = [Note(108, 0.0, 1.0), Note(24, 1.0, 2.0)]
    np.testing.assert_array_equal(mel.notes_to_tokens(high), mel.notes_to_tokens(folded))


def test_palette_and_attribute(pkg_copy):
    info = json.loads((pkg_copy / "model.json").read_text())
    z = info["z_size"]
    info["attributes"] = {"note_density": {"vector": [1.0] * z, "effect": {}}}
    info["directions"] = [{"name": "pc1", "vector": [0.0] * (z - 1) + [2.0], "effect": {}}]
    (pkg_copy / "model.json").write_text(json.dumps(info))
    m = load_model(pkg_copy, provider="cpu")
    assert m.attributes == ["note_density", "pc1"]
    base = np.zeros(z, np.float32)
    np.testing.assert_array_equal(m.attribute(base, "note_density", 1.5), np.full((1, z), 1.5, np.float32))
    np.testing.assert_array_equal(m.attribute(base, "pc1", -1.0)[0, -1], -2.0)
    with pytest.raises(KeyError, match="note_density"):
        m.attribute(base, "loudness", 1.0)
    corners = _z(m, 4, seed=1)
    grid = m.palette(corners, size=3)
    assert len(grid) == 9
    recon = m.decode(corners)
    assert [grid[0], grid[2], grid[6], grid[8]] == recon
    assert len(m.palette([MELODY, MELODY_B, MELODY_B, MELODY], (2, 3))) == 6


def test_cuda_request_falls_back_with_a_warning(tiny_models_dir):
    import onnxruntime as ort
    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("CUDA is available here")
    with pytest.warns(RuntimeWarning, match="CUDA"):
        m = load_model(tiny_models_dir / "mel_2bar", provider="cuda")
    assert m.provider == "cpu"
    assert len(m.sample(1, seed=0)) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_model(tiny_models_dir / "mel_2bar", provider="auto").provider == "cpu"
    with pytest.raises(ValueError):
        load_model(tiny_models_dir / "mel_2bar", provider="tpu")


def test_auto_on_a_cpu_only_onnxruntime_says_so_once_with_the_gpu_hint(tiny_models_dir, monkeypatch, caplog):
    import onnxruntime as ort
    from bridge.runtime import sessions
    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("CUDA is available here: auto picks it")
    monkeypatch.setattr(sessions, "_said_cpu", False)
    with caplog.at_level("INFO", logger="bridge.sessions"):
        load_model(tiny_models_dir / "mel_2bar", provider="auto")
        load_model(tiny_models_dir / "drums_2bar", provider="auto")
    said = [r.getMessage() for r in caplog.records if r.name == "bridge.sessions"]
    assert len(said) == 1 and "run on the CPU" in said[0] and "pip install -e '.[gpu]'" in said[0]


def _rehash(pkg, fname):
    info = json.loads((pkg / "model.json").read_text())
    info["files"][fname] = package.sha256_file(pkg / fname)
    (pkg / "model.json").write_text(json.dumps(info))


def test_corrupt_and_truncated_graphs_raise_model_error(pkg_copy):
    f = pkg_copy / "decoder_step.onnx"
    data = f.read_bytes()
    f.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match="sha256 mismatch"):
        load_model(pkg_copy)
    _rehash(pkg_copy, "decoder_step.onnx")   # a truncated file that the manifest agrees with
    with pytest.raises(ModelError, match="decoder_step.onnx: onnxruntime cannot load"):
        load_model(pkg_copy)
    f.write_bytes(b"\x00garbage" * 64)
    _rehash(pkg_copy, "decoder_step.onnx")
    with pytest.raises(ModelError, match="decoder_step.onnx"):
        load_model(pkg_copy)


def test_sha_mismatch_missing_file_bad_manifest(pkg_copy, tmp_path):
    enc = pkg_copy / "encoder.onnx"
    data = bytearray(enc.read_bytes())
    data[-1] ^= 0xFF
    enc.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="encoder.onnx: sha256 mismatch"):
        load_model(pkg_copy)
    enc.unlink()
    with pytest.raises(ModelError, match="missing file encoder.onnx"):
        load_model(pkg_copy)
    info = json.loads((pkg_copy / "model.json").read_text())
    for breakage, match in [(lambda d: d.pop("graphs"), "lacks graphs"),
                            (lambda d: d.update(format="other"), "not a latent-bridge model"),
                            (lambda d: d.update(format_version=99), "newer"),
                            (lambda d: d.update(input_size=3), "input_size")]:
        d = json.loads(json.dumps(info))
        breakage(d)
        (pkg_copy / "model.json").write_text(json.dumps(d))
        with pytest.raises(ModelError, match=match):
            load_model(pkg_copy)
    (pkg_copy / "model.json").write_text("[1, 2")
    with pytest.raises(ModelError, match="JSON"):
        load_model(pkg_copy)
    (pkg_copy / "model.json").unlink()
    with pytest.raises(ModelError, match="no model.json"):
        load_model(pkg_copy)
    with pytest.raises(ModelError, match="no model package 'nope'"):
        load_model("nope", models_dirs=tmp_path)


def test_bad_inputs(mel):
    with pytest.raises(ValueError):
        mel.decode(np.zeros((2, mel.z_size + 1), np.float32))
    with pytest.raises(ValueError):
        mel.decode(np.full(mel.z_size, np.nan, np.float32))
    with pytest.raises(ValueError):
        mel.decode(np.zeros(mel.z_size, np.float32), temperature=-1)
    with pytest.raises(ValueError):
        mel.encode_tokens(np.full((1, 32, 1), 500))
    with pytest.raises(ValueError):
        mel.encode([])
