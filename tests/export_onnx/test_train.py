"""Training recipe schedules, overfitting, exact resume and evaluation, on tiny self-made datasets."""
import json
import math

import numpy as np
import pytest
import torch

from export_onnx.configs import CONFIGS, ModelSize, TrainRecipe
from export_onnx.evaluate import evaluate_run
from export_onnx.model import load_checkpoint
from export_onnx.train import (BatchStream, RunPlan, beta_at, selection_score, learning_rate_at, parse_recipe_changes,
                               sampling_probability, slim_checkpoint, teacher_forcing_probability, train)

TINY_FLAT = ModelSize(enc_units=32, dec_units=64, dec_layers=1, z_size=16)


def _melodies(rng, n, steps=32):
    t = rng.integers(2, 40, (n, steps, 1))
    t[rng.random((n, steps, 1)) < 0.4] = 0
    t[rng.random((n, steps, 1)) < 0.1] = 1
    return t.astype(np.uint16)


def _write(d, splits):
    d.mkdir(parents=True, exist_ok=True)
    for name, tokens in splits.items():
        np.savez(d / f"{name}.npz", tokens=tokens, song=np.arange(len(tokens), dtype=np.int32))
    return d


def test_schedules_at_known_steps():
    r = TrainRecipe(learning_rate=1e-3, min_learning_rate=1e-5, decay_rate=0.9999, max_beta=0.2,
                    beta_rate=0.99999, sampling_rate=1000.0)
    assert learning_rate_at(0, r) == pytest.approx(1e-3)
    assert learning_rate_at(10_000, r) == pytest.approx((1e-3 - 1e-5) * 0.9999 ** 10_000 + 1e-5)
    assert learning_rate_at(10_000, r) == pytest.approx(0.000374, rel=1e-3)
    assert learning_rate_at(10**7, r) == pytest.approx(1e-5)
    assert beta_at(0, r) == 0.0
    assert beta_at(100_000, r) == pytest.approx((1 - 0.99999 ** 100_000) * 0.2)
    assert beta_at(100_000, r) == pytest.approx(0.2 * (1 - math.exp(-1)), rel=1e-4)
    # inverse sigmoid, k = 1000: p(teacher) = k / (k + exp(step / k))
    assert teacher_forcing_probability(0, r) == pytest.approx(1000 / 1001)
    assert teacher_forcing_probability(1000 * math.log(1000), r) == pytest.approx(0.5)
    assert teacher_forcing_probability(20_000, r) == pytest.approx(1000 / (1000 + math.exp(20)))
    assert sampling_probability(20_000, r) == pytest.approx(1 - 1000 / (1000 + math.exp(20)))
    assert teacher_forcing_probability(10**9, r) == 0.0
    off = TrainRecipe(sampling_schedule="constant")
    assert sampling_probability(5000, off) == 0.0
    assert sampling_probability(5000, off, progress=0.9) == 0.0


def test_run_sized_schedules():
    """schedule "run": beta linear to max_beta by beta_warmup of the run, sampling probability linear
    to final_sampling_probability by sampling_ramp; the plan's progress is steps or minutes, the larger."""
    r = TrainRecipe(schedule="run", max_beta=0.2, beta_warmup=0.4, final_sampling_probability=0.5,
                    sampling_ramp=0.7)
    assert beta_at(0, r, 0.0) == 0.0
    assert beta_at(123, r, 0.2) == pytest.approx(0.1)
    assert beta_at(123, r, 0.4) == pytest.approx(0.2) == beta_at(5, r, 1.0)
    assert sampling_probability(1, r, 0.35) == pytest.approx(0.25)
    assert sampling_probability(1, r, 0.7) == pytest.approx(0.5) == sampling_probability(1, r, 1.0)
    plan = RunPlan(steps=1000, minutes=10)
    assert plan.progress(100, 0.0) == pytest.approx(0.1)
    assert plan.progress(100, 300.0) == pytest.approx(0.5)
    assert plan.progress(5000, 0.0) == 1.0
    assert RunPlan().progress(3, 3.0) == 1.0
    # the paper's per-step rates still apply without a plan
    p = TrainRecipe(schedule="paper", max_beta=0.2, beta_rate=0.99999)
    assert beta_at(100_000, p, 0.5) == pytest.approx((1 - 0.99999 ** 100_000) * 0.2)


def test_best_checkpoint_selection_follows_the_schedule():
    """Run-sized schedule: best = lowest objective at max_beta (an early, high-KL checkpoint
    reconstructs best but is not the model the run is planned to end with); paper: reconstruction."""
    early = {"r_loss": 6.0, "objective": 36.0}
    late = {"r_loss": 14.0, "objective": 20.0}
    run = TrainRecipe(schedule="run")
    assert selection_score(late, run) < selection_score(early, run)
    paper = TrainRecipe(schedule="paper")
    assert selection_score(early, paper) < selection_score(late, paper)


def test_batch_stream_covers_each_epoch_once():
    s = BatchStream(10, 3, seed=0)
    first = np.concatenate([s.next() for _ in range(3)])
    assert len(set(first.tolist())) == 9
    state = s.state()
    nxt = s.next()
    s2 = BatchStream(10, 3, seed=99)
    s2.load(state)
    assert np.array_equal(s2.next(), nxt) and s.epoch == 1


def test_overfit_eight_examples(tmp_path):
    x = _melodies(np.random.default_rng(0), 8)
    data = _write(tmp_path / "data", {"train": x, "validation": x, "test": x})
    recipe = dict(learning_rate=0.01, min_learning_rate=0.01, max_beta=0.0, sampling_schedule="constant",
                  augment_semitones=(0, 0))
    train("mel_2bar", data, tmp_path / "run", model_size=TINY_FLAT, max_steps=300, batch_size=8, seed=0,
          threads=1, recipe_changes=recipe, validate_every=10**9, checkpoint_every=10**9, progress=False)
    m = evaluate_run(tmp_path / "run", "test", which="latest", plot_png=False)
    assert m["reconstruction_accuracy"]["melody"] >= 0.99
    assert m["teacher_forced_accuracy"]["melody"] >= 0.99
    assert m["n"] == 8


def _state(path):
    return torch.load(path, weights_only=False)


def test_resume_is_exact(tmp_path):
    rng = np.random.default_rng(1)
    data = _write(tmp_path / "data", {"train": _melodies(rng, 20), "validation": _melodies(rng, 6)})
    size = ModelSize(enc_units=8, dec_units=8, dec_layers=2, z_size=4)
    # scheduled sampling (two-pass, run-sized), word dropout, augmentation, z noise and a data order
    # crossing epochs are all exercised; the split run is planned for the same 8 steps
    recipe = dict(final_sampling_probability=0.8, sampling_ramp=0.5, free_bits=1.0, beta_warmup=0.5,
                  max_beta=0.5, input_dropout=0.2)
    kw = dict(model_size=size, batch_size=8, seed=3, threads=1, recipe_changes=recipe, validate_every=3,
              checkpoint_every=100, progress=False, log_every=2, plan_steps=8)
    train("mel_2bar", data, tmp_path / "straight", max_steps=8, **kw)
    train("mel_2bar", data, tmp_path / "split", max_steps=4, **kw)
    train("mel_2bar", data, tmp_path / "split", max_steps=8, resume=True, **kw)
    a, b = _state(tmp_path / "straight" / "latest.pt"), _state(tmp_path / "split" / "latest.pt")
    assert a["step"] == b["step"] == 8
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    for k, v in a["optimizer"]["state"].items():
        assert torch.equal(v["exp_avg"], b["optimizer"]["state"][k]["exp_avg"])
    assert a["best"] == b["best"]
    log = [json.loads(l) for l in (tmp_path / "split" / "log.jsonl").read_text().splitlines()]
    assert [e["step"] for e in log if e["split"] == "train"] == [2, 4, 6, 8]
    straight = [json.loads(l) for l in (tmp_path / "straight" / "log.jsonl").read_text().splitlines()]
    assert [e["loss"] for e in log if e["split"] == "train"] == [e["loss"] for e in straight if e["split"] == "train"]
    # a different seed gives different weights (the comparison above is not vacuous)
    train("mel_2bar", data, tmp_path / "other", max_steps=8, **{**kw, "seed": 4})
    c = _state(tmp_path / "other" / "latest.pt")
    assert not all(torch.equal(a["model"][k], c["model"][k]) for k in a["model"])


def test_evaluate_writes_metrics_and_png_for_trio(tmp_path):
    rng = np.random.default_rng(2)
    cfg = CONFIGS["trio_16bar"]
    n, steps = 8, cfg.num_steps
    tok = np.stack([rng.integers(0, 90, (n, steps)), rng.integers(0, 90, (n, steps)),
                    rng.integers(0, 512, (n, steps))], -1).astype(np.uint16)
    data = _write(tmp_path / "data", {"train": tok, "test": tok[:3]})
    size = ModelSize(enc_units=6, dec_units=6, dec_layers=1, z_size=4, cond_units=5, cond_layers=1,
                     emb_size=5, bar_enc_units=5)
    train("trio_16bar", data, tmp_path / "run", model_size=size, max_steps=2, batch_size=4, threads=1,
          progress=False)
    model, info = load_checkpoint(tmp_path / "run")
    assert info["step"] == 2 and model.decoder.hierarchical and len(model.decoder.cores) == 3
    m = evaluate_run(tmp_path / "run", "test")
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["n"] == 3 and set(saved["reconstruction_accuracy"]) == {"lead", "bass", "drums", "mean"}
    assert set(m["teacher_forced_accuracy"]) == {"lead", "bass", "drums", "mean"}
    assert saved["kl_bits"] > 0
    png = (tmp_path / "run" / "reconstructions.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    # a second split joins the first; the top level stays the test split
    evaluate_run(tmp_path / "run", "train", plot_png=False)
    both = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert set(both["splits"]) == {"test", "train"} and both["split"] == "test" and both["n"] == 3
    assert both["splits"]["train"]["n"] == 8


def test_validation_reports_the_spread_of_the_posterior_mean():
    """z_spread ~ 0 flags an encoder that has collapsed (the same z for every input)."""
    from export_onnx.configs import get_config
    from export_onnx.model import MusicVAE
    from export_onnx.train import validate
    torch.manual_seed(0)
    config = get_config("mel_2bar")
    model = MusicVAE(config, ModelSize(enc_units=8, dec_units=8, dec_layers=1, z_size=4))
    x = _melodies(np.random.default_rng(2), 12)
    out = validate(model, x, config.recipe, "cpu", batch_size=5)
    assert out["n"] == 12 and out["z_spread"] > 0
    with torch.no_grad():        # an encoder whose mu ignores its input
        model.encoder.mu.kernel.zero_()
    assert validate(model, x, config.recipe, "cpu", batch_size=5)["z_spread"] == 0.0


def test_weights_only_checkpoint_resumes_and_loads(tmp_path):
    """What comes back from a GPU lease: fp16 weights, no optimizer or RNG state."""
    rng = np.random.default_rng(5)
    data = _write(tmp_path / "data", {"train": _melodies(rng, 16), "validation": _melodies(rng, 4)})
    size = ModelSize(enc_units=8, dec_units=8, dec_layers=1, z_size=4)
    kw = dict(model_size=size, batch_size=8, seed=0, threads=1, validate_every=2, checkpoint_every=100,
              progress=False, log_every=1)
    train("mel_2bar", data, tmp_path / "run", max_steps=4, **kw)
    info = slim_checkpoint(tmp_path / "run" / "latest.pt", tmp_path / "slim.pt", half=True)
    full, slim = _state(tmp_path / "run" / "latest.pt"), _state(tmp_path / "slim.pt")
    assert info["step"] == 4 and "optimizer" not in slim and "rng" not in slim
    assert info["bytes"] < (tmp_path / "run" / "latest.pt").stat().st_size / 2
    for k, v in full["model"].items():
        assert slim["model"][k].dtype == torch.float16
        assert torch.allclose(slim["model"][k].float(), v, atol=1e-3, rtol=1e-3), k
    model, meta = load_checkpoint(tmp_path / "slim.pt")  # evaluate/export read it as float32
    assert meta["step"] == 4 and next(model.parameters()).dtype == torch.float32
    # a fresh run directory resumes from it: the step count goes on, the log starts at step 5
    (tmp_path / "cold").mkdir()
    (tmp_path / "cold" / "latest.pt").write_bytes((tmp_path / "slim.pt").read_bytes())
    out = train("mel_2bar", data, tmp_path / "cold", max_steps=6, resume=True, **kw)
    assert out["step"] == 6
    steps = [json.loads(l)["step"] for l in (tmp_path / "cold" / "log.jsonl").read_text().splitlines()]
    assert min(steps) == 5 and max(steps) == 6


def test_max_minutes_stops_with_a_checkpoint(tmp_path):
    rng = np.random.default_rng(6)
    data = _write(tmp_path / "data", {"train": _melodies(rng, 16)})
    size = ModelSize(enc_units=8, dec_units=8, dec_layers=1, z_size=4)
    out = train("mel_2bar", data, tmp_path / "run", model_size=size, max_steps=10**6, batch_size=8,
                threads=1, checkpoint_every=10**6, progress=False, max_minutes=0.02)
    assert out["timed_out"] and 0 < out["step"] < 10**6
    assert _state(tmp_path / "run" / "latest.pt")["step"] == out["step"]


def test_recipe_overrides_from_the_command_line():
    assert parse_recipe_changes(["learning_rate=5e-4", "batch_size=16", "augment_semitones=-3,3"]) == {
        "learning_rate": 5e-4, "batch_size": 16, "augment_semitones": (-3, 3)}
    with pytest.raises(SystemExit, match="expected KEY=VALUE"):
        parse_recipe_changes(["learnig_rate=1"])
    with pytest.raises(SystemExit, match="expected KEY=VALUE"):
        parse_recipe_changes(["learning_rate"])


def test_validation_reports_the_audits_reconstruction_accuracy(monkeypatch):
    """recon_acc: argmax decodes from the posterior mean (no teacher forcing) against the windows,
    over the first RECON_EXAMPLES of them — the statistic whose curve a card shows."""
    from export_onnx.configs import get_config
    from export_onnx.model import MusicVAE
    from export_onnx import train as T
    torch.manual_seed(0)
    config = get_config("mel_2bar")
    model = MusicVAE(config, ModelSize(enc_units=8, dec_units=8, dec_layers=1, z_size=4))
    x = _melodies(np.random.default_rng(2), 12)
    got = T.validate(model, x, config.recipe, "cpu", batch_size=5)["recon_acc"]
    want = float((model.reconstruct(torch.as_tensor(x.astype(np.int64))).numpy() == x).mean())
    assert got == pytest.approx(want)
    # counted over RECON_EXAMPLES windows spread evenly over the split (not one song's first ones)
    monkeypatch.setattr(T, "RECON_EXAMPLES", 3)
    assert T.recon_windows(12).tolist() == [0, 6, 11] and T.recon_windows(2).tolist() == [0, 1]
    spread = x[[0, 6, 11]]
    want3 = float((model.reconstruct(torch.as_tensor(spread.astype(np.int64))).numpy() == spread).mean())
    out = T.validate(model, x, config.recipe, "cpu", batch_size=2)
    assert out["recon_acc"] == pytest.approx(want3) and out["recon_n"] == 3
    # a decoder that copies its input back scores 1; one that writes token 0 scores the share of 0s
    monkeypatch.setattr(MusicVAE, "reconstruct", lambda self, t: t.clone())
    assert T.reconstruction_accuracy(model, x, "cpu", 5) == 1.0
    monkeypatch.setattr(MusicVAE, "reconstruct", lambda self, t: torch.zeros_like(t))
    assert T.reconstruction_accuracy(model, x, "cpu", 5) == pytest.approx(float((x == 0).mean()))
    assert T.reconstruction_accuracy(model, x[:0], "cpu", 5) is None
