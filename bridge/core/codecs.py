"""MusicVAE codecs: notes <-> token arrays, one codec per track.

Token conventions (they match Magenta's one-hot converters, so Magenta checkpoints line up):
- melody: 0 = no event (hold the sounding note, or stay silent), 1 = note-off,
  2 + (pitch - min_pitch) = note-on. Full range 0..127 gives 130 classes; magenta.js uses 21..108 (90).
  Monophony rule ("skyline"): at every step the highest sounding note wins. A note hidden under a
  higher one is cut; if it is still sounding when the higher one ends, it is struck again.
- drums: 9 drum classes, one token per step = bitmask of the classes struck there (512 classes),
  bit i = class i in DRUM_CLASSES order. Pitches map to classes as Magenta's drum encoder does.
- a sequence codec stacks track codecs: tokens have shape (steps, tracks). A trio is
  [melody (lead), melody (bass), drums].
"""
from __future__ import annotations

import numpy as np

from .errors import CodecError
from .notes import STEPS_PER_BEAT, Note, beat_to_step


MELODY_NO_EVENT = 0
MELODY_NOTE_OFF = 1
MELODY_FIRST_PITCH = 2

# (name, General MIDI pitches; the first one is used when decoding)
DRUM_CLASSES: list[tuple[str, tuple[int, ...]]] = [
    ("kick", (36, 35)),
    ("snare", (38, 27, 28, 31, 32, 33, 34, 37, 39, 40, 56, 65, 66, 75, 85)),
    ("closed_hihat", (42, 44, 54, 68, 69, 70, 71, 73, 78, 80, 22)),
    ("open_hihat", (46, 67, 72, 74, 79, 81, 26)),
    ("low_tom", (45, 29, 41, 43, 61, 64, 84)),
    ("mid_tom", (48, 47, 60, 63, 77, 86, 87)),
    ("high_tom", (50, 30, 62, 76, 83)),
    ("crash", (49, 52, 55, 57, 58)),
    ("ride", (51, 53, 59, 82)),
]
DRUM_PITCH_TO_CLASS: dict[int, int] = {p: i for i, (_, ps) in enumerate(DRUM_CLASSES) for p in ps}


_MAX_BEAT = 1e12   # far past any sequence; a huge (or infinite) note end must not overflow int()


def _step(beat: float) -> int:
    return beat_to_step(min(beat, _MAX_BEAT))


class MelodyCodec:
    kind = "melody"

    def __init__(self, min_pitch: int = 0, max_pitch: int = 127, program: int = 0):
        if not 0 <= min_pitch <= max_pitch <= 127:
            raise CodecError(f"bad melody pitch range {min_pitch}..{max_pitch}")
        self.min_pitch, self.max_pitch, self.program = min_pitch, max_pitch, program
        self.num_classes = MELODY_FIRST_PITCH + max_pitch - min_pitch + 1

    def spec(self) -> dict:
        return {"codec": "melody", "min_pitch": self.min_pitch, "max_pitch": self.max_pitch,
                "num_classes": self.num_classes, "program": self.program}

    def fold(self, pitch: int) -> int:
        """Move a pitch by octaves into the codec's range (used for user input, never for training)."""
        while pitch < self.min_pitch:
            pitch += 12
        while pitch > self.max_pitch:
            pitch -= 12
        if not self.min_pitch <= pitch <= self.max_pitch:
            raise CodecError(f"pitch range {self.min_pitch}..{self.max_pitch} is narrower than an octave")
        return pitch

    def encode(self, notes: list[Note], num_steps: int, fold_octaves: bool = False) -> np.ndarray:
        spans = []  # (start_step, end_step, pitch)
        for n in notes:
            if n.is_drum:
                continue
            pitch = n.pitch
            if not self.min_pitch <= pitch <= self.max_pitch:
                if not fold_octaves:
                    raise CodecError(f"pitch {pitch} outside the codec range {self.min_pitch}..{self.max_pitch}")
                pitch = self.fold(pitch)
            s = max(_step(n.start), 0)
            e = min(max(_step(n.end), _step(n.start) + 1), num_steps)
            if s < e:
                spans.append((s, e, pitch))
        spans.sort()
        # top[t]: the span sounding on top at step t; higher pitch wins, on equal pitch the later onset
        top = [-1] * num_steps
        for j, (s, e, pitch) in enumerate(spans):
            for t in range(s, e):
                k = top[t]
                if k < 0 or pitch >= spans[k][2]:
                    top[t] = j
        tokens = np.zeros(num_steps, dtype=np.int64)
        prev = -1
        for t, cur in enumerate(top):
            if cur >= 0 and cur != prev:
                tokens[t] = MELODY_FIRST_PITCH + spans[cur][2] - self.min_pitch
            elif cur < 0 and prev >= 0:
                tokens[t] = MELODY_NOTE_OFF
            prev = cur
        return tokens

    def decode(self, tokens, velocity: int = 100, track: int = 0) -> list[Note]:
        notes, pitch, start = [], None, 0
        tokens = np.asarray(tokens)
        for s, t in enumerate(tokens.tolist()):
            if t == MELODY_NO_EVENT:
                continue
            if pitch is not None:
                notes.append(Note(pitch, start / STEPS_PER_BEAT, s / STEPS_PER_BEAT, velocity, track))
                pitch = None
            if t >= MELODY_FIRST_PITCH:
                if t >= self.num_classes:
                    raise CodecError(f"melody token {t} out of range (num_classes={self.num_classes})")
                pitch, start = self.min_pitch + t - MELODY_FIRST_PITCH, s
        if pitch is not None:
            notes.append(Note(pitch, start / STEPS_PER_BEAT, len(tokens) / STEPS_PER_BEAT, velocity, track))
        return notes

    def transpose(self, tokens: np.ndarray, semitones: int) -> np.ndarray | None:
        """Shift every note-on; None if a note would leave the range (the example is then not augmented)."""
        tokens = np.asarray(tokens)
        on = tokens >= MELODY_FIRST_PITCH
        # widen first: datasets store uint16, where a negative shift would overflow
        shifted = np.where(on, tokens.astype(np.int64) + semitones, tokens)
        if on.any() and (shifted[on].min() < MELODY_FIRST_PITCH or shifted[on].max() >= self.num_classes):
            return None
        return shifted.astype(tokens.dtype, copy=False)


class DrumCodec:
    kind = "drums"
    num_classes = 2 ** len(DRUM_CLASSES)

    def __init__(self, program: int = 0):
        self.program = program

    def spec(self) -> dict:
        return {"codec": "drums", "num_classes": self.num_classes, "program": self.program,
                "classes": [name for name, _ in DRUM_CLASSES]}

    def encode(self, notes: list[Note], num_steps: int, fold_octaves: bool = False) -> np.ndarray:
        tokens = np.zeros(num_steps, dtype=np.int64)
        for n in notes:
            cls = DRUM_PITCH_TO_CLASS.get(n.pitch)
            s = _step(n.start)
            if cls is None or not 0 <= s < num_steps:
                continue
            tokens[s] |= 1 << cls
        return tokens

    def decode(self, tokens, velocity: int = 100, track: int = 0) -> list[Note]:
        notes = []
        for s, t in enumerate(np.asarray(tokens).tolist()):
            if not 0 <= t < self.num_classes:
                raise CodecError(f"drum token {t} out of range (num_classes={self.num_classes})")
            for cls, (_, pitches) in enumerate(DRUM_CLASSES):
                if t >> cls & 1:
                    notes.append(Note(pitches[0], s / STEPS_PER_BEAT, (s + 1) / STEPS_PER_BEAT, velocity, track, True))
        return notes

    def transpose(self, tokens: np.ndarray, semitones: int) -> np.ndarray:
        return tokens  # drums are not pitched


def track_codec_from_spec(spec: dict):
    if spec["codec"] == "melody":
        return MelodyCodec(spec.get("min_pitch", 0), spec.get("max_pitch", 127), spec.get("program", 0))
    if spec["codec"] == "drums":
        return DrumCodec(spec.get("program", 0))
    raise CodecError(f"unknown codec {spec['codec']!r}")


class SequenceCodec:
    """Several track codecs side by side; tokens are (steps, tracks).

    With one track every note is fed to it (a melody model takes any non-drum notes, a drum model
    any drum pitches); with several, a note goes to the codec of its `track`.
    """

    def __init__(self, tracks: list):
        self.tracks = list(tracks)

    @classmethod
    def from_spec(cls, specs: list[dict]) -> "SequenceCodec":
        return cls([track_codec_from_spec(s) for s in specs])

    def spec(self) -> list[dict]:
        return [t.spec() for t in self.tracks]

    @property
    def num_classes(self) -> list[int]:
        return [t.num_classes for t in self.tracks]

    @property
    def input_size(self) -> int:
        return sum(self.num_classes)

    def encode(self, notes: list[Note], num_steps: int, fold_octaves: bool = False) -> np.ndarray:
        if len(self.tracks) == 1:
            codec = self.tracks[0]
            picked = [n for n in notes if n.is_drum] if codec.kind == "drums" else [n for n in notes if not n.is_drum]
            if codec.kind == "drums" and not picked:
                picked = list(notes)  # drum rows from a client may not carry the is_drum flag
            return codec.encode(picked, num_steps, fold_octaves)[:, None]
        cols = [codec.encode([n for n in notes if n.track == i], num_steps, fold_octaves)
                for i, codec in enumerate(self.tracks)]
        return np.stack(cols, axis=1)

    def decode(self, tokens, velocity: int = 100) -> list[Note]:
        tokens = np.asarray(tokens)
        if tokens.ndim == 1:
            tokens = tokens[:, None]
        if tokens.shape[1] != len(self.tracks):
            raise CodecError(f"tokens have {tokens.shape[1]} tracks, the codec {len(self.tracks)}")
        notes = []
        for i, codec in enumerate(self.tracks):
            notes.extend(codec.decode(tokens[:, i], velocity=velocity, track=i))
        return sorted(notes, key=lambda n: (n.start, n.track, n.pitch))

    def one_hot(self, tokens: np.ndarray) -> np.ndarray:
        """(..., steps, tracks) int tokens -> (..., steps, sum(num_classes)) float32."""
        tokens = np.asarray(tokens)
        parts = [np.eye(c, dtype=np.float32)[tokens[..., i]] for i, c in enumerate(self.num_classes)]
        return np.concatenate(parts, axis=-1)

    def transpose(self, tokens: np.ndarray, semitones: int) -> np.ndarray | None:
        cols = []
        for i, codec in enumerate(self.tracks):
            col = codec.transpose(tokens[..., i], semitones)
            if col is None:
                return None
            cols.append(col)
        return np.stack(cols, axis=-1)
