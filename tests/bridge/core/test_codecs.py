import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.core.codecs import (DRUM_CLASSES, DRUM_PITCH_TO_CLASS, MELODY_NOTE_OFF, CodecError, DrumCodec,
                           MelodyCodec, SequenceCodec)
from bridge.core.notes import Note
from export_onnx.configs import CONFIGS

MEL = MelodyCodec(21, 108)
TRIO = CONFIGS["trio_16bar"].codec


@st.composite
def melody_tokens(draw, codec=MEL, max_steps=64):
    """Valid melody columns: a note-off only while a note sounds."""
    n = draw(st.integers(1, max_steps))
    raw = draw(st.lists(st.integers(0, codec.num_classes - 1), min_size=n, max_size=n))
    out, sounding = [], False
    for t in raw:
        if t == MELODY_NOTE_OFF and not sounding:
            t = 0
        sounding = t >= 2 or (sounding and t == 0)
        out.append(t)
    return np.array(out, dtype=np.int64)


@settings(max_examples=30, deadline=None)
@given(melody_tokens())
def test_melody_tokens_notes_tokens_identity(tokens):
    notes = MEL.decode(tokens)
    assert np.array_equal(MEL.encode(notes, len(tokens)), tokens)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 511), min_size=1, max_size=64))
def test_drum_tokens_notes_tokens_identity(tokens):
    codec = DrumCodec()
    tokens = np.array(tokens)
    assert np.array_equal(codec.encode(codec.decode(tokens), len(tokens)), tokens)


@settings(max_examples=30, deadline=None)
@given(st.data())
def test_trio_tokens_notes_tokens_identity(data):
    steps = data.draw(st.integers(1, 48))
    lead = data.draw(melody_tokens(max_steps=steps).filter(lambda t: len(t) == steps) | st.just(np.zeros(steps, int)))
    bass = data.draw(melody_tokens(max_steps=steps).filter(lambda t: len(t) == steps) | st.just(np.zeros(steps, int)))
    drums = np.array(data.draw(st.lists(st.integers(0, 511), min_size=steps, max_size=steps)))
    tokens = np.stack([lead, bass, drums], axis=1)
    notes = TRIO.decode(tokens)
    assert {n.track for n in notes} <= {0, 1, 2}
    assert all(n.is_drum == (n.track == 2) for n in notes)
    assert np.array_equal(TRIO.encode(notes, steps), tokens)


@st.composite
def monophonic_notes(draw):
    """Quantized non-overlapping notes inside the range (gaps and back-to-back notes both occur)."""
    notes, step = [], draw(st.integers(0, 4))
    for _ in range(draw(st.integers(0, 12))):
        length = draw(st.integers(1, 8))
        notes.append(Note(draw(st.integers(21, 108)), step / 4, (step + length) / 4))
        step += length + draw(st.integers(0, 3))
    return notes, step + draw(st.integers(0, 4))


@settings(max_examples=30, deadline=None)
@given(monophonic_notes())
def test_melody_notes_tokens_notes_identity(case):
    notes, steps = case
    steps = max(steps, 1)
    assert MEL.decode(MEL.encode(notes, steps)) == notes


def test_melody_skyline_cuts_and_restrikes():
    # C4 held for 8 steps, E4 on top from step 2 to 4: C4 is struck again when E4 ends
    notes = [Note(60, 0, 2), Note(64, 0.5, 1)]
    tokens = MEL.encode(notes, 8)
    c4, e4 = 2 + 60 - 21, 2 + 64 - 21
    assert tokens.tolist() == [c4, 0, e4, 0, c4, 0, 0, 0]


def test_melody_out_of_range_raises_unless_folded():
    with pytest.raises(CodecError):
        MEL.encode([Note(10, 0, 1)], 4)
    assert MEL.encode([Note(10, 0, 1)], 4, fold_octaves=True)[0] == 2 + 22 - 21


def test_melody_transpose_handles_unsigned_tokens():
    tokens = np.array([2 + 60 - 21, 0, 1, 0], dtype=np.uint16)
    down = MEL.transpose(tokens, -5)
    assert down.tolist() == [2 + 55 - 21, 0, 1, 0]
    assert MEL.transpose(np.array([2], dtype=np.uint16), -1) is None      # pitch 21 - 1 leaves the range
    assert MEL.transpose(np.array([MEL.num_classes - 1], dtype=np.uint16), 1) is None


# General MIDI percussion (GM1 35-81 plus the GS/GM2 extensions 27-34, 82-87), with the class a
# drummer would file each under in the 9-class kit Magenta (and this codec) use.
GM_DRUMS = {
    27: ("High Q", "snare"), 28: ("Slap", "snare"), 29: ("Scratch Push", "low_tom"),
    30: ("Scratch Pull", "high_tom"), 31: ("Sticks", "snare"), 32: ("Square Click", "snare"),
    33: ("Metronome Click", "snare"), 34: ("Metronome Bell", "snare"),
    35: ("Acoustic Bass Drum", "kick"), 36: ("Bass Drum 1", "kick"), 37: ("Side Stick", "snare"),
    38: ("Acoustic Snare", "snare"), 39: ("Hand Clap", "snare"), 40: ("Electric Snare", "snare"),
    41: ("Low Floor Tom", "low_tom"), 42: ("Closed Hi-Hat", "closed_hihat"), 43: ("High Floor Tom", "low_tom"),
    44: ("Pedal Hi-Hat", "closed_hihat"), 45: ("Low Tom", "low_tom"), 46: ("Open Hi-Hat", "open_hihat"),
    47: ("Low-Mid Tom", "mid_tom"), 48: ("Hi-Mid Tom", "mid_tom"), 49: ("Crash Cymbal 1", "crash"),
    50: ("High Tom", "high_tom"), 51: ("Ride Cymbal 1", "ride"), 52: ("Chinese Cymbal", "crash"),
    53: ("Ride Bell", "ride"), 54: ("Tambourine", "closed_hihat"), 55: ("Splash Cymbal", "crash"),
    56: ("Cowbell", "snare"), 57: ("Crash Cymbal 2", "crash"), 58: ("Vibraslap", "crash"),
    59: ("Ride Cymbal 2", "ride"), 60: ("Hi Bongo", "mid_tom"), 61: ("Low Bongo", "low_tom"),
    62: ("Mute Hi Conga", "high_tom"), 63: ("Open Hi Conga", "mid_tom"), 64: ("Low Conga", "low_tom"),
    65: ("High Timbale", "snare"), 66: ("Low Timbale", "snare"), 67: ("High Agogo", "open_hihat"),
    68: ("Low Agogo", "closed_hihat"), 69: ("Cabasa", "closed_hihat"), 70: ("Maracas", "closed_hihat"),
    71: ("Short Whistle", "closed_hihat"), 72: ("Long Whistle", "open_hihat"),
    73: ("Short Guiro", "closed_hihat"), 74: ("Long Guiro", "open_hihat"), 75: ("Claves", "snare"),
    76: ("Hi Wood Block", "high_tom"), 77: ("Low Wood Block", "mid_tom"), 78: ("Mute Cuica", "closed_hihat"),
    79: ("Open Cuica", "open_hihat"), 80: ("Mute Triangle", "closed_hihat"),
    81: ("Open Triangle", "open_hihat"), 82: ("Shaker", "ride"), 83: ("Jingle Bell", "high_tom"),
    84: ("Belltree", "low_tom"), 85: ("Castanets", "snare"), 86: ("Mute Surdo", "mid_tom"),
    87: ("Open Surdo", "mid_tom"),
}


def test_drum_table_covers_all_gm_percussion():
    assert sorted(GM_DRUMS) == list(range(27, 88)) and len(GM_DRUMS) == 61
    names = [name for name, _ in DRUM_CLASSES]
    for pitch, (gm_name, expected) in GM_DRUMS.items():
        assert pitch in DRUM_PITCH_TO_CLASS, f"GM {pitch} {gm_name} unmapped"
        assert names[DRUM_PITCH_TO_CLASS[pitch]] == expected, f"GM {pitch} {gm_name}"


def test_drum_kit_names_agree_with_classes():
    # the core kit pieces land where their GM names say
    names = [name for name, _ in DRUM_CLASSES]
    for pitch, (gm_name, _) in GM_DRUMS.items():
        cls = names[DRUM_PITCH_TO_CLASS[pitch]]
        if "Bass Drum" in gm_name:
            assert cls == "kick"
        elif "Snare" in gm_name:
            assert cls == "snare"
        elif "Crash" in gm_name:
            assert cls == "crash"
        elif "Ride" in gm_name:
            assert cls == "ride"
        elif gm_name in ("Closed Hi-Hat", "Pedal Hi-Hat"):
            assert cls == "closed_hihat"
        elif gm_name == "Open Hi-Hat":
            assert cls == "open_hihat"
        elif gm_name.endswith("Tom"):
            assert cls.endswith("tom")


def test_drum_decode_uses_first_pitch_of_class():
    notes = DrumCodec().decode(np.array([0b11, 0]))
    assert [(n.pitch, n.start, n.is_drum) for n in notes] == [(36, 0.0, True), (38, 0.0, True)]


def test_sequence_one_hot_segments():
    codec = CONFIGS["trio_16bar"].codec
    tokens = np.array([[5, 3, 511]])
    oh = codec.one_hot(tokens)
    assert oh.shape == (1, codec.input_size)
    assert oh.sum() == 3 and oh[0, 5] == 1 and oh[0, 90 + 3] == 1 and oh[0, 180 + 511] == 1
