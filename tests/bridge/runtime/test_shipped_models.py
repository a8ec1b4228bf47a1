"""The default models in bridge/models/: what `make serve` starts with. Every package is complete
(graphs with their sha256, metrics per split, training config, directions, model card, audit), the
daemon loads all of them at start and answers from each, and the shipped trio accompanies a POP909
melody.

The regression guard (test_shipped_model_still_plays_as_audited) reads each package's own audit.json
and metrics.json (so it follows a re-shipped model with its new audit) and recomputes on the audit's
own held-out windows: reconstruction must stay >= the recorded value - 0.02, and the audit's key
statistics (per-track reconstruction, trivial baselines, dependence on z, prior samples, and the
trio's accompaniment) must match within tolerance."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pretty_midi
import pytest

import bridge
from bridge import cli
from bridge.runtime import engine, package
from bridge.daemon.client import spawn_server
from export_onnx import audit as A

MODELS = Path(bridge.__file__).parent / "models"
DEFAULTS = ("drums_2bar", "mel_16bar", "mel_2bar", "trio_16bar")
POP909 = Path(__file__).resolve().parents[4] / "shared" / "data" / "pop909" / "002" / "002.mid"
RECON_DROP = 0.02         # reconstruction may not fall more than this below its recorded value


def test_the_default_models_are_shipped_and_listed(capsys):
    assert sorted(m["name"] for m in package.list_models(MODELS)) == list(DEFAULTS)
    assert cli.main(["models"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in DEFAULTS)


@pytest.mark.parametrize("name", DEFAULTS)
def test_package_is_complete(name):
    pkg = MODELS / name
    model = engine.load_model(pkg)               # verifies every listed file's sha256
    info = model.info
    assert {"MODEL_CARD.md", "metrics.json", "training_config.json"} <= set(info["files"])
    size_mb = sum((pkg / f).stat().st_size for f in info["files"]) / 1e6
    assert size_mb < 15.0, size_mb
    metrics = json.loads((pkg / "metrics.json").read_text())
    tracks = [t["name"] for t in info["tracks"]]
    for split in ("validation", "test"):      # the values themselves: test_shipped_model_still_plays_as_audited
        m = metrics["splits"][split]
        assert set(tracks) <= set(m["reconstruction_accuracy"]) and "mean" in m["reconstruction_accuracy"]
        assert set(tracks) <= set(m["teacher_forced_accuracy"])
        assert m["kl_bits"] > 0 and m["n"] > 0
    assert (pkg / "audit.json").is_file(), f"run `python -m export_onnx audit bridge/models/{name}`"
    # trained: steps, or a chain fitted in closed form (export_onnx.latent_chain.linear)
    assert info["training"]["step"] > 0 or info["training"]["recipe"].get("method") == "pca"
    assert len(info["directions"]) >= 2 and info["attributes"]
    card = (pkg / "MODEL_CARD.md").read_text()
    assert f"# {name} — model card" in card and "## Metrics" in card and "## Known weaknesses" in card
    # a target not reached says by how much and what would close it
    if "below the target" in card:
        assert "## What would close the gap" in card


def audit_windows(audit: dict) -> np.ndarray:
    """The held-out windows the audit measured: its seeded subset of the package's test split, rebuilt
    from ../shared/data by the audit's own code (cached in data/audit/<config>/test.npz)."""
    dirs = [Path(A.DATA_ROOT) / label for label in audit["sources"].split(",")]
    missing = [str(d) for d in dirs if not d.is_dir()]
    if missing:
        pytest.skip(f"{', '.join(missing)} (shared data) not on this machine")
    windows = A.load_test_windows(audit["config"], dirs)
    assert len(windows["tokens"]) == audit["test_windows"], "the rebuilt test split is not the audited one"
    idx = A.seeded_subset(len(windows["tokens"]), audit["n_windows"], audit["window_seed"])
    return np.asarray(windows["tokens"][idx], dtype=np.int64)


def reconstruction_stats(model, tokens: np.ndarray, rec: np.ndarray, z_inputs: int) -> dict:
    """The audit's reconstruction keys for argmax reconstructions `rec` of `tokens` (audit.json schema)."""
    names = [t["name"] for t in model.info["tracks"]]
    kinds = [tc.kind for tc in model.codec.tracks]
    zero = model.decode_tokens(np.zeros((1, model.z_size), np.float32), 0.0)[0]
    nz = min(z_inputs, len(tokens))
    out = {}
    for k, (name, kind) in enumerate(zip(names, kinds)):
        truth, pred = tokens[..., k], rec[..., k]
        out[f"{name}_recon_acc"] = float(np.mean(pred == truth))
        out[f"{name}_baseline_never_play"] = float(np.mean(truth == 0))
        out[f"{name}_baseline_loop_bar1"] = A.token_accuracy(A.loop_bar1(truth, model.steps_per_bar), truth)
        baselines = [out[f"{name}_baseline_never_play"], out[f"{name}_baseline_loop_bar1"]]
        if kind == "melody":
            out[f"{name}_baseline_hold_first"] = A.token_accuracy(A.hold_first(truth), truth)
            baselines.append(out[f"{name}_baseline_hold_first"])
        out[f"{name}_recon_minus_best_baseline"] = out[f"{name}_recon_acc"] - max(baselines)
        out[f"{name}_recon_minus_never_play"] = out[f"{name}_recon_acc"] - out[f"{name}_baseline_never_play"]
        if kind == "melody":
            out[f"{name}_recon_onset_pitch"] = A.onset_pitch_recall(pred, truth)
        else:
            out[f"{name}_recon_hit_f1"] = A.hit_scores(pred, truth)[2]
        out[f"{name}_recon_nonempty"] = A.nonempty_share(pred, kind)
        out[f"{name}_z_distinct_share"] = A.distinct_count(pred[:nz]) / nz
        out[f"{name}_z0_agreement"] = float(np.mean(pred[:nz] == zero[None, :, k]))
    out["recon_acc"] = float(np.mean([out[f"{n}_recon_acc"] for n in names]))
    out["recon_minus_best_baseline"] = min(out[f"{n}_recon_minus_best_baseline"] for n in names)
    out["z_distinct_share"] = A.distinct_count(rec[:nz]) / nz
    return out


# key -> (kind, tolerance): "abs" |got - recorded| <= tol, "rel" |got / recorded - 1| <= tol
def key_tolerance(key: str) -> tuple[str, float]:
    if "baseline" in key:
        return "abs", 1e-9                 # data only: the windows are the audited ones
    if key.endswith(("_per_bar", "_range_mean")):
        return "rel", 0.05
    if key.endswith(("_distinct", "_distinct_outputs")):
        return "abs", 1.0
    return "abs", 0.03


@pytest.mark.parametrize("name", DEFAULTS)
def test_shipped_model_still_plays_as_audited(name):
    """Regression guard: reconstruction and the audit's key statistics, recomputed on the audit's own
    held-out windows and prior samples, against the package's own audit.json and metrics.json."""
    pkg = MODELS / name
    audit = json.loads((pkg / "audit.json").read_text())
    metrics = json.loads((pkg / "metrics.json").read_text())["splits"]["test"]
    # recompute at the decoder step precision the audit ran at (audits before add-int8: fp32); the
    # int8 step's own drift from fp32 is add-int8's gate (model.json "int8", the card)
    model = engine.load_model(pkg, precision=audit.get("precision", "fp32"))
    assert audit["format"] == "latent-bridge-audit" and audit["package"] == name
    assert audit["graphs_sha256"] == A.graphs_sha256(model.info), (
        f"{name}/audit.json describes other weights: run `python -m export_onnx audit bridge/models/{name}`")
    tokens = audit_windows(audit)

    rec = model.decode_tokens(model.encode_tokens(tokens), 0.0)        # argmax from the posterior mean
    got = reconstruction_stats(model, tokens, rec, audit["z_inputs"])
    per_window = np.mean(rec == tokens, axis=(1, 2))
    recon = got["recon_acc"]
    print(f"\n{name}: reconstruction {recon:.4f} on the audit's {len(tokens)} windows (audit.json "
          f"{audit['recon_acc']:.4f}, metrics.json test split {metrics['reconstruction_accuracy']['mean']:.4f})")
    assert recon >= audit["recon_acc"] - RECON_DROP, (recon, audit["recon_acc"])
    # the audited windows are a sample of the test split evaluate measured: allow 3 standard errors
    se = float(per_window.std() / np.sqrt(len(per_window)))
    assert recon >= metrics["reconstruction_accuracy"]["mean"] - RECON_DROP - 3 * se, (recon, se)
    for t in [t["name"] for t in model.info["tracks"]]:
        assert got[f"{t}_recon_acc"] >= audit[f"{t}_recon_acc"] - RECON_DROP, t

    got.update(A.audit_samples(model, tokens, audit["n_samples"], audit["sample_temperature"], audit["sample_seed"]))
    pop909 = Path(A.DATA_ROOT) / "pop909"
    if "accomp_segments" in audit and pop909.is_dir():
        got.update(A.audit_accompaniment(model, pop909, audit["accomp_segments"],
                                         audit["accomp_transpose_semitones"]))
    keys = [k for k in got if k in audit and k != "recon_acc" and not k.endswith("_recon_acc")
            and isinstance(audit[k], (int, float)) and not isinstance(audit[k], bool)]
    targets = set(A.TARGETS.get(audit["config"], {})) - {"recon_acc", "drums_z_distinct_outputs"}
    if not pop909.is_dir():
        targets = {k for k in targets if not k.startswith("accomp_")}
    assert targets <= set(keys), targets - set(keys)          # every shipping target is among them
    off = []
    for key in keys:
        kind, tol = key_tolerance(key)
        want, have = audit[key], got[key]
        if want is None or have is None:
            if want != have:
                off.append(f"{key}: {have} (audit.json {want})")
            continue
        bad = abs(have - want) > tol if kind == "abs" else abs(have - want) > tol * max(abs(want), 1e-9)
        if bad:
            off.append(f"{key}: {have:.4f} (audit.json {want:.4f}, {kind} tolerance {tol:g})")
    assert not off, f"{name}: statistics away from its audit:\n" + "\n".join(off)
    print(f"{name}: {len(keys)} statistics of audit.json recomputed within tolerance")


def test_daemon_starts_with_every_shipped_model_and_answers_from_each():
    srv = spawn_server((), "--log-format", "json", shipped=True, timeout=120)
    try:
        ready = [json.loads(line) for line in srv.log_lines() if '"ready on' in line]
        assert sorted(ready[0]["models"]) == list(DEFAULTS)
        with srv.client() as c:
            for name in DEFAULTS:
                r = c.request("sample", model=name, n=1, temperature=0.5, seed=3, timeout=60)
                assert r.ok and len(r.sequences) == 1 and r.sequences[0]["notes"], name
    finally:
        assert srv.stop() == 0


@pytest.mark.skipif(not POP909.is_file(), reason=f"{POP909} (shared data) is not on this machine")
def test_shipped_trio_accompanies_a_pop909_melody(tmp_path, capsys):
    out, png = tmp_path / "band.mid", tmp_path / "band.png"
    assert "surrogate_encoder" in engine.load_model(MODELS / "trio_16bar").info["graphs"]
    rc = cli.main(["accompany", str(POP909), "--out", str(out), "--png", str(png), "--seed", "0", "--bars", "16"])
    assert rc == 0, capsys.readouterr().err
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pm = pretty_midi.PrettyMIDI(str(out))
    by_name = {i.name: i for i in pm.instruments}
    assert sorted(by_name) == ["bass", "drums", "lead"] and by_name["drums"].is_drum
    assert len(by_name["bass"].notes) >= 8 and len(by_name["drums"].notes) >= 16
