"""export_onnx.int8 (`add-int8`): the Gemm -> MatMul rewrite, the int8 graph against the float one,
the quality gate both ways, what lands in model.json and the model card, re-runs."""
from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from bridge.runtime import package as P
from bridge.runtime.engine import load_model
from export_onnx import audit as A
from export_onnx import int8 as Q
from export_onnx import model_card
from export_onnx.__main__ import build_parser


def _run(path, feeds):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feeds)


def _step_feeds(sess, batch, seed=0):
    rng = np.random.default_rng(seed)
    feeds = {}
    for i in sess.get_inputs():
        shape = [batch if not isinstance(d, int) else d for d in i.shape]
        feeds[i.name] = (0.5 * rng.standard_normal(shape)).astype(np.float32)
    prev = np.zeros_like(feeds["prev"])
    prev[np.arange(batch), rng.integers(0, prev.shape[1], batch)] = 1.0
    feeds["prev"] = prev
    return feeds


def test_gemm_rewrite_handles_fp16_storage_transb_alpha_beta(tmp_path):
    """Every Gemm form the exporters write becomes MatMul (+ Add) with the same numbers, and the
    float16 weights (stored + Cast) are folded into a float32 initializer the quantiser can see."""
    rng = np.random.default_rng(0)
    w = rng.standard_normal((6, 4)).astype(np.float16)           # (N, K): used with transB
    c = rng.standard_normal(6).astype(np.float32)
    nodes = [helper.make_node("Cast", ["w16"], ["w"], to=TensorProto.FLOAT, name="cast_w"),
             helper.make_node("Gemm", ["x", "w", "c"], ["y"], transB=1, alpha=2.0, beta=0.5, name="g1"),
             helper.make_node("Gemm", ["y", "w2", "dyn"], ["z"], name="g2")]
    w2 = rng.standard_normal((6, 3)).astype(np.float32)
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["B", 4]),
                     helper.make_tensor_value_info("dyn", TensorProto.FLOAT, ["B", 3])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["B", 3])],
        initializer=[numpy_helper.from_array(w, "w16"), numpy_helper.from_array(c, "c"),
                     numpy_helper.from_array(w2, "w2")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    new, rewritten = Q.gemms_to_matmuls(model)
    assert sorted(rewritten) == ["g1", "g2"]
    ops = Q.op_counts(new)
    assert "Gemm" not in ops and "Cast" not in ops and ops["MatMul"] == 2 and ops["Add"] == 2
    assert {i.name for i in new.graph.initializer}.isdisjoint({"w16"})     # the float16 copy is gone
    feeds = {"x": rng.standard_normal((3, 4)).astype(np.float32), "dyn": rng.standard_normal((3, 3)).astype(np.float32)}
    onnx.save(model, str(tmp_path / "a.onnx"))
    onnx.save(new, str(tmp_path / "b.onnx"))
    np.testing.assert_allclose(_run(tmp_path / "a.onnx", feeds)[0], _run(tmp_path / "b.onnx", feeds)[0],
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["mel_2bar", "trio_16bar"])
def test_int8_step_is_a_drop_in_close_to_the_float_step(tiny_models_dir, tmp_path, name):
    src = tiny_models_dir / name / "decoder_step.onnx"
    info = Q.quantize_step(src, tmp_path / "q.onnx")
    cores = 3 if name == "trio_16bar" else 1
    # step_graph writes per core 2 layer Gemms + 1 output projection: the layers are quantised
    assert info["gemms_rewritten"] == 3 * cores and info["matmuls_quantized"] == 2 * cores
    assert len(info["kept_float"]) == cores
    assert "Gemm" not in info["ops"] and info["ops"].get("MatMulInteger", 0) == 2 * cores
    f = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"])
    q = ort.InferenceSession(str(tmp_path / "q.onnx"), providers=["CPUExecutionProvider"])
    sig = lambda s: ([(i.name, i.shape, i.type) for i in s.get_inputs()],  # noqa: E731
                     [(o.name, o.shape, o.type) for o in s.get_outputs()])
    assert sig(q) == sig(f)
    for batch in (1, 5):
        feeds = _step_feeds(f, batch, seed=batch)
        a, b = f.run(None, feeds), q.run(None, feeds)
        for x, y in zip(a, b):
            assert x.shape == y.shape and x.dtype == y.dtype == np.float32
            diff = float(np.abs(x - y).max())
            assert 0 < diff < 0.02, diff            # quantised (not identical), yet close
    # quantising the output projections too is an option
    info_all = Q.quantize_step(src, tmp_path / "q_all.onnx", output_projection=True)
    assert info_all["matmuls_quantized"] == 3 * cores and not info_all["kept_float"]


def test_add_int8_records_agreement_file_and_card(mel, tiny_int8):
    before = P.read_manifest(mel)
    entry = tiny_int8(mel)
    info = P.read_manifest(mel)
    P.verify_files(mel, info)                           # the int8 file is hashed like the others
    assert info["int8"] == entry
    for key in ("file", "sha256", "agreement_recon", "agreement_prior", "n_windows", "per_channel"):
        assert key in entry, key
    assert entry["file"] == P.INT8_FILE and entry["usable"] is True and entry["per_channel"] is True
    assert info["files"][P.INT8_FILE] == entry["sha256"] == P.sha256_file(mel / P.INT8_FILE)
    assert entry["source_sha256"] == info["files"]["decoder_step.onnx"]
    assert 0.9 <= entry["agreement_recon"] <= 1.0 and 0.9 <= entry["agreement_prior"] <= 1.0
    assert entry["n_windows"] == 16 and entry["n_prior"] == 16 and entry["min_agreement"] == 0.0
    assert set(entry["tracks"]) == {"melody"}
    # the float graphs, and so the audit's identity of the weights, are unchanged
    int8 = (P.INT8_FILE, P.INT8_ENCODER_FILE)
    graphs = lambda files: {f: s for f, s in files.items() if f.endswith(".onnx") and f not in int8}  # noqa: E731
    assert graphs(info["files"]) == graphs(before["files"])
    assert A.graphs_sha256(info) == A.graphs_sha256(before)
    card = (mel / "MODEL_CARD.md").read_text()
    section = model_card.card_section(card, model_card.INT8_HEADING)
    assert section and f"{entry['agreement_recon']:.4f}" in section and "**Passed**" in section
    # a second run replaces the file, the section and the entry (one of each)
    again = tiny_int8(mel, n=8)
    assert again["n_windows"] == 8
    card = (mel / "MODEL_CARD.md").read_text()
    assert card.count(model_card.INT8_HEADING) == 1 and P.read_manifest(mel)["int8"]["n_windows"] == 8
    assert load_model(mel, precision="int8").precision == "int8"


def test_gate_refuses_below_the_threshold_and_removes_an_older_file(mel, tiny_int8):
    tiny_int8(mel)                                       # kept (gate 0)
    assert (mel / P.INT8_FILE).is_file()
    entry = tiny_int8(mel, min_agreement=1.01)           # unreachable: refused
    info = P.read_manifest(mel)
    assert entry["usable"] is False and entry["file"] is None and entry["sha256"] is None
    assert "below the 1.01 gate" in entry["reason"]
    assert entry["agreement_recon"] > 0.9 and entry["agreement_prior"] > 0.9   # the measurement is kept
    assert P.INT8_FILE not in info["files"] and not (mel / P.INT8_FILE).exists()
    P.verify_files(mel, info)
    section = model_card.card_section((mel / "MODEL_CARD.md").read_text(), model_card.INT8_HEADING)
    assert "**Not shipped**" in section and "below the 1.01 gate" in section
    m = load_model(mel)                                  # auto: fp32, saying why
    assert m.precision == "fp32" and "refused" in m.precision_reason


def test_gate_refuses_a_package_that_would_pass_the_size_limit(mel, tiny_int8):
    size = Q.package_megabytes(mel, P.read_manifest(mel))
    entry = tiny_int8(mel, max_mb=size + 0.001)          # the int8 file (~20 kB) does not fit
    assert entry["usable"] is False and "over the" in entry["reason"] and "MB limit" in entry["reason"]
    assert not (mel / P.INT8_FILE).exists()
    assert entry["package_mb"] > size


def test_no_write_changes_nothing(mel, tiny_int8):
    manifest = (mel / "model.json").read_bytes()
    entry = tiny_int8(mel, write=False)
    assert entry["usable"] is True and entry["file"] == P.INT8_FILE
    assert (mel / "model.json").read_bytes() == manifest and not (mel / P.INT8_FILE).exists()


def test_card_refresh_keeps_the_int8_section(mel, tiny_int8, tmp_path):
    assert model_card.INT8_HEADING in model_card.PACKAGE_SECTIONS
    tiny_int8(mel)
    run = tmp_path / "run"
    run.mkdir()
    (run / "MODEL_CARD.md").write_text("# mel_2bar — model card\n\n## Metrics\nnew numbers\n")
    model_card.refresh_package_card(run, mel)
    card = (mel / "MODEL_CARD.md").read_text()
    assert "new numbers" in card and model_card.INT8_HEADING in card


def test_output_projections_are_found_through_add_and_concat(tiny_models_dir):
    for name, cores in (("mel_2bar", 1), ("trio_16bar", 3)):
        m, _ = Q.gemms_to_matmuls(onnx.load(str(tiny_models_dir / name / "decoder_step.onnx")))
        found = Q.output_projections(m)
        assert len(found) == cores
        producer = {n.name: n for n in m.graph.node}
        assert all(producer[n].op_type == "MatMul" for n in found)


def test_cli_parses_and_needs_held_out_data(mel, tmp_path):
    args = build_parser().parse_args(["add-int8", str(mel), "--min-agreement", "0.5", "--windows", "8",
                                      "--samples", "8", "--no-write", "--midi-dir", str(tmp_path / "absent")])
    assert args.min_agreement == 0.5 and args.windows == 8 and args.per_channel and args.no_write
    with pytest.raises(FileNotFoundError, match="held-out data of mel_2bar not found"):
        args.func(args)
    from export_onnx.export import MAX_PACKAGE_MB
    assert Q.MAX_PACKAGE_MB == MAX_PACKAGE_MB            # a copy: export imports torch
    out = json.loads((mel / "model.json").read_text())
    assert "int8" not in out
