"""export_onnx.latent_chain on the trio: lead and bass written by mel_2bar (the bass moved up two
octaves), drums by drums_2bar (tiny packages, real lmd_beatles windows)."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from bridge.runtime.engine import load_model
from export_onnx.dataset import build_dataset, load_split
from export_onnx.from_package import read_package_model
from export_onnx.latent_chain.model import NEVER, ChainSize, class_map, compose_core, output_map
from export_onnx.latent_chain.training import load_chain, train_chain, write_chain_package, write_codes

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
SIZE = ChainSize(z_size=16, enc_units=24, cond_units=24, cond_layers=2)
CODE = 4                                    # the tiny packages' z size: one code per part
pytestmark = pytest.mark.skipif(not (DATA / "lmd_beatles").is_dir(), reason="lmd_beatles (shared data) is not here")


@pytest.fixture(scope="module")
def trio_chain(tiny_models_dir, tmp_path_factory):
    """(mel_2bar, drums_2bar, dataset dir, run dir): codes of a few lmd_beatles songs' 16-bar trio
    windows (training windows also transposed +2) and a 60-step chain trained on them."""
    d = tmp_path_factory.mktemp("trio_chain")
    shorts = [d / "mel_2bar", d / "drums_2bar"]
    for s in shorts:
        shutil.copytree(tiny_models_dir / s.name, s)
    build_dataset("trio_16bar", [DATA / "lmd_beatles"], d / "data", workers=1, limit=24, progress=False)
    write_codes(shorts, d / "data", "trio_16bar", d / "run", transpose=(0, 2), log=lambda *_: None)
    train_chain(shorts, d / "run", d / "run", "trio_16bar", size=SIZE, steps=60, batch_size=16, validate_every=60,
                log=lambda *_: None)
    return shorts[0], shorts[1], d / "data", d / "run"


def test_codes_are_each_track_encoded_by_its_short_model(trio_chain):
    mel, drums, data, run = trio_chain
    mel_m, drums_m = load_model(mel, precision="fp32"), load_model(drums, precision="fp32")
    tokens = np.asarray(load_split(data, "train")["tokens"]).astype(np.int64)
    codes = np.load(run / "codes_train.npz")
    n = len(tokens)
    assert n and codes["mu"].shape[1:] == (8, 3 * CODE)
    up = class_map(90, 24)
    for i in (0, n - 1):
        for k in (0, 6):
            seg = tokens[i, 32 * k:32 * (k + 1)]
            np.testing.assert_allclose(codes["mu"][i, k, :CODE], mel_m.encode_tokens(seg[:, :1])[0], atol=1e-5)
            np.testing.assert_allclose(codes["mu"][i, k, CODE:2 * CODE],
                                       mel_m.encode_tokens(up[seg[:, 1:2]])[0], atol=1e-5)
            np.testing.assert_allclose(codes["mu"][i, k, 2 * CODE:], drums_m.encode_tokens(seg[:, 2:3])[0], atol=1e-5)
    # the chain's own encoder graph (PartEncoder) makes the same codes from the one-hot
    chain, _ = load_chain(run)
    with torch.no_grad():
        own = chain.encoder.codes(chain.one_hot(torch.from_numpy(tokens[:3]))).numpy()
    np.testing.assert_allclose(own, codes["mu"][:3], atol=1e-4)
    # the +2 shift moves lead and bass; the drums' codes are the unmoved window's
    moved = np.flatnonzero(codes["shift"] == 2)
    assert len(moved)
    first = next(i for i in range(n) if mel_m.codec.transpose(tokens[i, :, 0], 2) is not None
                 and mel_m.codec.transpose(tokens[i, :, 1], 2) is not None)
    np.testing.assert_allclose(codes["mu"][moved[0], :, 2 * CODE:], codes["mu"][first, :, 2 * CODE:])
    lead = mel_m.codec.transpose(tokens[first, :32, :1], 2)
    np.testing.assert_allclose(codes["mu"][moved[0], 0, :CODE], mel_m.encode_tokens(lead)[0], atol=1e-5)


def test_a_moved_core_writes_the_short_models_notes_an_offset_lower(tiny_models_dir):
    short, _ = read_package_model(tiny_models_dir / "mel_2bar")
    core = short.decoder.core
    moved = compose_core(core, shift=24)
    assert compose_core(core) is core
    assert moved.z_to_initial_state is core.z_to_initial_state and moved.lstm.cells[1] is core.lstm.cells[1]
    g = torch.Generator().manual_seed(0)
    code = torch.randn(5, CODE, generator=g)
    prev_long = torch.nn.functional.one_hot(torch.tensor([0, 1, 2, 30, 60]), 90).float()
    prev_short = torch.nn.functional.one_hot(torch.from_numpy(class_map(90, 24)[[0, 1, 2, 30, 60]]), 90).float()
    with torch.no_grad():
        c, h = core.init_state(code)
        c2, h2 = moved.init_state(code)
        torch.testing.assert_close(c2, c)
        want, _, _ = core.step(prev_short, code, c, h)
        got, _, _ = moved.step(prev_long, code, c2, h2)
    cols = output_map(90, 24)
    ok = cols >= 0
    torch.testing.assert_close(got[:, torch.from_numpy(ok)], want[:, torch.from_numpy(cols[ok])])
    assert (got[:, torch.from_numpy(~ok)] == NEVER).all() and (~ok).sum() == 24
    assert list(cols[:3]) == [0, 1, 26]           # note-off, no-event, then the lowest bass pitch


def test_trio_package_decodes_each_track_from_its_code_like_torch(trio_chain, tmp_path):
    mel, drums, _, run = trio_chain
    info = write_chain_package(run, tmp_path / "trio_16bar", weights="fp32", directions=False)
    assert [p["short"] for p in info["training"]["parts"]] == ["mel_2bar", "mel_2bar", "drums_2bar"]
    assert {s["name"] for s in info["training"]["short_models"]} == {"mel_2bar", "drums_2bar"}
    assert info["name"] == "trio_16bar" and info["kind"] == "trio" and info["decoder"]["cores"] == 3
    assert info["graphs"]["conductor"]["outputs"]["embeddings"] == ["B", 8, 3 * CODE]
    card = (tmp_path / "trio_16bar" / "MODEL_CARD.md").read_text()
    assert "bass by `mel_2bar` (moved up 24 semitones" in card and "`lmd_beatles`" in card
    model = load_model(tmp_path / "trio_16bar")
    assert (model.segments, model.steps_per_segment) == (8, 32)
    torch_model, _ = load_chain(run)
    z = np.random.default_rng(5).standard_normal((4, SIZE.z_size)).astype(np.float32)
    got = model.decode_tokens(z)
    np.testing.assert_array_equal(got, torch_model.decoder.decode(torch.from_numpy(z), 0.0)[0].numpy())
    with torch.no_grad():
        codes = torch_model.decoder.conductor(torch.from_numpy(z)).numpy()
    # the drums of a segment are drums_2bar's decoding of the segment's drum code
    seg = load_model(drums).decode_tokens(codes[:, 0, 2 * CODE:])
    np.testing.assert_array_equal(got[:, :32, 2:3], seg)
    with torch.no_grad():
        mu_t = torch_model.encoder(torch_model.one_hot(torch.from_numpy(got)))[0].numpy()
    np.testing.assert_allclose(model.encode_tokens(got), mu_t, atol=1e-4)
    # the bass never takes a class the moved core cannot write (its logits are NEVER)
    assert (got[..., 1] < 90 - 24).all()
    # the weights mel_2bar's two cores share are stored once and read once per step: lead and bass
    # run as one batch of stacked rows (one Gemm per layer); each core projects only its own code
    import onnx
    graph = onnx.load(str(tmp_path / "trio_16bar" / "decoder_step.onnx")).graph
    step = {t.name: list(t.dims) for t in graph.initializer}
    assert "g0l0_kernel" in step and "g0l1_kernel" in step and "c2l1_kernel" in step
    assert not [n for n in step if n.startswith(("c0l1_", "c1l1_"))]
    assert step["g0l0_rows"] == [2]
    gemms = [n for n in graph.node if n.op_type == "Gemm"]
    assert len(gemms) == 2 + 2 + 3          # lead+bass: 2 layers; drums: 2 layers; 3 output projections
    init = [list(t.dims) for t in onnx.load(str(tmp_path / "trio_16bar" / "decoder_init.onnx")).graph.initializer]
    assert not [d for d in init if d and d[0] == 3 * CODE], init


def test_continuing_a_trio_run_keeps_its_config(trio_chain, tmp_path):
    _, _, _, run = trio_chain
    out = tmp_path / "more"
    best = train_chain(None, run, out, size=SIZE, steps=10, batch_size=8, validate_every=10, init_from=run,
                       log=lambda *_: None)
    model, ckpt = load_chain(out)
    assert ckpt["config"] == "trio_16bar" and best["step"] == ckpt["step"] == 70
    assert model.decoder.num_classes == [90, 90, 512]


def test_chain_surrogate_learns_the_trio_latent_from_the_lead_and_accompanies(trio_chain, tmp_path):
    from bridge.core.notes import Note
    from export_onnx.latent_chain.surrogate import (ChainSurrogate, add_chain_surrogate, latent_mse, latent_targets,
                                                    load_chain_surrogate, train_chain_surrogate)
    from export_onnx.latent_chain.training import load_codes
    _, _, _, run = trio_chain
    saved = train_chain_surrogate(run, tmp_path / "accomp", steps=60, batch_size=16, validate_every=30,
                                  log=lambda *_: None)
    assert saved["loss"] == "nll" and saved["step"] in (30, 60)
    chain, _ = load_chain(run)
    codes, _ = load_codes(run, "train")
    mu, _ = latent_targets(chain, codes)
    start = ChainSurrogate(chain)
    start.warm_start(chain)
    trained, _ = load_chain_surrogate(tmp_path / "accomp")
    lead = codes[..., :CODE]
    assert latent_mse(trained, lead, mu) < latent_mse(start, lead, mu)
    # the graph: the lead's one-hot through mel_2bar's encoder per segment and the BiLSTM
    package = tmp_path / "trio_16bar"
    write_chain_package(run, package, weights="fp32", directions=False)
    info = add_chain_surrogate(tmp_path / "accomp", package)
    assert info["surrogate"]["parity_max_abs_diff"] <= 1e-4 and info["graphs"]["surrogate_encoder"]["track"] == 0
    model = load_model(package)
    lead_tokens = np.random.default_rng(0).integers(0, 90, size=(2, 256))
    with torch.no_grad():
        want = trained(torch.nn.functional.one_hot(torch.from_numpy(lead_tokens), 90).float())[0].numpy()
    np.testing.assert_allclose(model.accompanist().predict_z(lead_tokens), want, atol=1e-4)
    melody = [Note(60 + (i % 5), i * 0.5, i * 0.5 + 0.5, 100, 0, False) for i in range(64)]
    band = model.accompany(melody)
    assert {n.track for n in band} >= {0} and all(n.track in (0, 1, 2) for n in band)
    assert [n for n in band if n.track == 0] == sorted(melody, key=lambda n: (n.start, n.pitch))


def test_a_chain_surrogate_refuses_another_chains_package(trio_chain, tmp_path):
    from export_onnx.latent_chain.surrogate import add_chain_surrogate, train_chain_surrogate
    _, _, _, run = trio_chain
    other = tmp_path / "other"
    train_chain(None, run, other, size=SIZE, steps=5, batch_size=8, validate_every=5, init_from=run,
                learning_rate=0.05, log=lambda *_: None)
    write_chain_package(other, tmp_path / "pkg", weights="fp32", directions=False)
    train_chain_surrogate(run, tmp_path / "accomp", steps=2, batch_size=8, validate_every=2, log=lambda *_: None)
    with pytest.raises(ValueError, match="not the trio model"):
        add_chain_surrogate(tmp_path / "accomp", tmp_path / "pkg")


def test_linear_chain_fits_the_codes_in_closed_form_and_packages(trio_chain, tmp_path):
    from export_onnx.latent_chain.linear import fit_linear_chain
    from export_onnx.latent_chain.training import load_codes, evaluate_codes
    mel, drums, _, run = trio_chain
    entry = fit_linear_chain([mel, drums], run, tmp_path / "lin", z_size=8, log=lambda *_: None)
    model, ckpt = load_chain(tmp_path / "lin")
    assert ckpt["size"]["linear"] and ckpt["recipe"]["method"] == "pca" and entry["used_dims"] > 0
    mu, sigma = load_codes(run, "train")
    fitted = evaluate_codes(model, mu, sigma, floor=0.1)
    with torch.no_grad():          # the same chain with z = 0 everywhere writes the mean codes
        err = (model.decoder.conductor(torch.zeros(len(mu), 8)) - mu) ** 2
    zero_rms = float(err[sigma < 0.5].mean()) ** 0.5
    assert fitted["rms_used"] < 0.5 * zero_rms, (fitted, zero_rms)
    # the unused code dimensions sit at their training mean; the used ones follow z
    used = list(ckpt["size"]["used"])
    unused = [i for i in range(3 * CODE) if i not in used]
    with torch.no_grad():
        codes = model.decoder.conductor(torch.randn(4, 8)).numpy()
    if unused:
        np.testing.assert_allclose(codes[..., unused], np.broadcast_to(mu.numpy().mean(0)[:, unused], codes[..., unused].shape),
                                   atol=1e-4)
    info = write_chain_package(tmp_path / "lin", tmp_path / "pkg", weights="fp32", directions=False)
    assert "weighted PCA" in (tmp_path / "pkg" / "MODEL_CARD.md").read_text()
    pkg = load_model(tmp_path / "pkg")
    z = np.random.default_rng(1).standard_normal((3, 8)).astype(np.float32)
    np.testing.assert_array_equal(pkg.decode_tokens(z), model.decoder.decode(torch.from_numpy(z), 0.0)[0].numpy())
    assert info["training"]["size"]["linear"]


def test_the_chains_encoder_with_tied_weights_quantises_to_int8(trio_chain, tmp_path):
    """The lead and bass part encoders share mel_2bar's LSTM weights (tied through Identity nodes);
    the quantiser rewrites weights per node, so each LSTM gets its own copy first — and the tied
    float weights, feeding nothing then, leave the file."""
    import onnx
    from bridge.runtime.engine import Model
    from export_onnx.int8_encoder import quantize_encoder
    _, _, data, run = trio_chain
    write_chain_package(run, tmp_path / "trio_16bar", weights="fp32", directions=False)
    src, dst = tmp_path / "trio_16bar" / "encoder.onnx", tmp_path / "encoder.int8.onnx"
    # untied, the float graph computes the same codes, every LSTM from weights of its own
    from export_onnx.int8_encoder import unshare_lstm_weights
    untied = onnx.load(str(src))
    assert unshare_lstm_weights(untied) >= 2
    onnx.save(untied, str(tmp_path / "untied.onnx"))
    lstm_weights = [i for n in untied.graph.node if n.op_type == "LSTM" for i in n.input[1:3]]
    assert len(lstm_weights) == len(set(lstm_weights))
    tokens = np.asarray(load_split(data, "train")["tokens"][:4]).astype(np.int64)
    ref = load_model(tmp_path / "trio_16bar", precision="fp32").encode_tokens(tokens)
    same = Model(tmp_path / "trio_16bar", precision="fp32", encoder_file=tmp_path / "untied.onnx").encode_tokens(tokens)
    np.testing.assert_allclose(same, ref, atol=1e-6)
    ops = quantize_encoder(src, dst)["ops"]
    assert ops.get("DynamicQuantizeLSTM", 0) >= 3 and "LSTM" not in ops
    g = onnx.load(str(dst)).graph
    used = {i for n in g.node for i in n.input} | {o.name for o in g.output}
    assert [t.name for t in g.initializer if t.name not in used] == []
    assert [n.name for n in g.node if n.op_type == "Identity" and n.output[0] not in used] == []
    # it loads and runs (before the copies it did not: "Input W must have shape ..."); 8-bit weights
    # of this random tiny model move its codes by ~20 % (the shipped trio's gate: 0.98 agreement)
    q = Model(tmp_path / "trio_16bar", precision="fp32", encoder_file=dst).encode_tokens(tokens)
    assert np.linalg.norm(q - ref) / np.linalg.norm(ref) < 0.35
