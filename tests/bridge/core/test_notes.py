import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.core.notes import Note, beat_to_step, quantize, step_to_beat


def test_beat_step_conversions():
    assert beat_to_step(1.0) == 4 and beat_to_step(0.26) == 1 and beat_to_step(0.1) == 0
    assert step_to_beat(6) == 1.5


def test_quantize_snaps_and_keeps_one_step_minimum():
    out = quantize([Note(60, 0.05, 0.07), Note(62, 0.49, 1.3, 80, 1)])
    assert out == [Note(60, 0.0, 0.25), Note(62, 0.5, 1.25, 80, 1)]


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 200), st.integers(1, 64), st.floats(-0.12, 0.12), st.floats(-0.12, 0.12))
def test_quantize_recovers_grid_notes_under_small_jitter(start, length, js, je):
    n = Note(60, start / 4 + js / 4, (start + length) / 4 + je / 4)
    if n.start < 0:
        return
    assert quantize([n]) == [Note(60, start / 4, (start + length) / 4)]


def test_row_round_trip_and_validation():
    n = Note(64, 1.0, 1.5, 90, 2)
    assert Note.from_row(n.to_row()) == n
    for bad in ([60, 0, 0], [200, 0, 1], [60, -1, 1], [60.5, 0, 1], "x", [60, 0, 1, 0]):
        with pytest.raises(ValueError):
            Note.from_row(bad)
