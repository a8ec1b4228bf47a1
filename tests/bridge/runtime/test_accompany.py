"""Accompaniment at runtime (bridge.runtime.accompany): Model.accompany, the `accompany` OSC op on a real
daemon, and `python -m bridge accompany` on a POP909 melody. Uses the tiny random trio package with
a surrogate encoder added (export_onnx.surrogate.tiny_accompany_package), cached like the other
tiny packages."""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pretty_midi
import pytest

from bridge import ModelError, cli
from bridge.core.notes import Note
from bridge.daemon.client import spawn_server
from bridge.io.midi_io import read_melody_file
from bridge.runtime import accompany as acc
from bridge.runtime import engine

ROOT = Path(__file__).resolve().parents[3]
POP909 = ROOT.parent / "shared" / "data" / "pop909" / "001" / "001.mid"

# 8 bars: a chord (kept as given on track 0), a pitch outside the codec range, varied velocities
MELODY = [Note(60, 0.0, 1.0, 100), Note(64, 0.0, 1.0, 70), Note(62, 1.0, 1.5, 90), Note(110, 2.0, 4.0, 80),
          Note(67, 8.0, 10.0, 100), Note(65, 12.5, 13.0, 60), Note(72, 20.0, 24.0, 100), Note(60, 30.0, 31.75, 100)]


def build_cached_accompany_models(tiny_models_dir) -> Path:
    """A directory with the tiny trio_16bar plus surrogate_encoder.onnx, and mel_2bar; cached under
    the system temp dir by the code that shapes it (the Node e2e test of the device uses it too)."""
    tiny_models_dir = Path(tiny_models_dir)
    h = hashlib.sha256(str(tiny_models_dir).encode())
    for source in sorted((ROOT / "export_onnx" / "surrogate").glob("*.py")):
        h.update(source.read_bytes())
    cache = Path(tempfile.gettempdir()) / f"latent-bridge-accomp-{h.hexdigest()[:16]}"
    if (cache / "trio_16bar" / "model.json").is_file() and (cache / "mel_2bar" / "model.json").is_file():
        return cache
    import torch
    from export_onnx.surrogate import tiny_accompany_package
    tmp = Path(tempfile.mkdtemp(prefix=cache.name + ".", dir=cache.parent))
    threads = torch.get_num_threads()
    try:
        tiny_accompany_package(tiny_models_dir / "trio_16bar", tmp)
        shutil.rmtree(tmp / ".trio_16bar_surrogate_run")
        shutil.copytree(tiny_models_dir / "mel_2bar", tmp / "mel_2bar")
        try:
            os.replace(tmp, cache)
        except OSError:     # another session got there first
            if not (cache / "trio_16bar" / "model.json").is_file():
                raise
    finally:
        torch.set_num_threads(threads)
        shutil.rmtree(tmp, ignore_errors=True)
    return cache


@pytest.fixture(scope="session")
def accomp_dir(tiny_models_dir) -> Path:
    return build_cached_accompany_models(tiny_models_dir)


@pytest.fixture(scope="module")
def trio(accomp_dir):
    return engine.load_model(accomp_dir / "trio_16bar")


def by_track(notes, k):
    return [n for n in notes if n.track == k]


def test_melody_kept_note_for_note_with_bass_and_drums(trio):
    band = trio.accompany(MELODY, temperature=1.0, seed=3)
    assert sorted(by_track(band, 0)) == sorted(MELODY)               # pitch, times, velocity: as given
    bass, drums = by_track(band, 1), by_track(band, 2)
    assert bass and drums
    assert not any(n.is_drum for n in bass) and all(n.is_drum for n in drums)
    assert {n.track for n in band} == {0, 1, 2}
    assert all(0 <= n.start < n.end <= 32.0 for n in bass + drums)    # cut at the melody's 8 bars
    assert band == sorted(band, key=lambda n: (n.start, n.track, n.pitch))
    # the function and the method are the same thing
    assert trio.accompanist().accompany(MELODY, temperature=1.0, seed=3) == band


def test_deterministic_with_a_seed(trio):
    a = trio.accompany(MELODY, temperature=0.8, seed=11)
    assert trio.accompany(MELODY, temperature=0.8, seed=11) == a
    assert trio.accompany(MELODY, temperature=0.8, seed=12) != a
    assert trio.accompany(MELODY) == trio.accompany(MELODY, temperature=0.0, seed=5)   # argmax: no randomness


def test_the_accompaniment_follows_the_melody(trio):
    """The band comes from the surrogate's z: it is the trio decode of that z, and another melody
    gives another z."""
    lead = trio.accompanist().melody_windows(acc.melody_of(MELODY))
    z = trio.accompanist().predict_z(lead)
    assert z.shape == (1, trio.z_size)
    decoded = trio.decode(z)[0]
    want = [Note(n.pitch, n.start, min(n.end, 32.0), n.velocity, n.track, n.is_drum)
            for n in decoded if n.track > 0 and n.start < 32.0]             # bass and drums of the 8 bars
    assert want
    assert sorted(n for n in trio.accompany(MELODY) if n.track > 0) == sorted(want)
    other = trio.accompanist().predict_z(
        trio.accompanist().melody_windows([Note(40 + i % 5, i * 0.5, i * 0.5 + 0.25) for i in range(60)]))
    assert np.abs(other - z).max() > 1e-3


def test_longer_melodies_are_windowed_and_stitched(trio):
    first = [Note(60 + i % 7, i * 2.0, i * 2.0 + 1.0, 100) for i in range(32)]        # bars 0-15
    second = [Note(72 - i % 5, i * 1.5, i * 1.5 + 0.5, 100) for i in range(40)]       # 15 bars
    shifted = [Note(n.pitch, n.start + 64, n.end + 64, n.velocity) for n in second]
    long = first + shifted                                                           # 31 bars
    assert trio.accompanist().melody_windows(long).shape == (2, 256)
    band = trio.accompany(long)
    assert sorted(by_track(band, 0)) == sorted(long)
    assert max(n.end for n in band) <= 31 * 4
    tail = [n for n in band if n.track > 0 and n.start >= 64]
    assert tail, "the second window has an accompaniment"
    # window 2 of the long melody == the second half on its own, moved by 16 bars
    alone = [Note(n.pitch, n.start + 64, n.end + 64, n.velocity, n.track, n.is_drum)
             for n in trio.accompany(second) if n.track > 0]
    assert sorted(tail) == sorted(alone)
    head = [n for n in band if n.track > 0 and n.start < 64]
    assert sorted(head) == sorted(n for n in trio.accompany(first) if n.track > 0)


def test_short_melodies_are_padded_with_rests(trio):
    short = [Note(60, 0.0, 1.0), Note(62, 4.5, 5.0)]                                 # 2 bars
    tokens = trio.accompanist().melody_windows(short)
    assert tokens.shape == (1, 256) and (tokens[0, 32:] == 0).all()
    band = trio.accompany(short, temperature=1.0, seed=1)
    assert sorted(by_track(band, 0)) == short
    assert max(n.end for n in band) <= 8.0 and by_track(band, 2)


@pytest.mark.parametrize("notes, kw, needle", [
    ([], {}, "empty melody"),
    ([Note(36, 0, 0.25, 100, 2, True), Note(38, 1, 1.25, 100, 2, True)], {}, "drums-only"),
    ([Note(40, 0, 1, 100, 1)], {}, "track 0"),
    (MELODY, {"time_signature": (3, 4)}, "4/4"),
    (MELODY, {"time_signature": "4/4"}, "time_signature"),
    ([Note(60, 0, 1), Note(60, 1100.0, 1101.0)], {}, "at most 256 bars"),
    ([Note(60, -1.0, 1.0)], {}, "start"),
])
def test_bad_inputs_are_clear_value_errors(trio, notes, kw, needle):
    with pytest.raises(ValueError, match=needle):
        trio.accompany(notes, **kw)


def test_models_that_cannot_accompany(accomp_dir, tiny_models_dir):
    with pytest.raises(ModelError, match="trio"):
        engine.load_model(accomp_dir / "mel_2bar").accompany(MELODY)
    plain = engine.load_model(tiny_models_dir / "trio_16bar")          # no surrogate in it
    assert not acc.has_surrogate(plain)
    with pytest.raises(ModelError, match="no surrogate encoder"):
        plain.accompany(MELODY)


# ---- the OSC op, on the real daemon ----------------------------------------------------------------

@pytest.fixture(scope="module")
def client(accomp_dir):
    server = spawn_server([accomp_dir], "--workers", "1")
    c = server.client(timeout=20.0)
    yield c
    c.close()
    assert server.stop() == 0


def test_op_accompany_end_to_end(client, trio):
    assert "accompany" in client.request("hello").data["ops"]       # registered by default
    rows = [n.to_row() for n in MELODY]
    r = client.request("accompany", model="trio_16bar", notes=rows, temperature=1.0, seed=3)
    assert r.status == "done" and r.count == 1
    seq = r.sequences[0]
    assert seq["model"] == "trio_16bar" and seq["bars"] == 8 and seq["tracks"] == ["melody", "bass", "drums"]
    got = seq["notes"]
    assert sorted(x for x in got if x[4] == 0) == sorted(rows)           # the input melody, note for note
    assert any(x[4] == 1 for x in got) and any(x[4] == 2 for x in got)
    assert got == [n.to_row() for n in trio.accompany(MELODY, temperature=1.0, seed=3)]
    again = client.request("accompany", model="trio_16bar", notes=rows, temperature=1.0, seed=3)
    assert again.sequences[0]["notes"] == got


@pytest.mark.parametrize("fields, code, needle", [
    ({"model": "trio_16bar", "notes": []}, "bad_request", "empty melody"),
    ({"model": "trio_16bar", "notes": [[36, 0, 0.25, 100, 2], [42, 0.5, 0.25, 100, 2]]}, "bad_request", "drums-only"),
    ({"model": "trio_16bar", "notes": [[60, 0, 1]], "time_signature": [3, 4]}, "bad_request", "4/4"),
    ({"model": "trio_16bar", "notes": [[60, 0, 1, 100, 5]]}, "bad_request", "track"),
    ({"model": "trio_16bar"}, "bad_request", "'notes' is required"),
    ({"model": "trio_16bar", "notes": [[60, 0, 1]], "temperature": -1}, "bad_request", "temperature"),
    ({"model": "mel_2bar", "notes": [[60, 0, 1]]}, "bad_request", "trio"),
    ({"model": "nope", "notes": [[60, 0, 1]]}, "unknown_model", "nope"),
])
def test_op_accompany_errors(client, fields, code, needle):
    r = client.request("accompany", fields, check=False)
    assert r.status == "error" and r.error[0] == code, r.error
    assert needle in r.error[1]


# ---- the offline CLI ------------------------------------------------------------------------------

@pytest.mark.skipif(not POP909.is_file(), reason=f"{POP909} (shared data) is not on this machine")
def test_cli_pop909_melody_to_three_track_midi_and_png(accomp_dir, tmp_path, capsys):
    out, png = tmp_path / "band.mid", tmp_path / "band.png"
    rc = cli.main(["accompany", str(POP909), "--out", str(out), "--png", str(png), "--model", "trio_16bar",
                   "--models", str(accomp_dir), "--temperature", "1.0", "--seed", "2", "--bars", "24"])
    assert rc == 0, capsys.readouterr().err
    assert png.stat().st_size > 1000 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pm = pretty_midi.PrettyMIDI(str(out))
    kinds = sorted((i.name, i.program, i.is_drum) for i in pm.instruments)
    assert kinds == [("bass", 33, False), ("drums", 0, True), ("lead", 0, False)]
    melody = [n for n in read_melody_file(POP909) if n.start < 96]    # 24 bars: two windows
    melody = [Note(n.pitch, n.start, min(n.end, 96.0), n.velocity) for n in melody]
    lead = next(i for i in pm.instruments if i.name == "lead")
    assert len(lead.notes) == len(melody) > 40
    got = sorted((n.pitch, round(n.start * 2, 6), round(n.end * 2, 6)) for n in lead.notes)   # 120 BPM: beat = 0.5 s
    assert got == sorted((n.pitch, n.start, n.end) for n in melody)
    assert all(len(i.notes) for i in pm.instruments)
    assert max(n.end for i in pm.instruments for n in i.notes) <= 96 * 0.5 + 1e-6
    assert any(n.start >= 64 * 0.5 for i in pm.instruments if i.name != "lead" for n in i.notes)


def test_cli_rejects_3_4_and_drums_only_files(accomp_dir, tmp_path, capsys):
    waltz = pretty_midi.PrettyMIDI(initial_tempo=120)
    waltz.time_signature_changes.append(pretty_midi.TimeSignature(3, 4, 0.0))
    inst = pretty_midi.Instrument(0)
    inst.notes = [pretty_midi.Note(100, 60 + i, i * 0.5, i * 0.5 + 0.5) for i in range(12)]
    waltz.instruments.append(inst)
    waltz.write(str(tmp_path / "waltz.mid"))
    rc = cli.main(["accompany", str(tmp_path / "waltz.mid"), "--models", str(accomp_dir)])
    assert rc == 2 and "4/4" in capsys.readouterr().err

    kit = pretty_midi.PrettyMIDI(initial_tempo=120)
    drums = pretty_midi.Instrument(0, is_drum=True)
    drums.notes = [pretty_midi.Note(100, 36, i * 0.5, i * 0.5 + 0.1) for i in range(8)]
    kit.instruments.append(drums)
    kit.write(str(tmp_path / "kit.mid"))
    rc = cli.main(["accompany", str(tmp_path / "kit.mid"), "--models", str(accomp_dir)])
    assert rc == 2 and "drums only" in capsys.readouterr().err
