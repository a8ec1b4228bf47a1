"""export_onnx.audit: every statistic on hand-made token sequences whose answer is known, the chord
parser, the test-split rebuild against `dataset`, and one audit of tiny packages end to end."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from export_onnx import audit as A

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
MIN_PITCH = 21


def tok(pitch: int) -> int:
    """Melody note-on token of a MIDI pitch in the 21..108 codec."""
    return pitch - MIN_PITCH + 2


# ---------------------------------------------------------------------------------------------- melody tokens
def test_sounding_and_notes_follow_note_offs_and_holds():
    col = np.array([0, 5, 0, 1, 0, 7, 0])
    assert A.sounding(col).tolist() == [-1, 5, 5, -1, -1, 7, 7]
    assert A.sounding(col[None]).tolist() == [[-1, 5, 5, -1, -1, 7, 7]]
    assert A.melody_notes(col) == [(1, 3, 5), (5, 7, 7)]
    assert A.melody_notes(np.zeros(4, int)) == []


def test_token_accuracy_and_the_three_baselines():
    truth = np.array([[0, 0, 5, 0, 6, 1, 0, 0],
                      [0, 0, 0, 0, 0, 0, 0, 0]])
    assert A.token_accuracy(truth, truth) == 1.0
    assert A.never_play(truth).tolist() == [[0] * 8, [0] * 8]
    assert A.token_accuracy(A.never_play(truth), truth) == 13 / 16
    assert A.hold_first(truth).tolist() == [[0, 0, 5, 0, 0, 0, 0, 0], [0] * 8]
    assert A.token_accuracy(A.hold_first(truth), truth) == 14 / 16
    loop = A.loop_bar1(np.array([[1, 2, 3, 4, 5, 6, 7, 8]]), steps_per_bar=4)
    assert loop.tolist() == [[1, 2, 3, 4, 1, 2, 3, 4]]
    with pytest.raises(ValueError):
        A.loop_bar1(np.zeros((1, 6), int), steps_per_bar=4)


def test_onset_pitch_recall_counts_input_onsets_reproduced_exactly():
    truth = np.array([[5, 0, 6, 0, 7, 1]])
    pred = np.array([[5, 0, 8, 0, 7, 0]])
    assert A.onset_pitch_recall(pred, truth) == pytest.approx(2 / 3)
    assert A.onset_pitch_recall(pred, np.zeros_like(truth)) is None


def test_notes_per_bar_and_empty_bars():
    held = np.array([[5, 0, 6, 0, 0, 0, 0, 0]])          # the second note holds through bar 2
    cut = np.array([[5, 0, 1, 0, 0, 0, 0, 0]])           # note-off: bar 2 is silent
    assert A.notes_per_bar(held, steps_per_bar=4) == 1.0
    assert A.melody_empty_bars(held, steps_per_bar=4) == 0.0
    assert A.melody_empty_bars(cut, steps_per_bar=4) == 0.5
    assert A.melody_empty_bars(np.vstack([held, cut]), steps_per_bar=4) == 0.25


def test_pitch_range_and_leaps():
    t = np.array([[2, 14, 0, 0], [0, 0, 0, 0], [10, 0, 0, 0]])
    assert A.pitch_range_mean(t) == 6.0                 # 12 and 0; the empty row is left out
    assert A.pitch_range_mean(np.zeros((2, 4), int)) is None
    assert A.leap_share(np.array([[2, 15, 14, 2]])) == pytest.approx(1 / 3)   # 13, 1, 12: only 13 > 12
    assert A.leap_share(np.array([[2, 0, 0, 0]])) is None


def test_krumhansl_kessler_key_estimate():
    w = np.zeros(12)
    for pc, d in [(0, 4), (2, 1), (4, 2), (5, 1), (7, 3), (9, 1), (11, 1)]:   # C major, C and G long
        w[pc] = d
    assert A.estimate_key(w) == (0, "major")
    w = np.zeros(12)
    for pc, d in [(9, 4), (0, 2), (4, 3), (11, 1), (2, 1), (5, 1)]:          # A minor
        w[pc] = d
    assert A.estimate_key(w) == (9, "minor")
    assert A.estimate_key(np.roll(A.KK_MAJOR, 7)) == (7, "major")          # the profile itself: G major
    assert A.estimate_key(np.roll(A.KK_MINOR, 2)) == (2, "minor")
    assert A.estimate_key(np.zeros(12)) is None
    assert A.scale_of((9, "minor")) == frozenset({9, 11, 0, 2, 4, 5, 7})
    with pytest.raises(ValueError):
        A.estimate_key(np.ones(7))


def test_in_key_share_uses_each_sequences_own_key():
    col = np.zeros(16, int)
    col[[0, 4, 6, 10, 12, 13]] = [tok(60), tok(64), tok(67), tok(72), tok(66), 1]   # C E G C F#(short)
    assert A.in_key_share(col[None], MIN_PITCH) == pytest.approx(4 / 5)
    up = np.where(col >= 2, col + 3, col)                 # the same melody in E flat: same answer
    assert A.in_key_share(np.stack([col, up]), MIN_PITCH) == pytest.approx(8 / 10)
    assert A.in_key_share(np.zeros((1, 16), int), MIN_PITCH) is None


# ---------------------------------------------------------------------------------------------- drum tokens
def test_drum_hits_and_scores():
    assert A.drum_hits(0b101).tolist() == [True, False, True] + [False] * 6
    truth = np.array([[1, 0, 3, 0]])       # kick, -, kick+snare, -
    pred = np.array([[1, 2, 1, 0]])        # kick, snare, kick, -
    p, r, f1 = A.hit_scores(pred, truth)
    assert (p, r, f1) == (pytest.approx(2 / 3), pytest.approx(2 / 3), pytest.approx(2 / 3))
    assert A.hit_scores(np.zeros((1, 4), int), np.zeros((1, 4), int)) == (None, None, None)
    assert A.hit_scores(np.zeros((1, 4), int), truth) == (None, 0.0, 0.0)


def test_drum_statistics():
    spb = 16
    kick_bar = np.zeros(spb, int)
    kick_bar[0] = 1
    backbeat_bar = np.zeros(spb, int)
    backbeat_bar[[4, 12]] = [2, 3]                        # snare; kick + snare
    half = np.zeros(spb, int)
    half[4] = 2                                           # snare on beat 2 only
    seq = np.concatenate([kick_bar, backbeat_bar])[None]
    assert A.hits_per_bar(seq, spb) == 2.0                # 1 + (1 + 2) hits over 2 bars
    assert A.kick_on_one(seq, spb) == 0.5
    assert A.backbeat(seq, spb) == 0.5
    assert A.backbeat(np.concatenate([half, backbeat_bar])[None], spb) == 0.5
    assert A.drum_empty_bars(np.concatenate([kick_bar, np.zeros(spb, int)])[None], spb) == 0.5
    walls = np.stack([np.full(2 * spb, 511), np.full(2 * spb, 1)])   # 144 and 16 hits per bar
    assert A.wall_share(walls, spb) == 0.5
    assert A.hits_per_bar(walls[:1], spb) == 144.0
    stats = A.track_stats(seq, "drums", spb)
    assert set(stats) == {"hits_per_bar", "walls", "kick_on_one", "backbeat", "empty_bars"}


def test_nonempty_and_distinct():
    mel = np.array([[0, 0, 0, 0], [0, 5, 0, 1], [1, 0, 0, 0]])
    assert A.nonempty_share(mel, "melody") == pytest.approx(1 / 3)      # a note-off alone is no note
    assert A.nonempty_share(np.array([[0, 0], [4, 0]]), "drums") == 0.5
    assert A.distinct_count(np.array([[1, 2], [1, 2], [2, 1]])) == 2
    assert A.distinct_count(np.zeros((3, 4, 2), int)) == 1


# ---------------------------------------------------------------------------------------------- chords
@pytest.mark.parametrize("label, pcs", [
    ("C:maj", {0, 4, 7}), ("C:maj7", {0, 4, 7, 11}), ("C:min7", {0, 3, 7, 10}), ("G:7", {7, 11, 2, 5}),
    ("A:min/b3", {9, 0, 4}), ("Bb:sus4(b7)", {10, 3, 5, 8}), ("F#:7/3", {6, 10, 1, 4}),
    ("G:maj/b7", {7, 11, 2, 5}), ("Db:hdim7", {1, 4, 7, 11}), ("E:sus2", {4, 6, 11}), ("Ab:aug", {8, 0, 4}),
    ("B:dim7", {11, 2, 5, 8}), ("C:minmaj7", {0, 3, 7, 11}), ("D:maj6", {2, 6, 9, 11}), ("C:(1,3,5)", {0, 4, 7}),
    ("C:maj(*5)", {0, 4}), ("C", {0, 4, 7}), ("Cb:maj", {11, 3, 6}),
])
def test_parse_chord(label, pcs):
    assert A.parse_chord(label) == frozenset(pcs)


@pytest.mark.parametrize("label", ["C:foo", "H:maj", "C:maj/x", "C:maj(3"])
def test_parse_chord_rejects_what_it_cannot_read(label):
    with pytest.raises(ValueError):
        A.parse_chord(label)


def test_no_chord():
    assert A.parse_chord("N") is None and A.parse_chord("X") is None


@pytest.mark.skipif(not (DATA / "pop909").is_dir(), reason="POP909 (shared data) is not on this machine")
def test_every_pop909_chord_label_parses():
    labels = {line.split()[2] for f in sorted((DATA / "pop909").glob("*/chord_midi.txt"))
              for line in f.read_text().splitlines() if len(line.split()) >= 3}
    assert len(labels) > 100
    for label in labels:
        A.parse_chord(label)


def test_chords_in_time_and_chord_tone_share(tmp_path):
    f = tmp_path / "chord_midi.txt"
    f.write_text("0.5\t1.5\tN\n1.5\t2.5\tC:maj\n2.5\t4.0\tA:min\n")
    chords = A.read_chords(f)
    got = A.chords_at(chords, [0.0, 1.0, 1.5, 2.4, 2.5, 3.9, 4.0])
    c, am = frozenset({0, 4, 7}), frozenset({9, 0, 4})
    assert got == [None, None, c, c, am, am, None]
    share, chance, n = A.chord_tone_share([60, 62, -1, 67], [c, c, c, None])
    assert (share, chance, n) == (0.5, 0.25, 2)
    assert A.chord_tone_share([-1, -1], [c, c]) == (None, None, 0)


def test_transposition_measures():
    a, b = np.array([-1, 40, 40, 41]), np.array([-1, 40, 45, -1])
    assert A.changed_share(a, b) == pytest.approx(2 / 3)
    assert A.changed_share(np.array([-1]), np.array([-1])) is None
    assert A.follows_share(np.array([40, 41]), np.array([45, 50]), 5) == 0.5


def test_step_seconds_on_an_annotated_grid():
    # beats from 1.0 s every 0.5 s: the grid is extended back to 0 s; past its end it goes on
    assert A.step_seconds([1.0, 1.5, 2.0], [0, 2, 4, 8, 20]).tolist() == [0.0, 0.25, 0.5, 1.0, 2.5]


def test_lowest_sounding():
    from bridge import Note
    notes = [Note(60, 0.0, 1.0, 100), Note(48, 0.5, 0.75, 100), Note(50, 2.0, 3.0, 100)]
    # steps from 1: 60 at steps 1-3 (48 under it at step 2), nothing at 4-7, 50 from step 8
    assert A.lowest_sounding(notes, 1, 8).tolist() == [60, 48, 60, -1, -1, -1, -1, 50]


# ---------------------------------------------------------------------------------------------- plumbing
def test_targets_subset_and_card_sources():
    audit = {"a": 0.5, "b": 0.1, "c": None, "d": 12.0}
    targets = {"a": (">=", 0.5), "b": ("<=", 0.05), "c": (">=", 0.1), "d": ("between", (10, 26))}
    assert A.check_targets(audit, targets) == (4, ["b", "c"])
    s = A.seeded_subset(100, 10, 3)
    assert len(set(s.tolist())) == 10 and s.tolist() == A.seeded_subset(100, 10, 3).tolist()
    assert sorted(A.seeded_subset(5, 10, 0).tolist()) == [0, 1, 2, 3, 4]
    card = ("# x\n\n## Data\n- `pop909`: 909 files read\n- `nottingham`: 533 files\n\nSplits.\n\n"
            "## Training\n- `no`: x\n")
    assert A.card_sources(card) == ["pop909", "nottingham"]
    assert A.card_sources("# no data section\n") == []


@pytest.mark.skipif(not (DATA / "groove" / "info.csv").is_file(), reason="Groove (shared data) is not here")
def test_test_windows_are_the_dataset_builders_test_split(tmp_path):
    from export_onnx.dataset import build_dataset, load_split
    build_dataset("drums_2bar", [DATA / "groove"], tmp_path / "ds", workers=1, limit=60, progress=False)
    want = load_split(tmp_path / "ds", "test")
    got = A.build_test_windows("drums_2bar", [DATA / "groove"], limit=60)
    assert len(got["tokens"]) == len(want["tokens"]) > 0
    assert np.array_equal(got["tokens"], want["tokens"])
    assert np.array_equal(got["start_bar"], want["start_bar"])
    summary = json.loads((tmp_path / "ds" / "summary.json").read_text())
    assert [summary["songs"][i] for i in np.unique(want["song"])] == got["songs"]


def _windows(model, n=12, seed=0):
    tokens = model.decode_tokens(model.sample_z(n, seed), 1.0, seed)
    return {"tokens": tokens, "song": np.arange(n) % 3, "sources": "tiny samples"}


def _flat(audit):
    for k, v in audit.items():
        if k == "targets_failed":
            assert isinstance(v, list) and all(isinstance(x, str) for x in v)
        else:
            assert v is None or isinstance(v, (int, float, str, bool)), (k, v)


@pytest.mark.parametrize("name", ["mel_2bar", "drums_2bar", "trio_16bar"])
def test_audit_of_a_tiny_package_writes_json_and_card_section(tiny_models_dir, tmp_path, name):
    import bridge
    pkg = tmp_path / name
    shutil.copytree(tiny_models_dir / name, pkg)
    card = pkg / "MODEL_CARD.md"
    if not card.exists():
        card.write_text(f"# {name} — model card\n\n## Metrics\nold\n")
    else:
        card.write_text(card.read_text() + "\n## Known weaknesses\n- none\n")
    model = bridge.load_model(pkg)
    audit = A.run_audit(pkg, windows=_windows(model), n_samples=8, z_inputs=5, data_root=tmp_path / "none")
    _flat(audit)
    tracks = [t["name"] for t in model.info["tracks"]]
    assert audit["n_windows"] == 12 and audit["n_songs"] == 3 and audit["z_inputs"] == 5
    for t in tracks:
        assert 0.0 <= audit[f"{t}_recon_acc"] <= 1.0
        assert audit[f"{t}_best_baseline"] == max(v for v in (audit[f"{t}_baseline_never_play"],
                                                              audit[f"{t}_baseline_hold_first"],
                                                              audit[f"{t}_baseline_loop_bar1"]) if v is not None)
        assert 1 <= audit[f"{t}_z_distinct_outputs"] <= 5
    if name == "trio_16bar":
        assert "accomp_skipped" in audit          # no surrogate in the plain tiny trio
    if name == "drums_2bar":
        assert "sample_drums_walls" in audit and "drums_recon_hit_f1" in audit
    else:
        assert f"sample_{tracks[0]}_in_key" in audit and f"{tracks[0]}_recon_onset_pitch" in audit
    written = A.write_audit(pkg, audit)
    written = A.write_audit(pkg, {**written, "date": "2030-01-01T00:00:00+00:00"})   # a second audit replaces
    text = card.read_text()
    assert text.count(A.AUDIT_HEADING) == 1 and "2030-01-01" in text
    assert "## Known weaknesses" in text or "## Metrics" in text
    on_disk = json.loads((pkg / "audit.json").read_text())
    assert on_disk == written
    assert on_disk["model_json_sha256"] == A._sha256(pkg / "model.json")
    bridge.load_model(pkg)                         # every listed sha256 still holds
    assert "audit.json" not in json.loads((pkg / "model.json").read_text())["files"]


@pytest.mark.skipif(not (DATA / "pop909").is_dir(), reason="POP909 (shared data) is not on this machine")
def test_accompaniment_audit_on_a_tiny_trio_with_a_surrogate(tiny_models_dir, tmp_path):
    pytest.importorskip("torch")
    import bridge
    from export_onnx.surrogate import tiny_accompany_package
    pkg = tiny_accompany_package(tiny_models_dir / "trio_16bar", tmp_path)
    model = bridge.load_model(pkg)
    out = A.audit_accompaniment(model, DATA / "pop909", count=2)
    assert out["accomp_segments"] == 2 and out["accomp_songs"] == 2
    assert 1 <= out["accomp_drum_patterns_distinct"] <= 2
    if out["accomp_bass_steps"]:              # a random tiny bass may never sound
        assert 0.0 < out["accomp_bass_chord_tone_random"] < 1.0
    else:
        assert out["accomp_bass_chord_tone"] is None
    # the chord annotation lines up with the music: POP909's own piano bass is mostly chord tones
    assert out["accomp_bass_chord_tone_real"] > 0.7


def test_the_command_is_registered():
    from export_onnx.__main__ import build_parser
    args = build_parser().parse_args(["audit", "bridge/models/mel_2bar", "--no-write", "--windows", "64"])
    assert args.func is A._main and args.no_write and args.windows == 64
