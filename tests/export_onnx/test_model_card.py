import json

from export_onnx.configs import get_config
from export_onnx.model_card import write_model_card


def _run_dir(tmp_path, recon):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"config": get_config("drums_2bar").to_dict(), "size_name": "small"}))
    log = [{"step": s, "split": "train", "wall_time": s * 0.5, "beta": 0.01, "p_sample": 0.2, "lr": 1e-3}
           for s in (100, 200)]
    log += [{"step": s, "split": "validation", "acc": [a], "r_loss": l} for s, a, l in ((100, 0.5, 40.0), (200, 0.7, 30.0))]
    (run / "log.jsonl").write_text("\n".join(json.dumps(e) for e in log) + "\n")
    (run / "metrics.json").write_text(json.dumps({
        "split": "test", "n": 123, "kl_bits": 88.5,
        "teacher_forced_accuracy": {"drums": 0.81, "mean": 0.81},
        "reconstruction_accuracy": {"drums": recon, "mean": recon}}))
    data = tmp_path / "data"
    data.mkdir()
    (data / "summary.json").write_text(json.dumps({
        "splits": {"train": {"examples": 1000, "songs": 10}, "test": {"examples": 100, "songs": 2}},
        "sources": [{"label": "groove", "files_read": 12, "examples": {"train": 1000, "test": 100}}]}))
    return run, data


def test_card_states_measured_numbers_and_the_gap_to_the_target(tmp_path):
    run, data = _run_dir(tmp_path, 0.75)
    card = write_model_card(run, data, notes="- fills are rare").read_text()
    assert "| drums | 0.810 | 0.750 |" in card
    assert "0.150 below the target 0.90" in card
    assert "200 steps at batch 64" in card and "128.0 examples/s" in card
    assert "CC BY 4.0" in card and "- fills are rare" in card
    assert (run / "curve.png").read_bytes().startswith(b"\x89PNG")
    assert "## What would close the gap" in card and "--resume" in card


def test_card_says_when_the_target_is_reached(tmp_path):
    run, data = _run_dir(tmp_path, 0.93)
    card = write_model_card(run, data).read_text()
    assert "target 0.90 reached" in card and "What would close the gap" not in card


def test_sampled_metrics_say_so(tmp_path):
    run, data = _run_dir(tmp_path, 0.75)
    m = json.loads((run / "metrics.json").read_text())
    (run / "metrics.json").write_text(json.dumps({**m, "windows_in_split": 2539}))
    card = write_model_card(run, data).read_text()
    assert "(test split, a seeded random sample of 123 of its 2,539 windows;" in card


def test_refresh_in_a_package_keeps_the_accompaniment_section(tmp_path):
    from bridge.runtime.package import sha256_file
    from export_onnx.model_card import SURROGATE_HEADING, refresh_package_card
    run, data = _run_dir(tmp_path, 0.75)
    write_model_card(run, data, notes="- new note")
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "MODEL_CARD.md").write_text(f"# old card\n\n{SURROGATE_HEADING}\n\n| surrogate | 0.25 |\n")
    (pkg / "model.json").write_text(json.dumps({"files": {"MODEL_CARD.md": "stale", "a.onnx": "x"}}))
    refresh_package_card(run, pkg)
    card = (pkg / "MODEL_CARD.md").read_text()
    assert "# old card" not in card and "- new note" in card
    assert card.count(SURROGATE_HEADING) == 1 and card.rstrip().endswith("| surrogate | 0.25 |")
    files = json.loads((pkg / "model.json").read_text())["files"]
    assert files == {"MODEL_CARD.md": sha256_file(pkg / "MODEL_CARD.md"), "a.onnx": "x"}


def test_the_gap_states_the_logged_reconstruction_curve(tmp_path):
    """Validation lines that carry recon_acc (the audit's statistic): the card's trend quotes it and
    the curve plots it; older logs without it still make a card."""
    run, data = _run_dir(tmp_path, 0.75)
    lines = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
    lines += [{"step": s, "split": "validation", "acc": [0.7], "r_loss": 29.0} for s in (300, 400)]
    for e, r in zip((e for e in lines if e["split"] == "validation"), (0.58, 0.60, 0.61, 0.66)):
        e["recon_acc"], e["recon_n"] = r, 256
    (run / "log.jsonl").write_text("\n".join(json.dumps(e) for e in lines) + "\n")
    card = write_model_card(run, data).read_text()
    assert "reconstruction accuracy (argmax from the posterior mean, the audit's statistic, 256 validation " \
           "windows) 0.610 → 0.660" in card     # steps 300 → 400, the second half
    (tmp_path / "old").mkdir()
    plain, _ = _run_dir(tmp_path / "old", 0.75)
    assert "argmax from the posterior mean, the audit" not in write_model_card(plain, data).read_text()


def test_a_missed_reconstruction_target_gets_its_curve(tmp_path):
    from export_onnx.model_card import RECON_CURVE_HEADING, recon_curve_section
    import pytest
    run, _ = _run_dir(tmp_path, 0.75)
    with pytest.raises(ValueError, match="recon_acc"):        # a run from before stop 20
        recon_curve_section(run, tmp_path / "c.png", 0.85, "c.png")
    lines = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
    for e, r in zip((e for e in lines if e["split"] == "validation"), (0.71, 0.74)):
        e["recon_acc"], e["recon_n"] = r, 256
    (run / "log.jsonl").write_text("\n".join(json.dumps(e) for e in lines) + "\n")
    text = recon_curve_section(run, tmp_path / "c.png", 0.85, "models/c.png", "More data would close it.")
    assert text.startswith(RECON_CURVE_HEADING)
    assert "0.710 at the first validation, 0.740 at the last, best 0.740 (step 200)" in text
    assert "teacher-forced accuracy 0.500 → 0.700. Target 0.85." in text
    assert "![reconstruction over training](models/c.png)" in text and text.rstrip().endswith("More data would close it.")
    assert (tmp_path / "c.png").read_bytes().startswith(b"\x89PNG")


def test_a_section_is_found_by_its_heading_line_not_a_quote_of_it():
    from export_onnx.model_card import card_section, with_section
    card = ('# m\n\n## What would close the gap\nsee "## Reconstruction over training" below.\n\n'
            '## Known weaknesses\n- none\n\n## Reconstruction over training\nold curve\n')
    assert card_section(card, "## Reconstruction over training") == "## Reconstruction over training\nold curve\n"
    new = with_section(card, "## Reconstruction over training\nnew curve\n")
    assert 'see "## Reconstruction over training" below.' in new and "new curve" in new and "old curve" not in new
    assert card_section("## A\nx\n## B\ny", "## B") == "## B\ny" and card_section("## A\n", "## B") is None
