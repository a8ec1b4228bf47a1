"""A musical scale as a decode constraint: which pitches a melody or bass track may play.

A `Scale` is a root pitch class (0 = C .. 11 = B) and the intervals of the scale in semitones above
it (0..11), as Live 12 reports them (`Song.root_note`, `Song.scale_intervals`). `logit_mask` turns it
into an additive mask over a model's concatenated logits: 0 where a class is allowed, -inf on every
note-on of a melody-codec track (a melody model's one track; a trio's lead and bass) whose pitch
class is outside the scale. "No event" and "note-off" stay allowed, so a track can always rest or
hold; drum tracks are never masked. The decode loop adds the mask to the logits at every step, so
every note-on it picks (argmax or sampled) is in the scale, and the next step is conditioned on it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .codecs import MELODY_FIRST_PITCH, MelodyCodec
from .errors import BadRequest

PITCH_CLASSES = 12


@dataclass(frozen=True)
class Scale:
    root: int                     # 0..11, 0 = C
    intervals: tuple[int, ...]    # distinct semitones above the root, 0..11, ascending

    def __post_init__(self):
        if not 0 <= self.root < PITCH_CLASSES:
            raise BadRequest(f"scale root must be 0..11, got {self.root}")
        if not self.intervals or any(not 0 <= i < PITCH_CLASSES for i in self.intervals) \
                or len(set(self.intervals)) != len(self.intervals):
            raise BadRequest(f"scale intervals must be distinct integers 0..11, got {list(self.intervals)}")

    @property
    def pitch_classes(self) -> frozenset[int]:
        return frozenset((self.root + i) % PITCH_CLASSES for i in self.intervals)

    def contains(self, pitch: int) -> bool:
        return pitch % PITCH_CLASSES in self.pitch_classes

    def to_dict(self) -> dict:
        return {"root": self.root, "intervals": list(self.intervals)}


def logit_mask(codec, scale: Scale | None) -> np.ndarray | None:
    """The additive mask (input_size,) float32 for `codec` (a bridge.core.codecs.SequenceCodec):
    -inf on the note-on classes of melody tracks whose pitch is outside `scale`, 0 elsewhere.
    None when `scale` is None or nothing is masked (a drums-only model)."""
    if scale is None:
        return None
    allowed = scale.pitch_classes
    parts, masked = [], False
    for track in codec.tracks:
        part = np.zeros(track.num_classes, np.float32)
        if isinstance(track, MelodyCodec):
            for pitch in range(track.min_pitch, track.max_pitch + 1):
                if pitch % PITCH_CLASSES not in allowed:
                    part[MELODY_FIRST_PITCH + pitch - track.min_pitch] = -np.inf
                    masked = True
        parts.append(part)
    return np.concatenate(parts) if masked else None
