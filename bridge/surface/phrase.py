"""The last phrase played into the daemon's MIDI in, for A/B learn.

`PhraseRecorder.feed` takes each note on / off of `--midi-in` (bridge.live.midi.MidiLive's
note_listeners) and times it in beats on the clock MIDI out follows (MIDI clock, else the leading
client's transport; without either, 120 bpm from the wall clock). `phrase(bars)` is the last phrase:
the notes after the last silence of at least `gap_beats`, from the bar its first note falls in, cut
to `bars` bars, as note rows relative to that bar.
"""
from __future__ import annotations

import math
import threading
import time
from collections import deque
from typing import Callable

from ..core.notes import BEATS_PER_BAR

FALLBACK_BPM = 120.0


class PhraseRecorder:
    """Notes from MIDI in, kept for learning (the last `max_notes`)."""

    def __init__(self, clock_fn: Callable[[], object] = lambda: None, gap_beats: float = 4.0, max_notes: int = 512):
        """Args:
            clock_fn: the bridge.live.clock.Clock to time notes on now (None: the wall clock at 120 bpm).
            gap_beats: a silence this long ends a phrase. max_notes: notes kept.
        """
        self.clock_fn = clock_fn
        self.gap_beats = gap_beats
        self._lock = threading.Lock()
        self._open: dict[tuple[int, int], tuple[float, int]] = {}     # (channel, pitch) -> (beat, velocity)
        self._done: deque = deque(maxlen=max_notes)                   # (start, end, pitch, velocity)
        self.notes_seen = 0

    def beat(self, at: float) -> float:
        clock = self.clock_fn()
        if clock is not None and clock.known:
            return clock.beat(at)
        return at * FALLBACK_BPM / 60.0

    def feed(self, msg, at: float | None = None) -> None:
        """One MIDI message (mido) received at monotonic time `at`; other than note on / off: ignored."""
        at = time.monotonic() if at is None else at
        if msg.type not in ("note_on", "note_off"):
            return
        beat = self.beat(at)
        key = (msg.channel, msg.note)
        with self._lock:
            started = self._open.pop(key, None)
            if started is not None:
                self._done.append((started[0], max(beat, started[0] + 0.25), msg.note, started[1]))
            if msg.type == "note_on" and msg.velocity > 0:
                self._open[key] = (beat, msg.velocity)
                self.notes_seen += 1

    def phrase(self, bars: int, now: float | None = None) -> list[list] | None:
        """The last phrase as rows [pitch, start_beat, duration_beats, velocity, 0], at most `bars`
        bars from the bar of its first note (notes still held end now); None when nothing was played."""
        end_now = self.beat(time.monotonic() if now is None else now)
        with self._lock:
            notes = sorted(list(self._done) + [(b, max(end_now, b + 0.25), p, v) for (_, p), (b, v) in self._open.items()])
        if not notes:
            return None
        first = len(notes) - 1
        for i in range(len(notes) - 1, 0, -1):        # walk back until a gap of gap_beats
            if notes[i][0] - max(n[1] for n in notes[:i]) >= self.gap_beats:
                break
            first = i - 1
        start = math.floor(notes[first][0] / BEATS_PER_BAR) * BEATS_PER_BAR
        length = bars * BEATS_PER_BAR
        rows = []
        for s, e, pitch, velocity in notes[first:]:
            if s - start >= length:
                break
            rows.append([pitch, round(s - start, 4), round(min(e, start + length) - s, 4), velocity, 0])
        return rows
