import json
from pathlib import Path

import numpy as np
import pretty_midi
import pytest

from export_onnx import dataset
from export_onnx.__main__ import main
from export_onnx.configs import CONFIGS

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def run_cli(tmp_path, config, dirs, limit):
    out = tmp_path / config
    argv = ["dataset", "--config", config, "--out", str(out), "--limit", str(limit), "--no-progress"]
    for d in dirs:
        argv += ["--midi-dir", str(d)]
    assert main(argv) == 0
    summary = json.loads((out / "summary.json").read_text())
    splits = {s: dataset.load_split(out, s) for s in dataset.SPLITS}
    return summary, splits


def check_splits(config, summary, splits):
    cfg = CONFIGS[config]
    songs = {}
    total = 0
    for s, arrays in splits.items():
        tok = arrays["tokens"]
        assert tok.dtype == np.uint16 and tok.shape[1:] == (cfg.num_steps, len(cfg.tracks))
        assert arrays["song"].dtype == np.int32 and len(arrays["song"]) == len(tok)
        if len(tok):
            assert (tok.max(axis=(0, 1)) < np.array(cfg.codec.num_classes)).all()
        assert len({t.tobytes() for t in tok}) == len(tok)            # unique within the split
        songs[s] = set(arrays["song"].tolist())
        assert summary["splits"][s]["examples"] == len(tok)
        total += len(tok)
    assert total > 0
    assert not (songs["train"] & songs["validation"]) and not (songs["train"] & songs["test"])
    assert not (songs["validation"] & songs["test"])
    for s, ids in songs.items():
        assert all(summary["song_split"][i] == s for i in ids)


def test_cli_pop909_and_nottingham_mel_2bar(tmp_path):
    summary, splits = run_cli(tmp_path, "mel_2bar", [DATA / "pop909", DATA / "nottingham"], 8)
    check_splits("mel_2bar", summary, splits)
    kinds = {s["label"]: s for s in summary["sources"]}
    assert kinds["pop909"]["kind"] == "pop909" and kinds["nottingham"]["kind"] == "nottingham"
    assert all(sum(s["examples"].values()) > 0 for s in summary["sources"])
    assert summary["skipped_by_reason"].get("not_4_4", 0) > 0       # jigs and waltzes are filtered
    assert all(sid.startswith(("pop909:", "nottingham:")) for sid in summary["songs"])


def test_cli_groove_drums_2bar_official_split(tmp_path):
    summary, splits = run_cli(tmp_path, "drums_2bar", [DATA / "groove"], 24)
    check_splits("drums_2bar", summary, splits)
    info = {}
    import csv
    with open(DATA / "groove" / "info.csv") as f:
        for row in csv.DictReader(f):
            info[f"groove:{row['id']}"] = row
    for s, arrays in splits.items():
        assert set(arrays["beat_type"].tolist()) <= {0, 1}
        for i, bt in zip(arrays["song"].tolist(), arrays["beat_type"].tolist()):
            row = info[summary["songs"][i]]
            assert row["split"] == s and bt == (row["beat_type"] == "fill")


def test_cli_lmd_beatles_trio_16bar(tmp_path):
    summary, splits = run_cli(tmp_path, "trio_16bar", [DATA / "lmd_beatles"], 8)
    check_splits("trio_16bar", summary, splits)
    assert summary["sources"][0]["kind"] == "lmd"
    # the three tracks carry music: lead/bass use melody tokens, drums the 512-class bitmask
    tok = np.concatenate([a["tokens"] for a in splits.values()])
    assert (tok[..., 0] >= 2).any() and (tok[..., 1] >= 2).any() and (tok[..., 2] > 0).any()


def test_cli_pop909_mel_16bar(tmp_path):
    summary, splits = run_cli(tmp_path, "mel_16bar", [DATA / "pop909"], 4)
    check_splits("mel_16bar", summary, splits)


def write(path, tracks, sig=(4, 4)):
    pm = pretty_midi.PrettyMIDI(initial_tempo=120)
    pm.time_signature_changes.append(pretty_midi.TimeSignature(*sig, 0))
    for program, is_drum, notes in tracks:
        inst = pretty_midi.Instrument(program, is_drum=is_drum)
        inst.notes = [pretty_midi.Note(100, p, s * 0.125, e * 0.125) for p, s, e in notes]
        pm.instruments.append(inst)
    pm.write(str(path))


def test_bad_files_are_counted_and_skipped(tmp_path, capsys):
    d = tmp_path / "user_midi"
    d.mkdir()
    tune = [(60 + (s // 4) % 12, s, s + 4) for s in range(0, 64, 4)]
    write(d / "good.mid", [(0, False, tune)])
    write(d / "waltz.mid", [(0, False, tune)], sig=(3, 4))
    write(d / "drums.mid", [(0, True, [(36, s, s + 1) for s in range(0, 64, 4)])])
    (d / "empty.mid").write_bytes(b"")
    (d / "truncated.mid").write_bytes((d / "good.mid").read_bytes()[:40])
    summary, splits = run_cli(tmp_path, "mel_2bar", [d], 100)
    out = capsys.readouterr().out
    assert summary["sources"][0]["kind"] == "generic"
    assert summary["skipped_by_reason"] == {"unreadable": 2, "not_4_4": 1, "no_melody": 1}
    assert summary["files_read"] == 1 and sum(len(a["tokens"]) for a in splits.values()) == 3
    messages = {Path(f["path"]).name: f["message"] for f in summary["skipped_files"]}
    assert "not 4/4" in messages["waltz.mid"] and "no melody instrument" in messages["drums.mid"]
    assert "unreadable MIDI" in messages["empty.mid"] and "unreadable MIDI" in messages["truncated.mid"]
    assert "skipped [not_4_4]" in out


def test_groove_folder_refused_for_melody_config(tmp_path):
    with pytest.raises(ValueError, match="drum"):
        dataset.build_dataset("mel_2bar", [DATA / "groove"], tmp_path / "x", workers=1, limit=2, progress=False)


def test_split_ids():
    assert dataset.lmd_song_name("01_-_I_Saw_Her_Standing_There.mid3") == "i_saw_her_standing_there"
    assert dataset.lmd_song_name("Yesterday.mid0") == dataset.lmd_song_name("13_-_Yesterday.mid12")
    assert dataset.hash_split("pop909:001") == dataset.hash_split("pop909:001")
    counts = {s: 0 for s in dataset.SPLITS}
    for i in range(2000):
        counts[dataset.hash_split(f"song{i}")] += 1
    assert 1500 < counts["train"] < 1700 and 120 < counts["validation"] < 280 and 120 < counts["test"] < 280
    _, jobs = dataset.list_jobs(DATA / "lmd_beatles")
    by_song = {}
    for j in jobs:
        by_song.setdefault(j.song_id, set()).add(j.split)
    assert all(len(s) == 1 for s in by_song.values())
    assert max(sum(1 for j in jobs if j.song_id == s) for s in by_song) > 5   # versions grouped


def test_augment_transposes_melody_and_keeps_drums():
    codec = CONFIGS["trio_16bar"].codec
    rng = np.random.default_rng(1)
    batch = np.zeros((200, 8, 3), np.uint16)
    batch[:, 0, 0] = 2 + 60 - 21
    batch[:, 0, 1] = 2 + 40 - 21
    batch[:, 1, 0] = 1
    batch[:, :, 2] = 5
    batch[0, 2, 0] = 2 + 108 - 21     # at the top of the range: any upward shift is refused
    out = dataset.augment(batch, codec, rng)
    assert out.dtype == np.uint16 and out.shape == batch.shape
    shifts = out[:, 0, 0].astype(int) - batch[:, 0, 0].astype(int)
    assert set(shifts.tolist()) <= set(range(-5, 6)) and len(set(shifts.tolist())) >= 8
    assert np.array_equal(out[:, 0, 1].astype(int) - batch[:, 0, 1], shifts)   # lead and bass move together
    assert np.array_equal(out[:, :, 2], batch[:, :, 2]) and (out[:, 1, 0] == 1).all()
    assert shifts[0] <= 0
    melody = CONFIGS["mel_2bar"].codec
    edge = np.full((50, 4, 1), 2, np.uint16)          # pitch 21: only upward shifts fit
    assert (dataset.augment(edge, melody, rng) >= 2).all()


def test_load_split_errors(tmp_path):
    with pytest.raises(ValueError):
        dataset.load_split(tmp_path, "dev")
    with pytest.raises(FileNotFoundError, match="export_onnx dataset"):
        dataset.load_split(tmp_path, "train")


# ---- sharded builds (`dataset --shard-size`) ---------------------------------------------------

def test_cli_sharded_build_equals_the_single_file_build(tmp_path):
    """Groove (with beat_type), shards of 50 examples: the same arrays, summary and split counts as
    the npz build; the trainer's memory-mapped view reads the same rows."""
    (tmp_path / "npz").mkdir()
    (tmp_path / "sharded").mkdir()
    _, whole = run_cli(tmp_path / "npz", "drums_2bar", [DATA / "groove"], 24)
    argv = ["dataset", "--config", "drums_2bar", "--out", str(tmp_path / "sharded" / "drums_2bar"), "--limit", "24",
            "--no-progress", "--shard-size", "50", "--midi-dir", str(DATA / "groove")]
    assert main(argv) == 0
    out = tmp_path / "sharded" / "drums_2bar"
    a = json.loads((tmp_path / "npz" / "drums_2bar" / "summary.json").read_text())
    b = json.loads((out / "summary.json").read_text())
    assert not list(out.glob("*.npz")) and len(list(out.glob("train-*.tokens.npy"))) > 1
    for s in dataset.SPLITS:
        sharded = dataset.load_split(out, s)
        assert sharded.keys() == whole[s].keys() == {"tokens", "song", "start_bar", "beat_type"}
        for k in sharded:
            assert sharded[k].dtype == whole[s][k].dtype and np.array_equal(sharded[k], whole[s][k]), (s, k)
        assert b["splits"][s]["examples"] == a["splits"][s]["examples"]
        assert b["splits"][s]["fills"] == a["splits"][s]["fills"] and b["splits"][s]["songs"] == a["splits"][s]["songs"]
    lazy = dataset.load_split(out, "train", mmap=True)["tokens"]
    assert isinstance(lazy, dataset.ShardedArray)
    rows = np.random.default_rng(0).permutation(len(lazy))[:64]
    assert np.array_equal(lazy[rows], whole["train"]["tokens"][rows])
    assert b["eval_windows_also_in_train"] == a["eval_windows_also_in_train"]
    assert {k: v for k, v in b.items() if k not in ("splits", "seconds", "shard_size")} == \
        {k: v for k, v in a.items() if k not in ("splits", "seconds", "shard_size")}


def test_window_index_dedupes_like_a_set():
    rng = np.random.default_rng(3)
    base = rng.integers(0, 4, (120, 8, 1)).astype(np.uint16)
    pool = base[rng.integers(0, 120, 300)]                      # many repeats
    seen, index = set(), dataset.WindowIndex(pending=16)       # small: runs are flushed and merged
    for a in range(0, 300, 23):
        want, want_idx = dataset.windows.unique_windows(pool[a:a + 23], seen)
        got, got_idx = index.unique(pool[a:a + 23])
        assert np.array_equal(got_idx, want_idx) and np.array_equal(got, want)
    assert len(index) == len(seen) and len(index.runs) > 1
    keys = index.keys()
    assert len(keys) == len(np.unique(keys)) == len(seen)
    assert index.contains(dataset.WindowIndex.digests(pool)).all()
    assert not index.contains(dataset.WindowIndex.digests(np.full((1, 8, 1), 9, np.uint16))).any()


def test_split_writer_replaces_the_other_format(tmp_path):
    types = {"tokens": (np.uint16, (4, 1)), "song": (np.int32, ())}
    tok = np.arange(40, dtype=np.uint16).reshape(10, 4, 1)
    w = dataset.SplitWriter(tmp_path, "train", types)
    w.add(tokens=tok, song=np.zeros(10))
    w.close()
    assert (tmp_path / "train.npz").exists()
    w = dataset.SplitWriter(tmp_path, "train", types, shard_size=4)
    for a in range(0, 10, 3):
        w.add(tokens=tok[a:a + 3], song=np.full(len(tok[a:a + 3]), a))
    assert not (tmp_path / "train.shards.json").exists()      # the index comes last
    w.close()
    assert not (tmp_path / "train.npz").exists() and [s["examples"] for s in w.shards] == [4, 4, 2]
    got = dataset.load_split(tmp_path, "train", mmap=True)
    assert np.array_equal(np.asarray(got["tokens"]), tok) and got["tokens"][-1].tolist() == tok[-1].tolist()
    assert got["song"][[0, 3, 9]].tolist() == [0, 3, 9]
    w = dataset.SplitWriter(tmp_path, "train", types)        # and back: the shards go
    w.add(tokens=tok[:2], song=np.zeros(2))
    w.close()
    assert not list(tmp_path.glob("train-*")) and not (tmp_path / "train.shards.json").exists()
    assert len(dataset.load_split(tmp_path, "train")["tokens"]) == 2
