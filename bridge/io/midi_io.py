"""MIDI files <-> quantized notes. No torch: the runtime and the dataset builder share this code,
so a user's clip is read exactly the way training data was.

Quantization follows the file's own beat grid (tempo changes included): each beat is split into
4 equal steps and every onset/offset goes to the nearest step. Only 4/4 music is kept, as in the
MusicVAE paper; the grid's downbeats say where bars start.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..core.errors import MidiError
from ..core.notes import STEPS_PER_BAR, STEPS_PER_BEAT, Note, beat_to_step, step_to_beat


@dataclass
class QuantizedInstrument:
    name: str
    program: int
    is_drum: bool
    notes: list[Note]            # on the 16th grid, times in beats from step 0, track 0

    def mean_pitch(self) -> float:
        return float(np.mean([n.pitch for n in self.notes])) if self.notes else 0.0


@dataclass
class QuantizedMidi:
    instruments: list[QuantizedInstrument]
    downbeats: list[int]         # step of every bar start, ascending
    num_steps: int               # step where the last note ends
    tempo: float                 # first tempo, quarter notes per minute
    path: str = ""
    time_signatures: list[tuple[int, int, float]] = field(default_factory=list)


def load_pretty_midi(path):
    """Parse with pretty_midi; every parser failure becomes a MidiError."""
    import pretty_midi
    try:
        with warnings.catch_warnings():
            # pretty_midi warns about meta events on non-zero tracks, common and harmless in the wild
            warnings.simplefilter("ignore")
            return pretty_midi.PrettyMIDI(str(path))
    except Exception as e:  # the parser raises anything from IOError to KeyError on corrupt input
        raise MidiError(f"{path}: unreadable MIDI ({type(e).__name__}: {e})", "unreadable") from None


def check_4_4(pm, path="") -> None:
    """Raise unless every time-signature event is 4/4 (a file with none counts as 4/4)."""
    for ts in pm.time_signature_changes:
        if (ts.numerator, ts.denominator) != (4, 4):
            raise MidiError(f"{path}: not 4/4 (time signature {ts.numerator}/{ts.denominator} at "
                            f"{ts.time:.2f}s); only 4/4 music is used", "not_4_4")


class BeatGrid:
    """Maps seconds to 16th steps along a list of beat times (linear inside each beat)."""

    def __init__(self, beats):
        beats = np.asarray(beats, dtype=np.float64)
        if beats.ndim != 1 or len(beats) < 2 or np.any(np.diff(beats) <= 0):
            raise MidiError("the beat grid needs at least two strictly increasing beat times", "unreadable")
        # a grid that starts after time 0 (annotated beats, pickups) is extended backwards so that
        # no note gets a negative step
        if beats[0] > 0:
            first = beats[1] - beats[0]
            n_back = int(np.ceil(beats[0] / first - 1e-9))
            beats = np.concatenate([beats[0] - first * np.arange(n_back, 0, -1), beats])
        self.beats = beats

    def steps(self, times) -> np.ndarray:
        times = np.asarray(times, dtype=np.float64)
        b = self.beats
        pos = np.interp(times, b, np.arange(len(b), dtype=np.float64))
        after = times > b[-1]
        pos[after] = len(b) - 1 + (times[after] - b[-1]) / (b[-1] - b[-2])
        return np.rint(pos * STEPS_PER_BEAT).astype(np.int64)


def quantize_pretty_midi(pm, path="", beats=None, downbeats=None) -> QuantizedMidi:
    """Quantize every instrument onto the beat grid (the file's own unless `beats` is given).

    `downbeats` (seconds) default to pretty_midi's; an annotated grid (POP909) passes both.
    """
    if beats is None:
        beats = pm.get_beats()
        if len(beats) < 2:
            # a file shorter than one beat: continue the grid at the initial tempo
            period = 60.0 / pm.get_tempo_changes()[1][0] if len(pm.get_tempo_changes()[1]) else 0.5
            beats = np.array([0.0, period])
        if downbeats is None:
            downbeats = pm.get_downbeats()
    grid = BeatGrid(beats)
    if downbeats is None:
        downbeats = grid.beats[::4]
    instruments, last = [], 0
    for inst in pm.instruments:
        if not inst.notes:
            continue
        starts = grid.steps([n.start for n in inst.notes])
        ends = np.maximum(grid.steps([n.end for n in inst.notes]), starts + 1)
        notes = [Note(int(n.pitch), s / STEPS_PER_BEAT, e / STEPS_PER_BEAT, int(min(max(n.velocity, 1), 127)),
                      0, bool(inst.is_drum))
                 for n, s, e in zip(inst.notes, starts.tolist(), ends.tolist())]
        notes.sort(key=lambda n: (n.start, n.pitch))
        last = max(last, int(ends.max()))
        instruments.append(QuantizedInstrument(inst.name.strip(), int(inst.program), bool(inst.is_drum), notes))
    if not instruments:
        raise MidiError(f"{path}: no notes", "empty")
    db = sorted(set(grid.steps(downbeats).tolist())) if len(downbeats) else [0]
    tempos = pm.get_tempo_changes()[1]
    return QuantizedMidi(instruments, [d for d in db if d >= 0], last,
                         float(tempos[0]) if len(tempos) else 120.0, str(path),
                         [(ts.numerator, ts.denominator, ts.time) for ts in pm.time_signature_changes])


def read_midi(path, beats=None, downbeats=None, require_4_4: bool = True) -> QuantizedMidi:
    """Read, check 4/4 and quantize a MIDI file. Raises MidiError (reason unreadable/empty/not_4_4)."""
    pm = load_pretty_midi(path)
    if require_4_4:
        check_4_4(pm, path)
    return quantize_pretty_midi(pm, path, beats, downbeats)


BEAT_ANNOTATION = "beat_midi.txt"   # POP909: beat times (s), 1 in the third column on downbeats


def read_annotated_midi(path) -> QuantizedMidi:
    """Read a MIDI file on the beats of the `beat_midi.txt` next to it, without the 4/4 check:
    POP909's MIDI time signatures are placeholders, its grid is the annotation. Raises MidiError
    (reason unreadable) for a missing, unreadable or too short annotation."""
    beat_file = Path(path).parent / BEAT_ANNOTATION
    try:
        ann = np.loadtxt(beat_file, ndmin=2)
    except (OSError, ValueError) as e:
        raise MidiError(f"{beat_file}: unreadable beat annotation ({e})", "unreadable") from None
    if ann.shape[0] < 2 or ann.shape[1] < 3:
        raise MidiError(f"{beat_file}: beat annotation too short", "unreadable")
    return read_midi(path, beats=ann[:, 0], downbeats=ann[ann[:, 2] == 1, 0], require_4_4=False)


def read_melody_file(path, track: str | None = None) -> list[Note]:
    """The melody of a MIDI file, to accompany: the instrument named `track` (e.g. MELODY), else the
    file's melody (a track named MELODY, else the highest program 0-31 line), quantized on the
    file's beat grid and moved so that the bar holding its first note starts at beat 0.

    A file with a `beat_midi.txt` next to it (POP909) is read on its annotated beats; any other
    file must be 4/4. Raises MidiError (a ValueError) for a file without a usable melody."""
    from ..core import windows

    path = Path(path)
    midi = read_annotated_midi(path) if (path.parent / BEAT_ANNOTATION).is_file() else read_midi(path)
    if track is not None:
        insts = [i for i in midi.instruments if i.name.strip().upper() == track.strip().upper() and i.notes]
        if not insts:
            names = ", ".join(repr(i.name) for i in midi.instruments) or "none"
            raise MidiError(f"{path}: no track named {track!r} with notes (tracks: {names})", "no_melody")
        inst = insts[0]
        if inst.is_drum:
            raise MidiError(f"{path}: track {track!r} is a drum track; accompany needs a melody", "no_melody")
    else:
        inst = windows.pick_melody(midi.instruments)
        if inst is None:
            if midi.instruments and all(i.is_drum for i in midi.instruments):
                raise MidiError(f"{path}: drums only; accompany needs a melody", "no_melody")
            raise MidiError(f"{path}: no melody track (a track named MELODY or a program 0-31 instrument)",
                            "no_melody")
    notes = inst.notes
    first = min(beat_to_step(n.start) for n in notes)
    starts = [d for d in midi.downbeats if d <= first]
    origin = step_to_beat(max(starts) if starts else (first // STEPS_PER_BAR) * STEPS_PER_BAR)
    return [Note(n.pitch, n.start - origin, n.end - origin, n.velocity, 0, False) for n in notes]


def read_melody(path) -> list[Note]:
    """The melody line of a file, as a melody model reads a user's clip (see windows.pick_melody)."""
    return read_notes(path, "melody")


def read_notes(path, kind: str | None = None) -> list[Note]:
    """Quantized notes of a file (times in beats from the file's step 0).

    kind None: every note (track 0, drums keep is_drum); "melody": the melody instrument;
    "drums": all drum instruments merged; "trio": lead (track 0), bass (1) and drums (2) chosen by
    the training program rules. Raises MidiError when the file lacks what `kind` needs.
    """
    from ..core import windows

    midi = read_midi(path)
    if kind is None:
        return sorted((n for inst in midi.instruments for n in inst.notes), key=lambda n: (n.start, n.pitch))
    if kind == "melody":
        inst = windows.pick_melody(midi.instruments)
        if inst is None:
            raise MidiError(f"{path}: no melody instrument (a non-drum track with program 0-31)", "no_melody")
        return list(inst.notes)
    if kind == "drums":
        notes = windows.drum_notes(midi.instruments)
        if not notes:
            raise MidiError(f"{path}: no drum instrument (channel 10)", "no_drums")
        return notes
    if kind == "trio":
        leads, basses, drums = windows.trio_candidates(midi.instruments)
        missing = [r for r, c in (("lead (program 0-31)", leads), ("bass (program 32-39)", basses),
                                  ("drums (channel 10)", drums)) if not c]
        if missing:
            raise MidiError(f"{path}: no {', '.join(missing)} instrument", "no_trio")
        lead = max(leads, key=lambda i: i.mean_pitch())
        bass = min(basses, key=lambda i: i.mean_pitch())
        return windows.trio_notes(lead.notes, bass.notes, drums)
    raise ValueError(f"unknown kind {kind!r}; use melody, drums or trio")


def write_midi(notes: list[Note], path, tempo: float = 120.0, programs=None, names=None) -> None:
    """Write notes as a multi-track 4/4 file: one instrument per (track, is_drum), drums on channel 10.

    `programs` / `names`: a dict or list indexed by track (default program 0, name "track N"/"drums").
    """
    import pretty_midi

    def lookup(table, track, default):
        if table is None:
            return default
        if isinstance(table, dict):
            return table.get(track, default)
        return table[track] if 0 <= track < len(table) else default

    pm = pretty_midi.PrettyMIDI(initial_tempo=float(tempo))
    pm.time_signature_changes.append(pretty_midi.TimeSignature(4, 4, 0.0))
    sec_per_beat = 60.0 / float(tempo)
    groups: dict[tuple[int, bool], list[Note]] = {}
    for n in notes:
        groups.setdefault((n.track, bool(n.is_drum)), []).append(n)
    for (track, is_drum), group in sorted(groups.items()):
        name = lookup(names, track, "drums" if is_drum else f"track {track}")
        inst = pretty_midi.Instrument(program=int(lookup(programs, track, 0)), is_drum=is_drum, name=name)
        for n in sorted(group, key=lambda n: (n.start, n.pitch)):
            inst.notes.append(pretty_midi.Note(velocity=int(n.velocity), pitch=int(n.pitch),
                                               start=n.start * sec_per_beat, end=n.end * sec_per_beat))
        pm.instruments.append(inst)
    pm.write(str(path))
