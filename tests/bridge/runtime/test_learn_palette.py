"""Palettes learned from real held-out clips with the shipped models, through the runtime and the CLI."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import bridge
from bridge.core.palette import Palette, PaletteError
from bridge.io.midi_io import write_midi
from bridge.runtime.palette import clip_windows, learn_palette, read_palette, sample_palette

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def mel():
    return bridge.load_model("mel_2bar")


def test_windows_every_bar_unique_and_nonempty(mel, folk_clips):
    clips = folk_clips
    tokens = clip_windows(mel, clips)
    # 8-bar clips, 2-bar windows at every bar: up to 7 each, repeats kept once, no empty window
    assert 3 <= len(tokens) <= 7 * len(clips)
    assert len({t.tobytes() for t in tokens}) == len(tokens)
    assert all(t.any() for t in tokens)


def test_learned_palette_samples_stay_near_the_clips(mel, folk_clips):
    clips = folk_clips
    palette = learn_palette(mel, clips, "folk")
    assert palette.model == "mel_2bar" and palette.z_size == mel.z_size and palette.info["clips"] == 4
    clip_z = mel.encode_tokens(clip_windows(mel, clips))
    rng = np.random.default_rng(0)
    from_palette = mel.encode_tokens(mel.decode_tokens(palette.sample(32, 1.0, rng), 0.5, rng))
    from_prior = mel.encode_tokens(mel.decode_tokens(mel.sample_z(32, rng), 0.5, rng))
    centre = clip_z.mean(0)
    near = np.linalg.norm(from_palette - centre, axis=1).mean()
    far = np.linalg.norm(from_prior - centre, axis=1).mean()
    assert near < far, (near, far)
    seqs = sample_palette(mel, palette, 3, 0.5, 1.0, seed=1)
    assert len(seqs) == 3 and all(seqs)


def test_bad_clips_are_refused(mel, folk_clips):
    clips = folk_clips
    with pytest.raises(PaletteError, match="at least 3 clips"):
        learn_palette(mel, clips[:2], "x")
    drums = [[bridge.Note(36, 0, 0.25, 100, 0, True)]] * 3
    with pytest.raises(PaletteError, match="only drum notes"):
        learn_palette(mel, drums, "x")
    one = [clips[0][:1]] * 3           # three copies of one note: one distinct window
    with pytest.raises(PaletteError, match="distinct windows"):
        learn_palette(mel, one, "x")
    dr = bridge.load_model("drums_2bar")
    with pytest.raises(PaletteError, match="no drum notes"):
        learn_palette(dr, clips, "x")
    other = learn_palette(dr, [[bridge.Note(36 + k, b, b + 0.25, 100, 0, True) for b in range(0, 16, 1)]
                               for k in (0, 2, 6)], "d")
    with pytest.raises(PaletteError, match="belongs to drums_2bar"):
        sample_palette(mel, other, 1)


def test_cli_learn_then_sample(tmp_path, mel, folk_clips):
    paths = []
    for i, clip in enumerate(folk_clips):
        paths.append(tmp_path / f"c{i}.mid")
        write_midi(clip, paths[-1], tempo=120)
    out = tmp_path / "mine.palette.json"
    run = subprocess.run([sys.executable, "-m", "bridge", "learn", *map(str, paths), "--model", "mel_2bar",
                          "--out", str(out)], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert run.returncode == 0, run.stderr
    info = json.loads(run.stdout)
    assert info["clips"] == 4 and info["windows"] >= 3
    assert read_palette(out).windows == info["windows"]
    run = subprocess.run([sys.executable, "-m", "bridge", "sample", "--model", "mel_2bar", "--palette", str(out),
                          "-n", "2", "--spread", "0", "--out", str(tmp_path / "s.mid")],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["sequences"] == 2 and (tmp_path / "s.mid").is_file()
    run = subprocess.run([sys.executable, "-m", "bridge", "learn", str(paths[0]), "--model", "mel_2bar",
                          "--out", str(tmp_path / "x.json")], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert run.returncode == 2 and "at least 3 clips" in run.stderr and not (tmp_path / "x.json").exists()
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    with pytest.raises(PaletteError):
        read_palette(bad)
    assert isinstance(Palette.from_json(out.read_text()), Palette)
