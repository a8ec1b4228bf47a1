"""The note model shared by every part of latent-bridge.

Times are in beats (quarter notes). The grid is 4/4 with 4 steps per beat, 16 steps per bar.
In a trio, track 0 is the lead, 1 the bass, 2 the drums.
"""
from __future__ import annotations

from dataclasses import dataclass

STEPS_PER_BEAT = 4
BEATS_PER_BAR = 4
STEPS_PER_BAR = STEPS_PER_BEAT * BEATS_PER_BAR

LEAD, BASS, DRUMS = 0, 1, 2


@dataclass(frozen=True, order=True)
class Note:
    pitch: int
    start: float
    end: float
    velocity: int = 100
    track: int = 0
    is_drum: bool = False

    @property
    def duration(self) -> float:
        return self.end - self.start

    def to_row(self) -> list:
        """The wire form used by the OSC protocol: [pitch, start_beat, duration_beats, velocity, track]."""
        return [self.pitch, round(self.start, 6), round(self.end - self.start, 6), self.velocity, self.track]

    @classmethod
    def from_row(cls, row, is_drum: bool = False) -> "Note":
        if not isinstance(row, (list, tuple)) or not 3 <= len(row) <= 5:
            raise ValueError(f"a note row is [pitch, start_beat, duration_beats, velocity?, track?], got {row!r}")
        pitch, start, dur = row[0], row[1], row[2]
        velocity = row[3] if len(row) > 3 else 100
        track = row[4] if len(row) > 4 else 0
        for name, v in (("pitch", pitch), ("velocity", velocity), ("track", track)):
            if isinstance(v, bool) or not isinstance(v, int):
                raise ValueError(f"note {name} must be an integer, got {v!r}")
        for name, v in (("start", start), ("duration", dur)):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v != v or v in (float("inf"), float("-inf")):
                raise ValueError(f"note {name} must be a finite number, got {v!r}")
        if not 0 <= pitch <= 127:
            raise ValueError(f"note pitch must be in 0..127, got {pitch}")
        if not 1 <= velocity <= 127:
            raise ValueError(f"note velocity must be in 1..127, got {velocity}")
        if start < 0 or dur <= 0:
            raise ValueError(f"note start must be >= 0 and duration > 0, got start={start} duration={dur}")
        return cls(pitch, float(start), float(start) + float(dur), velocity, track, is_drum)


def beat_to_step(beat: float) -> int:
    """Nearest 16th-note step of a time in beats."""
    return int(round(beat * STEPS_PER_BEAT))


def step_to_beat(step: int) -> float:
    return step / STEPS_PER_BEAT


def quantize(notes: list[Note]) -> list[Note]:
    """Snap starts and ends to the 16th grid; a note never gets shorter than one step."""
    out = []
    for n in notes:
        s = beat_to_step(n.start)
        e = max(beat_to_step(n.end), s + 1)
        out.append(Note(n.pitch, step_to_beat(s), step_to_beat(e), n.velocity, n.track, n.is_drum))
    return out
