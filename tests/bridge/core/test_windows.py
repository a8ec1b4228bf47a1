import numpy as np
import pretty_midi
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.core import windows
from bridge.core.codecs import MelodyCodec
from bridge.io.midi_io import QuantizedInstrument, read_midi
from bridge.core.notes import Note
from export_onnx.configs import CONFIGS

MEL2 = CONFIGS["mel_2bar"]
DRUMS2 = CONFIGS["drums_2bar"]
STEP = 0.125  # seconds per 16th at 120 bpm


def tok(pitch):
    return 2 + pitch - 21


def write(path, tracks):
    """tracks: (name, program, is_drum, [(pitch, start_step, end_step)]) at 120 bpm, 4/4."""
    pm = pretty_midi.PrettyMIDI(initial_tempo=120)
    pm.time_signature_changes.append(pretty_midi.TimeSignature(4, 4, 0))
    for name, program, is_drum, notes in tracks:
        inst = pretty_midi.Instrument(program, is_drum=is_drum, name=name)
        inst.notes = [pretty_midi.Note(100, p, s * STEP, e * STEP) for p, s, e in notes]
        pm.instruments.append(inst)
    pm.write(str(path))
    return read_midi(path)


def melody_windows(midi, config=MEL2, stats=None):
    inst = midi.instruments[0]
    return windows.extract_windows([inst.notes], config.codec, config.bars, midi.downbeats, midi.num_steps,
                                   stats=stats)


def test_exact_windows_with_one_bar_rest(tmp_path):
    # bar 0: C D E F quarters; bar 1: rest; bar 2: G whole note; bar 3 empty
    midi = write(tmp_path / "a.mid", [("m", 0, False, [(60, 0, 4), (62, 4, 8), (64, 8, 12), (65, 12, 16),
                                                       (67, 32, 48)])])
    tokens, start_bar = melody_windows(midi)
    w0 = [tok(60), 0, 0, 0, tok(62), 0, 0, 0, tok(64), 0, 0, 0, tok(65), 0, 0, 0, 1] + [0] * 15
    w1 = [0] * 16 + [tok(67)] + [0] * 15
    assert tokens.dtype == np.uint16 and tokens.shape == (2, 32, 1)
    assert tokens[:, :, 0].tolist() == [w0, w1]
    assert start_bar.tolist() == [0, 1]


def test_rest_longer_than_a_bar_drops_window(tmp_path):
    midi = write(tmp_path / "b.mid", [("m", 0, False, [(60, 0, 16), (67, 33, 49)])])
    stats = windows.WindowStats()
    tokens, start_bar = melody_windows(midi, stats=stats)
    # window at bar 1 starts with 17 silent steps; bars 0 and 2 have at most 16
    assert start_bar.tolist() == [0, 2]
    assert tokens[1, :, 0].tolist() == [0, tok(67)] + [0] * 15 + [1] + [0] * 14
    assert stats["dropped_rest"] == 1 and stats["kept"] == 2


def test_held_note_is_struck_at_window_start(tmp_path):
    midi = write(tmp_path / "c.mid", [("m", 0, False, [(60, 0, 8), (62, 8, 24), (64, 24, 40)])])
    tokens, start_bar = melody_windows(midi)
    assert start_bar.tolist() == [0, 1]
    assert tokens[1, :, 0].tolist() == [tok(62)] + [0] * 7 + [tok(64)] + [0] * 15 + [1] + [0] * 7


def test_out_of_range_pitch_drops_window(tmp_path):
    midi = write(tmp_path / "d.mid", [("m", 0, False, [(60, 0, 16), (110, 16, 32), (62, 32, 48), (64, 48, 64)])])
    stats = windows.WindowStats()
    tokens, start_bar = melody_windows(midi, stats=stats)
    assert start_bar.tolist() == [2] and stats["dropped_range"] == 2


def test_duplicate_windows_kept_once(tmp_path):
    bar = [(60, 0, 4), (64, 4, 8), (67, 8, 16)]
    notes = [(p, s + 16 * b, e + 16 * b) for b in range(4) for p, s, e in bar]
    midi = write(tmp_path / "e.mid", [("m", 0, False, notes)])
    stats = windows.WindowStats()
    tokens, start_bar = melody_windows(midi, stats=stats)
    assert len(tokens) == 1 and start_bar.tolist() == [0] and stats["duplicates"] == 2


def test_drum_rest_rule_counts_steps_without_hits(tmp_path):
    ok = write(tmp_path / "f.mid", [("kit", 0, True, [(36, 0, 1), (38, 17, 18), (42, 31, 32)])])
    tokens, start_bar = windows.extract_windows([windows.drum_notes(ok.instruments)], DRUMS2.codec, 2,
                                                ok.downbeats, ok.num_steps)
    assert start_bar.tolist() == [0]
    assert tokens[0, :, 0].tolist() == [1] + [0] * 16 + [2] + [0] * 13 + [4]
    bad = write(tmp_path / "g.mid", [("kit", 0, True, [(36, 0, 1), (38, 18, 19), (42, 31, 32)])])
    tokens, _ = windows.extract_windows([windows.drum_notes(bad.instruments)], DRUMS2.codec, 2,
                                        bad.downbeats, bad.num_steps)
    assert len(tokens) == 0


def test_window_starts_skip_irregular_bars():
    # bars of 16, 16, 8 (a 2-beat bar), 16, 16, 16 steps
    assert windows.window_starts([0, 16, 32, 40, 56, 72], 88, 2) == [0, 40, 56]
    # the last bar of a window must reach into the music
    assert windows.window_starts([0, 16, 32, 48], 33, 2) == [0, 16]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.booleans(), min_size=1, max_size=80))
def test_longest_run_matches_naive(mask):
    best = run = 0
    for m in mask:
        run = run + 1 if m else 0
        best = max(best, run)
    assert windows.longest_run(mask) == best


def test_melody_silent_steps():
    t = np.array([0, 5, 0, 1, 0, 7, 0])
    assert windows.melody_silent(t).tolist() == [True, False, False, True, True, False, False]


def inst(name, program, is_drum=False, pitch=60):
    return QuantizedInstrument(name, program, is_drum, [Note(pitch, 0, 1, is_drum=is_drum)])


def test_trio_program_rules():
    insts = [inst("piano", 0), inst("guitar", 27), inst("bass", 33), inst("strings", 48), inst("synth bass", 39),
             inst("brass", 61), inst("kick", 0, True, 36), inst("snare", 0, True, 38), inst("fretless", 35),
             inst("organ", 16), inst("lead synth", 80)]
    leads, basses, drums = windows.trio_candidates(insts)
    assert [i.name for i in leads] == ["piano", "guitar", "organ"]
    assert [i.name for i in basses] == ["bass", "synth bass", "fretless"]
    assert sorted(n.pitch for n in drums) == [36, 38]   # every drum track merged into one


def test_melody_instrument_rules():
    pop = [inst("MELODY", 0, pitch=70), inst("BRIDGE", 0, pitch=65), inst("PIANO", 0, pitch=80)]
    assert [i.name for i in windows.melody_instruments(pop, "pop909")] == ["MELODY", "BRIDGE"]
    notts = [inst("", 0, pitch=72), inst("", 0, pitch=45)]
    assert windows.melody_instruments(notts, "nottingham") == [notts[0]]
    generic = [inst("a", 0), inst("b", 40), inst("c", 31), inst("d", 0, True)]
    assert [i.name for i in windows.melody_instruments(generic)] == ["a", "c"]


def test_trio_windows_stack_tracks(tmp_path):
    lead = [(72, 0, 8), (74, 8, 16), (76, 16, 32)]
    bass = [(36, 0, 16), (38, 16, 32)]
    kit = [(36, s, s + 1) for s in range(0, 32, 4)]
    midi = write(tmp_path / "trio.mid", [("lead", 0, False, lead), ("bass", 33, False, bass), ("kit", 0, True, kit)])
    leads, basses, drums = windows.trio_candidates(midi.instruments)
    codec = CONFIGS["trio_16bar"].codec
    tokens, start_bar = windows.extract_windows([leads[0].notes, basses[0].notes, drums], codec, 2,
                                                midi.downbeats, midi.num_steps)
    assert tokens.shape == (1, 32, 3)
    notes = codec.decode(tokens[0])
    assert sorted((n.track, n.pitch, n.start, n.end) for n in notes if n.track < 2) == [
        (0, 72, 0.0, 2.0), (0, 74, 2.0, 4.0), (0, 76, 4.0, 8.0), (1, 36, 0.0, 4.0), (1, 38, 4.0, 8.0)]
    assert sum(n.track == 2 for n in notes) == 8


def test_windows_match_direct_codec_encoding(tmp_path):
    # polyphonic input: each window equals the codec's own skyline encoding of the clipped notes
    rng = np.random.default_rng(0)
    notes = [(int(rng.integers(50, 80)), int(s), int(s + rng.integers(1, 12))) for s in rng.integers(0, 120, 60)]
    midi = write(tmp_path / "poly.mid", [("p", 0, False, notes)])
    codec = MelodyCodec(21, 108)
    tokens, start_bar = melody_windows(midi)
    assert len(tokens) > 0
    for t, b in zip(tokens, start_bar):
        s = midi.downbeats[b]
        clipped = [Note(n.pitch, max(n.start - s / 4, 0), min(n.end - s / 4, 8))
                   for n in midi.instruments[0].notes if n.start < s / 4 + 8 and n.end > s / 4]
        assert np.array_equal(t[:, 0], codec.encode(clipped, 32))


def test_extract_rejects_track_count_mismatch():
    with pytest.raises(ValueError, match="3-track"):
        windows.extract_windows([[]], CONFIGS["trio_16bar"].codec, 16, [0], 10)
