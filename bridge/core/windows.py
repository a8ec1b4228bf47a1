"""Training windows from quantized instruments, and the instrument rules that pick the tracks.

Pure numpy on `bridge.Note` lists so the dataset builder (export_onnx.dataset) and the runtime's
file readers (bridge.io.midi_io) agree on what a "melody", a "bass" or a "drum track" is.

Window rules (MusicVAE paper, Magenta's converters):
- a window is `bars` bars starting on a downbeat, stride one bar; every bar in it is 16 steps
  (annotated grids with 2- or 3-beat bars, as in POP909, are cut around);
- the last bar of the window holds part of the music (no windows past the end);
- at most one bar (16 steps) of consecutive rest per track: melody = steps where nothing sounds,
  drums = steps with no hit;
- a melody pitch outside the codec range drops the window (no octave folding in training data);
- a note sounding across the window start is part of the window (struck at step 0);
- duplicates (same tokens) are kept once.
"""
from __future__ import annotations

import numpy as np

from .codecs import MELODY_FIRST_PITCH, MELODY_NOTE_OFF, CodecError, SequenceCodec
from .notes import BASS, DRUMS, LEAD, STEPS_PER_BAR, STEPS_PER_BEAT, Note

MAX_REST_STEPS = STEPS_PER_BAR
LEAD_PROGRAMS = range(0, 32)    # pianos, chromatic percussion, organs, guitars
BASS_PROGRAMS = range(32, 40)


# ---- instrument rules ----------------------------------------------------------------------

def lead_candidates(instruments) -> list:
    return [i for i in instruments if not i.is_drum and i.program in LEAD_PROGRAMS and i.notes]


def melody_instruments(instruments, source: str = "generic") -> list:
    """The instruments a melody dataset takes from one file, each used as a separate line.

    pop909: the tracks named MELODY and BRIDGE. nottingham: the melody track = the non-drum track
    with the highest mean pitch (files hold a melody and a lower chord track). generic: every
    non-drum track with program 0-31 (the codec's skyline reduces each to one line).
    """
    if source == "pop909":
        return [i for i in instruments if i.name.strip().upper() in ("MELODY", "BRIDGE") and i.notes]
    if source == "nottingham":
        tracks = [i for i in instruments if not i.is_drum and i.notes]
        return [max(tracks, key=lambda i: i.mean_pitch())] if tracks else []
    return lead_candidates(instruments)


def pick_melody(instruments):
    """One melody for a user's file: a track named MELODY, else the highest program 0-31 line."""
    named = [i for i in instruments if i.name.strip().upper() == "MELODY" and not i.is_drum and i.notes]
    if named:
        return named[0]
    cands = lead_candidates(instruments)
    return max(cands, key=lambda i: i.mean_pitch()) if cands else None


def drum_notes(instruments) -> list[Note]:
    """All channel-10 instruments merged: files often split a kit into one track per drum."""
    return sorted((n for i in instruments if i.is_drum for n in i.notes), key=lambda n: (n.start, n.pitch))


def trio_candidates(instruments):
    """(lead instruments, bass instruments, merged drum notes) per the trio program rules."""
    leads = lead_candidates(instruments)
    basses = [i for i in instruments if not i.is_drum and i.program in BASS_PROGRAMS and i.notes]
    return leads, basses, drum_notes(instruments)


def trio_notes(lead, bass, drums) -> list[Note]:
    """Tag notes with the trio track numbers the SequenceCodec routes by."""
    def tag(notes, track, is_drum):
        return [Note(n.pitch, n.start, n.end, n.velocity, track, is_drum) for n in notes]
    return sorted(tag(lead, LEAD, False) + tag(bass, BASS, False) + tag(drums, DRUMS, True),
                  key=lambda n: (n.start, n.track, n.pitch))


# ---- rest rule ----------------------------------------------------------------------------

def longest_run(mask) -> int:
    """Length of the longest run of True values."""
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return 0
    d = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return int((np.flatnonzero(d == -1) - np.flatnonzero(d == 1)).max())


def melody_silent(tokens) -> np.ndarray:
    """Steps where a melody token column sounds nothing (before the first note-on, after note-offs)."""
    tokens = np.asarray(tokens)
    event = tokens != 0
    last = np.maximum.accumulate(np.where(event, np.arange(len(tokens)), -1))
    on = tokens[np.maximum(last, 0)] >= MELODY_FIRST_PITCH
    return (last < 0) | ~on


def silent_steps(tokens, kind: str) -> np.ndarray:
    return melody_silent(tokens) if kind == "melody" else np.asarray(tokens) == 0


def rest_ok(tokens, kind: str, max_rest: int = MAX_REST_STEPS) -> bool:
    return longest_run(silent_steps(tokens, kind)) <= max_rest


# ---- windows ------------------------------------------------------------------------------

def window_starts(downbeats, num_steps: int, bars: int) -> list[int]:
    """Downbeats that start `bars` regular 16-step bars whose last bar reaches into the music.

    Past the grid's last downbeat the bars are taken to continue regularly.
    """
    db = sorted(set(int(d) for d in downbeats))
    steps = bars * STEPS_PER_BAR
    out = []
    for k, d in enumerate(db):
        if d + steps - STEPS_PER_BAR >= num_steps:
            break
        later = db[k + 1:]
        inside = [b for b in later if b < d + steps]
        expected = [d + STEPS_PER_BAR * j for j in range(1, bars)]
        if inside != expected[:len(inside)]:
            continue
        after = later[len(inside):]
        if len(inside) < bars - 1 and after:
            continue    # a bar line is missing: some bar is longer than 4 beats
        if after and after[0] != d + steps:
            continue    # the last bar is not 4 beats long
        out.append(d)
    return out


class WindowStats(dict):
    """Counts of what happened to candidate windows: considered, rest, range, duplicate, kept."""

    def add(self, key: str, n: int = 1):
        self[key] = self.get(key, 0) + n


def _clip(notes: list[Note], start: int, stop: int) -> list[Note]:
    """Notes sounding inside [start, stop) steps, shifted to the window (a held note starts at 0)."""
    out = []
    for n in notes:
        s, e = round(n.start * STEPS_PER_BEAT), round(n.end * STEPS_PER_BEAT)
        if s < stop and e > start:
            out.append(Note(n.pitch, max(s - start, 0) / STEPS_PER_BEAT, (min(e, stop) - start) / STEPS_PER_BEAT,
                            n.velocity, 0, n.is_drum))
    return out


def track_windows(notes: list[Note], codec, starts: list[int], steps: int, max_rest: int = MAX_REST_STEPS):
    """Encode one track at every start. Returns tokens (W, steps) int64 and a status per window:
    0 ok, 1 too much rest, 2 pitch outside the codec range."""
    tokens = np.zeros((len(starts), steps), dtype=np.int64)
    status = np.zeros(len(starts), dtype=np.int8)
    if codec.kind == "drums":
        # drum tokens depend on onsets only, so one encoding of the whole track slices exactly
        total = (max(starts) + steps) if starts else 0
        full = codec.encode([n for n in notes], total)
        for w, s in enumerate(starts):
            tokens[w] = full[s:s + steps]
            status[w] = 0 if longest_run(tokens[w] == 0) <= max_rest else 1
        return tokens, status
    notes = sorted(notes, key=lambda n: n.start)
    note_starts = np.array([round(n.start * STEPS_PER_BEAT) for n in notes], dtype=np.int64)
    note_ends = np.array([round(n.end * STEPS_PER_BEAT) for n in notes], dtype=np.int64)
    # running maximum of ends tells which notes can still sound at a window start
    max_end = np.maximum.accumulate(note_ends) if len(notes) else note_ends
    for w, s in enumerate(starts):
        hi = int(np.searchsorted(note_starts, s + steps, side="left"))
        lo = int(np.searchsorted(max_end, s, side="right"))
        window = _clip(notes[lo:hi], s, s + steps)
        if not window:
            status[w] = 1
            continue
        try:
            col = codec.encode(window, steps)
        except CodecError:
            status[w] = 2
            continue
        tokens[w] = col
        status[w] = 0 if longest_run(melody_silent(col)) <= max_rest else 1
    return tokens, status


def extract_windows(tracks: list[list[Note]], codec: SequenceCodec, bars: int, downbeats, num_steps: int,
                    max_rest: int = MAX_REST_STEPS, stats: WindowStats | None = None,
                    _cache: dict | None = None):
    """All valid, unique windows of one song for one choice of instruments.

    `tracks`: one note list per codec track (absolute times in beats). Returns
    (tokens uint16 (N, steps, tracks), start_bar int32 (N,)) where start_bar indexes `downbeats`.
    """
    steps = bars * STEPS_PER_BAR
    if len(tracks) != len(codec.tracks):
        raise ValueError(f"{len(tracks)} note lists for a {len(codec.tracks)}-track codec")
    starts = window_starts(downbeats, num_steps, bars)
    bar_index = {d: k for k, d in enumerate(sorted(set(int(d) for d in downbeats)))}
    stats = stats if stats is not None else WindowStats()
    stats.add("considered", len(starts))
    if not starts:
        return np.zeros((0, steps, len(tracks)), np.uint16), np.zeros(0, np.int32)
    cols, statuses = [], []
    for notes, tc in zip(tracks, codec.tracks):
        # the trio cross product reuses a track's windows across combinations
        key = (id(notes), id(tc))
        if _cache is not None and key in _cache:
            tok, st = _cache[key]
        else:
            tok, st = track_windows(notes, tc, starts, steps, max_rest)
            if _cache is not None:
                _cache[key] = (tok, st)
        cols.append(tok)
        statuses.append(st)
    status = np.stack(statuses, axis=1)
    ranged = (status == 2).any(axis=1)
    rest = ~ranged & (status == 1).any(axis=1)
    stats.add("dropped_range", int(ranged.sum()))
    stats.add("dropped_rest", int(rest.sum()))
    keep = ~(ranged | rest)
    tokens = np.stack(cols, axis=2)[keep].astype(np.uint16)
    start_bar = np.array([bar_index[s] for s, k in zip(starts, keep) if k], dtype=np.int32)
    tokens, idx = unique_windows(tokens)
    stats.add("duplicates", int(keep.sum()) - len(idx))
    stats.add("kept", len(idx))
    return tokens, start_bar[idx]


def unique_windows(tokens: np.ndarray, seen: set | None = None):
    """First occurrence of every distinct window (optionally also unseen in `seen`, which is updated).
    Returns (tokens, kept indices)."""
    seen = set() if seen is None else seen
    idx = []
    for i in range(len(tokens)):
        key = tokens[i].tobytes()
        if key not in seen:
            seen.add(key)
            idx.append(i)
    idx = np.array(idx, dtype=np.int64)
    return tokens[idx], idx
