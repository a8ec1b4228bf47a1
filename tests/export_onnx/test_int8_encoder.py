"""export_onnx.int8_encoder (`add-int8`'s encoder half): the int8 encoder graph against the float one,
its gate both ways, what lands in model.json and the card, and the runtime running it."""
from __future__ import annotations

import shutil

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from bridge.runtime import package as P
from bridge.runtime.engine import Model, choose_precision, load_model
from bridge.runtime.sessions import open_session
from export_onnx import int8 as Q
from export_onnx import int8_encoder as E
from export_onnx import model_card


def _rows(session, x):
    """mu of each one-hot window of x, one call per window (as the runtime runs an int8 encoder)."""
    return np.concatenate([session.run(["mu"], {"inputs": x[i:i + 1]})[0] for i in range(len(x))])


def _windows(pkg, n=8):
    m = load_model(pkg, provider="cpu", precision="fp32")
    return m.codec.one_hot(m.decode_tokens(m.sample_z(n, 3), 1.0, seed=4).astype(np.int64))


@pytest.mark.parametrize("name", ["mel_2bar", "mel_16bar"])
def test_int8_encoder_is_a_drop_in_close_to_the_float_encoder(tiny_models_dir, tmp_path, name):
    src = tiny_models_dir / name / "encoder.onnx"
    info = E.quantize_encoder(src, tmp_path / "q.onnx")
    lstms = Q.op_counts(onnx.load(str(src))).get("LSTM", 0)
    assert lstms >= 1 and info["lstms"] == info["lstms_quantized"] == lstms
    assert "LSTM" not in info["ops"] and info["ops"]["DynamicQuantizeLSTM"] == lstms
    f = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"])
    q = ort.InferenceSession(str(tmp_path / "q.onnx"), providers=["CPUExecutionProvider"])
    sig = lambda s: ([(i.name, i.shape, i.type) for i in s.get_inputs()],  # noqa: E731
                     [(o.name, o.shape, o.type) for o in s.get_outputs()])
    assert sig(q) == sig(f)
    x = _windows(tiny_models_dir / name, 5)
    (mu_f, _), (mu_q, sig_q) = f.run(None, {"inputs": x}), q.run(None, {"inputs": x})
    rel = np.linalg.norm(mu_q - mu_f, axis=1) / np.linalg.norm(mu_f, axis=1)
    assert 0 < rel.max() < 0.1, rel                       # quantised (not identical), yet close
    assert np.all(sig_q > 0)


def test_fold_float16_casts_keeps_the_numbers(tiny_models_dir, tmp_path):
    """The exporter's float16 storage (initializer + Cast) folded back: no Cast of a float16
    initializer is left, and the graph computes the same."""
    from export_onnx.export import to_fp16_storage
    from onnx import numpy_helper
    path = tmp_path / "enc.onnx"
    model = onnx.load(str(tiny_models_dir / "mel_2bar" / "encoder.onnx"))
    for init in model.graph.initializer:          # weights float16 holds exactly, as export rounds them
        arr = numpy_helper.to_array(init)
        if arr.dtype == np.float32:
            init.CopyFrom(numpy_helper.from_array(arr.astype(np.float16).astype(np.float32), init.name))
    onnx.save(model, str(path))
    to_fp16_storage(path)
    stored = onnx.load(str(path))
    assert any(i.data_type == onnx.TensorProto.FLOAT16 for i in stored.graph.initializer)
    folded = E.fold_float16_casts(stored)
    assert not any(i.data_type == onnx.TensorProto.FLOAT16 for i in folded.graph.initializer)
    onnx.save(folded, str(tmp_path / "folded.onnx"))
    x = _windows(tiny_models_dir / "mel_2bar", 3)
    a = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"inputs": x})
    b = ort.InferenceSession(str(tmp_path / "folded.onnx"), providers=["CPUExecutionProvider"]).run(None, {"inputs": x})
    np.testing.assert_array_equal(a[0], b[0])


def test_add_int8_writes_the_encoder_section_file_and_card(mel, tiny_int8):
    tiny_int8(mel)
    info = P.read_manifest(mel)
    P.verify_files(mel, info)                                    # hashed like the other graphs
    entry = info[P.INT8_ENCODER_KEY]
    assert entry["usable"] is True and entry["file"] == P.INT8_ENCODER_FILE
    assert info["files"][P.INT8_ENCODER_FILE] == entry["sha256"] == P.sha256_file(mel / P.INT8_ENCODER_FILE)
    assert entry["source_sha256"] == info["files"]["encoder.onnx"]
    assert 0.5 <= entry["agreement_recon"] <= 1.0 and 0.5 <= entry["agreement_prior"] <= 1.0
    assert 0 < entry["mu_rel_error"] < 0.1 and entry["n_windows"] == 16 and entry["n_prior"] == 16
    assert P.int8_graph(info, "encoder") == (entry, "")
    section = model_card.card_section((mel / "MODEL_CARD.md").read_text(), model_card.INT8_ENCODER_HEADING)
    assert section and "**Passed**" in section and f"{entry['agreement_recon']:.4f}" in section
    assert model_card.INT8_ENCODER_HEADING in model_card.PACKAGE_SECTIONS
    # the runtime runs it: encode = the int8 graph's mu, not the float graph's
    x = _windows(mel, 4)
    tokens = np.stack([x[..., :].argmax(-1)], axis=-1)
    m8, m32 = load_model(mel, precision="int8"), load_model(mel, precision="fp32")
    assert m8.encoder_precision == "int8" and m32.encoder_precision == "fp32"
    direct = open_session(mel / P.INT8_ENCODER_FILE, ["CPUExecutionProvider"], 1)    # as the runtime opens it
    np.testing.assert_array_equal(m8.encode_tokens(tokens), _rows(direct, x))
    assert np.abs(m8.encode_tokens(tokens) - m32.encode_tokens(tokens)).max() > 1e-4
    assert load_model(mel).encoder_precision == "int8"           # auto: gate 0 passed


def test_the_encoder_gate_refuses_and_the_runtime_says_why(mel, tiny_int8):
    tiny_int8(mel)
    assert (mel / P.INT8_ENCODER_FILE).is_file()
    tiny_int8(mel, min_agreement=1.01)
    info = P.read_manifest(mel)
    entry = info[P.INT8_ENCODER_KEY]
    assert entry["usable"] is False and entry["file"] is None and "below the 1.01 gate" in entry["reason"]
    assert P.INT8_ENCODER_FILE not in info["files"] and not (mel / P.INT8_ENCODER_FILE).exists()
    P.verify_files(mel, info)
    m = load_model(mel)
    assert m.encoder_precision == "fp32" and "refused" in m.encoder_precision_reason
    section = model_card.card_section((mel / "MODEL_CARD.md").read_text(), model_card.INT8_ENCODER_HEADING)
    assert "**Not shipped**" in section


def test_choose_precision_for_the_encoder():
    files = {"encoder.onnx": "aa", P.INT8_ENCODER_FILE: "cc"}

    def manifest(agreements, source="aa"):
        return {"graphs": {"encoder": {"file": "encoder.onnx"}}, "files": files,
                P.INT8_ENCODER_KEY: {"file": P.INT8_ENCODER_FILE, "sha256": "cc", "source_sha256": source,
                                     "agreement_recon": agreements[0], "agreement_prior": agreements[1]}}
    assert choose_precision(manifest((0.99, 0.985)), "auto", role="encoder")[0] == "int8"
    prec, why = choose_precision(manifest((0.99, 0.97)), "auto", role="encoder")
    assert prec == "fp32" and "int8 encoder's argmax agreement 0.9700 is below" in why
    assert choose_precision(manifest((0.99, 0.97)), "int8", role="encoder")[0] == "int8"
    prec, why = choose_precision(manifest((0.99, 0.99), source="other"), "auto", role="encoder")
    assert prec == "fp32" and "re-exported" in why
    prec, why = choose_precision({"graphs": {}, "files": {}}, "auto", role="encoder")
    assert prec == "fp32" and "has no int8 encoder" in why


def test_encoder_file_override(mel, tmp_path):
    E.quantize_encoder(mel / "encoder.onnx", tmp_path / "cand.onnx")
    m = Model(mel, provider="cpu", precision="fp32", encoder_file=tmp_path / "cand.onnx", verify=False)
    assert m.encoder_precision == "file" and m.precision == "fp32"
    x = _windows(mel, 2)
    direct = open_session(tmp_path / "cand.onnx", ["CPUExecutionProvider"], 1)
    np.testing.assert_array_equal(m.encode_tokens(x.argmax(-1)[..., None]), _rows(direct, x))


def test_the_size_limit_counts_a_pairs_sampler(mel, tmp_path):
    """add-sampler limits the package and its sampler together; add-int8 must count both too."""
    from export_onnx.pair import add_sampler
    alone = Q.package_megabytes(mel, P.read_manifest(mel))
    other = tmp_path / "other"
    shutil.copytree(mel, other)
    add_sampler(mel, other, why="test")
    info = P.read_manifest(mel)
    sampler_mb = sum(f.stat().st_size for f in (mel / P.SAMPLER_DIR).rglob("*") if f.is_file()) / 1e6
    assert sampler_mb > 0.01
    assert Q.package_megabytes(mel, info) == pytest.approx(alone + sampler_mb, abs=0.002)


def test_an_int8_code_does_not_depend_on_its_batch(mel, tiny_int8):
    """Dynamic quantisation scales the activations over the whole call: the runtime encodes one
    sequence per call, so a clip's code is the same alone or with others (float: the same anyway)."""
    tiny_int8(mel)
    m8 = load_model(mel, precision="int8")
    x = _windows(mel, 6)
    tokens = x.argmax(-1)[..., None]
    together = m8.encode_tokens(tokens)
    alone = np.concatenate([m8.encode_tokens(tokens[i:i + 1]) for i in range(len(tokens))])
    np.testing.assert_array_equal(together, alone)
    session = open_session(mel / P.INT8_ENCODER_FILE, ["CPUExecutionProvider"], 1)
    np.testing.assert_array_equal(alone, _rows(session, x))
    whole_call = session.run(["mu"], {"inputs": x})[0]
    assert np.abs(whole_call - alone).max() > 0      # what one call over the batch would have given


@pytest.mark.parametrize("name", ["mel_2bar", "mel_16bar", "trio_16bar"])
def test_empty_batches_encode_and_decode_to_empty_arrays(tiny_models_dir, name):
    """onnxruntime's LSTM kernels abort the whole process on a batch of 0: the runtime answers an
    empty batch without running a graph."""
    m = load_model(tiny_models_dir / name, precision="fp32")
    mu, sigma = m.encode_tokens(np.zeros((0, m.num_steps, len(m.num_classes)), dtype=np.int64), return_sigma=True)
    assert mu.shape == sigma.shape == (0, m.z_size) and mu.dtype == np.float32
    out = m.decode_tokens(np.zeros((0, m.z_size), dtype=np.float32), 0.0)
    assert out.shape == (0, m.num_steps, len(m.num_classes))
