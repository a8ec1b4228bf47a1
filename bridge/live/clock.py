"""The song clock of a live set: `Clock` (what schedulers need), `Transport` (the client's transport).

The Live device is the clock. A client sends `transport` several times per beat; `Transport` keeps
the song position (in quarter-note beats, as Live's current_song_time) and extrapolates it between
updates with the monotonic clock. Bars are 4/4 only: bar = floor(beat / 4). bridge.live.midi adds
a Clock that follows incoming MIDI clock.
"""
from __future__ import annotations

import math
import threading
import time
from typing import Callable

from ..core.errors import LiveError
from ..core.notes import BEATS_PER_BAR

MAX_TEMPO = 999.0
MAX_BEAT = 4.0e7          # song positions beyond this (10 million bars) are refused: no clock maths overflows
POLL_S = 0.05             # schedulers re-check at least this often (transport changes wake them at once)


class Clock:
    """What schedulers need from a clock source (the client's transport, or incoming MIDI clock)."""

    changed: threading.Condition

    @property
    def known(self) -> bool:  # a position has been received
        raise NotImplementedError

    @property
    def playing(self) -> bool:
        raise NotImplementedError

    @property
    def tempo(self) -> float:
        raise NotImplementedError

    def beat(self, now: float | None = None) -> float:
        raise NotImplementedError

    def bar(self, now: float | None = None) -> int:
        return int(math.floor(self.beat(now) / BEATS_PER_BAR + 1e-9))

    def next_bar(self, now: float | None = None) -> int:
        """The first bar that has not started yet."""
        return self.bar(now) + 1

    def seconds_until_beat(self, beat: float, now: float | None = None) -> float:
        """Seconds from `now` until `beat` at the current tempo; inf when stopped or unknown."""
        if not self.known or not self.playing:
            return math.inf
        return (beat - self.beat(now)) * 60.0 / self.tempo

    def time_of_beat(self, beat: float, now: float | None = None) -> float | None:
        """The monotonic time at which `beat` will sound (None when stopped)."""
        now = time.monotonic() if now is None else now
        s = self.seconds_until_beat(beat, now)
        return None if math.isinf(s) else now + s




def _number(msg: dict, key: str, default=None):
    v = msg.get(key, default)
    if v is None:
        raise LiveError(f"transport needs {key!r}")
    if isinstance(v, bool) or not isinstance(v, (int, float)) or (isinstance(v, int) and abs(v) > 2 ** 64) \
            or not math.isfinite(v):
        raise LiveError(f"transport {key!r} must be a finite number, got {v!r}"[:200])
    return float(v)


class Transport(Clock):
    """A client's view of Live's transport, extrapolated between `transport` messages."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._lock = threading.Lock()
        self.changed = threading.Condition(self._lock)
        self._tempo = 120.0
        self._beat = 0.0
        self._at = 0.0
        self._playing = False
        self._known = False
        self.updates = 0

    @staticmethod
    def parse(msg: dict) -> dict:
        """Validate a transport message; raise LiveError with a clear message."""
        if not isinstance(msg, dict):
            raise LiveError("transport takes a JSON object {tempo, beat, playing, numerator, denominator}")
        num = msg.get("numerator", 4)
        den = msg.get("denominator", 4)
        for k, v in (("numerator", num), ("denominator", den)):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or (isinstance(v, float) and not math.isfinite(v)) \
                    or v != int(v) or not 1 <= v <= 64:
                raise LiveError(f"transport {k!r} must be an integer 1..64, got {v!r}"[:200])
        if (int(num), int(den)) != (4, 4):
            raise LiveError(f"only 4/4 is supported (the models are trained on 4/4 bars of 16 steps); "
                            f"the song is in {int(num)}/{int(den)}")
        tempo = _number(msg, "tempo")
        if not 0.0 < tempo <= MAX_TEMPO:
            raise LiveError(f"transport tempo must be in (0, {MAX_TEMPO:g}] bpm, got {tempo:g}")
        beat = _number(msg, "beat")
        if not -MAX_BEAT <= beat <= MAX_BEAT:
            raise LiveError(f"transport 'beat' must be in -{MAX_BEAT:g}..{MAX_BEAT:g}, got {beat:g}")
        playing = msg.get("playing", True)
        if isinstance(playing, (int, float)) and not isinstance(playing, bool) and playing in (0, 1):
            playing = bool(playing)
        if not isinstance(playing, bool):
            raise LiveError(f"transport 'playing' must be true/false (or 1/0), got {playing!r}")
        return {"tempo": tempo, "beat": beat, "playing": playing}

    def update(self, msg: dict, now: float | None = None) -> dict:
        t = self.parse(msg)
        now = self._clock() if now is None else now
        with self.changed:
            self._tempo, self._beat, self._playing = t["tempo"], t["beat"], t["playing"]
            self._at = now
            self._known = True
            self.updates += 1
            self.changed.notify_all()
        return t

    @property
    def known(self) -> bool:
        return self._known

    @property
    def playing(self) -> bool:
        return self._playing

    @property
    def tempo(self) -> float:
        return self._tempo

    def beat(self, now: float | None = None) -> float:
        now = self._clock() if now is None else now
        with self._lock:
            if not self._playing:
                return self._beat
            return self._beat + (now - self._at) * self._tempo / 60.0

    def snapshot(self, now: float | None = None) -> dict:
        b = self.beat(now)
        return {"tempo": self._tempo, "beat": round(b, 4), "bar": int(math.floor(b / BEATS_PER_BAR + 1e-9)),
                "playing": self._playing}


def wait_for_beat(clock: Clock, beat: float, cancelled: threading.Event, max_wait: float = POLL_S) -> bool:
    """Block until the clock reaches `beat` (True) or the job is cancelled (False)."""
    while not cancelled.is_set():
        remaining = clock.seconds_until_beat(beat)
        if remaining <= 0:
            return True
        with clock.changed:
            clock.changed.wait(min(remaining, max_wait))
    return False

